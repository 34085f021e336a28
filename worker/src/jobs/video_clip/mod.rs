//! The `video_clip` task: fetch → probe → extract audio → transcribe →
//! detect selling points → cut clips and thumbnails → store → completion.
//!
//! Each step is a module of `crate::pipeline` with plain inputs and outputs;
//! this file only sequences them, reports progress, and sorts failures into
//! permanent (the input is bad: fail at once) and transient (retry).
//!
//! (About 425 lines: the one function that sequences every step, kept whole
//! so the order of the steps reads top to bottom; each clip's work is in `clips.rs`.)

use super::branding;

mod clips;

use crate::cancel::Cancel;
use crate::deadline::{self, run_step, StepLimits};
use crate::pipeline::detect::{self, DetectionConfig, LexiconScorer, SellingPoint};
use crate::pipeline::media::{self, CutRequest, MediaError};
use crate::pipeline::speech::{SpeechAudio, VoiceActivity};
use crate::pipeline::subtitles::{self, CueRules};
use crate::pipeline::transcribe::{TranscribeOptions, Transcriber};
use crate::progress::Progress;
use anyhow::Context;
use bigdecimal::BigDecimal;
pub use clips::attempt_prefix;
use clips::{cut_one, segment_row, ClipContext, CutClip};
use serde_json::json;
use shared::cache::{Cache, UserConfig};
use shared::db::Pool;
use shared::jobs::VideoClipConfig;
use shared::models::{NewResult, NewSegment, VideoMetadata};
use shared::storage::Storage;
use shared::tasks::{ClaimedTask, Completion, Outcome};
use shared::BadInput;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

/// What a video task needs besides the task itself.
pub struct Deps<'a> {
    pub pool: &'a Pool,
    pub storage: &'a Storage,
    pub transcriber: Option<&'a Transcriber>,
    pub progress: &'a Progress,
    /// Time limit of each step, scaled to the video's duration.
    pub limits: StepLimits,
    /// Where the user's configuration is read (`user:config:{user_id}`)
    /// and the video's cached metadata deleted when its row changes.
    pub cache: &'a Cache,
    /// The detector's system defaults (built-in, then `system_configs`).
    pub detection: &'a DetectionConfig,
}

/// Runs one video task to its outcome.
pub async fn run(
    task: &ClaimedTask,
    config: &VideoClipConfig,
    cancel: &Cancel,
    deps: &Deps<'_>,
) -> Outcome {
    let scratch =
        std::env::temp_dir().join(format!("videoclip-{}-{}", task.task_id, task.attempts));
    let result = run_steps(task, config, cancel, deps, &scratch).await;
    let _ = tokio::fs::remove_dir_all(&scratch).await;
    match result {
        Ok(completion) => Outcome::Completed(Box::new(completion)),
        // A step past its limit is retried: the next attempt may well run
        // on a healthier machine or storage.
        Err(err) if deadline::timed_out(&err).is_some() && !cancel.is_cancelled() => {
            Outcome::Failed { reason: shared::one_line(&err), retryable: true }
        }
        Err(err) if cancel.is_cancelled() || media::is_cancelled(&err) => Outcome::Failed {
            reason: "stopped: task cancelled or lease lost".into(),
            retryable: false,
        },
        Err(err) => {
            let retryable = shared::bad_input_reason(&err).is_none();
            Outcome::Failed { reason: shared::one_line(&err), retryable }
        }
    }
}

/// Turns a media error about the source into bad input (no retry helps).
fn bad_media(err: anyhow::Error, name: &str) -> anyhow::Error {
    let media_fault = err.chain().any(|e| {
        matches!(
            e.downcast_ref::<MediaError>(),
            Some(
                MediaError::NoAudioStream(_)
                    | MediaError::NoVideoStream(_)
                    | MediaError::ToolFailed { .. }
                    | MediaError::InvalidRequest(_)
            )
        )
    });
    if media_fault {
        let reason = err.chain().map(|e| e.to_string()).last().unwrap_or_default();
        BadInput::new(format!("{name}: not a usable video: {reason}")).into()
    } else {
        err
    }
}

fn decimal(value: f64, places: usize) -> BigDecimal {
    BigDecimal::from_str(&format!("{value:.places$}")).unwrap_or_default()
}

