//! Tests against sources generated with ffmpeg's test patterns. Sources are
//! cached in `$TMPDIR/clipper-media-tests` (deterministic, regenerated when
//! missing); every test writes its outputs to its own directory.
//!
//! The "coded" sources carry a 12-bit binary frame counter as black/white bars
//! over the top third of the picture, so any two different frames differ
//! clearly even at 64x36 gray, and a frame-accuracy check can fail.
//!
//! (Long on purpose: one scenario per test function, sharing generated sources.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::cut::{GRAY_H, GRAY_W};
use super::*;

/// Mean absolute difference (0..255 gray) below which two 64x36 pictures are the same frame.
const SAME_FRAME: f64 = 3.0;

fn cache_dir() -> PathBuf {
    let d = std::env::temp_dir().join("clipper-media-tests");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A fresh directory for one test's outputs (per process, so concurrent test
/// runs do not collide), removed when dropped unless `KEEP_TEST_OUTPUT` is set.
struct OutDir(PathBuf);

impl std::ops::Deref for OutDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_TEST_OUTPUT").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn out_dir(test: &str) -> OutDir {
    let d = cache_dir().join(format!("out-{}", std::process::id())).join(test);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    OutDir(d)
}

fn run(cmd: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

const CODED_BARS: &str = "color=black:size=WIDTHx120:rate=RATE,format=yuv420p,geq=lum='16+219*mod(floor(N/pow(2\\,floor(X*12/W)))\\,2)':cb=128:cr=128";

/// Generates (once) a named source with `ffmpeg -y <args> <path>`.
fn source(name: &str, args: &[&str]) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let path = cache_dir().join(name);
    if !path.exists() {
        let tmp = cache_dir().join(format!("tmp-{}-{name}", std::process::id()));
        let mut a = vec!["-v", "error", "-y"];
        a.extend_from_slice(args);
        a.push(tmp.to_str().unwrap());
        let t = Instant::now();
        run("ffmpeg", &a);
        std::fs::rename(&tmp, &path).unwrap();
        eprintln!("generated {name} in {:.1}s", t.elapsed().as_secs_f64());
    }
    path
}

fn coded_source(
    name: &str,
    size: &str,
    rate: &str,
    secs: &str,
    gop: &str,
    extra: &[&str],
) -> PathBuf {
    let width = size.split('x').next().unwrap();
    let graph = format!(
        "testsrc2=size={size}:rate={rate}[bg];{}[bar];[bg][bar]overlay=0:0[v]",
        CODED_BARS.replace("WIDTH", width).replace("RATE", rate)
    );
    let mut a: Vec<String> = [
        "-filter_complex",
        &graph,
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-map",
        "[v]",
        "-map",
        "0:a",
        "-c:v",
        "libx264",
        "-g",
        gop,
        "-c:a",
        "aac",
        "-t",
        secs,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    source(name, &refs)
}

/// The brief's reference source: 640x360 25 fps H.264 (2 s GOP) + AAC, 12 s.
fn plain25() -> PathBuf {
    source(
        "plain25.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-c:v",
            "libx264",
            "-g",
            "50",
            "-c:a",
            "aac",
            "-t",
            "12",
        ],
    )
}

/// 25 fps, 2 s GOP, frame-counter bars, B-frames (x264 defaults), 12 s.
fn coded25() -> PathBuf {
    coded_source("coded25.mp4", "640x360", "25", "12", "50", &[])
}

/// Same without B-frames (so the end can be copied without a re-encoded tail).
fn coded25_nob() -> PathBuf {
    coded_source(
        "coded25-nob.mp4",
        "640x360",
        "25",
        "12",
        "50",
        &["-bf", "0", "-preset", "veryfast"],
    )
}

/// NTSC rate 30000/1001, 2 s GOP, 10 s.
fn coded_ntsc() -> PathBuf {
    coded_source("coded-ntsc.mp4", "640x360", "30000/1001", "10", "60", &[])
}

/// 1080p H.264 for timing smart cut against a full re-encode.
fn coded1080() -> PathBuf {
    coded_source("coded1080.mp4", "1920x1080", "25", "12", "50", &["-preset", "veryfast"])
}

/// Variable frame rate: 12.5 fps for 4 s, then 25 fps.
fn vfr() -> PathBuf {
    source(
        "vfr.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            "8",
            "-vf",
            "select='if(lt(n\\,100)\\,not(mod(n\\,2))\\,1)'",
            "-fps_mode",
            "passthrough",
            "-c:v",
            "libx264",
            "-g",
            "50",
            "-c:a",
            "aac",
        ],
    )
}

