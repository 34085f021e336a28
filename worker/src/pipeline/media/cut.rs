//! Frame-exact clip cutting (see the module docs for the smart-cut approach).

use std::ffi::OsString;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::h264;
use super::probe::{scan_packets, PacketScan, SourceInfo};
use super::run::{args, ffmpeg, secs, temp_sibling, TempPath};
use super::{Cancel, MediaError};

/// A clip to cut, in seconds on the source's timeline (0 = file start).
/// Both ends are snapped to the nearest frame boundary; `end` past the end of
/// the video is clamped to it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CutRequest {
    pub start: f64,
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
/// The container follows `output`'s extension (MP4/MOV get `+faststart`);
/// codecs follow the source where possible (H.264 stays H.264 via libx264).
/// `probe` is the input's [`super::source_info`]. `on_progress` receives
/// monotonically increasing fractions in `[0, 1]`.
///
/// The output appears atomically; on error or cancellation
/// ([`super::MediaError::Cancelled`]) nothing is left behind.
pub async fn cut_clip(
    input: &Path,
    output: &Path,
    req: &CutRequest,
    probe: &SourceInfo,
    cancel: &Cancel,
    on_progress: impl FnMut(f64),
) -> anyhow::Result<CutReport> {
    cut_clip_with(input, output, req, probe, cancel, on_progress, false).await
}

/// [`cut_clip`], optionally skipping the smart cut (used to compare methods).
pub(crate) async fn cut_clip_with(
    input: &Path,
    output: &Path,
    req: &CutRequest,
    probe: &SourceInfo,
    cancel: &Cancel,
    on_progress: impl FnMut(f64),
    force_full: bool,
) -> anyhow::Result<CutReport> {
    let t0 = Instant::now();
    let mut progress = Progress::new(on_progress);
    if !(req.start.is_finite() && req.end.is_finite()) || req.start < 0.0 || req.end <= req.start {
        return Err(MediaError::InvalidRequest(format!("cut {}..{}", req.start, req.end)).into());
    }
    if req.start >= probe.duration.max(probe.video_duration.unwrap_or(0.0)) {
        return Err(MediaError::InvalidRequest(format!(
            "cut starts at {} but the video is {:.3}s long",
            req.start, probe.duration
        ))
        .into());
    }

    // 1. Snap to frames, using packet timestamps around the clip.
    let abs_start = probe.start_time + req.start;
    let abs_end = probe.start_time + req.end;
    let to_eof = abs_end + 2.0 >= probe.start_time + probe.duration;
    let lo = (abs_start - 1.0).max(probe.start_time);
    let interval = if to_eof { format!("{}%", secs(lo)) } else { format!("{}%{}", secs(lo), secs(abs_end + 2.0)) };
    let scan = scan_packets(input, Some(&interval)).await?;
    cancel.check()?;
    let clip = snap(&scan, abs_start, abs_end, to_eof)
        .ok_or_else(|| MediaError::InvalidRequest(format!("no video frames in {}..{}", req.start, req.end)))?;
    progress.set(0.02);

    // 2. Plan and try a smart cut.
    let plan = if force_full { Err("full re-encode requested".to_string()) } else { plan_smart(&scan, probe, &clip) };
    let fallback_reason = match plan {
        Ok(plan) => {
            let (head, tail) = (plan.head_frames, plan.tail.map_or(0, |t| t.1));
            match smart_cut(input, output, probe, &scan, &clip, &plan, cancel, &mut progress).await {
                Ok(file_size) => {
                    let method = if head == 0 && tail == 0 { CutMethod::StreamCopy } else { CutMethod::SmartCut };
                    progress.set(1.0);
                    return Ok(clip.report(&scan, method, file_size, head + tail, None, t0));
                }
                Err(e) if super::is_cancelled(&e) => return Err(e),
                Err(e) => {
                    tracing::warn!(input = %input.display(), error = format!("{e:#}"), "smart cut failed, re-encoding");
                    format!("smart cut failed verification: {e:#}")
                }
            }
        }
        Err(reason) => {
            tracing::debug!(input = %input.display(), %reason, "full re-encode");
            reason
        }
    };

    // 3. Full re-encode.
    let file_size = full_reencode(input, output, probe, &scan, &clip, cancel, &mut progress).await?;
    progress.set(1.0);
    Ok(clip.report(&scan, CutMethod::FullReencode, file_size, clip.frames.len() as u64, Some(fallback_reason), t0))
}

