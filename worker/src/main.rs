//! `worker`: takes tasks from the Redis queues by priority and runs them
//! under a lease, committing each outcome exactly once.
//!
//! Map of this crate:
//! - `fetch`: the apalis backend (Redis pop + database claim);
//! - `held`, `heartbeat`, `cancel`: the leases this process holds, kept alive
//!   once a second, and the flag that stops a task whose lease is gone;
//! - `jobs`: what each `task_type` does, returning an outcome;
//! - `finisher`: group commit of outcomes under the lease;
//! - this file: flags, wiring, and the shutdown sequence.

use apalis::prelude::*;
use clap::{CommandFactory, FromArgMatches, Parser};
use shared::config::{load_dotenv, QueueSettings, Resolver, Settings, Source};
use shared::shutdown::Shutdown;
use shared::system_configs::{self, defaults};
use shared::tasks::{ClaimedTask, Outcome};
use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;
use worker::fetch::{self, FetchState};
use worker::finisher::Finisher;
use worker::held::HeldTasks;
use worker::{heartbeat, jobs};

#[derive(Parser, Debug)]
#[command(name = "worker", version, about = "Run video-clipping tasks from the queue")]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(flatten)]
    queue: QueueSettings,
    /// Tasks run at once by this process
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,
    /// On SIGTERM, how long running tasks may take to finish before they
    /// are handed back to the queue (seconds)
    #[arg(long, env = "WORKER_GRACE_SECONDS", default_value_t = 20)]
    grace_seconds: u64,
    /// First retry's backoff (milliseconds); doubles each retry, with jitter
    #[arg(long, env = "RETRY_BASE_MS", default_value_t = defaults::RETRY_BASE_MS)]
    retry_base_ms: u64,
    /// whisper threads per transcription (default: all cores). Several
    /// workers on one machine should share the cores: threads x workers <= cores
    #[arg(long, env = "WHISPER_THREADS")]
    whisper_threads: Option<usize>,
    /// Every step of a video task (fetch, probe, audio, transcribe, cut)
    /// may take this many seconds plus `--step-timeout-factor` seconds per
    /// second of video; past it the step is killed and the attempt retried
    #[arg(long, env = "STEP_TIMEOUT_BASE_SECONDS", default_value_t = defaults::STEP_TIMEOUT_BASE_SECONDS, value_parser = positive_seconds)]
    step_timeout_base_seconds: f64,
    /// Seconds a step may take per second of video, on top of the base
    #[arg(long, env = "STEP_TIMEOUT_FACTOR", default_value_t = defaults::STEP_TIMEOUT_FACTOR, value_parser = non_negative)]
    step_timeout_factor: f64,
    /// Exit 0 once no task is pending, queued or running
    #[arg(long)]
    exit_when_idle: bool,
}

/// A number of seconds above zero (and at most a week).
fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 604_800.0 => Ok(v),
        _ => Err(format!("{text:?} is not a number of seconds between 0 and 604800")),
    }
}

/// A finite number of at least zero (and at most 1000).
fn non_negative(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.0..=1000.0).contains(&v) => Ok(v),
        _ => Err(format!("{text:?} is not a number between 0 and 1000")),
    }
}

fn main() -> ExitCode {
    load_dotenv();
    // The matches say which settings a flag or variable gave (those win
    // over system_configs).
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    shared::logging::init(cli.settings.log_format, "info");
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(run(cli, &matches)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = shared::exit_code(&err);
            tracing::error!("worker stopped: {}", shared::one_line(&err));
            ExitCode::from(code)
        }
    }
}

/// A name unique to this process: host, pid and a random suffix.
fn worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{host}:{}:{:04x}", std::process::id(), nanos & 0xffff)
}

/// Where the worker looks for a model when `WHISPER_MODEL` is not set.
const DEFAULT_MODEL: &str = ".cache/models/ggml-base.bin";

/// Loads the whisper model once for the whole process. A model named by
/// `WHISPER_MODEL` must load (else exit 2); without it the default path is
/// tried, and a worker with no model still runs every other task type.
fn load_transcriber(
    configured: Option<&str>,
    threads: Option<usize>,
) -> anyhow::Result<Option<Arc<worker::pipeline::transcribe::Transcriber>>> {
    use worker::pipeline::transcribe::Transcriber;
    let path = match configured {
        Some(path) => std::path::PathBuf::from(path),
        None if std::path::Path::new(DEFAULT_MODEL).is_file() => {
            std::path::PathBuf::from(DEFAULT_MODEL)
        }
        None => {
            tracing::warn!("no whisper model (WHISPER_MODEL unset, {DEFAULT_MODEL} absent): video_clip tasks this worker takes fail (retryable) until it has one");
            return Ok(None);
        }
    };
    let started = std::time::Instant::now();
    let transcriber =
        Transcriber::load(&path, threads).map_err(|e| shared::BadInput::new(format!("{e:#}")))?;
    tracing::info!(model = %path.display(), seconds = started.elapsed().as_secs_f64(), "whisper model loaded");
    Ok(Some(Arc::new(transcriber)))
}

