//! Media facts from `ffprobe`, for the CLI's checks before anything is
//! stored and for the worker's pipeline: one runner ([`run_ffprobe`]), one
//! typed reading of its JSON ([`ProbeJson`]), and the summary the `videos`
//! row stores ([`MediaInfo`]).

mod json;

pub use json::{parse_rate, ProbeFormat, ProbeJson, ProbeStream};

use crate::BadInput;
use anyhow::Context;
use std::ffi::OsStr;
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

/// ffprobe ran and exited non-zero: `log` is the tail of what it printed on
/// stderr (its reason), `status` its exit status.
#[derive(Debug, thiserror::Error)]
#[error("ffprobe failed ({status}): {log}")]
pub struct FfprobeFailed {
    pub status: String,
    pub log: String,
}

/// Lines of ffprobe's stderr kept in [`FfprobeFailed::log`].
const LOG_TAIL: usize = 12;

/// Runs `ffprobe -v error -hide_banner <args>` and returns its stdout: the one
/// place this workspace starts ffprobe (the CLI's checks, the worker's probes
/// and packet scans all come through here). The child is killed if the
/// future is dropped (a cancelled step). A non-zero exit is [`FfprobeFailed`]
/// with ffprobe's own last lines, newest first.
pub async fn run_ffprobe<I, S>(args: I) -> anyhow::Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = ffprobe_output(args).await?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let log = stderr.lines().rev().take(LOG_TAIL).collect::<Vec<_>>().join(" | ");
        return Err(FfprobeFailed { status: output.status.to_string(), log }.into());
    }
    String::from_utf8(output.stdout).context("ffprobe output is not UTF-8")
}

/// Starts ffprobe with `args` and collects its exit status and output.
async fn ffprobe_output<I, S>(args: I) -> anyhow::Result<std::process::Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-hide_banner"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("cannot start ffprobe (is ffmpeg installed and on PATH?)")
}

/// Every stream and the container of `path`, typed ([`ProbeJson`]). Errors:
/// [`FfprobeFailed`] if ffprobe cannot read the file.
pub async fn probe_json(path: &Path) -> anyhow::Result<ProbeJson> {
    let args = ["-show_format".as_ref(), "-show_streams".as_ref(), "-of".as_ref(), "json".as_ref()];
    let out = run_ffprobe(args.into_iter().chain([path.as_os_str()])).await?;
    serde_json::from_str(&out).context("parsing ffprobe output")
}

/// Probes `path` with ffprobe. Files ffprobe cannot read, and files without
/// a video stream or a duration, are [`BadInput`] with a reason.
pub async fn probe(path: &Path) -> anyhow::Result<MediaInfo> {
    let name = path.display();
    let parsed = match probe_json(path).await {
        Ok(parsed) => parsed,
        Err(e) => match e.downcast_ref::<FfprobeFailed>() {
            Some(failed) => {
                let reason = failed.log.split(" | ").next().unwrap_or("unreadable").trim();
                let reason = if reason.is_empty() { "unreadable" } else { reason };
                return Err(BadInput::new(format!(
                    "{name} is not a readable media file: {reason}"
                ))
                .into());
            }
            None => return Err(e),
        },
    };
    let format = parsed
        .format
        .as_ref()
        .ok_or_else(|| BadInput::new(format!("{name}: no container format found")))?;
    let Some(video) = parsed.video() else {
        return Err(BadInput::new(format!("{name} has no video stream")).into());
    };
    let duration_seconds = format.duration.filter(|d| *d > 0.0).ok_or_else(|| {
        BadInput::new(format!("{name} has no duration (truncated or not a video?)"))
    })?;
    let frame_rate = (video.avg_frame_rate.as_deref().and_then(parse_rate))
        .or_else(|| video.r_frame_rate.as_deref().and_then(parse_rate));
    Ok(MediaInfo {
        duration_seconds,
        width: video.width.map(|w| w as i32),
        height: video.height.map(|h| h as i32),
        frame_rate,
        bitrate: format.bit_rate.map(|b| b as i64),
        has_video: true,
        has_audio: parsed.audio().is_some(),
        format_name: format.format_name.clone().unwrap_or_default(),
    })
}

/// Checks that the file's media data can be read to the end: a truncated
/// upload often keeps a readable index (MP4 with the index in front) while
/// its last packets are missing, which only reading the packets reveals
/// (ffprobe reports "partial file"). Reads packet headers, not frames, so it
/// is fast. Returns [`BadInput`] with ffprobe's reason.
pub async fn check_complete(path: &Path) -> anyhow::Result<()> {
    let args = ["-show_entries", "packet=pos", "-of", "csv=p=0"].map(OsStr::new);
    let output = ffprobe_output(args.into_iter().chain([path.as_os_str()])).await?;
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
