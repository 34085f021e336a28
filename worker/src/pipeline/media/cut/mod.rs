//! Frame-exact clip cutting (see the module docs for the smart-cut approach).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::h264;
use super::probe::{scan_packets, PacketScan, SourceInfo};
use super::run::{args, ffmpeg, secs, temp_sibling, TempPath};
use super::{Cancel, MediaError};

mod encode;
mod smart;
mod verify;

use encode::*;

use smart::*;
use verify::*;
#[cfg(test)]
pub(crate) use verify::{mean_abs_diff, GRAY_H, GRAY_W};

/// A clip to cut, in seconds on the source's timeline (0 = file start).
/// Both ends are snapped to the nearest frame boundary; `end` past the end of
/// the video is clamped to it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CutRequest {
    /// Clip start in seconds (snapped to the nearest frame start).
    pub start: f64,
    /// Clip end in seconds, exclusive (snapped to the nearest frame boundary).
    pub end: f64,
}

/// How the video of a clip was produced (audio is always re-encoded for
/// exactly the clip span, which is cheap and keeps it in sync).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CutMethod {
    /// Re-encoded from the cut to the next keyframe (and, with B-frames, from
    /// the last keyframe to the end); everything between is copied untouched.
    SmartCut,
    /// The whole clip was re-encoded (see [`CutReport::fallback_reason`]).
    FullReencode,
    /// The clip starts on a keyframe and ends cleanly: video copied untouched.
    StreamCopy,
}

/// What [`cut_clip`] produced, so the caller can store and display it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CutReport {
    /// How the video was made.
    pub method: CutMethod,
    /// Duration of the clip's video in seconds (frames x frame durations),
    /// equal to `end - start` of the snapped times.
    pub duration: f64,
    /// Size of the output file in bytes.
    pub file_size: u64,
    /// Snapped start on the source timeline (seconds).
    pub start: f64,
    /// Snapped end on the source timeline (seconds, exclusive).
    pub end: f64,
    /// Number of video frames in the clip.
    pub frames: u64,
    /// How many of them were re-encoded.
    pub reencoded_frames: u64,
    /// Why a smart cut was not possible, when `method` is `FullReencode`.
    pub fallback_reason: Option<String>,
    /// Wall-clock time the cut took, in seconds.
    pub elapsed: f64,
}

/// Cuts `[req.start, req.end)` of `input` into `output`, frame-exact with
/// audio in sync, re-encoding as little as possible (see the module docs).
/// The container follows `output`'s extension (MP4/MOV get `+faststart`; no
/// extension means MP4);
/// codecs follow the source where possible (H.264 stays H.264 via libx264).
/// `probe` is the input's [`super::source_info`]. `on_progress` receives
/// monotonically increasing fractions in `[0, 1]`.
///
/// The output appears atomically; on error or cancellation
/// ([`super::MediaError::Cancelled`]) nothing is left behind. Several clips
/// of one source are cheaper through one [`CutSource`].
pub async fn cut_clip(
    input: &Path,
    output: &Path,
    req: &CutRequest,
    probe: &SourceInfo,
    cancel: &Cancel,
    on_progress: impl FnMut(f64),
) -> anyhow::Result<CutReport> {
    let source = CutSource::open(input, probe).await?;
    source.cut(output, req, cancel, on_progress).await
}

/// A video being cut into clips: what every clip of it needs, read once
/// (its video packets, its encoder settings) and what earlier clips proved
/// (that a re-encoded head or tail joins the copied frames cleanly, so later
/// clips skip the picture comparison). Share one per source between the
/// clips cut from it, also concurrently.
pub struct CutSource {
    input: PathBuf,
    info: SourceInfo,
    /// Every video packet of the source, in decode order.
    scan: PacketScan,
    /// How re-encoded pieces are encoded (read on the first smart cut).
    encoder: tokio::sync::OnceCell<Result<HeadEncoder, String>>,
    /// A smart cut's joins were checked picture by picture: after a re-encoded
    /// head, before a re-encoded tail.
    head_proven: AtomicBool,
    tail_proven: AtomicBool,
}

impl CutSource {
    /// Reads the packets of `input` (one ffprobe run over the whole file,
    /// demuxing only). `info` is its [`super::source_info`].
    pub async fn open(input: &Path, info: &SourceInfo) -> anyhow::Result<CutSource> {
        let scan = scan_packets(input, None).await?;
        Ok(CutSource {
            input: input.to_path_buf(),
            info: info.clone(),
            scan,
            encoder: tokio::sync::OnceCell::new(),
            head_proven: AtomicBool::new(false),
            tail_proven: AtomicBool::new(false),
        })
    }

    /// Cuts one clip of this source into `output`: see [`cut_clip`].
    pub async fn cut(
        &self,
        output: &Path,
        req: &CutRequest,
        cancel: &Cancel,
        on_progress: impl FnMut(f64),
    ) -> anyhow::Result<CutReport> {
        self.cut_with(output, req, cancel, on_progress, false).await
    }

