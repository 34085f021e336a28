//! Branding on real ffmpeg output: an intro of another size, frame rate and
//! audio rate, a clip, an outro, a watermark and captions, checked by
//! decoding frames of the result.

use super::*;
use crate::pipeline::media::source_info;
use shared::templates::style::{CaptionStyle, Corner, WatermarkStyle};
use std::process::Command;

const W: usize = 640;
const H: usize = 360;

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg").args(["-v", "error", "-y"]).args(args).output().unwrap();
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn ffprobe(path: &Path, entries: &str, stream: &str) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", stream, "-show_entries", entries])
        .args(["-of", "default=nw=1:nk=1"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The frame shown at `at` seconds as RGB bytes, W x H.
fn frame(path: &Path, at: f64) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-ss", &format!("{at:.3}"), "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert_eq!(out.stdout.len(), W * H * 3, "a frame at {at} of {}", path.display());
    out.stdout
}

/// Mean colour of the box `[x0, x1) x [y0, y1)`.
fn mean_rgb(f: &[u8], (x0, x1): (usize, usize), (y0, y1): (usize, usize)) -> [f64; 3] {
    let mut sum = [0.0; 3];
    for y in y0..y1 {
        for x in x0..x1 {
            for (c, s) in sum.iter_mut().enumerate() {
                *s += f[(y * W + x) * 3 + c] as f64;
            }
        }
    }
    let n = ((x1 - x0) * (y1 - y0)) as f64;
    sum.map(|s| s / n)
}

/// Mean absolute difference of two frames inside a box.
fn box_diff(a: &[u8], b: &[u8], (x0, x1): (usize, usize), (y0, y1): (usize, usize)) -> f64 {
    let mut sum = 0.0;
    for y in y0..y1 {
        for x in x0..x1 {
            for c in 0..3 {
                let i = (y * W + x) * 3 + c;
                sum += (a[i] as f64 - b[i] as f64).abs();
            }
        }
    }
    sum / ((x1 - x0) * (y1 - y0) * 3) as f64
}

/// Removes the test's directory when the test ends, passed or not.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn intro_clip_outro_with_watermark_and_captions() {
    let dir = std::env::temp_dir().join(format!("brand-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = RemoveOnDrop(dir.clone());
    let p = |name: &str| dir.join(name);
    // The intro: smaller, 30 fps, 48 kHz mono; the outro: 1.2 s, 44.1 kHz stereo.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=red:s=320x240:r=30:d=1",
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:r=48000:d=1",
        "-c:v",
        "libx264",
        "-c:a",
        "aac",
        "-shortest",
        p("intro.mp4").to_str().unwrap(),
    ]);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=blue:s=640x360:r=25:d=1.2",
        "-f",
        "lavfi",
        "-i",
        "sine=f=660:r=44100:d=1.2",
        "-ac",
        "2",
        "-c:v",
        "libx264",
        "-c:a",
        "aac",
        p("outro.mp4").to_str().unwrap(),
    ]);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=640x360:r=25:d=2",
        "-f",
        "lavfi",
        "-i",
        "sine=f=330:r=44100:d=2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        p("clip.mp4").to_str().unwrap(),
    ]);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=white:s=64x32",
        "-frames:v",
        "1",
        p("mark.png").to_str().unwrap(),
    ]);
    std::fs::write(p("cues.srt"), "1\n00:00:00,200 --> 00:00:01,500\nHELLO 你好\n\n").unwrap();

    let info = source_info(&p("clip.mp4")).await.unwrap();
    let canvas = Canvas::of(&info);
    assert_eq!((canvas.width, canvas.height, canvas.sample_rate), (640, 360, 44_100));
    let cancel = Cancel::new();
    let style = WatermarkStyle { position: Corner::TopLeft, margin: 10, scale: None, opacity: 1.0 };
    let mark =
        Watermark { file: &p("mark.png"), width: 64, height: 32, is_image: true, style: &style };
    let caption_style = CaptionStyle { size: 40, ..CaptionStyle::default() };
    let captions = Captions { srt: &p("cues.srt"), style: &caption_style };
    let body = p("body.mp4");
    render_body(&p("clip.mp4"), 2.0, &body, &canvas, Some(&mark), Some(&captions), &cancel)
        .await
        .unwrap();
    normalize_bumper(&p("intro.mp4"), 1.0, &p("intro-n.mp4"), &canvas, &cancel).await.unwrap();
    normalize_bumper(&p("outro.mp4"), 1.2, &p("outro-n.mp4"), &canvas, &cancel).await.unwrap();
    let out = p("branded.mp4");
    let pieces = [p("intro-n.mp4"), body.clone(), p("outro-n.mp4")];
    let pieces: Vec<&Path> = pieces.iter().map(|p| p.as_path()).collect();
    let size = join(&pieces, &out, &canvas, &cancel).await.unwrap();
    assert_eq!(size, std::fs::metadata(&out).unwrap().len());

    // Intro + clip + outro, within a frame; audio as long as the video.
    let frame_time = 1.0 / 25.0;
    let video: f64 = ffprobe(&out, "stream=duration", "v:0").parse().unwrap();
    let audio: f64 = ffprobe(&out, "stream=duration", "a:0").parse().unwrap();
    assert!((video - 4.2).abs() <= frame_time + 1e-3, "video lasts {video}");
    assert!((audio - video).abs() <= 0.05, "audio {audio} vs video {video}");
    let frames: i64 = ffprobe(&out, "stream=nb_frames", "v:0").parse().unwrap();
    assert!((frames - 105).abs() <= 1, "{frames} frames (25 + 50 + 30)");

    // The first frames are the intro (red, padded black at the sides), the
    // last the outro (blue).
    let first = frame(&out, 0.1);
    let [r, g, b] = mean_rgb(&first, (200, 440), (100, 260));
    assert!(r > 200.0 && g < 60.0 && b < 60.0, "intro centre {r} {g} {b}");
    let [r, g, b] = mean_rgb(&first, (0, 60), (100, 260));
    assert!(r < 30.0 && g < 30.0 && b < 30.0, "intro pad {r} {g} {b}");
    let last = frame(&out, 4.1);
    let [r, g, b] = mean_rgb(&last, (200, 440), (100, 260));
    assert!(b > 200.0 && r < 60.0 && g < 60.0, "outro {r} {g} {b}");

    // The watermark sits in its box during the clip, and nowhere else.
    let branded = frame(&out, 1.0 + 1.8);
    let plain = frame(&p("clip.mp4"), 1.8);
    let [r, g, b] = mean_rgb(&branded, (12, 72), (12, 40));
    assert!(r > 235.0 && g > 235.0 && b > 235.0, "watermark box {r} {g} {b}");
    let outside = box_diff(&branded, &plain, (100, 640), (0, 250));
    assert!(outside < 6.0, "outside the watermark the clip is unchanged: {outside}");
    assert!(mean_rgb(&first, (12, 72), (12, 40))[1] < 60.0, "no watermark on the intro");

    // Captions: at the bottom while the cue is on, not after it.
    let (during, plain_during) = (frame(&out, 1.0 + 0.8), frame(&p("clip.mp4"), 0.8));
    let caption_box = box_diff(&during, &plain_during, (120, 520), (270, 350));
    assert!(caption_box > 10.0, "captions visible at the bottom: {caption_box}");
    let after = box_diff(&branded, &plain, (120, 520), (270, 350));
    assert!(after < 6.0, "no caption after its cue: {after}");
}

#[test]
fn a_watermark_larger_than_the_frame_is_refused() {
    let canvas = Canvas { width: 320, height: 180, frame_rate: "25".into(), sample_rate: 44_100 };
    let style = WatermarkStyle { scale: None, ..WatermarkStyle::default() };
    let path = Path::new("mark.png");
    let mark = Watermark { file: path, width: 400, height: 50, is_image: true, style: &style };
    let err = watermark_size(&mark, &canvas).unwrap_err().to_string();
    assert!(err.contains("larger than the 320x180 frame"), "{err}");
    let scaled = WatermarkStyle { scale: Some(0.25), ..style.clone() };
    let mark = Watermark { style: &scaled, ..mark };
    assert_eq!(watermark_size(&mark, &canvas).unwrap(), (80, 10));
}