/// Monotonic progress reporting.
struct Progress<F: FnMut(f64)> {
    f: F,
    last: f64,
}

impl<F: FnMut(f64)> Progress<F> {
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
    let nearest = |range: std::ops::Range<usize>, bounds: &dyn Fn(usize) -> i64, target: i64, later_on_tie: bool| {
        range.min_by_key(|&i| {
            let d = (bounds(i) - target).abs();
            (d, if later_on_tie { usize::MAX - i } else { i })
        })
    };
    let s = nearest(0..f.len(), &|i| f[i], ts, false)?;
    let last_bound = if eof { f.len() } else { f.len() - 1 };
    let bound = |i: usize| if i < f.len() { f[i] } else { f[f.len() - 1] + ft };
    let e = nearest(s + 1..last_bound + 1, &bound, te, true)?;
    Some(Clip {
        start: f[s],
        end: bound(e),
        frames: f[s..e].to_vec(),
    })
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
        return Err(format!("codec {} is re-encoded (smart cut supports H.264)", probe.video_codec));
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
    let keys: Vec<i64> = scan.keyframe_pts().into_iter().filter(|&k| k >= clip.start && k < clip.end).collect();
    let Some(&k1) = keys.first() else {
        return Err("clip is shorter than the distance to the next keyframe".into());
    };
    for &k in &keys {
        let i = scan.key_index(k).ok_or("keyframe not found in scan")?;
        if scan.open_gop_at(i) {
            return Err("open GOP (leading frames reference the previous GOP)".into());
        }
    }
    let count = |a: i64, b: i64| clip.frames.iter().filter(|&&p| p >= a && p < b).count() as u64;
    let head_frames = count(clip.start, k1);
    let i1 = scan.key_index(k1).ok_or("keyframe not found in scan")?;

    // Copy through the GOP of the last keyframe if, in decode order, the
    // frames needed before `end` come without frames displayed after it.
    let k_last = *keys.last().expect("non-empty");
    let i_last = scan.key_index(k_last).ok_or("keyframe not found in scan")?;
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

    Ok(Plan {
        head_frames,
        k1,
        mid_packets: mid.len() as u64,
        tail,
    })
}