/// The detection settings: the system defaults, then the user's
/// `selling_points` config, then the task's.
fn detection_config(
    defaults: &DetectionConfig,
    user: &UserConfig,
    task_config: &VideoClipConfig,
) -> anyhow::Result<DetectionConfig> {
    let mut config = defaults.clone();
    if let Some(overrides) = user.get(shared::user_configs::SELLING_POINTS) {
        config = config
            .with_overrides(overrides)
            .map_err(|e| BadInput::new(format!("user config selling_points: {e:#}")))?;
    }
    if let Some(overrides) = &task_config.selling_points {
        config = config
            .with_overrides(overrides)
            .map_err(|e| BadInput::new(format!("task config selling_points: {e:#}")))?;
    }
    Ok(config)
}

/// The spoken language: the task's, else the user's `language` config, else
/// detected (`None`).
fn spoken_language(
    user: &UserConfig,
    task_config: &VideoClipConfig,
) -> anyhow::Result<Option<String>> {
    let language = match (&task_config.language, user.get(shared::user_configs::LANGUAGE)) {
        (Some(language), _) => Some(language.clone()),
        (None, Some(value)) => {
            shared::user_configs::check_value(shared::user_configs::LANGUAGE, value)
                .map_err(|e| BadInput::new(format!("user config {}", e.0)))?;
            value.as_str().map(str::to_string)
        }
        (None, None) => None,
    };
    Ok(language.filter(|l| l != "auto"))
}