    /// Cuts one clip by a full re-encode, never trying the smart cut (what
    /// the smart cut is measured against in `bench_cut`).
    pub async fn reencode(
        &self,
        output: &Path,
        req: &CutRequest,
        cancel: &Cancel,
        on_progress: impl FnMut(f64),
    ) -> anyhow::Result<CutReport> {
        self.cut_with(output, req, cancel, on_progress, true).await
    }

    /// [`CutSource::cut`], optionally skipping the smart cut.
    async fn cut_with(
        &self,
        output: &Path,
        req: &CutRequest,
        cancel: &Cancel,
        on_progress: impl FnMut(f64),
        force_full: bool,
    ) -> anyhow::Result<CutReport> {
        let (input, probe, scan) = (self.input.as_path(), &self.info, &self.scan);
        let t0 = Instant::now();
        let mut progress = CutProgress::new(on_progress);
        if !(req.start.is_finite() && req.end.is_finite())
            || req.start < 0.0
            || req.end <= req.start
        {
            return Err(
                MediaError::InvalidRequest(format!("cut {}..{}", req.start, req.end)).into()
            );
        }
        if req.start >= probe.duration.max(probe.video_duration.unwrap_or(0.0)) {
            return Err(MediaError::InvalidRequest(format!(
                "cut starts at {} but the video is {:.3}s long",
                req.start, probe.duration
            ))
            .into());
        }
        crate::cancel::check(cancel)?;

        // 1. Snap to frames, using the packet timestamps of the whole stream.
        let (abs_start, abs_end) = (probe.start_time + req.start, probe.start_time + req.end);
        let clip = snap(scan, abs_start, abs_end, true).ok_or_else(|| {
            MediaError::InvalidRequest(format!("no video frames in {}..{}", req.start, req.end))
        })?;
        progress.set(0.02);

        // 2. Plan and try a smart cut.
        let plan = if force_full {
            Err("full re-encode requested".to_string())
        } else {
            plan_smart(scan, probe, &clip)
        };
        let fallback_reason = match plan {
            Ok(plan) => {
                let (head, tail) = (plan.head_frames, plan.tail.map_or(0, |t| t.1));
                match smart_cut(self, output, &clip, &plan, cancel, &mut progress).await {
                    Ok(file_size) => {
                        let method = if head == 0 && tail == 0 {
                            CutMethod::StreamCopy
                        } else {
                            CutMethod::SmartCut
                        };
                        progress.set(1.0);
                        return Ok(clip.report(scan, method, file_size, head + tail, None, t0));
                    }
                    Err(e) if super::is_cancelled(&e) => return Err(e),
                    Err(e) => {
                        tracing::info!(input = %input.display(), error = format!("{e:#}"), "smart cut not possible, re-encoding");
                        format!("smart cut not possible: {e:#}")
                    }
                }
            }
            Err(reason) => {
                tracing::debug!(input = %input.display(), %reason, "full re-encode");
                reason
            }
        };

        // 3. Full re-encode.
        let (file_size, frames, duration) =
            full_reencode(input, output, probe, scan, &clip, cancel, &mut progress).await?;
        progress.set(1.0);
        let mut report = clip.report(
            scan,
            CutMethod::FullReencode,
            file_size,
            frames,
            Some(fallback_reason),
            t0,
        );
        (report.frames, report.duration) = (frames, duration);
        Ok(report)
    }
}

/// Monotonic progress reporting.
struct CutProgress<F: FnMut(f64)> {
    f: F,
    last: f64,
}

impl<F: FnMut(f64)> CutProgress<F> {
    fn new(f: F) -> Self {
        Self { f, last: 0.0 }
    }
    fn set(&mut self, v: f64) {
        let v = v.clamp(0.0, 1.0);
        if v > self.last {
            self.last = v;
            (self.f)(v);
        }
    }
    /// Maps a stage's own `t / total` into `[from, to]`.
    fn stage(&mut self, from: f64, to: f64, t: f64, total: f64) {
        if total > 0.0 {
            self.set(from + (to - from) * (t / total).clamp(0.0, 1.0));
        }
    }
}

/// The snapped clip: frames `[start, end)` in stream ticks.
struct Clip {
    start: i64,
    end: i64,
    /// Presentation timestamps of the clip's frames, ascending.
    frames: Vec<i64>,
}

impl Clip {
    fn duration(&self, scan: &PacketScan) -> f64 {
        scan.abs(self.end) - scan.abs(self.start)
    }
    fn report(
        &self,
        scan: &PacketScan,
        method: CutMethod,
        file_size: u64,
        reencoded: u64,
        fallback_reason: Option<String>,
        t0: Instant,
    ) -> CutReport {
        CutReport {
            method,
            duration: self.duration(scan),
            file_size,
            start: scan.rel(self.start),
            end: scan.rel(self.end),
            frames: self.frames.len() as u64,
            reencoded_frames: reencoded,
            fallback_reason,
            elapsed: t0.elapsed().as_secs_f64(),
        }
    }
}

