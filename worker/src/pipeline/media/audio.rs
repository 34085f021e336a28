//! Audio extraction for speech recognition.

use std::path::Path;

use anyhow::Context;

use super::run::{args, ffmpeg, ffprobe};
use super::{Cancel, MediaError};

/// Sample rate of [`extract_audio`]'s output (what Whisper expects).
pub const AUDIO_SAMPLE_RATE: u32 = 16_000;

/// Decodes the first audio stream of `input` to 16 kHz mono `f32` samples
/// (ffmpeg resamples and downmixes, writing raw `f32le` to stdout; about 0.15 s
/// for 20 s of audio). Sample `i` is at `i / 16000` seconds on the file
/// timeline: a late-starting stream is padded with silence at the front and
/// gaps are filled, so transcript times line up with video times and cuts.
///
/// Errors: [`MediaError::NoAudioStream`] when the file has no audio stream,
/// [`MediaError::Cancelled`] when `cancel` fires.
pub async fn extract_audio(input: &Path, cancel: &Cancel) -> anyhow::Result<Vec<f32>> {
    let streams = ffprobe([
        "-select_streams".as_ref(),
        "a".as_ref(),
        "-show_entries".as_ref(),
        "stream=index".as_ref(),
        "-of".as_ref(),
        "csv=p=0".as_ref(),
        input.as_os_str(),
    ])
    .await
    .with_context(|| format!("probing audio of {}", input.display()))?;
    if streams.trim().is_empty() {
        return Err(MediaError::NoAudioStream(input.to_path_buf()).into());
    }
    let a = args![
        "-i",
        input,
        "-map",
        "0:a:0",
        "-vn",
        "-sn",
        "-dn",
        // async=1 pads/trims against timestamps, first_pts=0 pads a late start.
        "-af",
        format!("aresample={AUDIO_SAMPLE_RATE}:async=1:first_pts=0"),
        "-ac",
        "1",
        "-ar",
        AUDIO_SAMPLE_RATE.to_string(),
        "-c:a",
        "pcm_f32le",
        "-f",
        "f32le",
        "pipe:1",
    ];
    let bytes = ffmpeg(a, cancel, true, |_| {})
        .await
        .with_context(|| format!("extracting audio from {}", input.display()))?;
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}