/// Runs the smart-cut plan; returns the output size. Any error (other than
/// cancellation) makes the caller fall back to a full re-encode.
#[allow(clippy::too_many_arguments)]
async fn smart_cut<F: FnMut(f64)>(
    input: &Path,
    output: &Path,
    probe: &SourceInfo,
    scan: &PacketScan,
    clip: &Clip,
    plan: &Plan,
    cancel: &Cancel,
    progress: &mut Progress<F>,
) -> anyhow::Result<u64> {
    let work = TempPath::new(temp_sibling(output, "cut"));
    tokio::fs::create_dir_all(work.path()).await.context("creating work directory")?;
    let mut plan_params: Option<String> = None;
    let needs_encode = plan.head_frames > 0 || plan.tail.is_some();
    if needs_encode {
        // Replay the source's x264 settings so the new pieces get the same SPS/PPS.
        let first_au = access_unit(input, None, cancel).await?;
        let sei = h264::x264_options(&first_au)
            .context("not encoded by x264: parameter sets cannot be reproduced")?;
        let yuv444 = probe.pix_fmt.starts_with("yuv444") || probe.pix_fmt.starts_with("yuvj444");
        plan_params = Some(
            h264::x264_params_from_sei(&sei, probe.video_level, yuv444)
                .context("x264 settings cannot be replayed (custom matrices, AVC-Intra, ...)")?,
        );
    }
    let src_sets = if needs_encode {
        h264::parameter_sets(&access_unit(input, Some(scan.abs_us(plan.k1)), cancel).await?)
    } else {
        Vec::new()
    };
    let timescale = (scan.tb_num == 1).then(|| scan.tb_den.to_string());
    let dur = |a: i64, b: i64| scan.abs(b) - scan.abs(a);

    let encode_piece = |name: &str, from: i64, frames: u64| {
        let mut a = args![
            "-seek_timestamp", "1", "-ss", us_str(scan.abs_us(from)), "-i", input,
            "-map", "0:v:0", "-an", "-sn", "-dn", "-frames:v", frames.to_string(),
            "-c:v", "libx264", "-x264-params", plan_params.clone().unwrap_or_default(),
            "-pix_fmt", &probe.pix_fmt, "-fps_mode", "passthrough",
        ];
        if let Some(ts) = &timescale {
            a.extend(args!["-video_track_timescale", ts]);
        }
        a.push(work.path().join(name).into());
        a
    };

    let mut pieces: Vec<(&str, f64)> = Vec::new();
    if plan.head_frames > 0 {
        let d = dur(clip.start, plan.k1);
        ffmpeg(encode_piece("head.mp4", clip.start, plan.head_frames), cancel, false, |t| {
            progress.stage(0.02, 0.35, t, d)
        })
        .await
        .context("encoding head")?;
        let sets = h264::parameter_sets(&access_unit(&work.path().join("head.mp4"), None, cancel).await?);
        anyhow::ensure!(!sets.is_empty() && sets == src_sets, "re-encoded SPS/PPS differ from the source's");
        pieces.push(("head.mp4", d));
    }
    let copy_until = plan.tail.map_or(clip.end, |t| t.0);
    let a = args![
        "-seek_timestamp", "1", "-ss", us_str(scan.abs_us(plan.k1)), "-i", input,
        "-map", "0:v:0", "-an", "-sn", "-dn", "-c", "copy", "-frames:v", plan.mid_packets.to_string(),
        work.path().join("mid.mp4"),
    ];
    ffmpeg(a, cancel, false, |_| {}).await.context("copying middle")?;
    pieces.push(("mid.mp4", dur(plan.k1, copy_until)));
    progress.set(0.45);
    if let Some((k_last, frames)) = plan.tail {
        let d = dur(k_last, clip.end);
        ffmpeg(encode_piece("tail.mp4", k_last, frames), cancel, false, |t| progress.stage(0.45, 0.7, t, d))
            .await
            .context("encoding tail")?;
        let sets = h264::parameter_sets(&access_unit(&work.path().join("tail.mp4"), None, cancel).await?);
        anyhow::ensure!(!sets.is_empty() && sets == src_sets, "re-encoded tail SPS/PPS differ from the source's");
        pieces.push(("tail.mp4", d));
    }

    let list: String = std::iter::once("ffconcat version 1.0\n".to_string())
        .chain(pieces.iter().map(|(n, d)| format!("file '{n}'\nduration {}\n", secs(*d))))
        .collect();
    let list_path = work.path().join("list.ffconcat");
    tokio::fs::write(&list_path, list).await.context("writing concat list")?;

    // Join video and re-encode audio for exactly the clip span in one run.
    let tmp = TempPath::new(temp_sibling(output, "part"));
    let total = clip.duration(scan);
    let mut a = args!["-f", "concat", "-safe", "0", "-i", &list_path];
    if probe.has_audio {
        a.extend(args![
            "-seek_timestamp", "1", "-ss", us_str(scan.abs_us(clip.start)), "-t", secs(total), "-i", input,
        ]);
    }
    a.extend(args!["-map", "0:v:0", "-c:v", "copy"]);
    if probe.has_audio {
        a.extend(args!["-map", "1:a:0"]);
        a.extend(audio_args(probe, output));
    }
    a.extend(container_args(output, timescale.as_deref()));
    a.push(tmp.path().into());
    ffmpeg(a, cancel, false, |t| progress.stage(0.7, 0.9, t, total)).await.context("joining pieces")?;

    verify(input, tmp.path(), probe, scan, clip, plan, cancel).await.context("verifying smart cut")?;
    progress.set(0.98);
    drop(work);
    finish(tmp, output).await
}

