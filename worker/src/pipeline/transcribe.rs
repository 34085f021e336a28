//! Speech to timed text with whisper.cpp (whisper-rs).
//!
//! The model is loaded once per worker process ([`Transcriber::load`]) and
//! shared; a transcription borrows a whisper state from a small pool and
//! gives it back (a state is ~150 MB of buffers: a fresh one per video,
//! allocated on whichever blocking thread runs it, left the worker's memory
//! growing by arena fragmentation; measured in BENCHMARKS.md). whisper.cpp is
//! CPU-bound, so a semaphore lets only as many transcriptions run at once as
//! there are cores for their threads (measured here: oversubscribed threads
//! are up to 5x slower). Cancellation and deadlines reach whisper through its
//! abort callback, progress through its progress callback.
//!
//! Input is a [`SpeechAudio`]: the recording with its long silences left out
//! (see [`super::speech`]); whisper's times are mapped back to the
//! recording's timeline, so callers never see the joined audio's clock.
//!
//! Output is the detector's [`Transcript`]: segments with token timestamps.
//! A Chinese character can span several byte-level tokens; token bytes are
//! gathered until they decode, so every emitted token holds whole
//! characters and starts at its first piece.

use super::detect::{Token, Transcript, TranscriptSegment};
use super::speech::SpeechAudio;
use crate::cancel::Cancel;
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::Semaphore;
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

/// What to transcribe and how.
#[derive(Debug, Clone, Default)]
pub struct TranscribeOptions {
    /// ISO code (`zh`, `en`, ...); `None` lets whisper detect it.
    pub language: Option<String>,
}

/// A loaded model and the permit pool that keeps whisper off oversubscribed
/// cores.
pub struct Transcriber {
    context: Arc<WhisperContext>,
    permits: Arc<Semaphore>,
    /// Whisper states not in use (at most one per permit).
    states: Arc<std::sync::Mutex<Vec<WhisperState>>>,
    threads: usize,
}

impl Transcriber {
    /// Loads the ggml model at `path`. Threads per transcription (`threads`,
    /// default: the cores, at most 8) and how many transcriptions run at once
    /// are chosen so their product does not exceed the cores.
    pub fn load(path: &Path, threads: Option<usize>) -> anyhow::Result<Self> {
        // whisper.cpp's own chatter goes through `tracing` (debug level).
        whisper_rs::install_logging_hooks();
        let path_text = path.to_str().context("model path is not UTF-8")?;
        if !path.is_file() {
            anyhow::bail!(
                "whisper model {} not found (run scripts/fetch-model.sh)",
                path.display()
            );
        }
        let context =
            WhisperContext::new_with_params(path_text, WhisperContextParameters::default())
                .map_err(|e| anyhow::anyhow!("loading whisper model {}: {e}", path.display()))?;
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let threads = threads.unwrap_or(cores).clamp(1, cores.max(1)).min(8);
        let parallel = (cores / threads).max(1);
        Ok(Transcriber {
            context: Arc::new(context),
            permits: Arc::new(Semaphore::new(parallel)),
            states: Arc::default(),
            threads,
        })
    }

    /// Transcribes the speech of a 16 kHz mono recording, with times on the
    /// recording's timeline. Silence is not sent to whisper at all: a silent
    /// recording returns no segments at once (language: the requested one,
    /// else `und`). `on_progress` receives whisper's percentage (0..=100).
    /// Returns an error mentioning "cancelled" if `cancel` fired.
    pub async fn transcribe(
        &self,
        speech: SpeechAudio,
        options: &TranscribeOptions,
        cancel: &Cancel,
        on_progress: impl FnMut(i32) + Send + 'static,
    ) -> anyhow::Result<Transcript> {
        if speech.is_silent() {
            let language = options.language.clone().unwrap_or_else(|| "und".into());
            return Ok(Transcript { language, segments: Vec::new() });
        }
        let _permit =
            self.permits.clone().acquire_owned().await.context("transcription permits closed")?;
        let context = self.context.clone();
        let options = options.clone();
        let cancel = cancel.clone();
        let (threads, states) = (self.threads, self.states.clone());
        tokio::task::spawn_blocking(move || {
            let pooled = states.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let mut state = match pooled {
                Some(state) => state,
                None => {
                    context.create_state().map_err(|e| anyhow::anyhow!("whisper state: {e}"))?
                }
            };
            let transcript = run_whisper(
                &context,
                &mut state,
                &speech.samples,
                &options,
                &cancel,
                threads,
                on_progress,
            );
            states.lock().unwrap_or_else(|e| e.into_inner()).push(state);
            transcript.map(|t| (t, speech))
        })
        .await
        .context("whisper thread panicked")?
        .map(|(mut transcript, speech)| {
            to_recording_times(&mut transcript, &speech);
            transcript
        })
    }
}