async fn run_steps(
    task: &ClaimedTask,
    task_config: &VideoClipConfig,
    cancel: &Cancel,
    deps: &Deps<'_>,
    scratch: &Path,
) -> anyhow::Result<Completion> {
    let progress = deps.progress;
    let mut timings = serde_json::Map::new();
    let mut clock = Instant::now();
    let mut lap = |name: &'static str, timings: &mut serde_json::Map<String, serde_json::Value>| {
        metrics::histogram!("videoclip_step_seconds", "step" => name)
            .record(clock.elapsed().as_secs_f64());
        timings.insert(
            name.to_string(),
            json!((clock.elapsed().as_secs_f64() * 1000.0).round() / 1000.0),
        );
        clock = Instant::now();
    };

    // Fetch: the stored file (file:// storage: read in place; s3://
    // downloaded into the scratch directory, removed by `run`). A missing
    // key is bad input ("NAME: stored file KEY is missing").
    progress.step("fetching video", 2).await;
    let video = {
        let mut conn = shared::db::conn(deps.pool).await?;
        shared::videos::find_video(&mut conn, task.video_id).await?
    }
    .ok_or_else(|| BadInput::new(format!("video {} does not exist", task.video_id)))?;
    {
        let mut conn = shared::db::conn(deps.pool).await?;
        shared::videos::mark_processing(&mut conn, task.video_id).await?;
    }
    if let Err(e) = deps.cache.invalidate_videos(&[task.video_id]).await {
        tracing::warn!("video:meta not invalidated: {}", shared::one_line(&e));
    }
    // The user's settings, read once per run through `user:config`.
    // Bad settings fail the task now, before any media work.
    let user_config = deps.cache.user_config(deps.pool, task.user_id).await?;
    let config = detection_config(deps.detection, &user_config, task_config)?;
    let language = spoken_language(&user_config, task_config)?;
    let name = video.original_filename.clone();
    let limits = deps.limits;
    // The duration probed at enqueue sizes the limits until this run's own
    // probe knows better.
    let mut media_seconds =
        video.duration.as_ref().and_then(|d| d.to_string().parse::<f64>().ok()).unwrap_or(0.0);
    let local = run_step("fetch", limits, media_seconds, cancel, |_| async {
        deps.storage.open_local(&video.file_path, scratch).await.with_context(|| name.clone())
    })
    .await?;
    let source: PathBuf = local.path().to_path_buf();
    let size = local.size();
    if size == 0 {
        return Err(BadInput::new(format!("{name}: the stored file is empty")).into());
    }
    lap("fetch", &mut timings);

    // Probe and audio. They are independent (two ffprobe scans, one audio
    // decode), so with the duration known from the upload they run at once;
    // the probe's verdict comes first (a truncated file, no audio), the
    // audio's error only after it.
    progress.step("probing and extracting audio", 5).await;
    let probe = run_step("probe", limits, media_seconds, cancel, |_| async {
        let info = media::source_info(&source).await.map_err(|e| bad_media(e, &name))?;
        shared::probe::check_complete(&source).await.map_err(|e| {
            BadInput::new(format!("{name}: not a usable video: {}", shared::one_line(&e)))
        })?;
        Ok(info)
    });
    let (source_path, name_ref): (&Path, &str) = (&source, &name);
    let audio = |seconds| {
        run_step("audio", limits, seconds, cancel, move |step| async move {
            media::extract_audio(source_path, &step).await.map_err(|e| bad_media(e, name_ref))
        })
    };
    let (info, samples) = if media_seconds > 0.0 {
        tokio::join!(probe, audio(media_seconds))
    } else {
        // Unknown length: the audio's time limit waits for the probe's.
        let info = probe.await?;
        let samples = audio(info.duration).await;
        (Ok(info), samples)
    };
    let info = info?;
    media_seconds = info.duration;
    if !info.has_audio {
        return Err(
            BadInput::new(format!("{name} has no audio stream: nothing to transcribe")).into()
        );
    }
    let samples = samples?;
    let metadata = VideoMetadata {
        duration: Some(decimal(info.duration, 2)),
        width: Some(info.width as i32),
        height: Some(info.height as i32),
        frame_rate: (info.avg_fps > 0.0 && info.avg_fps < 1000.0).then(|| decimal(info.avg_fps, 2)),
        bitrate: info.bit_rate.map(|b| b as i64),
        mime_type: Some(shared::probe::container_mime_type(&info.container).to_string()),
        status: Some(shared::videos::status::COMPLETED),
        thumbnail_url: None,
    };
    lap("probe_and_audio", &mut timings);

    // Transcribe.
    progress.step("transcribing", 10).await;
    let transcriber = deps.transcriber.context(
        "this worker has no whisper model (set WHISPER_MODEL or run scripts/fetch-model.sh)",
    )?;
    let options = TranscribeOptions { language };
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<i32>();
    let audio_seconds = samples.len() as f64 / media::AUDIO_SAMPLE_RATE as f64;
    // Only the parts that are not quiet go to whisper (a silent video costs
    // no whisper time and gets no invented text).
    let speech = SpeechAudio::select(samples, &VoiceActivity::default());
    let speech_seconds = speech.samples.len() as f64 / media::AUDIO_SAMPLE_RATE as f64;
    let transcription = run_step("transcribe", limits, media_seconds, cancel, |step| async move {
        let transcription = transcriber.transcribe(speech, &options, &step, move |p| {
            let _ = sender.send(p);
        });
        tokio::pin!(transcription);
        loop {
            tokio::select! {
                result = &mut transcription => break result,
                Some(percent) = receiver.recv() => progress.within(10 + (percent.clamp(0, 100) * 60 / 100) as i8).await,
            }
        }
    });
    // The cutter's packet scan (demuxing, no decoding: nearly no CPU) runs
    // while whisper works, so cutting starts as soon as the text is there.
    let (transcript, cut_source) =
        tokio::join!(transcription, media::CutSource::open(source_path, &info));
    let (transcript, cut_source) = (transcript?, cut_source.map_err(|e| bad_media(e, &name))?);
    lap("transcribe", &mut timings);
    if let Some(seconds) =
        timings.get("transcribe").and_then(|v| v.as_f64()).filter(|_| audio_seconds > 0.0)
    {
        metrics::histogram!("videoclip_whisper_real_time_factor").record(seconds / audio_seconds);
    }

    // Detect.
    progress.step("detecting selling points", 72).await;
    let scorer = LexiconScorer::new(&config);
    let detection = detect::detect(&transcript, info.duration, &config, &scorer);
    lap("detect", &mut timings);

    // Cut and store.
    progress.step("cutting clips", 75).await;
    tokio::fs::create_dir_all(scratch)
        .await
        .with_context(|| format!("creating {}", scratch.display()))?;
    let ext = source
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| ["mp4", "mov", "mkv", "m4v"].contains(e))
        .unwrap_or("mp4");
    let total = detection.selling_points.len().max(1);
    // Clips are independent: cut them in parallel, one per core (whisper is
    // done by now, so the cores are free). Results keep the clips' order.
    let parallel = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(1, 4);
    let (points, info_ref) = (&detection.selling_points, &info);
    let words = detect::timed_words(&transcript);
    let branding = match &task_config.templates {
        Some(choice) => branding::load(choice, deps.pool, deps.storage, scratch).await?,
        None => None,
    };
    let context = ClipContext {
        task,
        source: source_path,
        cut_source: &cut_source,
        info: info_ref,
        words: &words,
        ext,
        scratch,
        storage: deps.storage,
        branding: branding.as_ref(),
    };
    let (cut_clips, video_thumb) =
        run_step("cut_and_store", limits, media_seconds, cancel, |step| async move {
            // The video's own still (`videos.thumbnail_url`), from its first second.
            let still = scratch.join("video.jpg");
            media::thumbnail(source_path, (info_ref.duration / 2.0).min(1.0), &still, &step)
                .await?;
            let video_thumb = format!("{}/video.jpg", attempt_prefix(task));
            deps.storage.put_file(&still, &video_thumb).await?;
            let mut cut_clips = Vec::with_capacity(points.len());
            for batch in points.chunks(parallel) {
                let mut running = Vec::with_capacity(batch.len());
                for point in batch {
                    running.push(cut_one(&context, point, &step));
                }
                for cut in futures_util::future::join_all(running).await {
                    cut_clips.push(cut?);
                }
                progress.within(75 + (cut_clips.len() * 20 / total) as i8).await;
            }
            Ok((cut_clips, video_thumb))
        })
        .await?;
    let metadata = VideoMetadata { thumbnail_url: Some(video_thumb), ..metadata };
    let mut segments = Vec::new();
    let mut results = Vec::new();
    let branded = cut_clips.iter().filter(|c| c.templated.is_some()).count() as i32;
    let template_uses: Vec<(i64, i32)> = match (&branding, branded) {
        (Some(b), n) if n > 0 => b.template_ids.iter().map(|id| (*id, n)).collect(),
        _ => Vec::new(),
    };
    for CutClip { point, segment_id, report, clip_key, clip_size, thumb_key, cues, templated } in
        cut_clips
    {
        let [srt_key, vtt_key] = shared::references::subtitle_keys(&clip_key);
        segments.push(segment_row(
            task,
            point,
            &segment_id,
            &report,
            &clip_key,
            clip_size,
            &thumb_key,
        ));
        results.push(result_row(
            task,
            "segment",
            json!({
                "segment_id": segment_id,
                "selling_point_type": point.kind.as_str(),
                "start_time": report.start,
                "end_time": report.end,
                "requested": { "start": point.start, "end": point.end },
                "confidence": point.confidence,
                "title": point.title,
                "cut_method": format!("{:?}", report.method),
                // Why a clip was fully re-encoded (null for smart cuts and copies).
                "cut_fallback_reason": report.fallback_reason,
                "frames": report.frames,
                "reencoded_frames": report.reencoded_frames,
                "thumbnail": thumb_key,
                "subtitles": { "srt": srt_key, "vtt": vtt_key, "cues": cues },
                "templated": templated.map(|(key, size)| json!({ "file_path": key, "file_size": size })),
            }),
            Some(clip_key),
            Some(clip_size as i64),
        ));
    }
    lap("cut_and_store", &mut timings);

    results.push(result_row(
        task,
        "transcript",
        json!({
            "language": transcript.language,
            "audio_seconds": audio_seconds,
            // How much of the audio whisper heard (the rest was quiet).
            "speech_seconds": speech_seconds,
            "segments": transcript.segments.iter().map(|s| json!({
                "start": s.start, "end": s.end, "text": detect::to_simplified(&s.text),
            })).collect::<Vec<_>>(),
            // Word timings (what subtitles and captions are timed from).
            "words": words.iter().filter(|w| w.is_word).map(|w| json!({
                "text": w.text.trim(), "start": w.start, "end": w.end,
            })).collect::<Vec<_>>(),
        }),
        None,
        None,
    ));
    results.push(result_row(
        task,
        "analysis",
        json!({
            "sentences": detection.sentences,
            "selling_points": detection.selling_points,
            "timings_seconds": timings,
        }),
        None,
        None,
    ));
    progress.step("saving results", 97).await;
    Ok(Completion {
        results,
        segments,
        video: Some((task.video_id, metadata)),
        quota_user: Some(task.user_id),
        template_uses,
        download: None,
    })
}

fn result_row(
    task: &ClaimedTask,
    kind: &str,
    data: serde_json::Value,
    file_path: Option<String>,
    file_size: Option<i64>,
) -> NewResult {
    NewResult {
        task_id: task.id,
        user_id: task.user_id,
        video_id: task.video_id,
        result_type: kind.to_string(),
        result_data: Some(data),
        file_path,
        file_size,
        metadata: None,
    }
}