/// Checks a smart-cut result: exactly the planned frames at the planned
/// times, audio as long as the video, and the copied frames decode to the
/// same pictures as the source (so the join and the copied GOPs are intact).
async fn verify(
    input: &Path,
    out: &Path,
    probe: &SourceInfo,
    scan: &PacketScan,
    clip: &Clip,
    plan: &Plan,
    cancel: &Cancel,
) -> anyhow::Result<()> {
    let got = scan_packets(out, None).await?;
    let got_frames = got.frames_sorted();
    anyhow::ensure!(
        got_frames.len() == clip.frames.len(),
        "clip has {} frames, expected {}",
        got_frames.len(),
        clip.frames.len()
    );
    let half_frame = scan.abs(scan.frame_ticks().unwrap_or(1)) / 2.0;
    let (g0, c0) = (got.abs(got_frames[0]), scan.abs(clip.start));
    for (g, c) in got_frames.iter().zip(&clip.frames) {
        let (gt, ct) = (got.abs(*g) - g0, scan.abs(*c) - c0);
        anyhow::ensure!((gt - ct).abs() < half_frame, "frame at {ct:.3}s landed at {gt:.3}s");
    }

    if probe.has_audio {
        let a = super::run::ffprobe([
            "-select_streams".as_ref(),
            "a:0".as_ref(),
            "-show_entries".as_ref(),
            "stream=duration,sample_rate".as_ref(),
            "-of".as_ref(),
            "csv=p=0".as_ref(),
            out.as_os_str(),
        ])
        .await?;
        let mut it = a.trim().split(',');
        let sr: f64 = it.next().and_then(|v| v.parse().ok()).context("clip has no audio")?;
        let ad: f64 = it.next().and_then(|v| v.parse().ok()).context("clip audio has no duration")?;
        let tol = 2.0 * half_frame + 2048.0 / sr.max(8000.0);
        let vd = clip.duration(scan);
        anyhow::ensure!((ad - vd).abs() <= tol, "audio lasts {ad:.3}s, video {vd:.3}s");
    }

    // The first copied frame after a re-encoded head, and the last copied
    // frame before a re-encoded tail, must be bit-exact copies.
    let mut checks = Vec::new();
    if plan.head_frames > 0 {
        checks.push((plan.head_frames as usize, plan.k1));
    }
    if let Some((k_last, _)) = plan.tail {
        if let Some(i) = clip.frames.iter().position(|&p| p == k_last).filter(|&i| i > 0) {
            checks.push((i - 1, clip.frames[i - 1]));
        }
    }
    for (idx, src_pts) in checks {
        let out_frame = gray_frame(out, &us_str(got.abs_us(got_frames[idx])), false, cancel).await?;
        let src_frame = gray_frame(input, &us_str(scan.abs_us(src_pts)), true, cancel).await?;
        let mad = mean_abs_diff(&out_frame, &src_frame);
        anyhow::ensure!(mad < 0.5, "copied frame {idx} differs from the source (MAD {mad:.2})");
    }
    Ok(())
}

