//! Media handling for the clipping pipeline: probing, audio extraction for
//! transcription, thumbnails and frame-exact clip cutting, all by running the
//! `ffmpeg` / `ffprobe` binaries found on `PATH` (ffmpeg 5.1 is the tested version).
//!
//! Every step takes plain inputs (paths, seconds) and returns plain outputs, so
//! each one can be used and tested on its own. Long ffmpeg runs poll a
//! [`Cancel`] token and kill the child within ~50 ms of it being set (or of its
//! deadline passing), returning [`MediaError::Cancelled`]; files being written
//! go to a temporary name next to the destination and are removed on any error.
//!
//! # Timeline
//!
//! All times given to or returned by this module are seconds on the file's
//! presentation timeline, where 0 is the container's `start_time` (what a player
//! shows as 0:00). For ordinary MP4 files that is the raw packet time.
//!
//! # Exact cuts: the smart-cut approach
//!
//! The product promises clips that start and end on the requested frame with
//! audio in sync. Stream copy alone can only start on a keyframe (a 2 s GOP cut
//! with `-ss` before `-i` and `-c copy` starts up to 2 s early), and a full
//! re-encode is exact but 5-20x slower and loses quality. [`CutSource`] (one
//! per source video, shared by all its clips; [`cut_clip`] for a single clip)
//! does:
//!
//! 1. **Snap** the request to frame boundaries using the real packet timestamps
//!    (one ffprobe scan of the whole stream when the [`CutSource`] opens, demux
//!    only): the start becomes the frame nearest to `start`, the end the frame
//!    boundary nearest to `end`.
//! 2. **Plan**: with `k1` = first keyframe at or after the start, the clip is
//!    `head` = [start, k1) re-encoded, `mid` = [k1, ..) stream-copied packet by
//!    packet (`-frames:v`, so no timestamp rounding decides what is kept) and,
//!    only when needed, `tail` = [last keyframe, end) re-encoded. The tail is
//!    needed when the source reorders frames (B-frames): copying up to `end`
//!    in decode order would drag in reference frames that are displayed after
//!    `end`, so the clip would be a frame or two long.
//! 3. **Match the encoder**: a re-encoded piece only joins cleanly if its
//!    SPS/PPS are byte-identical to the source's, since an MP4 track carries one
//!    `avcC`. For x264-encoded H.264 (most uploads made with ffmpeg, OBS,
//!    HandBrake...) the encoder settings are read back from x264's SEI
//!    ("options: cabac=1 ref=3 ...") and replayed through `-x264-params`, with the
//!    source's level, pixel format and track timescale. Settings that only
//!    steer the encoder's search (motion estimation, trellis, psy, lookahead)
//!    are not in the bitstream's parameter sets, so heads are first encoded
//!    with the cheapest ones; the parameter sets of the new head are compared
//!    with those at `k1`, and on any difference the exact replay is tried once
//!    (then a full re-encode). The settings are read once per source.
//! 4. **Join** the pieces with the concat demuxer (explicit per-piece
//!    durations), and in the same run re-encode the audio for exactly the clip
//!    span (accurate input seek, sample-exact trim), so audio and video start
//!    and end together. MP4/MOV outputs get `+faststart`.
//! 5. **Verify** the result: packet count and timestamps equal the planned
//!    frames, the audio length matches, and the first copied frame decodes to
//!    the same picture as the source frame. Any failure falls back to a full
//!    re-encode of the clip. Once a re-encoded head (or tail) has passed the
//!    picture comparison on a source, later clips of it skip that comparison
//!    (same encoder, same settings); the packet and audio checks always run.
//!
//! A **full re-encode** (also frame-exact: accurate seek plus exact duration) is
//! used directly for variable-frame-rate sources, codecs other than H.264,
//! non-x264 H.264 (parameter sets cannot be reproduced), open GOPs, rotated or
//! interlaced video, and clips too short to contain a keyframe to copy from.
//! When the start is on a keyframe and no tail is needed the video is copied
//! untouched ([`CutMethod::StreamCopy`]).

mod audio;
pub mod brand;
mod cancel;
mod cut;
mod h264;
mod probe;
mod run;
mod thumb;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use audio::{extract_audio, AUDIO_SAMPLE_RATE};
pub use cancel::Cancel;
pub use cut::{cut_clip, CutMethod, CutReport, CutRequest, CutSource};
pub use probe::{keyframe_info, keyframes, source_info, KeyframeInfo, SourceInfo};
pub use thumb::{thumbnail, THUMBNAIL_MAX_WIDTH};

/// Errors that callers may want to tell apart (retrieve them from an
/// `anyhow::Error` with `err.downcast_ref::<MediaError>()`). Everything else is
/// reported as plain `anyhow` context.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The [`Cancel`] token was set or its deadline passed; the ffmpeg child was
    /// killed and partial output removed. Not a media problem: do not mark the
    /// source as broken.
    #[error("cancelled")]
    Cancelled,
    /// The input has no audio stream (e.g. a screen recording without sound).
    #[error("no audio stream in {0}")]
    NoAudioStream(PathBuf),
    /// The input has no video stream (or is not a media file ffprobe can read).
    #[error("no video stream in {0}")]
    NoVideoStream(PathBuf),
    /// The requested cut or timestamp cannot be served (negative, empty, NaN,
    /// or entirely outside the video).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// ffmpeg or ffprobe exited unsuccessfully; `log` holds the last error lines.
    #[error("{tool} failed ({status}): {log}")]
    ToolFailed {
        /// `"ffmpeg"` or `"ffprobe"`.
        tool: &'static str,
        /// The exit status as text.
        status: String,
        /// The last warning/error lines the tool printed, joined with `" | "`.
        log: String,
    },
}

/// True if `err` (anywhere in its chain) is [`MediaError::Cancelled`].
pub fn is_cancelled(err: &anyhow::Error) -> bool {
    err.chain().any(|e| matches!(e.downcast_ref::<MediaError>(), Some(MediaError::Cancelled)))
}