fn no_audio() -> PathBuf {
    source(
        "noaudio.mp4",
        &["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-t", "3", "-c:v", "libx264"],
    )
}

/// 30 s of 1080p MPEG-4 Part 2: cheap to make, slow to cut (full re-encode to H.264).
fn long1080() -> PathBuf {
    source(
        "long1080.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1920x1080:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            "30",
            "-c:v",
            "mpeg4",
            "-q:v",
            "10",
            "-c:a",
            "aac",
        ],
    )
}

/// 64x36 gray picture of the frame at `t`, decoded with `-ss` after `-i`
/// (decode-and-discard: exact, independent of the module's seeking).
fn gray_at(path: &Path, t: f64) -> Vec<u8> {
    let px = run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            path.to_str().unwrap(),
            "-ss",
            &format!("{t:.6}"),
            "-frames:v",
            "1",
            "-vf",
            &format!("scale={GRAY_W}:{GRAY_H}:flags=area,format=gray"),
            "-f",
            "rawvideo",
            "-",
        ],
    );
    assert_eq!(px.len(), GRAY_W * GRAY_H, "no frame at {t} in {}", path.display());
    px
}

fn mad(a: &[u8], b: &[u8]) -> f64 {
    super::cut::mean_abs_diff(a, b)
}

/// `(codec_type, duration, nb_read_packets)` per stream, from ffprobe.
fn streams(path: &Path) -> Vec<(String, f64, u64)> {
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_packets",
            "-show_entries",
            "stream=codec_type,duration,nb_read_packets",
            "-of",
            "json",
            path.to_str().unwrap(),
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["codec_type"].as_str().unwrap().to_string(),
                s["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or(f64::NAN),
                s["nb_read_packets"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0),
            )
        })
        .collect()
}

/// Checks a clip against its source: frame count and duration within a
/// frame of the request, first and last frames are the source's frames at
/// the snapped times (and a neighbouring frame is not), audio as long as video.
fn check_clip(src: &Path, clip: &Path, req: &CutRequest, report: &CutReport, fps: f64) {
    let frame = 1.0 / fps;
    let s = streams(clip);
    let (_, vdur, vframes) = s.iter().find(|x| x.0 == "video").cloned().expect("video stream");
    let (_, adur, _) = s.iter().find(|x| x.0 == "audio").cloned().expect("audio stream");
    let want = req.end - req.start;
    eprintln!(
        "  {:?}: frames {vframes}, video {vdur:.4}s, audio {adur:.4}s, wanted {want:.4}s, snapped {:.4}..{:.4}, {} bytes, {:.2}s",
        report.method, report.start, report.end, report.file_size, report.elapsed
    );
    assert!((vdur - want).abs() <= frame + 1e-3, "video duration {vdur} vs {want}");
    assert!((vframes as f64 * frame - want).abs() <= frame + 1e-3, "{vframes} frames for {want}s");
    assert_eq!(vframes, report.frames);
    assert!((report.duration - vdur).abs() < 1e-3);
    // 1 video frame + 1 AAC packet (1024 samples at >= 44.1 kHz) + rounding.
    assert!((adur - vdur).abs() <= frame + 1024.0 / 44100.0 + 1e-3, "audio {adur} vs video {vdur}");

    // `-ss t` after `-i` yields the first frame with pts >= t, so frames are
    // requested a tenth of a frame before their start (robust to rounding).
    let first = gray_at(clip, 0.0);
    let same = mad(&first, &gray_at(src, report.start - frame / 10.0));
    let next = mad(&first, &gray_at(src, report.start + frame * 0.9));
    let prev = if report.start >= frame {
        mad(&first, &gray_at(src, report.start - frame * 1.1))
    } else {
        f64::MAX
    };
    eprintln!("  first frame MAD: same {same:.2}, next {next:.2}, previous {prev:.2}");
    assert!(same < SAME_FRAME, "first frame differs from source at {}", report.start);
    assert!(next > SAME_FRAME && prev > SAME_FRAME, "check cannot tell neighbouring frames apart");

    let last_t = (vframes - 1) as f64 * frame - frame / 10.0;
    let last = gray_at(clip, last_t);
    let same = mad(&last, &gray_at(src, report.end - frame - frame / 10.0));
    let other = mad(&last, &gray_at(src, report.end - frame / 10.0));
    eprintln!("  last frame MAD: same {same:.2}, following {other:.2}");
    assert!(same < SAME_FRAME, "last frame differs from source at {}", report.end - frame);
    assert!(other > SAME_FRAME);
}

