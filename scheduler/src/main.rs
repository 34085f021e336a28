//! `scheduler`: moves due pending tasks from the database into the Redis
//! queues, by priority then age.
//!
//! Any number may run at once: each tick's work is a set of transactions
//! using `FOR UPDATE SKIP LOCKED` or idempotent UPDATEs, so two schedulers
//! never push the same row in the same tick, and a duplicate push (which
//! can happen across ticks after a crash) is dropped by the workers' claim.

mod expire;
mod fill;
mod gauges;
mod tick;

use clap::{CommandFactory, FromArgMatches, Parser};
use shared::config::{load_dotenv, QueueSettings, Resolver, Settings};
use shared::shutdown::Shutdown;
use shared::system_configs;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "scheduler", version, about = "Queue due tasks into Redis by priority")]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(flatten)]
    queue: QueueSettings,
    /// Pause between ticks when there was nothing to do (milliseconds)
    #[arg(long, env = "SCHEDULER_TICK_MS", default_value_t = 100)]
    tick_ms: u64,
    /// Fewest task ids to keep waiting in Redis (more when workers consume faster)
    #[arg(long, env = "SCHEDULER_MIN_QUEUED", default_value_t = 2000)]
    min_queued: u64,
    /// Every this many seconds, expire download packages past their
    /// expires_at (status 2, package deleted); 0 turns the sweeper off
    #[arg(long, env = "DOWNLOAD_SWEEP_SECONDS", default_value_t = 60)]
    download_sweep_seconds: u64,
    /// Exit 0 once no task is pending, queued or running
    #[arg(long)]
    exit_when_idle: bool,
}

fn main() -> ExitCode {
    load_dotenv();
    // The matches say which settings a flag or variable gave (those win
    // over system_configs).
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    shared::logging::init(cli.settings.log_format, "info");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli, &matches)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = shared::exit_code(&err);
            tracing::error!("scheduler stopped: {}", shared::one_line(&err));
            ExitCode::from(code)
        }
    }
}

async fn run(mut cli: Cli, matches: &clap::ArgMatches) -> anyhow::Result<()> {
    tracing::info!(settings = %cli.settings.describe(), "scheduler starting");
    shared::metrics::serve(cli.settings.metrics_addr.as_deref()).await?;
    let pool = shared::db::connect(cli.settings.require_database_url()?, 4).await?;
    // Flags and variables win over system_configs, which win over defaults.
    let mut resolver = Resolver::load(matches, &pool).await;
    resolver
        .resolve(system_configs::HIGH_PRIORITY_THRESHOLD, &mut cli.queue.high_priority_threshold);
    resolver.resolve(system_configs::MAX_WAIT_SECONDS, &mut cli.queue.max_wait_seconds);
    tracing::info!(settings = %resolver.describe(), "tunable settings and where each came from");
    let queue = shared::queue::Queue::connect(&cli.settings.redis_url).await?;
    let (shutdown, _trigger) = Shutdown::on_signals();
    if cli.download_sweep_seconds > 0 {
        let storage = shared::storage::Storage::from_url(&cli.settings.storage_url)?;
        tokio::spawn(expire::run(
            pool.clone(),
            storage,
            Duration::from_secs(cli.download_sweep_seconds),
            shutdown.clone(),
        ));
    }
    let options = tick::Options {
        high_priority_threshold: cli.queue.high_priority_threshold,
        max_wait_seconds: cli.queue.max_wait_seconds,
        min_queued: cli.min_queued,
        tick: Duration::from_millis(cli.tick_ms),
        exit_when_idle: cli.exit_when_idle,
    };
    let reads = cli.settings.read_pool(pool.clone(), 1)?;
    let new_tasks = shared::queue::NewTaskSignal::connect(&cli.settings.redis_url).await?;
    tick::run(pool, reads, queue, new_tasks, options, shutdown).await
}
