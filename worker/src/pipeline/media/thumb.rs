//! Poster frames.

use std::path::Path;

use anyhow::Context;

use super::run::{args, ffmpeg, secs, temp_sibling, TempPath};
use super::{Cancel, MediaError};

/// Largest thumbnail width in pixels; narrower sources are not upscaled.
pub const THUMBNAIL_MAX_WIDTH: u32 = 640;

/// Writes the frame shown at `at` seconds (file timeline; accurate seek, so it
/// is that exact frame, with rotation and pixel aspect applied) as a JPEG to
/// `output_jpeg`, scaled down to at most [`THUMBNAIL_MAX_WIDTH`] pixels wide.
/// A time past the end yields the last frame. The file appears atomically
/// (written to a temporary sibling, then renamed).
pub async fn thumbnail(
    input: &Path,
    at: f64,
    output_jpeg: &Path,
    cancel: &Cancel,
) -> anyhow::Result<()> {
    if !at.is_finite() || at < 0.0 {
        return Err(MediaError::InvalidRequest(format!("thumbnail time {at}")).into());
    }
    let tmp = TempPath::new(temp_sibling(output_jpeg, "thumb"));
    let filter = format!(
        "scale=iw*sar:ih,setsar=1,scale='min({THUMBNAIL_MAX_WIDTH},iw)':-2:flags=bicubic,format=yuvj420p"
    );
    // `-update 1` overwrites the single image, so without a frame limit the
    // last decoded frame wins (used for the end-of-file fallback).
    let run = |seek: Vec<std::ffi::OsString>, one_frame: bool| {
        let mut a = seek;
        a.extend(args!["-i", input, "-map", "0:v:0", "-an", "-sn", "-dn"]);
        if one_frame {
            a.extend(args!["-frames:v", "1"]);
        }
        a.extend(args![
            "-vf",
            &filter,
            "-c:v",
            "mjpeg",
            "-q:v",
            "3",
            "-f",
            "image2",
            "-update",
            "1",
            tmp.path(),
        ]);
        a
    };
    ffmpeg(run(args!["-ss", secs(at)], true), cancel, false, |_| {})
        .await
        .with_context(|| format!("thumbnail of {} at {at}s", input.display()))?;
    let empty = tokio::fs::metadata(tmp.path()).await.map(|m| m.len() == 0).unwrap_or(true);
    if empty {
        // Seeking past the last frame produces nothing: take the last frame instead.
        ffmpeg(run(args!["-sseof", "-1"], false), cancel, false, |_| {})
            .await
            .with_context(|| format!("thumbnail of {} near its end", input.display()))?;
        let empty = tokio::fs::metadata(tmp.path()).await.map(|m| m.len() == 0).unwrap_or(true);
        if empty {
            return Err(MediaError::InvalidRequest(format!("no video frame at {at}s")).into());
        }
    }
    tokio::fs::rename(tmp.path(), output_jpeg)
        .await
        .with_context(|| format!("moving thumbnail to {}", output_jpeg.display()))?;
    tmp.keep();
    Ok(())
}