/// How this worker makes download links (`DOWNLOAD_SIGNING_KEY`,
/// `PUBLIC_BASE_URL`), logged without the key. A worker without a key
/// still runs: its `download_package` tasks on `file://` storage fail
/// (retryable) until it has one.
fn download_links() -> anyhow::Result<shared::downloads::sign::LinkSettings> {
    let links = shared::downloads::sign::LinkSettings::from_env()?;
    tracing::info!(settings = %links.describe(), "download links");
    Ok(links)
}

/// What every task run can reach.
struct WorkerState {
    held: Arc<HeldTasks>,
    finisher: Finisher,
    services: jobs::Services,
}

/// apalis handler: run the task, commit its outcome, forget its lease.
async fn handle(task: ClaimedTask, state: Data<Arc<WorkerState>>) -> Result<(), Infallible> {
    let Some(held) = state.held.get(&task.task_id) else {
        return Ok(());
    };
    // Everything the run logs carries the task's id, type and attempt.
    let span = tracing::info_span!("task", task_id = %task.task_id, task_type = %task.task_type, attempt = task.attempts);
    run_and_finish(task, held, &state).instrument(span).await;
    Ok(())
}

/// Runs a held task, commits its outcome, discards an attempt that did not
/// complete, and forgets the lease.
async fn run_and_finish(task: ClaimedTask, held: worker::held::Held, state: &WorkerState) {
    let started = std::time::Instant::now();
    let outcome = jobs::run(&task, &held.cancel, &state.services).await;
    metrics::histogram!("videoclip_task_seconds", "task_type" => task.task_type.clone())
        .record(started.elapsed().as_secs_f64());
    if let Outcome::Failed { reason, retryable } = &outcome {
        tracing::warn!(task_id = %task.task_id, retryable, "task failed: {reason}");
    }
    held.mark_finishing();
    match state.finisher.finish(&task.task_id, held.lease.clone(), outcome).await {
        Ok(finished) => {
            tracing::debug!(task_id = %task.task_id, ?finished, "task finished");
            let outcome = match finished {
                shared::tasks::Finished::Committed(status) => status.name(),
                shared::tasks::Finished::Requeued => "requeued",
                shared::tasks::Finished::LeaseLost => "lease_lost",
            };
            metrics::counter!("videoclip_tasks_finished_total", "task_type" => task.task_type.clone(), "outcome" => outcome).increment(1);
            if finished != shared::tasks::Finished::Committed(shared::models::TaskStatus::Completed)
            {
                jobs::discard_attempt(&task, &state.services).await;
            }
        }
        Err(e) => {
            tracing::error!(task_id = %task.task_id, "outcome not committed: {e}");
            jobs::discard_attempt(&task, &state.services).await;
        }
    }
    state.held.remove_claim(&task.task_id, &held.lease);
}

/// apalis acknowledgement: a run that panicked (caught by `catch_panic`)
/// never reached the finisher; fail it as transient so it is retried.
#[derive(Clone)]
struct PanicAck {
    state: Arc<WorkerState>,
}

impl Acknowledge<()> for PanicAck {
    type Error = Infallible;
    type Future = std::future::Ready<Result<(), Infallible>>;

    fn ack(&mut self, result: &Result<(), BoxDynError>, ctx: &ExecutionContext) -> Self::Future {
        if let (Err(error), Some(id)) = (result, ctx.task_id()) {
            let task_id = id.to_string();
            if let Some(held) = self.state.held.remove(&task_id) {
                let finisher = self.state.finisher.clone();
                let reason = format!("worker panicked: {error}");
                tracing::error!(%task_id, "{reason}");
                tokio::spawn(async move {
                    let _ = finisher
                        .finish(&task_id, held.lease, Outcome::Failed { reason, retryable: true })
                        .await;
                });
            }
        }
        std::future::ready(Ok(()))
    }
}

/// Applies `system_configs` under the flags and environment (see
/// `shared::config::Resolver`) and returns the detector's system defaults.
fn resolve_settings(
    cli: &mut Cli,
    resolver: &mut Resolver<'_>,
) -> shared::detection::DetectionConfig {
    resolver.resolve(system_configs::LEASE_SECONDS, &mut cli.queue.lease_seconds);
    resolver.resolve(system_configs::RETRY_BASE_MS, &mut cli.retry_base_ms);
    resolver.resolve(system_configs::STEP_TIMEOUT_BASE_SECONDS, &mut cli.step_timeout_base_seconds);
    resolver.resolve(system_configs::STEP_TIMEOUT_FACTOR, &mut cli.step_timeout_factor);
    match system_configs::detection_defaults(resolver.stored()) {
        Ok(detection) => {
            for (key, value) in [
                (system_configs::MIN_CLIP_SECONDS, detection.min_clip_seconds),
                (system_configs::MAX_CLIP_SECONDS, detection.max_clip_seconds),
            ] {
                let source = if resolver.stored().contains_key(key) {
                    Source::SystemConfigs
                } else {
                    Source::Default
                };
                resolver.note(key, value.to_string(), source);
            }
            detection
        }
        Err(reason) => {
            tracing::warn!("system_configs clip limits ignored, using the defaults: {reason}");
            let builtin = shared::detection::DetectionConfig::builtin().clone();
            resolver.note(
                system_configs::MIN_CLIP_SECONDS,
                builtin.min_clip_seconds.to_string(),
                Source::Default,
            );
            resolver.note(
                system_configs::MAX_CLIP_SECONDS,
                builtin.max_clip_seconds.to_string(),
                Source::Default,
            );
            builtin
        }
    }
}

