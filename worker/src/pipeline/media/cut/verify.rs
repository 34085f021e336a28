//! Checking a smart cut after the fact: the planned frames at the planned
//! times, audio as long as video, and copied frames that decode to the
//! source's pictures; plus the small gray-picture decoder the checks use.

use super::*;

/// Which joins of a source's smart cuts have been compared picture by
/// picture: after a re-encoded head, before a re-encoded tail.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Proven {
    pub(super) head: bool,
    pub(super) tail: bool,
}

/// Checks a smart-cut result: exactly the planned frames at the planned
/// times, audio as long as the video, and (for the joins not yet `proven`
/// on this source) the copied frames next to re-encoded ones decode to the
/// same pictures as the source, so the join and the copied GOPs are intact.
/// Returns the joins it compared.
#[allow(clippy::too_many_arguments)]
pub(super) async fn verify(
    input: &Path,
    out: &Path,
    probe: &SourceInfo,
    scan: &PacketScan,
    clip: &Clip,
    plan: &Plan,
    proven: Proven,
    cancel: &Cancel,
) -> anyhow::Result<Proven> {
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
    let mut checked = Proven::default();
    let mut seeks: Vec<(&Path, String, bool)> = Vec::new();
    if plan.head_frames > 0 && !proven.head {
        let i = plan.head_frames as usize;
        seeks.push((out, us_str(got.video.abs_us(got_frames[i])), true));
        seeks.push((input, us_str(scan.abs_us(plan.k1)), true));
        checked.head = true;
    }
    if let Some((k_last, _)) = plan.tail.filter(|_| !proven.tail) {
        if let Some(i) = clip.frames.iter().position(|&p| p == k_last).filter(|&i| i > 0) {
            seeks.push((out, us_str(got.video.abs_us(got_frames[i - 1])), true));
            seeks.push((input, us_str(scan.abs_us(clip.frames[i - 1])), true));
            checked.tail = true;
        }
    }
    if !seeks.is_empty() {
        let pics = gray_frames(&seeks, cancel).await?;
        for pair in pics.chunks(2) {
            let mad = mean_abs_diff(&pair[0], &pair[1]);
            anyhow::ensure!(mad < 0.5, "a copied frame differs from the source (MAD {mad:.2})");
        }
    }
    Ok(checked)
}

/// Video packets and audio `(sample_rate, duration)` of a finished clip, from one ffprobe run.
pub(super) struct ClipProbe {
    pub(super) video: PacketScan,
    pub(super) audio: Option<(f64, f64)>,
}

pub(super) async fn probe_clip(path: &Path) -> anyhow::Result<ClipProbe> {
    let out = super::super::run::ffprobe([
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
            .map(|p| super::super::probe::Pkt { pts: p.1, key: p.3 })
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
