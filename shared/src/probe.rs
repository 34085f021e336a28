//! Media facts from `ffprobe`: duration, size, frame rate, bitrate, and
//! whether the file has video and audio at all.

use crate::BadInput;
use anyhow::Context;
use serde::Deserialize;
use std::path::Path;

/// What a probe found in a media file.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaInfo {
    pub duration_seconds: f64,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub frame_rate: Option<f64>,
    pub bitrate: Option<i64>,
    pub has_video: bool,
    pub has_audio: bool,
    /// ffprobe's container names, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub format_name: String,
}

impl MediaInfo {
    /// The MIME type for the container, as stored in `videos.mime_type`.
    pub fn mime_type(&self) -> &'static str {
        container_mime_type(&self.format_name)
    }
}

/// The MIME type for an ffprobe `format_name` (its demuxer names, e.g.
/// `mov,mp4,m4a,3gp,3g2,mj2` or `matroska,webm`), as stored in
/// `videos.mime_type` by the enqueue CLI and again by the worker's probe.
///
/// A hand mapping on purpose: mime_guess maps file extensions, and these
/// are demuxer names, not extensions (`matroska`, `mpegts`). Where they look
/// like extensions its answers are not what this column has always held:
/// one demuxer reads the whole MOV/MP4 family (mime_guess: `mov` is
/// `video/quicktime`), one reads Matroska and WebM alike (`webm` is
/// `video/webm`), and `ts` is `video/vnd.dlna.mpeg-tts` there, not
/// `video/mp2t`.
pub fn container_mime_type(format_name: &str) -> &'static str {
    let f = format_name;
    if f.contains("mp4") || f.contains("mov") {
        "video/mp4"
    } else if f.contains("matroska") || f.contains("webm") {
        "video/x-matroska"
    } else if f.contains("mpegts") {
        "video/mp2t"
    } else if f.contains("avi") {
        "video/x-msvideo"
    } else if f.contains("flv") {
        "video/x-flv"
    } else {
        "application/octet-stream"
    }
}

#[derive(Deserialize)]
struct ProbeOutput {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    format: Option<ProbeFormat>,
}

#[derive(Deserialize)]
struct ProbeStream {
    codec_type: Option<String>,
    width: Option<i32>,
    height: Option<i32>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    #[serde(default)]
    disposition: serde_json::Value,
}

#[derive(Deserialize)]
struct ProbeFormat {
    format_name: Option<String>,
    duration: Option<String>,
    bit_rate: Option<String>,
}

/// Parses an ffprobe rational like `30000/1001`.
fn parse_rate(text: &str) -> Option<f64> {
    let (num, den) = text.split_once('/')?;
    let (num, den): (f64, f64) = (num.parse().ok()?, den.parse().ok()?);
    (den > 0.0 && num > 0.0).then(|| num / den)
}

/// Probes `path` with ffprobe. Files ffprobe cannot read, and files without
/// a video stream or a duration, are [`BadInput`] with a reason.
pub async fn probe(path: &Path) -> anyhow::Result<MediaInfo> {
    let output = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_format", "-show_streams"])
        .arg(path)
        .output()
        .await
        .context("running ffprobe (is ffmpeg installed?)")?;
    let name = path.display();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = stderr.lines().last().unwrap_or("unreadable").trim().to_string();
        return Err(BadInput::new(format!("{name} is not a readable media file: {reason}")).into());
    }
    let parsed: ProbeOutput =
        serde_json::from_slice(&output.stdout).context("parsing ffprobe output")?;
    let format =
        parsed.format.ok_or_else(|| BadInput::new(format!("{name}: no container format found")))?;
    let video = parsed.streams.iter().find(|s| {
        s.codec_type.as_deref() == Some("video")
            && s.disposition.get("attached_pic").and_then(|v| v.as_i64()) != Some(1)
    });
    let has_audio = parsed.streams.iter().any(|s| s.codec_type.as_deref() == Some("audio"));
    let Some(video) = video else {
        return Err(BadInput::new(format!("{name} has no video stream")).into());
    };
    let duration_seconds = format
        .duration
        .as_deref()
        .and_then(|d| d.parse::<f64>().ok())
        .filter(|d| *d > 0.0)
        .ok_or_else(|| {
            BadInput::new(format!("{name} has no duration (truncated or not a video?)"))
        })?;
    let frame_rate = video
        .avg_frame_rate
        .as_deref()
        .and_then(parse_rate)
        .or_else(|| video.r_frame_rate.as_deref().and_then(parse_rate));
    Ok(MediaInfo {
        duration_seconds,
        width: video.width,
        height: video.height,
        frame_rate,
        bitrate: format.bit_rate.as_deref().and_then(|b| b.parse().ok()),
        has_video: true,
        has_audio,
        format_name: format.format_name.unwrap_or_default(),
    })
}

/// Checks that the file's media data can be read to the end: a truncated
/// upload often keeps a readable index (MP4 with the index in front) while
/// its last packets are missing, which only reading the packets reveals
/// (ffprobe reports "partial file"). Reads packet headers, not frames, so it
/// is fast. Returns [`BadInput`] with ffprobe's reason.
pub async fn check_complete(path: &Path) -> anyhow::Result<()> {
    let output = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "packet=pos", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .await
        .context("running ffprobe (is ffmpeg installed?)")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if let Some(reason) = stderr.lines().map(str::trim).rfind(|l| !l.is_empty()) {
        // "[mov,mp4,... @ 0x...] stream 1, offset 0x1fcf1: partial file" -> after the "] ".
        let reason = reason.rsplit("] ").next().unwrap_or(reason);
        return Err(
            BadInput::new(format!("{} is truncated or corrupt: {reason}", path.display())).into()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::container_mime_type;

    #[test]
    fn container_mime_types() {
        for (format, mime) in [
            ("mov,mp4,m4a,3gp,3g2,mj2", "video/mp4"),
            ("matroska,webm", "video/x-matroska"),
            ("mpegts", "video/mp2t"),
            ("avi", "video/x-msvideo"),
            ("flv", "video/x-flv"),
            ("wav", "application/octet-stream"),
            ("", "application/octet-stream"),
        ] {
            assert_eq!(container_mime_type(format), mime, "{format}");
        }
    }
}
