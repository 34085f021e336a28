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
    let mut progress = CutProgress::new(on_progress);
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
    let interval = if to_eof {
        format!("{}%", secs(lo))
    } else {
        format!("{}%{}", secs(lo), secs(abs_end + 2.0))
    };
    let scan = scan_packets(input, Some(&interval)).await?;
    crate::cancel::check(cancel)?;
    // The scan stops at the first packet at or after `abs_end + 2`; if it ended
    // well before that, the stream ended.
    let last_pts = scan.packets.iter().map(|p| p.pts).max().unwrap_or(0);
    let eof = to_eof || scan.abs(last_pts) < abs_end + 1.0;
    let clip = snap(&scan, abs_start, abs_end, eof).ok_or_else(|| {
        MediaError::InvalidRequest(format!("no video frames in {}..{}", req.start, req.end))
    })?;
    progress.set(0.02);

    // 2. Plan and try a smart cut.
    let plan = if force_full {
        Err("full re-encode requested".to_string())
    } else {
        plan_smart(&scan, probe, &clip)
    };
    let fallback_reason = match plan {
        Ok(plan) => {
            let (head, tail) = (plan.head_frames, plan.tail.map_or(0, |t| t.1));
            match smart_cut(input, output, probe, &scan, &clip, &plan, cancel, &mut progress).await
            {
                Ok(file_size) => {
                    let method = if head == 0 && tail == 0 {
                        CutMethod::StreamCopy
                    } else {
                        CutMethod::SmartCut
                    };
                    progress.set(1.0);
                    return Ok(clip.report(&scan, method, file_size, head + tail, None, t0));
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
        full_reencode(input, output, probe, &scan, &clip, cancel, &mut progress).await?;
    progress.set(1.0);
    let mut report =
        clip.report(&scan, CutMethod::FullReencode, file_size, frames, Some(fallback_reason), t0);
    (report.frames, report.duration) = (frames, duration);
    Ok(report)
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

/// Runs the smart-cut plan; returns the output size. Any error (other than
/// cancellation) makes the caller fall back to a full re-encode. Five short
/// process runs: read the source's parameter sets, make all pieces in one
/// ffmpeg run, join + audio, and two verification runs.
#[allow(clippy::too_many_arguments)]
async fn smart_cut<F: FnMut(f64)>(
    input: &Path,
    output: &Path,
    probe: &SourceInfo,
    scan: &PacketScan,
    clip: &Clip,
    plan: &Plan,
    cancel: &Cancel,
    progress: &mut CutProgress<F>,
) -> anyhow::Result<u64> {
    let work = TempPath::new(temp_sibling(output, "cut"));
    tokio::fs::create_dir_all(work.path()).await.context("creating work directory")?;
    let timescale = (scan.tb_num == 1).then(|| scan.tb_den.to_string());
    let dur = |a: i64, b: i64| scan.abs(b) - scan.abs(a);

    // Replay the source's x264 settings so re-encoded pieces get the same SPS/PPS.
    let mut encode: Option<(String, Vec<Vec<u8>>)> = None;
    if plan.head_frames > 0 || plan.tail.is_some() {
        let first_au = access_unit(input, cancel).await?;
        let sei = h264::x264_options(&first_au)
            .context("not encoded by x264: parameter sets cannot be reproduced")?;
        let yuv444 = probe.pix_fmt.starts_with("yuv444") || probe.pix_fmt.starts_with("yuvj444");
        let params = h264::x264_params_from_sei(&sei, probe.video_level, yuv444)
            .context("x264 settings cannot be replayed (custom matrices, AVC-Intra, ...)")?;
        let src_sets = h264::parameter_sets(&first_au);
        anyhow::ensure!(!src_sets.is_empty(), "no SPS/PPS found in the source");
        encode = Some((params, src_sets));
    }

    // All pieces in one ffmpeg run: one seeking input per piece.
    let copy_until = plan.tail.map_or(clip.end, |t| t.0);
    let mut pieces: Vec<(&str, i64, i64, Option<u64>)> = Vec::new(); // name, from, to, frames to encode
    if plan.head_frames > 0 {
        pieces.push(("head.mp4", clip.start, plan.k1, Some(plan.head_frames)));
    }
    pieces.push(("mid.mp4", plan.k1, copy_until, None));
    if let Some((k_last, frames)) = plan.tail {
        pieces.push(("tail.mp4", k_last, clip.end, Some(frames)));
    }
    let mut a = Vec::new();
    for (_, from, _, _) in &pieces {
        a.extend(args!["-seek_timestamp", "1", "-ss", us_str(scan.abs_us(*from)), "-i", input]);
    }
    for (i, (name, _, _, frames)) in pieces.iter().enumerate() {
        a.extend(args!["-map", format!("{i}:v:0"), "-an", "-sn", "-dn"]);
        match (frames, &encode) {
            (Some(n), Some((params, _))) => a.extend(args![
                "-frames:v",
                n.to_string(),
                "-c:v",
                "libx264",
                "-x264-params",
                params,
                "-pix_fmt",
                &probe.pix_fmt,
                "-fps_mode",
                "passthrough",
            ]),
            _ => a.extend(args!["-c:v", "copy", "-frames:v", plan.mid_packets.to_string()]),
        }
        if let Some(ts) = &timescale {
            a.extend(args!["-video_track_timescale", ts]);
        }
        a.push(work.path().join(name).into());
    }
    let longest = pieces.iter().map(|(_, f, t, _)| dur(*f, *t)).fold(0.0, f64::max);
    ffmpeg(a, cancel, false, |t| progress.stage(0.02, 0.6, t, longest))
        .await
        .context("making pieces")?;

    if let Some((_, src_sets)) = &encode {
        for (name, _, _, frames) in &pieces {
            if frames.is_some() {
                let mp4 = tokio::fs::read(work.path().join(name)).await.context("reading piece")?;
                let sets =
                    h264::avcc_parameter_sets(&mp4).context("re-encoded piece has no avcC")?;
                anyhow::ensure!(&sets == src_sets, "re-encoded SPS/PPS differ from the source's");
            }
        }
    }

    let list: String = std::iter::once("ffconcat version 1.0\n".to_string())
        .chain(
            pieces
                .iter()
                .map(|(n, f, t, _)| format!("file '{n}'\nduration {}\n", secs(dur(*f, *t)))),
        )
        .collect();
    let list_path = work.path().join("list.ffconcat");
    tokio::fs::write(&list_path, list).await.context("writing concat list")?;

    // Join video and re-encode audio for exactly the clip span in one run.
    let tmp = TempPath::new(temp_sibling(output, "part"));
    let total = clip.duration(scan);
    let mut a = args!["-f", "concat", "-safe", "0", "-i", &list_path];
    if probe.has_audio {
        a.extend(args![
            "-seek_timestamp",
            "1",
            "-ss",
            us_str(scan.abs_us(clip.start)),
            "-t",
            secs(total),
            "-i",
            input,
        ]);
    }
    a.extend(args!["-map", "0:v:0", "-c:v", "copy"]);
    if probe.has_audio {
        a.extend(args!["-map", "1:a:0"]);
        a.extend(audio_args(probe, output));
    }
    a.extend(container_args(output, timescale.as_deref()));
    a.push(tmp.path().into());
    ffmpeg(a, cancel, false, |t| progress.stage(0.6, 0.85, t, total))
        .await
        .context("joining pieces")?;

    verify(input, tmp.path(), probe, scan, clip, plan, cancel)
        .await
        .context("verifying smart cut")?;
    progress.set(0.98);
    drop(work);
    finish(tmp, output).await
}

/// Checks a smart-cut result: exactly the planned frames at the planned
/// times, audio as long as the video, and the copied frames next to
/// re-encoded ones decode to the same pictures as the source (so the join and
/// the copied GOPs are intact).
async fn verify(
    input: &Path,
    out: &Path,
    probe: &SourceInfo,
    scan: &PacketScan,
    clip: &Clip,
    plan: &Plan,
    cancel: &Cancel,
) -> anyhow::Result<()> {
    let got = probe_clip(out).await?;
    let got_frames = got.video.frames_sorted();
    anyhow::ensure!(
        got_frames.len() == clip.frames.len(),
        "clip has {} frames, expected {}",
        got_frames.len(),
        clip.frames.len()
    );
    let half_frame = scan.abs(scan.frame_ticks().unwrap_or(1)) / 2.0;
    let (g0, c0) = (got.video.abs(got_frames[0]), scan.abs(clip.start));
    for (g, c) in got_frames.iter().zip(&clip.frames) {
        let (gt, ct) = (got.video.abs(*g) - g0, scan.abs(*c) - c0);
        anyhow::ensure!((gt - ct).abs() < half_frame, "frame at {ct:.3}s landed at {gt:.3}s");
    }
    if probe.has_audio {
        let (sr, ad) = got.audio.context("clip has no audio")?;
        let tol = 2.0 * half_frame + 2048.0 / sr.max(8000.0);
        let vd = clip.duration(scan);
        anyhow::ensure!((ad - vd).abs() <= tol, "audio lasts {ad:.3}s, video {vd:.3}s");
    }

    // The first copied frame after a re-encoded head, and the last copied
    // frame before a re-encoded tail, must be exact copies.
    let mut seeks: Vec<(&Path, String, bool)> = Vec::new();
    if plan.head_frames > 0 {
        let i = plan.head_frames as usize;
        seeks.push((out, us_str(got.video.abs_us(got_frames[i])), true));
        seeks.push((input, us_str(scan.abs_us(plan.k1)), true));
    }
    if let Some((k_last, _)) = plan.tail {
        if let Some(i) = clip.frames.iter().position(|&p| p == k_last).filter(|&i| i > 0) {
            seeks.push((out, us_str(got.video.abs_us(got_frames[i - 1])), true));
            seeks.push((input, us_str(scan.abs_us(clip.frames[i - 1])), true));
        }
    }
    if !seeks.is_empty() {
        let pics = gray_frames(&seeks, cancel).await?;
        for pair in pics.chunks(2) {
            let mad = mean_abs_diff(&pair[0], &pair[1]);
            anyhow::ensure!(mad < 0.5, "a copied frame differs from the source (MAD {mad:.2})");
        }
    }
    Ok(())
}

/// Video packets and audio `(sample_rate, duration)` of a finished clip, from one ffprobe run.
struct ClipProbe {
    video: PacketScan,
    audio: Option<(f64, f64)>,
}

async fn probe_clip(path: &Path) -> anyhow::Result<ClipProbe> {
    let out = super::run::ffprobe([
        "-show_entries".as_ref(),
        "stream=index,codec_type,time_base,sample_rate,duration:packet=stream_index,pts,duration,flags".as_ref(),
        "-of".as_ref(),
        "csv=nk=0".as_ref(),
        path.as_os_str(),
    ])
    .await?;
    struct StreamRow {
        index: String,
        kind: String,
        tb: (i64, i64),
        sample_rate: Option<f64>,
        duration: Option<f64>,
    }
    let mut streams: Vec<StreamRow> = Vec::new();
    let mut pkts: Vec<(String, i64, i64, bool)> = Vec::new(); // stream, pts, duration, key
    for line in out.lines() {
        let kv = |name: &str| {
            line.split(',')
                .skip(1)
                .find_map(|f| f.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
        };
        if line.starts_with("stream,") {
            let tb = kv("time_base")
                .and_then(|t| t.split_once('/'))
                .and_then(|(n, d)| Some((n.parse().ok()?, d.parse().ok()?)))
                .unwrap_or((0, 0));
            streams.push(StreamRow {
                index: kv("index").unwrap_or_default().to_string(),
                kind: kv("codec_type").unwrap_or_default().to_string(),
                tb,
                sample_rate: kv("sample_rate").and_then(|v| v.parse().ok()),
                duration: kv("duration").and_then(|v| v.parse().ok()),
            });
        } else if line.starts_with("packet,") {
            if let (Some(i), Some(pts)) =
                (kv("stream_index"), kv("pts").and_then(|v| v.parse().ok()))
            {
                let dur = kv("duration").and_then(|v| v.parse().ok()).unwrap_or(0);
                pkts.push((i.to_string(), pts, dur, kv("flags").is_some_and(|f| f.contains('K'))));
            }
        }
    }
    let v = streams.iter().find(|s| s.kind == "video").context("clip has no video stream")?;
    anyhow::ensure!(v.tb.0 > 0 && v.tb.1 > 0, "clip video has no time base");
    let video = PacketScan {
        tb_num: v.tb.0,
        tb_den: v.tb.1,
        start_us: 0,
        packets: (pkts.iter())
            .filter(|p| p.0 == v.index)
            .map(|p| super::probe::Pkt { pts: p.1, key: p.3 })
            .collect(),
    };
    // Audio duration: the stream's own (MP4 edit list), else the packet span
    // (Matroska stores no per-stream duration).
    let audio = streams.iter().find(|s| s.kind == "audio").and_then(|a| {
        let sr = a.sample_rate?;
        let from_packets = || {
            let mine = pkts.iter().filter(|p| p.0 == a.index);
            let first = mine.clone().map(|p| p.1).min()?;
            let end = mine.map(|p| p.1 + p.2).max()?;
            (a.tb.1 > 0).then(|| (end - first) as f64 * a.tb.0 as f64 / a.tb.1 as f64)
        };
        Some((sr, a.duration.or_else(from_packets)?))
    });
    Ok(ClipProbe { video, audio })
}

/// Re-encodes the whole clip (frame-exact: accurate seek, exact duration,
/// source timestamps kept); returns the output size, frame count and video
/// duration as measured in the output.
async fn full_reencode<F: FnMut(f64)>(
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

/// MP4-family output (an output without extension is written as MP4).
fn is_mp4_like(p: &Path) -> bool {
    matches!(ext_of(p).as_str(), "mp4" | "m4v" | "mov" | "")
}

fn container_args(output: &Path, timescale: Option<&str>) -> Vec<OsString> {
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
fn video_encoder_args(probe: &SourceInfo, output: &Path) -> Vec<OsString> {
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

/// Annex B bytes of the first video access unit, with the parameter sets
/// from the container inserted (`h264_mp4toannexb`).
async fn access_unit(path: &Path, cancel: &Cancel) -> anyhow::Result<Vec<u8>> {
    let a = args![
        "-i",
        path,
        "-map",
        "0:v:0",
        "-c",
        "copy",
        "-bsf:v",
        "h264_mp4toannexb",
        "-frames:v",
        "1",
        "-f",
        "h264",
        "pipe:1",
    ];
    ffmpeg(a, cancel, true, |_| {}).await.context("reading an access unit")
}

/// Width and height of [`gray_frames`] pictures.
pub(crate) const GRAY_W: usize = 64;
pub(crate) const GRAY_H: usize = 36;

/// Decodes one frame per `(path, time, absolute)` (accurate seek; with
/// `absolute`, on the stream's own timeline) in a single ffmpeg run and
/// returns each as a 64x36 8-bit gray picture, for comparing pictures.
pub(crate) async fn gray_frames(
    seeks: &[(&Path, String, bool)],
    cancel: &Cancel,
) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut a = Vec::new();
    let mut graph = String::new();
    for (i, (path, at, absolute)) in seeks.iter().enumerate() {
        if *absolute {
            a.extend(args!["-seek_timestamp", "1"]);
        }
        a.extend(args!["-ss", at, "-i", *path]);
        graph.push_str(&format!(
            "[{i}:v:0]trim=end_frame=1,scale={GRAY_W}:{GRAY_H}:flags=area,format=gray,setpts=0,settb=1/25[g{i}];"
        ));
    }
    let n = seeks.len();
    if n == 1 {
        graph.push_str("[g0]null[out]");
    } else {
        graph.push_str(&(0..n).map(|i| format!("[g{i}]")).collect::<String>());
        graph.push_str(&format!("vstack=inputs={n}[out]"));
    }
    a.extend(args![
        "-filter_complex",
        graph,
        "-map",
        "[out]",
        "-frames:v",
        "1",
        "-f",
        "rawvideo",
        "pipe:1"
    ]);
    let px = ffmpeg(a, cancel, true, |_| {}).await.context("decoding frames")?;
    anyhow::ensure!(
        px.len() == n * GRAY_W * GRAY_H,
        "could not decode {n} frames ({} bytes)",
        px.len()
    );
    Ok(px.chunks(GRAY_W * GRAY_H).map(<[u8]>::to_vec).collect())
}

/// Mean absolute difference of two equally sized 8-bit pictures.
pub(crate) fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    let n = a.len().min(b.len()).max(1);
    a.iter().zip(b).map(|(x, y)| (*x as i32 - *y as i32).unsigned_abs() as f64).sum::<f64>()
        / n as f64
}
