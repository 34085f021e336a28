//! Full re-encodes (the fallback when a smart cut is not possible, and for
//! VFR sources), the encoder and container arguments they share with the
//! smart cut, and moving a finished clip into place.

use super::*;

/// Re-encodes the whole clip (frame-exact: accurate seek, exact duration,
/// source timestamps kept); returns the output size, frame count and video
/// duration as measured in the output.
pub(super) async fn full_reencode<F: FnMut(f64)>(
    input: &Path,
    output: &Path,
    probe: &SourceInfo,
    scan: &PacketScan,
    clip: &Clip,
    cancel: &Cancel,
    progress: &mut CutProgress<F>,
) -> anyhow::Result<(u64, u64, f64)> {
    let tmp = TempPath::new(temp_sibling(output, "part"));
    let total = clip.duration(scan);
    let mut a = args![
        "-seek_timestamp",
        "1",
        "-ss",
        us_str(scan.abs_us(clip.start)),
        "-t",
        secs(total),
        "-i",
        input,
        "-map",
        "0:v:0",
        "-sn",
        "-dn",
    ];
    a.extend(video_encoder_args(probe, output));
    a.extend(args!["-fps_mode", "passthrough", "-enc_time_base", "-1"]);
    if probe.has_audio {
        a.extend(args!["-map", "0:a:0"]);
        a.extend(audio_args(probe, output));
    }
    let timescale = (scan.tb_num == 1).then(|| scan.tb_den.to_string());
    a.extend(container_args(output, timescale.as_deref()));
    a.push(tmp.path().into());
    let from = progress.last;
    ffmpeg(a, cancel, false, |t| progress.stage(from, 0.97, t, total))
        .await
        .context("re-encoding clip")?;

    // Measure what was written; a mismatch is logged, not fatal (there is no
    // better fallback), and the report carries the measured values.
    let got = probe_clip(tmp.path()).await?;
    let frames = got.video.frames_sorted();
    let duration = match (frames.first(), frames.last(), got.video.frame_ticks()) {
        (Some(&a), Some(&b), Some(ft)) => got.video.abs(b + ft) - got.video.abs(a),
        _ => 0.0,
    };
    if frames.len() != clip.frames.len()
        || (duration - total).abs() > scan.abs(scan.frame_ticks().unwrap_or(1))
    {
        tracing::warn!(
            input = %input.display(),
            frames = frames.len(),
            expected = clip.frames.len(),
            duration,
            expected_duration = total,
            "re-encoded clip differs from the plan"
        );
    }
    let size = finish(tmp, output).await?;
    Ok((size, frames.len() as u64, duration))
}

pub(super) async fn finish(tmp: TempPath, output: &Path) -> anyhow::Result<u64> {
    let size = tokio::fs::metadata(tmp.path()).await.context("clip was not written")?.len();
    tokio::fs::rename(tmp.path(), output)
        .await
        .with_context(|| format!("moving clip to {}", output.display()))?;
    tmp.keep();
    Ok(size)
}

pub(super) fn ext_of(p: &Path) -> String {
    p.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default()
}

/// MP4-family output (an output without extension is written as MP4).
pub(super) fn is_mp4_like(p: &Path) -> bool {
    matches!(ext_of(p).as_str(), "mp4" | "m4v" | "mov" | "")
}

pub(super) fn container_args(output: &Path, timescale: Option<&str>) -> Vec<OsString> {
    let mut a = args!["-max_muxing_queue_size", "4096"];
    if ext_of(output).is_empty() {
        a.extend(args!["-f", "mp4"]);
    }
    if is_mp4_like(output) {
        a.extend(args!["-movflags", "+faststart"]);
        if let Some(ts) = timescale {
            a.extend(args!["-video_track_timescale", ts]);
        }
    }
    a
}

/// Encoder for a full re-encode: the source's codec family where an encoder
/// exists (H.264 -> libx264, HEVC -> libx265, VP8/9 in WebM -> libvpx-vp9),
/// otherwise H.264.
pub(super) fn video_encoder_args(probe: &SourceInfo, output: &Path) -> Vec<OsString> {
    let webm = ext_of(output) == "webm";
    let pix = |ok: &[&str]| {
        if ok.contains(&probe.pix_fmt.as_str()) {
            probe.pix_fmt.clone()
        } else {
            "yuv420p".into()
        }
    };
    const X26X: [&str; 7] =
        ["yuv420p", "yuvj420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p10le"];
    if webm {
        args![
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-row-mt",
            "1",
            "-crf",
            "32",
            "-b:v",
            "0",
            "-pix_fmt",
            "yuv420p"
        ]
    } else if probe.video_codec == "hevc" {
        let mut a = args![
            "-c:v",
            "libx265",
            "-preset",
            "veryfast",
            "-crf",
            "22",
            "-pix_fmt",
            pix(&X26X),
            "-x265-params",
            "log-level=error"
        ];
        if is_mp4_like(output) {
            a.extend(args!["-tag:v", "hvc1"]);
        }
        a
    } else {
        args!["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", pix(&X26X)]
    }
}

/// Audio re-encode settings: the source codec where it fits the container,
/// else AAC; bitrate from the source (clamped), sample rate and channels kept.
pub(super) fn audio_args(probe: &SourceInfo, output: &Path) -> Vec<OsString> {
    let webm = ext_of(output) == "webm";
    let codec = probe.audio_codec.as_deref().unwrap_or("aac");
    let enc = match (codec, webm) {
        (_, true) => "libopus",
        ("mp3", false) => "libmp3lame",
        ("opus", false) => "libopus",
        ("ac3", false) => "ac3",
        ("eac3", false) => "eac3",
        _ => "aac",
    };
    let br = probe.audio_bit_rate.unwrap_or(160_000).clamp(64_000, 320_000);
    args!["-c:a", enc, "-b:a", br.to_string()]
}

/// Microseconds as an ffmpeg time string.
pub(super) fn us_str(us: i64) -> String {
    let sign = if us < 0 { "-" } else { "" };
    let a = us.unsigned_abs();
    format!("{sign}{}.{:06}", a / 1_000_000, a % 1_000_000)
}