/// Re-encodes the whole clip (frame-exact: accurate seek, exact duration,
/// source timestamps kept); returns the output size.
async fn full_reencode<F: FnMut(f64)>(
    input: &Path,
    output: &Path,
    probe: &SourceInfo,
    scan: &PacketScan,
    clip: &Clip,
    cancel: &Cancel,
    progress: &mut Progress<F>,
) -> anyhow::Result<u64> {
    let tmp = TempPath::new(temp_sibling(output, "part"));
    let total = clip.duration(scan);
    let mut a = args![
        "-seek_timestamp", "1", "-ss", us_str(scan.abs_us(clip.start)), "-t", secs(total), "-i", input,
        "-map", "0:v:0", "-sn", "-dn",
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
    ffmpeg(a, cancel, false, |t| progress.stage(from, 0.99, t, total))
        .await
        .context("re-encoding clip")?;
    finish(tmp, output).await
}

async fn finish(tmp: TempPath, output: &Path) -> anyhow::Result<u64> {
    let size = tokio::fs::metadata(tmp.path()).await.context("clip was not written")?.len();
    tokio::fs::rename(tmp.path(), output)
        .await
        .with_context(|| format!("moving clip to {}", output.display()))?;
    tmp.keep();
    Ok(size)
}

fn ext_of(p: &Path) -> String {
    p.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default()
}

fn is_mp4_like(p: &Path) -> bool {
    matches!(ext_of(p).as_str(), "mp4" | "m4v" | "mov")
}

fn container_args(output: &Path, timescale: Option<&str>) -> Vec<OsString> {
    let mut a = args!["-max_muxing_queue_size", "4096"];
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
fn video_encoder_args(probe: &SourceInfo, output: &Path) -> Vec<OsString> {
    let webm = ext_of(output) == "webm";
    let pix = |ok: &[&str]| if ok.contains(&probe.pix_fmt.as_str()) { probe.pix_fmt.clone() } else { "yuv420p".into() };
    const X26X: [&str; 7] =
        ["yuv420p", "yuvj420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p10le"];
    if webm {
        args!["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1", "-crf", "32", "-b:v", "0", "-pix_fmt", "yuv420p"]
    } else if probe.video_codec == "hevc" {
        let mut a = args!["-c:v", "libx265", "-preset", "fast", "-crf", "22", "-pix_fmt", pix(&X26X), "-x265-params", "log-level=error"];
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
fn audio_args(probe: &SourceInfo, output: &Path) -> Vec<OsString> {
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
fn us_str(us: i64) -> String {
    let sign = if us < 0 { "-" } else { "" };
    let a = us.unsigned_abs();
    format!("{sign}{}.{:06}", a / 1_000_000, a % 1_000_000)
}

/// Annex B bytes of the first video access unit at (or, with `at_us`, the
/// keyframe at) a position, with parameter sets inserted from the container.
async fn access_unit(path: &Path, at_us: Option<i64>, cancel: &Cancel) -> anyhow::Result<Vec<u8>> {
    let mut a = Vec::new();
    if let Some(us) = at_us {
        a.extend(args!["-seek_timestamp", "1", "-ss", us_str(us)]);
    }
    a.extend(args![
        "-i", path, "-map", "0:v:0", "-c", "copy", "-bsf:v", "h264_mp4toannexb", "-frames:v", "1",
        "-f", "h264", "pipe:1",
    ]);
    ffmpeg(a, cancel, true, |_| {}).await.context("reading an access unit")
}

/// Width and height of [`gray_frame`] pictures.
pub(crate) const GRAY_W: usize = 64;
pub(crate) const GRAY_H: usize = 36;

/// The frame at `at` (accurate seek; with `absolute`, on the stream's own
/// timeline) scaled to 64x36 8-bit gray, for comparing pictures.
pub(crate) async fn gray_frame(path: &Path, at: &str, absolute: bool, cancel: &Cancel) -> anyhow::Result<Vec<u8>> {
    let mut a = Vec::new();
    if absolute {
        a.extend(args!["-seek_timestamp", "1"]);
    }
    a.extend(args![
        "-ss", at, "-i", path, "-map", "0:v:0", "-frames:v", "1",
        "-vf", format!("scale={GRAY_W}:{GRAY_H}:flags=area,format=gray"), "-f", "rawvideo", "pipe:1",
    ]);
    let px = ffmpeg(a, cancel, true, |_| {}).await.context("decoding a frame")?;
    anyhow::ensure!(px.len() == GRAY_W * GRAY_H, "no frame at {at}s in {}", path.display());
    Ok(px)
}

/// Mean absolute difference of two equally sized 8-bit pictures.
pub(crate) fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    let n = a.len().min(b.len()).max(1);
    a.iter().zip(b).map(|(x, y)| (*x as i32 - *y as i32).unsigned_abs() as f64).sum::<f64>() / n as f64
}