async fn cut(
    src: &Path,
    dir: &Path,
    name: &str,
    start: f64,
    end: f64,
    force_full: bool,
) -> (PathBuf, CutRequest, CutReport) {
    let info = source_info(src).await.unwrap();
    let out = dir.join(name);
    let req = CutRequest { start, end };
    let mut last = 0.0;
    let progress = |p| {
        assert!(p >= last && p <= 1.0, "progress went from {last} to {p}");
        last = p;
    };
    let source = super::CutSource::open(src, &info).await.unwrap();
    let cancel = Cancel::new();
    let report = if force_full {
        source.reencode(&out, &req, &cancel, progress).await
    } else {
        source.cut(&out, &req, &cancel, progress).await
    }
    .unwrap();
    assert_eq!(last, 1.0);
    assert!(out.exists());
    (out, req, report)
}

/// No temporary files left next to outputs.
fn assert_clean(dir: &Path) {
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "leftover temp files: {leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_info_and_keyframes() {
    let info = source_info(&coded25()).await.unwrap();
    assert_eq!((info.video_codec.as_str(), info.width, info.height), ("h264", 640, 360));
    assert_eq!(info.pix_fmt, "yuv420p");
    assert!((info.avg_fps - 25.0).abs() < 1e-6 && (info.r_fps - 25.0).abs() < 1e-6);
    assert!(!info.is_vfr);
    assert!(info.has_audio);
    assert_eq!(info.audio_codec.as_deref(), Some("aac"));
    assert_eq!(info.audio_sample_rate, Some(48000));
    assert!((info.duration - 12.0).abs() < 0.05, "{}", info.duration);

    let ntsc = source_info(&coded_ntsc()).await.unwrap();
    assert_eq!(ntsc.r_frame_rate, "30000/1001");
    assert!(!ntsc.is_vfr);
    let v = source_info(&vfr()).await.unwrap();
    assert!(v.is_vfr, "avg {} r {}", v.avg_frame_rate, v.r_frame_rate);
    assert!(!source_info(&no_audio()).await.unwrap().has_audio);

    let k = keyframes(&coded25()).await.unwrap();
    assert_eq!(k, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
    let ki = keyframe_info(&coded25()).await.unwrap();
    assert!(ki.reordered && !ki.open_gop);
    assert_eq!(ki.frame_count, 300);
    assert!((ki.max_gop - 2.0).abs() < 1e-9);

    let err = source_info(Path::new("/nonexistent/file.mp4")).await.unwrap_err();
    assert!(err.downcast_ref::<MediaError>().is_some(), "{err:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_cut_mid_gop_is_frame_exact_and_faster() {
    let src = coded25();
    let dir = out_dir("smart25");
    // Start 13 frames before the keyframe at 4 s. Ending at 9.24 s (frame
    // 231) needs frame 230, which x264 decodes after frame 233: copying would
    // show 233 too, so 8.0..9.24 (31 frames) is re-encoded as the tail.
    let (out, req, smart) = cut(&src, &dir, "smart.mp4", 3.48, 9.24, false).await;
    assert_eq!(smart.method, CutMethod::SmartCut, "{:?}", smart.fallback_reason);
    assert_eq!(smart.reencoded_frames, 13 + 31);
    check_clip(&src, &out, &req, &smart, 25.0);
    // Ending at 9.2 s (frame 230) is clean in decode order: only the head is re-encoded.
    let (out, req, r) = cut(&src, &dir, "smart2.mp4", 3.48, 9.2, false).await;
    assert_eq!((r.method, r.reencoded_frames), (CutMethod::SmartCut, 13));
    check_clip(&src, &out, &req, &r, 25.0);

    let (out_full, req, full) = cut(&src, &dir, "full.mp4", 3.48, 9.24, true).await;
    assert_eq!(full.method, CutMethod::FullReencode);
    check_clip(&src, &out_full, &req, &full, 25.0);
    eprintln!(
        "640x360 25fps, 5.76 s clip: smart cut {:.2}s, full re-encode {:.2}s",
        smart.elapsed, full.elapsed
    );
    assert_clean(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_cut_plain_testsrc() {
    let src = plain25();
    let dir = out_dir("plain25");
    let (out, _req, r) = cut(&src, &dir, "clip.mp4", 3.0, 7.0, false).await;
    assert_eq!(r.method, CutMethod::SmartCut, "{:?}", r.fallback_reason);
    assert_eq!(r.frames, 100);
    let s = streams(&out);
    assert_eq!(s.iter().find(|x| x.0 == "video").unwrap().2, 100);
    let d = mad(&gray_at(&out, 0.0), &gray_at(&src, 2.996));
    assert!(d < SAME_FRAME, "first frame MAD {d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_cut_1080p_timing() {
    let src = coded1080();
    let dir = out_dir("smart1080");
    let (out, req, smart) = cut(&src, &dir, "smart.mp4", 2.52, 10.4, false).await;
    assert_eq!(smart.method, CutMethod::SmartCut, "{:?}", smart.fallback_reason);
    check_clip(&src, &out, &req, &smart, 25.0);
    let (_, _, full) = cut(&src, &dir, "full.mp4", 2.52, 10.4, true).await;
    eprintln!(
        "1920x1080 25fps, 7.88 s clip: smart cut {:.2}s ({} of {} frames re-encoded), full re-encode {:.2}s",
        smart.elapsed, smart.reencoded_frames, smart.frames, full.elapsed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_b_frames_the_end_is_copied() {
    let src = coded25_nob();
    let dir = out_dir("nob");
    let (out, req, r) = cut(&src, &dir, "clip.mp4", 1.2, 9.2, false).await;
    assert_eq!(r.method, CutMethod::SmartCut, "{:?}", r.fallback_reason);
    assert_eq!(r.reencoded_frames, 20, "only the head (1.2..2.0) is re-encoded");
    check_clip(&src, &out, &req, &r, 25.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyframe_aligned_cut_is_stream_copy() {
    let src = coded25();
    let dir = out_dir("copy");
    let (out, req, r) = cut(&src, &dir, "clip.mp4", 4.0, 8.0, false).await;
    assert_eq!(r.method, CutMethod::StreamCopy, "{:?}", r.fallback_reason);
    assert_eq!(r.reencoded_frames, 0);
    check_clip(&src, &out, &req, &r, 25.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_clip_inside_a_gop_is_reencoded() {
    let src = coded25();
    let dir = out_dir("short");
    let (out, req, r) = cut(&src, &dir, "clip.mp4", 4.2, 5.6, false).await;
    assert_eq!(r.method, CutMethod::FullReencode);
    assert!(r.fallback_reason.as_deref().unwrap().contains("keyframe"), "{:?}", r.fallback_reason);
    check_clip(&src, &out, &req, &r, 25.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ntsc_rate_unaligned_times_snap_to_frames() {
    let src = coded_ntsc();
    let dir = out_dir("ntsc");
    let fps = 30000.0 / 1001.0;
    let (out, req, r) = cut(&src, &dir, "clip.mp4", 2.5, 7.3, false).await;
    assert_eq!(r.method, CutMethod::SmartCut, "{:?}", r.fallback_reason);
    // 2.5 s is frame 74.925 -> frame 75; 7.3 s is boundary 218.78 -> 219.
    assert!((r.start - 75.0 / fps).abs() < 1e-6, "start {}", r.start);
    assert!((r.end - 219.0 / fps).abs() < 1e-6, "end {}", r.end);
    assert_eq!(r.frames, 144);
    check_clip(&src, &out, &req, &r, fps);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vfr_source_is_fully_reencoded_exactly() {
    let src = vfr();
    let dir = out_dir("vfr");
    // 3.52..4.0 is at 12.5 fps (6 frames), 4.0..5.6 at 25 fps (40 frames).
    let (out, _req, r) = cut(&src, &dir, "clip.mp4", 3.52, 5.6, false).await;
    assert_eq!(r.method, CutMethod::FullReencode);
    assert!(r.fallback_reason.as_deref().unwrap().contains("variable"), "{:?}", r.fallback_reason);
    assert_eq!(r.frames, 46);
    let s = streams(&out);
    let v = s.iter().find(|x| x.0 == "video").unwrap();
    assert_eq!(v.2, 46);
    assert!((v.1 - 2.08).abs() < 0.041, "duration {}", v.1);
    let d = mad(&gray_at(&out, 0.0), &gray_at(&src, 3.516));
    assert!(d < SAME_FRAME, "first frame MAD {d}");
    let d = mad(&gray_at(&out, 2.036), &gray_at(&src, 5.556));
    assert!(d < SAME_FRAME, "last frame MAD {d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_rejected() {
    let src = coded25();
    let info = source_info(&src).await.unwrap();
    let dir = out_dir("bad");
    for (s, e) in [(5.0, 5.0), (-1.0, 2.0), (f64::NAN, 2.0), (20.0, 25.0)] {
        let err = cut_clip(
            &src,
            &dir.join("x.mp4"),
            &CutRequest { start: s, end: e },
            &info,
            &Cancel::new(),
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err.downcast_ref::<MediaError>(), Some(MediaError::InvalidRequest(_))),
            "{err:#}"
        );
    }
    // An end past the video is clamped to its end.
    let (_, _, r) = cut(&src, &dir, "tail.mp4", 10.0, 30.0, false).await;
    assert_eq!(r.frames, 50);
    assert_eq!(r.method, CutMethod::StreamCopy);
    assert_clean(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_a_long_reencode_and_removes_output() {
    let src = long1080();
    let info = source_info(&src).await.unwrap();
    let dir = out_dir("cancel");
    let out = dir.join("clip.mp4");
    let cancel = Cancel::new();
    let c2 = cancel.clone();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        c2.cancel();
        Instant::now()
    });
    let mut progress = 0.0;
    let res = cut_clip(&src, &out, &CutRequest { start: 0.0, end: 30.0 }, &info, &cancel, |p| {
        progress = p
    })
    .await;
    let returned = Instant::now();
    let cancelled_at = canceller.await.unwrap();
    let err = res.expect_err("cut should be cancelled");
    assert!(is_cancelled(&err), "{err:#}");
    let latency = returned.duration_since(cancelled_at);
    eprintln!("cancel -> return: {latency:?} (progress was {progress:.3})");
    // A generous bound: on a loaded 2-core machine the kill and the wait
    // for ffmpeg took 1.7 s once; the uncancelled cut takes far longer.
    assert!(latency < Duration::from_secs(5), "{latency:?}");
    assert!(progress < 0.9);
    assert!(!out.exists());
    assert_clean(&dir);

    // A deadline works the same way.
    let t = Instant::now();
    let err = cut_clip(
        &src,
        &out,
        &CutRequest { start: 0.0, end: 30.0 },
        &info,
        &crate::cancel::cancelled_after(&Cancel::new(), Duration::from_millis(800)),
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(is_cancelled(&err));
    assert!(t.elapsed() < Duration::from_millis(1800), "{:?}", t.elapsed());
    assert_clean(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnails_are_small_jpegs() {
    let dir = out_dir("thumb");
    for (src, at, w) in
        [(coded25(), 5.0, 640), (long1080(), 3.0, 640), (vfr(), 2.0, 320), (coded25(), 99.0, 640)]
    {
        let out = dir.join("t.jpg");
        thumbnail(&src, at, &out, &Cancel::new()).await.unwrap();
        let info = run(
            "ffprobe",
            &[
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name,width,height",
                "-of",
                "csv=p=0",
                out.to_str().unwrap(),
            ],
        );
        let info = String::from_utf8(info).unwrap();
        let f: Vec<&str> = info.trim().split(',').collect();
        assert_eq!(f[0], "mjpeg", "{info}");
        assert_eq!(f[1].parse::<u32>().unwrap(), w, "{info}");
        assert!(f[1].parse::<u32>().unwrap() <= THUMBNAIL_MAX_WIDTH);
    }
    // The thumbnail is the exact frame at `at`.
    let out = dir.join("exact.jpg");
    thumbnail(&coded25(), 5.0, &out, &Cancel::new()).await.unwrap();
    let d = mad(&gray_at(&out, 0.0), &gray_at(&coded25(), 4.996));
    assert!(d < SAME_FRAME, "thumbnail MAD {d}");
    assert_clean(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extract_audio_returns_16k_mono() {
    let t = Instant::now();
    let samples = extract_audio(&coded25(), &Cancel::new()).await.unwrap();
    eprintln!("12 s of audio extracted in {:.2}s", t.elapsed().as_secs_f64());
    let want = 12.0 * AUDIO_SAMPLE_RATE as f64;
    assert!((samples.len() as f64 - want).abs() < want * 0.01, "{} samples", samples.len());
    let rms = (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt();
    assert!(rms > 0.01 && samples.iter().all(|s| s.abs() <= 1.0), "rms {rms}");

    let err = extract_audio(&no_audio(), &Cancel::new()).await.unwrap_err();
    assert!(
        matches!(err.downcast_ref::<MediaError>(), Some(MediaError::NoAudioStream(_))),
        "{err:#}"
    );
    assert!(err.to_string().contains("no audio stream"));

    let c = Cancel::new();
    c.cancel();
    assert!(is_cancelled(&extract_audio(&coded25(), &c).await.unwrap_err()));
}

/// The generated speech fixtures (`scripts/make-fixtures.sh`), if present:
/// `$CLIPPER_FIXTURES_DIR`, else `<worker crate>/../fixtures/videos`.
fn fixtures_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("CLIPPER_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/videos"));
    dir.join("zh-airfryer.mp4").exists().then_some(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixtures_cut_labelled_sentences() {
    let Some(dir) = fixtures_dir() else {
        eprintln!("fixtures not generated (run scripts/make-fixtures.sh); skipping");
        return;
    };
    let out = out_dir("fixtures");
    for name in ["zh-airfryer", "en-desk-lamp"] {
        let video = dir.join(format!("{name}.mp4"));
        let labels: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join(format!("{name}.labels.json"))).unwrap(),
        )
        .unwrap();
        let info = source_info(&video).await.unwrap();
        let samples = extract_audio(&video, &Cancel::new()).await.unwrap();
        let want = info.duration * AUDIO_SAMPLE_RATE as f64;
        assert!(
            (samples.len() as f64 - want).abs() < 0.01 * want,
            "{name}: {} samples",
            samples.len()
        );
        let s = &labels["sentences"][1];
        let req =
            CutRequest { start: s["start"].as_f64().unwrap(), end: s["end"].as_f64().unwrap() };
        let clip = out.join(format!("{name}.mp4"));
        let r = cut_clip(&video, &clip, &req, &info, &Cancel::new(), |_| {}).await.unwrap();
        eprintln!(
            "  {name} sentence 1 {:?}: {:?} {:.3}s in {:.2}s",
            s["type"], r.method, r.duration, r.elapsed
        );
        assert_ne!(r.method, CutMethod::FullReencode, "{:?}", r.fallback_reason);
        assert!((r.duration - (req.end - req.start)).abs() <= 0.04 + 1e-6);
    }
    // The silent fixture has an audio track, all zeros.
    let samples = extract_audio(&dir.join("silent.mp4"), &Cancel::new()).await.unwrap();
    assert!(
        samples.len() > 5 * AUDIO_SAMPLE_RATE as usize && samples.iter().all(|s| s.abs() < 1e-3)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_without_x264_settings_is_reencoded() {
    // Same stream with its SEI NAL units (x264's settings) removed: the
    // parameter sets cannot be reproduced, so the cut falls back.
    let src = coded25();
    let src = src.to_str().unwrap().to_string();
    let stripped = source(
        "coded25-nosei.mp4",
        &["-i", &src, "-map", "0", "-c", "copy", "-bsf:v", "filter_units=remove_types=6"],
    );
    let dir = out_dir("nosei");
    let (out, req, r) = cut(&stripped, &dir, "clip.mp4", 3.48, 9.24, false).await;
    assert_eq!(r.method, CutMethod::FullReencode);
    assert!(r.fallback_reason.as_deref().unwrap().contains("x264"), "{:?}", r.fallback_reason);
    check_clip(&stripped, &out, &req, &r, 25.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matroska_output() {
    let src = coded25();
    let dir = out_dir("mkv");
    let (out, _req, r) = cut(&src, &dir, "clip.mkv", 3.48, 9.24, false).await;
    assert_eq!(r.method, CutMethod::SmartCut, "{:?}", r.fallback_reason);
    let s = streams(&out);
    assert_eq!(s.iter().find(|x| x.0 == "video").unwrap().2, 144);
    assert!(s.iter().any(|x| x.0 == "audio"));
    let d = mad(&gray_at(&out, 0.0), &gray_at(&src, 3.476));
    assert!(d < SAME_FRAME, "first frame MAD {d}");
    assert_clean(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hevc_source_is_reencoded_as_hevc() {
    let src = source(
        "hevc.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            "4",
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error",
            "-tag:v",
            "hvc1",
            "-c:a",
            "aac",
        ],
    );
    let dir = out_dir("hevc");
    let (out, _req, r) = cut(&src, &dir, "clip.mp4", 1.0, 3.0, false).await;
    assert_eq!(r.method, CutMethod::FullReencode);
    assert_eq!(r.frames, 50);
    let codec = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,codec_tag_string",
            "-of",
            "csv=p=0",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(String::from_utf8(codec).unwrap().trim(), "hevc,hvc1");
    let d = mad(&gray_at(&out, 0.0), &gray_at(&src, 0.996));
    assert!(d < SAME_FRAME, "first frame MAD {d}");
}
