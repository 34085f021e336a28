//! `bench_cut`: what a frame-exact clip costs, smart cut against a full
//! libx264 `veryfast` re-encode of the same clip (`scripts/bench.sh cut`).
//!
//! Sources are generated once into `.local/bench/cut/` (12 s, 2 s GOP,
//! moving test pattern, AAC audio): x264 at 1920x1080 and 640x360, a
//! phone-style 1080x1920 30 fps H.264 without x264's settings SEI (what a
//! phone's hardware encoder writes: nothing says how to reproduce it), and
//! HEVC. For each, a 7.88 s clip starting mid-GOP is cut three ways, three
//! times each (median): the first clip of a fresh [`CutSource`] (packet scan
//! and encoder settings included), a further clip of the same source (what
//! the later clips of a task pay), and a full re-encode. Prints a Markdown
//! table row per source; `bench_cut NAME...` only the named ones.

use std::path::{Path, PathBuf};
use std::time::Instant;
use worker::cancel::Cancel;
use worker::pipeline::media::{self, CutMethod, CutRequest, CutSource};

/// One generated source: its name and the ffmpeg arguments that make it.
struct Kind {
    name: &'static str,
    size: &'static str,
    rate: &'static str,
    codec: &'static [&'static str],
}

const KINDS: &[Kind] = &[
    Kind {
        name: "x264-1080p",
        size: "1920x1080",
        rate: "25",
        codec: &["-c:v", "libx264", "-preset", "veryfast", "-g", "50"],
    },
    Kind {
        name: "x264-360p",
        size: "640x360",
        rate: "25",
        codec: &["-c:v", "libx264", "-g", "50"],
    },
    Kind {
        name: "phone-h264-1080x1920",
        size: "1080x1920",
        rate: "30",
        // No B-frames, 1 s GOP, the settings SEI removed (NAL type 6).
        codec: &[
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-bf",
            "0",
            "-g",
            "30",
            "-profile:v",
            "high",
            "-bsf:v",
            "filter_units=remove_types=6",
        ],
    },
    Kind {
        name: "hevc-1080x1920",
        size: "1080x1920",
        rate: "30",
        codec: &[
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "keyint=60:log-level=error",
            "-tag:v",
            "hvc1",
        ],
    },
];

/// Makes (once) the source of `kind`; returns its path.
fn generate(dir: &Path, kind: &Kind) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{}.mp4", kind.name));
    if path.exists() {
        return Ok(path);
    }
    let tmp = dir.join(format!("tmp-{}.mp4", kind.name));
    let video = format!("testsrc2=size={}:rate={}", kind.size, kind.rate);
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", &video, "-f", "lavfi", "-i"])
        .arg("sine=frequency=440:sample_rate=48000")
        .args(kind.codec)
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-t", "12"])
        .arg(&tmp)
        .status()?;
    anyhow::ensure!(status.success(), "generating {}", kind.name);
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// The median of three runs of `cut`, in seconds, and the last report.
async fn median_of_three<F, Fut>(mut cut: F) -> anyhow::Result<(f64, media::CutReport)>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<media::CutReport>>,
{
    let mut times = Vec::new();
    let mut last = None;
    for run in 0..3 {
        let t0 = Instant::now();
        last = Some(cut(run).await?);
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((times[1], last.expect("three runs")))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    // RUST_LOG=worker=debug shows every ffmpeg run.
    shared::logging::init(shared::logging::LogFormat::Text, "warn");
    let dir = PathBuf::from(".local/bench/cut");
    std::fs::create_dir_all(&dir)?;
    let cancel = Cancel::new();
    let clip = CutRequest { start: 2.52, end: 10.4 };
    let later = CutRequest { start: 3.3, end: 11.18 };
    println!("| source | first clip of a source | further clip | full re-encode | re-encode / further clip | method |");
    println!("|---|---|---|---|---|---|");
    // `bench_cut NAME...` measures only the named sources.
    let only: Vec<String> = std::env::args().skip(1).collect();
    for kind in KINDS.iter().filter(|k| only.is_empty() || only.iter().any(|o| o == k.name)) {
        let input = generate(&dir, kind)?;
        let info = media::source_info(&input).await?;
        let out = |run: u32, what: &str| dir.join(format!("{}-{what}-{run}.mp4", kind.name));
        let (first, report) = median_of_three(|run| {
            let (input, info, output, cancel) = (&input, &info, out(run, "first"), &cancel);
            async move { media::cut_clip(input, &output, &clip, info, cancel, |_| {}).await }
        })
        .await?;
        let source = CutSource::open(&input, &info).await?;
        source.cut(&out(9, "warmup"), &clip, &cancel, |_| {}).await?;
        let (further, further_report) = median_of_three(|run| {
            let (source, output, cancel) = (&source, out(run, "further"), &cancel);
            async move { source.cut(&output, &later, cancel, |_| {}).await }
        })
        .await?;
        let (full, _) = median_of_three(|run| {
            let (source, output, cancel) = (&source, out(run, "full"), &cancel);
            async move { source.reencode(&output, &later, cancel, |_| {}).await }
        })
        .await?;
        let method = match (&report.method, &report.fallback_reason) {
            (CutMethod::FullReencode, Some(reason)) => format!("full re-encode: {reason}"),
            (method, _) => format!(
                "{method:?}, {} of {} frames re-encoded (further clip: {})",
                report.reencoded_frames, report.frames, further_report.reencoded_frames
            ),
        };
        println!(
            "| {} | {first:.2} s | {further:.2} s | {full:.2} s | {:.1}x | {method} |",
            kind.name,
            full / further
        );
    }
    Ok(())
}