/// Start: the frame nearest `abs_start`. End: the frame boundary nearest
/// `abs_end` (frame starts, plus the end of the last frame at end of stream).
fn snap(scan: &PacketScan, abs_start: f64, abs_end: f64, eof: bool) -> Option<Clip> {
    let f = scan.frames_sorted();
    let ft = scan.frame_ticks().unwrap_or(1);
    let (ts, te) = (scan.to_ticks(abs_start), scan.to_ticks(abs_end));
    let nearest = |range: std::ops::Range<usize>,
                   bounds: &dyn Fn(usize) -> i64,
                   target: i64,
                   later_on_tie: bool| {
        range.min_by_key(|&i| {
            let d = (bounds(i) - target).abs();
            (d, if later_on_tie { usize::MAX - i } else { i })
        })
    };
    let s = nearest(0..f.len(), &|i| f[i], ts, false)?;
    let last_bound = if eof { f.len() } else { f.len() - 1 };
    let bound = |i: usize| if i < f.len() { f[i] } else { f[f.len() - 1] + ft };
    let e = nearest(s + 1..last_bound + 1, &bound, te, true)?;
    Some(Clip { start: f[s], end: bound(e), frames: f[s..e].to_vec() })
}

/// A smart-cut plan: which frames are re-encoded and which packets copied.
struct Plan {
    /// Frames `[clip.start, k1)` re-encoded.
    head_frames: u64,
    /// First keyframe in the clip; copying starts here.
    k1: i64,
    /// Packets copied from `k1` (decode order).
    mid_packets: u64,
    /// `(kL, frames)`: frames `[kL, clip.end)` re-encoded, if needed.
    tail: Option<(i64, u64)>,
}

fn plan_smart(scan: &PacketScan, probe: &SourceInfo, clip: &Clip) -> Result<Plan, String> {
    if probe.video_codec != "h264" {
        return Err(format!(
            "codec {} is re-encoded (smart cut supports H.264)",
            probe.video_codec
        ));
    }
    if probe.is_vfr {
        return Err("variable frame rate".into());
    }
    if probe.rotation != 0 {
        return Err(format!("rotated video ({} degrees)", probe.rotation));
    }
    if let Some(fo) = probe.field_order.as_deref().filter(|f| *f != "progressive") {
        return Err(format!("interlaced video ({fo})"));
    }
    // Keyframes inside the clip as (decode index, pts), in pts order.
    let mut keys: Vec<(usize, i64)> = (scan.packets.iter().enumerate())
        .filter(|(_, p)| p.key && p.pts >= clip.start && p.pts < clip.end)
        .map(|(i, p)| (i, p.pts))
        .collect();
    keys.sort_by_key(|&(_, pts)| pts);
    let Some(&(i1, k1)) = keys.first() else {
        return Err("clip is shorter than the distance to the next keyframe".into());
    };
    if keys.windows(2).any(|w| w[1].0 < w[0].0) {
        return Err("keyframes out of decode order".into());
    }
    if keys.iter().any(|&(i, _)| scan.open_gop_at(i)) {
        return Err("open GOP (leading frames reference the previous GOP)".into());
    }
    let count = |a: i64, b: i64| clip.frames.iter().filter(|&&p| p >= a && p < b).count() as u64;
    let head_frames = count(clip.start, k1);

    // Copy through the GOP of the last keyframe if, in decode order, the
    // frames needed before `end` come without frames displayed after it.
    let (i_last, k_last) = *keys.last().expect("non-empty");
    let gop_end = scan.packets[i_last + 1..]
        .iter()
        .position(|p| p.key)
        .map_or(scan.packets.len(), |n| i_last + 1 + n);
    let gop = &scan.packets[i_last..gop_end];
    let last_needed = gop.iter().rposition(|p| p.pts < clip.end).expect("keyframe is in the clip");
    let clean_end = gop[..=last_needed].iter().all(|p| p.pts < clip.end);

    let (copy_end_idx, copy_until, tail) = if clean_end {
        (i_last + last_needed + 1, clip.end, None)
    } else {
        if k_last == k1 {
            return Err("no complete GOP to copy (B-frames around the end)".into());
        }
        (i_last, k_last, Some((k_last, count(k_last, clip.end))))
    };
    let mid = &scan.packets[i1..copy_end_idx];
    let mid_frames = count(k1, copy_until);
    if mid.len() as u64 != mid_frames || mid.iter().any(|p| p.pts < k1 || p.pts >= copy_until) {
        return Err("packets around the cut are not in a copyable order".into());
    }

    Ok(Plan { head_frames, k1, mid_packets: mid.len() as u64, tail })
}