/// Moves every time in `transcript` from the joined speech audio's clock to
/// the recording's.
fn to_recording_times(transcript: &mut Transcript, speech: &SpeechAudio) {
    for segment in &mut transcript.segments {
        segment.start = speech.to_recording(segment.start);
        segment.end = speech.to_recording(segment.end).max(segment.start);
        for token in &mut segment.tokens {
            token.start = speech.to_recording(token.start);
            token.end = speech.to_recording(token.end).max(token.start);
        }
    }
}

/// Initial prompts that steer whisper's script and punctuation: simplified
/// characters with full-width punctuation for Mandarin.
fn initial_prompt(language: Option<&str>) -> Option<&'static str> {
    match language {
        Some("zh") => Some("以下是普通话的句子，使用简体中文。"),
        _ => None,
    }
}

/// One `full()` run over `samples` in `state`; returns the transcript on
/// the samples' own clock.
fn run_whisper(
    context: &WhisperContext,
    state: &mut WhisperState,
    samples: &[f32],
    options: &TranscribeOptions,
    cancel: &Cancel,
    threads: usize,
    on_progress: impl FnMut(i32) + Send + 'static,
) -> anyhow::Result<Transcript> {
    let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    params.set_n_threads(threads as i32);
    params.set_language(Some(options.language.as_deref().unwrap_or("auto")));
    params.set_token_timestamps(true);
    params.set_temperature_inc(0.0);
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_special(false);
    params.set_print_timestamps(false);
    params.set_suppress_blank(true);
    if let Some(prompt) = initial_prompt(options.language.as_deref()) {
        params.set_initial_prompt(prompt);
    }
    let abort = cancel.clone();
    // A boxed closure: whisper-rs 0.16 ignores a plain one (seen here:
    // `set_abort_callback_safe` with a bare closure never aborted).
    let abort: Box<dyn FnMut() -> bool> = Box::new(move || abort.is_cancelled());
    params.set_abort_callback_safe(abort);
    params.set_progress_callback_safe(on_progress);

    let result = state.full(params, samples);
    if cancel.is_cancelled() {
        anyhow::bail!("transcription cancelled");
    }
    result.map_err(|e| anyhow::anyhow!("whisper failed: {e}"))?;

    let language = match options.language.clone() {
        Some(language) => language,
        None => {
            whisper_rs::get_lang_str(state.full_lang_id_from_state()).unwrap_or("en").to_string()
        }
    };
    let eot = context.token_eot();
    let mut segments = Vec::new();
    for segment in state.as_iter() {
        let start = segment.start_timestamp() as f64 / 100.0;
        let end = segment.end_timestamp() as f64 / 100.0;
        let mut tokens = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut pending_start = None;
        let mut probability = 1.0f32;
        for i in 0..segment.n_tokens() {
            let Some(token) = segment.get_token(i) else { continue };
            if token.token_id() >= eot {
                continue; // special and timestamp tokens
            }
            let data = token.token_data();
            let bytes = token.to_bytes().unwrap_or_default();
            if pending.is_empty() {
                pending_start = Some(data.t0 as f64 / 100.0);
                probability = 1.0;
            }
            pending.extend_from_slice(bytes);
            probability = probability.min(data.p);
            if let Ok(text) = std::str::from_utf8(&pending) {
                tokens.push(Token {
                    start: pending_start.unwrap_or(start),
                    end: data.t1 as f64 / 100.0,
                    text: text.to_string(),
                    probability,
                });
                pending.clear();
            }
        }
        if !pending.is_empty() {
            tokens.push(Token {
                start: pending_start.unwrap_or(start),
                end,
                text: String::from_utf8_lossy(&pending).to_string(),
                probability,
            });
        }
        let text: String = tokens.iter().map(|t| t.text.as_str()).collect();
        if text.trim().is_empty() {
            continue;
        }
        segments.push(TranscriptSegment { start, end, text: text.trim().to_string(), tokens });
    }
    Ok(Transcript { language, segments })
}
