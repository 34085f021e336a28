//! `eval`: the selling-point F1 on labelled fixtures, end to end (real
//! audio through whisper and the detector), so the quality number is always
//! one command away (`just eval`).
//!
//! For every `fixtures/videos/*.labels.json` beside its `.mp4`, it extracts
//! the audio, transcribes it with the model in `WHISPER_MODEL` (default
//! `.cache/models/ggml-base.bin`), detects selling points with the default
//! configuration and matches them against the labels: a true selling point
//! counts as found when a clip of the same type overlaps it with temporal
//! IoU >= 0.3. Prints one line per video and the totals; `--json` prints
//! the totals as JSON. Exit status 1 if F1 is below `--min-f1`, 2 for bad
//! arguments (`eval --help` lists them).

use anyhow::Context;
use clap::error::ErrorKind;
use clap::Parser;
use serde::Deserialize;
use std::path::PathBuf;
use worker::cancel::Cancel;
use worker::pipeline::detect::{
    self, DetectionConfig, EvalCounts, LexiconScorer, SellingPointType,
};
use worker::pipeline::media;
use worker::pipeline::speech::{SpeechAudio, VoiceActivity};
use worker::pipeline::transcribe::{TranscribeOptions, Transcriber};

#[derive(Deserialize)]
struct Labels {
    language: String,
    sentences: Vec<LabelledSentence>,
}

#[derive(Deserialize)]
struct LabelledSentence {
    #[serde(rename = "type")]
    kind: String,
    start: f64,
    end: f64,
}

/// The selling-point F1 on labelled fixtures, end to end.
///
/// Each video's audio is transcribed with the whisper model in WHISPER_MODEL
/// (default .cache/models/ggml-base.bin) and its detected clips are matched
/// against the labels: same type, temporal IoU >= 0.3.
#[derive(Parser)]
#[command(name = "eval", verbatim_doc_comment)]
struct Args {
    /// Directory of NAME.mp4 videos, each with its NAME.labels.json
    #[arg(default_value = "fixtures/videos")]
    dir: PathBuf,
    /// Print only the totals, as one JSON object
    #[arg(long)]
    json: bool,
    /// Exit 1 if the overall F1 is below this
    #[arg(long, value_name = "F1", default_value_t = 0.0)]
    min_f1: f64,
    /// Transcribe the whole recording, silences included (the worker skips
    /// them; this measures what that costs in F1)
    #[arg(long)]
    keep_silence: bool,
}

/// The arguments, or exit: 0 after --help, 2 with one line for bad ones.
fn parse_args() -> Args {
    Args::try_parse().unwrap_or_else(|err| {
        if matches!(err.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
            let _ = err.print();
            std::process::exit(0);
        }
        // clap's own first line, without the usage block.
        let text = err.render().to_string();
        let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid arguments");
        eprintln!("eval: {}", line.trim_start_matches("error: "));
        std::process::exit(2);
    })
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let Args { dir, json, min_f1, keep_silence } = parse_args();
    let model =
        std::env::var("WHISPER_MODEL").unwrap_or_else(|_| ".cache/models/ggml-base.bin".into());
    let transcriber = Transcriber::load(std::path::Path::new(&model), None)?;
    let config = DetectionConfig::default();
    let scorer = LexiconScorer::new(&config);

    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".labels.json"))
        .collect();
    entries.sort();
    let mut total = EvalCounts::default();
    let mut per_language: std::collections::BTreeMap<String, EvalCounts> = Default::default();
    for labels_path in entries {
        let name = labels_path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".labels.json")
            .to_string();
        let video = labels_path.with_file_name(format!("{name}.mp4"));
        let labels: Labels = serde_json::from_str(&std::fs::read_to_string(&labels_path)?)
            .with_context(|| format!("parsing {}", labels_path.display()))?;
        let truth: Vec<(SellingPointType, f64, f64)> = labels
            .sentences
            .iter()
            .filter_map(|s| SellingPointType::parse(&s.kind).map(|k| (k, s.start, s.end)))
            .collect();
        let info = media::source_info(&video).await?;
        let samples = media::extract_audio(&video, &Cancel::new()).await?;
        let speech = if keep_silence {
            SpeechAudio::whole(samples)
        } else {
            SpeechAudio::select(samples, &VoiceActivity::default())
        };
        let options = TranscribeOptions { language: Some(labels.language.clone()) };
        let transcript = transcriber.transcribe(speech, &options, &Cancel::new(), |_| {}).await?;
        let detection = detect::detect(&transcript, info.duration, &config, &scorer);
        let counts = detect::evaluate(&detection.selling_points, &truth);
        if !json {
            println!(
                "{name:<22} {:<3} truth {:>2}  found {:>2}  false {:>2}  missed {:>2}  F1 {:.3}",
                labels.language,
                truth.len(),
                counts.tp,
                counts.fp,
                counts.fn_,
                counts.f1()
            );
        }
        *per_language.entry(labels.language.clone()).or_default() += counts;
        total += counts;
    }
    if json {
        let languages: serde_json::Map<String, serde_json::Value> = per_language
            .iter()
            .map(|(l, c)| {
                (l.clone(), serde_json::json!({"tp": c.tp, "fp": c.fp, "fn": c.fn_, "f1": c.f1()}))
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"tp": total.tp, "fp": total.fp, "fn": total.fn_, "precision": total.precision(), "recall": total.recall(), "f1": total.f1(), "languages": languages})
        );
    } else {
        for (language, c) in &per_language {
            println!(
                "{language}: precision {:.3} recall {:.3} F1 {:.3}",
                c.precision(),
                c.recall(),
                c.f1()
            );
        }
        println!(
            "ALL: precision {:.3} recall {:.3} F1 {:.3} (IoU >= 0.3, same type)",
            total.precision(),
            total.recall(),
            total.f1()
        );
    }
    if total.f1() < min_f1 {
        anyhow::bail!("F1 {:.3} is below {min_f1}", total.f1());
    }
    Ok(())
}
