//! What each template kind costs per clip second, against the plain smart
//! cut: `cargo run --release -p worker --bin bench_brand -- VIDEO [START END]`
//! (what `scripts/bench.sh brand` runs). Each variant runs three times; the
//! median is printed, in seconds and per second of clip.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use shared::templates::style::{CaptionStyle, Corner, WatermarkStyle};
use worker::pipeline::media::brand::{self, Canvas, Captions, Watermark};
use worker::pipeline::media::{self, Cancel, CutRequest};

#[derive(Parser)]
struct Args {
    /// A source video (H.264 with audio)
    video: PathBuf,
    /// Clip start, seconds
    #[arg(default_value_t = 2.0)]
    start: f64,
    /// Clip end, seconds
    #[arg(default_value_t = 12.0)]
    end: f64,
}

/// Runs the async expression three times; the median seconds.
macro_rules! median {
    ($e:expr) => {{
        let mut times = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            $e.await?;
            times.push(started.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        times[1]
    }};
}

fn ffmpeg(args: &[&str]) -> anyhow::Result<()> {
    let status =
        std::process::Command::new("ffmpeg").args(["-v", "error", "-y"]).args(args).status()?;
    anyhow::ensure!(status.success(), "ffmpeg {args:?}");
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("bench-brand-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let p = |name: &str| dir.join(name);
    let s = |path: &Path| path.to_str().unwrap_or_default().to_string();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=navy:s=1280x720:r=30:d=2",
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:r=48000:d=2",
        "-c:v",
        "libx264",
        "-c:a",
        "aac",
        "-shortest",
        &s(&p("intro.mp4")),
    ])?;
    ffmpeg(&["-f", "lavfi", "-i", "color=white:s=160x60", "-frames:v", "1", &s(&p("mark.png"))])?;
    std::fs::write(
        p("cues.srt"),
        "1\n00:00:00,500 --> 00:00:03,000\n这款空气炸锅真的太方便了\n\n2\n00:00:03,500 --> 00:00:07,000\nNo oil, crispy fries\n\n",
    )?;

    let cancel = Cancel::new();
    let info = media::source_info(&args.video).await?;
    let request = CutRequest { start: args.start, end: args.end };
    let clip = p("clip.mp4");
    let cut = median!(media::cut_clip(&args.video, &clip, &request, &info, &cancel, |_| {}));
    let clip_info = media::source_info(&clip).await?;
    let length = clip_info.video_duration.unwrap_or(clip_info.duration);
    let canvas = Canvas::of(&clip_info);
    let style =
        WatermarkStyle { position: Corner::TopRight, scale: Some(0.15), ..Default::default() };
    let mark =
        Watermark { file: &p("mark.png"), width: 160, height: 60, is_image: true, style: &style };
    let caption_style = CaptionStyle::default();
    let captions = Captions { srt: &p("cues.srt"), style: &caption_style };
    let render = |out: PathBuf, w: bool, c: bool| {
        let (w, c) = (w.then_some(&mark), c.then_some(&captions));
        let (clip, canvas, cancel) = (&clip, &canvas, &cancel);
        async move { brand::render_body(clip, length, &out, canvas, w, c, cancel).await }
    };
    let plain_encode = median!(render(p("plain.mp4"), false, false));
    let watermark = median!(render(p("wm.mp4"), true, false));
    let burned = median!(render(p("cap.mp4"), false, true));
    let (intro, intro_n) = (p("intro.mp4"), p("intro-n.mp4"));
    let bumper = median!(brand::normalize_bumper(&intro, 2.0, &intro_n, &canvas, &cancel));
    let (wm, joined) = (p("wm.mp4"), p("joined.mp4"));
    let pieces: [&Path; 2] = [&intro_n, &wm];
    let join = median!(brand::join(&pieces, &joined, &canvas, &cancel));

    println!(
        "source {} ({}x{}), clip {length:.2} s",
        args.video.display(),
        canvas.width,
        canvas.height
    );
    let row = |what: &str, secs: f64| {
        println!("{what:<44} {secs:>7.3} s  {:>6.3} s per clip second", secs / length)
    };
    row("plain smart cut (frame-exact)", cut);
    row("body encode, no template (the branded base)", plain_encode);
    row("body encode + watermark", watermark);
    row("body encode + captions", burned);
    row("intro/outro normalised (once per task, 2 s)", bumper);
    row("join intro + body (stream copy, audio re-encoded)", join);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