async fn run(mut cli: Cli, matches: &clap::ArgMatches) -> anyhow::Result<()> {
    let id = worker_id();
    tracing::info!(worker = %id, concurrency = cli.concurrency, settings = %cli.settings.describe(), "worker starting");
    shared::metrics::serve(cli.settings.metrics_addr.as_deref()).await?;
    let concurrency = cli.concurrency as usize;
    let pool = shared::db::connect(
        cli.settings.require_database_url()?,
        (concurrency as u32 / 8).clamp(4, 32),
    )
    .await?;
    let mut resolver = Resolver::load(matches, &pool).await;
    let detection = Arc::new(resolve_settings(&mut cli, &mut resolver));
    tracing::info!(settings = %resolver.describe(), "tunable settings and where each came from");
    let queue = shared::queue::Queue::connect(&cli.settings.redis_url).await?;
    let popper = shared::queue::Popper::connect(&cli.settings.redis_url).await?;
    let lease_millis = u64::from(cli.queue.lease_seconds) * 1000;
    let (shutdown, trigger) = Shutdown::on_signals();

    let held = Arc::new(HeldTasks::default());
    let finisher = Finisher::start(pool.clone(), queue.clone(), cli.retry_base_ms);
    let heartbeat = tokio::spawn(heartbeat::run(
        pool.clone(),
        queue.clone(),
        held.clone(),
        id.clone(),
        lease_millis,
        shutdown.clone(),
    ));
    let fetch_state = Arc::new(FetchState::new(
        pool.clone(),
        queue.clone(),
        popper,
        held.clone(),
        id.clone(),
        lease_millis,
        concurrency,
        cli.exit_when_idle,
    ));
    let services = jobs::Services {
        pool: pool.clone(),
        queue: queue.clone(),
        storage: shared::storage::Storage::from_url(&cli.settings.storage_url)?,
        transcriber: load_transcriber(cli.settings.whisper_model.as_deref(), cli.whisper_threads)?,
        step_limits: worker::deadline::StepLimits {
            base: Duration::from_secs_f64(cli.step_timeout_base_seconds),
            factor: cli.step_timeout_factor,
        },
        links: download_links()?,
        cache: shared::cache::Cache::new(&queue),
        detection,
    };
    let state = Arc::new(WorkerState { held: held.clone(), finisher: finisher.clone(), services });

    // Stop on a signal, or when idle with --exit-when-idle.
    let stop = {
        let mut shutdown = shutdown.clone();
        let fetch_state = fetch_state.clone();
        let trigger = trigger.clone();
        async move {
            tokio::select! {
                _ = fetch_state.idle.cancelled() => {
                    tracing::info!("no task pending, queued or running: exiting");
                    trigger.trigger();
                }
                _ = shutdown.wait() => {}
            }
            fetch_state.stopping.cancel();
            Ok(())
        }
    };

    let worker_state = state.clone();
    let backend_state = fetch_state.clone();
    let name = id.clone();
    Monitor::new()
        .register(move |_restarts| {
            WorkerBuilder::new(name.as_str())
                .backend(fetch::backend(backend_state.clone()))
                .concurrency(concurrency)
                .ack_with(PanicAck { state: worker_state.clone() })
                .catch_panic()
                .data(worker_state.clone())
                .parallelize(tokio::spawn)
                .build(handle)
        })
        .shutdown_timeout(Duration::from_secs(cli.grace_seconds))
        .run_with_signal(stop)
        .await?;

    // Whatever is still held was claimed but not finished in the grace
    // period: hand it back so another worker takes it at once.
    let leftovers = held.drain();
    if !leftovers.is_empty() {
        tracing::warn!(tasks = leftovers.len(), "handing back unfinished tasks");
        for (task_id, entry) in leftovers {
            // Hand back first, then stop the run: its own outcome then finds
            // the lease gone and is refused.
            if let Err(e) = finisher.finish(&task_id, entry.lease, Outcome::HandedBack).await {
                tracing::error!(%task_id, "hand-back failed (the lease will expire instead): {e}");
            }
            entry.cancel.cancel();
        }
    }
    trigger.trigger();
    let _ = heartbeat.await;
    tracing::info!("worker stopped");
    Ok(())
}
