//! `bench_whisper`: the yardstick of `scripts/bench.sh pipeline`, whisper
//! alone on each video: the same model and threads a worker uses, one
//! `full()` call over the whole 16 kHz audio (silences included, no voice
//! activity pass), nothing else timed.
//!
//! Usage: `bench_whisper LANG=VIDEO...` (for example `zh=a.mp4 en=b.mp4`);
//! the model is `WHISPER_MODEL` (default `.cache/models/ggml-base.bin`).
//! Prints one JSON object per video: `{"video", "audio_seconds",
//! "whisper_seconds"}`; exit status 2 for bad arguments.

use std::path::Path;
use std::time::Instant;
use worker::cancel::Cancel;
use worker::pipeline::media;
use worker::pipeline::speech::SpeechAudio;
use worker::pipeline::transcribe::{TranscribeOptions, Transcriber};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let videos: Vec<(String, String)> = std::env::args()
        .skip(1)
        .map(|arg| match arg.split_once('=') {
            Some((lang, path)) if !lang.is_empty() && !path.is_empty() => {
                (lang.to_string(), path.to_string())
            }
            _ => {
                eprintln!("bench_whisper: expected LANG=VIDEO, got {arg:?}");
                std::process::exit(2);
            }
        })
        .collect();
    if videos.is_empty() {
        eprintln!("bench_whisper: usage: bench_whisper LANG=VIDEO...");
        std::process::exit(2);
    }
    let model =
        std::env::var("WHISPER_MODEL").unwrap_or_else(|_| ".cache/models/ggml-base.bin".into());
    // The worker's default: threads = the cores.
    let transcriber = Transcriber::load(Path::new(&model), None)?;
    for (language, video) in videos {
        let samples = media::extract_audio(Path::new(&video), &Cancel::new()).await?;
        let audio_seconds = samples.len() as f64 / media::AUDIO_SAMPLE_RATE as f64;
        let options = TranscribeOptions { language: Some(language) };
        let cancel = Cancel::new();
        let t0 = Instant::now();
        let transcript =
            transcriber.transcribe(SpeechAudio::whole(samples), &options, &cancel, |_| {}).await?;
        let segments = transcript.segments.len();
        let whisper_seconds = t0.elapsed().as_secs_f64();
        println!(
            "{}",
            serde_json::json!({"video": video, "audio_seconds": audio_seconds,
                "whisper_seconds": whisper_seconds, "segments": segments})
        );
    }
    Ok(())
}
