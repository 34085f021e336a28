//! `enqueue`: how other systems, engineers and operators talk to the queue.
//!
//! Every command prints results on stdout (`--json` for scripts), logs on
//! stderr, and exits 0 when done, 1 on failure, 2 on bad usage or bad input
//! with a one-line reason. Bad input is detected before anything is
//! written, so a refused command leaves no rows behind.

mod admin;
mod audit;
mod backfill;
mod configs;
mod create;
mod downloads;
mod gc;
mod inspect;
mod listing;
mod table;
mod template;
mod token;
mod watch;

use clap::{Parser, Subcommand};
use shared::config::{load_dotenv, Settings};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "enqueue", version, about = "Enqueue video-clipping tasks and inspect the queue")]
struct Cli {
    #[command(flatten)]
    settings: Settings,

    /// Print results as JSON (one object per line where there are several)
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply pending database migrations (idempotent)
    Migrate,
    /// Manage users
    User {
        #[command(subcommand)]
        command: admin::UserCommand,
    },
    /// Templates clips are branded with: add, list, show, disable
    Template {
        #[command(subcommand)]
        command: template::TemplateCommand,
    },
    /// Users' API tokens (for the HTTP API): create (shown once), list, revoke
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Manage user quotas (monthly_videos)
    Quota {
        #[command(subcommand)]
        command: admin::QuotaCommand,
    },
    /// Register video files and create one video_clip task for each
    Video(create::VideoArgs),
    /// Create a task for a video already registered
    Task(create::TaskArgs),
    /// Create no-op tasks (same queue path as video tasks; for benchmarks and fault tests)
    Noop(create::NoopArgs),
    /// Create tasks for stored videos (filters, --dry-run, --rate, resumable with --after-id)
    Backfill(backfill::BackfillArgs),
    /// List tasks, filtered, newest first, paged by cursor (--after)
    Tasks(listing::TasksArgs),
    /// Show tasks' status, progress, step, retries, error and timings
    Status(inspect::StatusArgs),
    /// Show a task's clips: type, times, confidence, title, files
    Segments(inspect::SegmentsArgs),
    /// Show queue depths and task counts
    Queues,
    /// Cancel tasks: pending ones never run, running ones are stopped
    Cancel(inspect::TaskIds),
    /// Run failed or cancelled tasks again (or --all-failed [--since])
    Retry(inspect::RetryArgs),
    /// Follow tasks until they finish: progress bars, or JSON lines with --json; exit 0 only if all completed
    Watch(watch::WatchArgs),
    /// Delete stored objects no row refers to (--dry-run lists them; --older-than 1h keeps recent ones)
    Gc(gc::GcArgs),
    /// Package clips (segment ids, or --task) into a zip or tar with a manifest; prints its link once ready (--wait)
    Download(downloads::DownloadArgs),
    /// Copy a download package out by its link (signed link checked, expiry enforced) and count the download
    FetchDownload(downloads::FetchDownloadArgs),
    /// Users' settings (user_configs): selling_points, default_templates, language
    Config {
        #[command(subcommand)]
        command: configs::ConfigCommand,
    },
    /// Operator defaults (system_configs) the scheduler and worker read at start-up; flags and environment win
    SystemConfig {
        #[command(subcommand)]
        command: configs::SystemConfigCommand,
    },
    /// Show videos' metadata: filename, duration, size, thumbnail (through the video:meta cache)
    VideoInfo(configs::VideoInfoArgs),
}

fn main() -> ExitCode {
    load_dotenv();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = err.print();
                return ExitCode::from(
                    if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                        2
                    } else {
                        0
                    },
                );
            }
            // One line: clap's own first line, without the usage block.
            let text = err.render().to_string();
            let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid arguments");
            eprintln!("enqueue: {}", line.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    shared::logging::init(cli.settings.log_format, "warn");
    tracing::debug!(settings = %cli.settings.describe(), "starting");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let audit = audit::Audit::for_command(&cli.command, &cli.settings);
    let started = std::time::Instant::now();
    let result = runtime.block_on(run(cli));
    if let Some(audit) = audit {
        runtime.block_on(audit.record(&result, started.elapsed()));
    }
    match result {
        Ok(code) => code,
        Err(err) => {
            if let Some(reason) = shared::bad_input_reason(&err) {
                eprintln!("enqueue: {reason}");
                ExitCode::from(2)
            } else {
                eprintln!("enqueue: {}", shared::one_line(&err));
                ExitCode::from(1)
            }
        }
    }
}

/// Runs one command; `Ok` carries the exit code for commands whose outcome
/// is not simply success (e.g. `video --wait` when a task failed).
async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let out = Output { json: cli.json };
    match cli.command {
        Command::Migrate => admin::migrate(&cli.settings, &out).await,
        Command::User { command } => admin::user(&cli.settings, &out, command).await,
        Command::Quota { command } => admin::quota(&cli.settings, &out, command).await,
        Command::Template { command } => template::template(&cli.settings, &out, command).await,
        Command::Token { command } => token::token(&cli.settings, &out, command).await,
        Command::Video(args) => create::video(&cli.settings, &out, args).await,
        Command::Task(args) => create::task(&cli.settings, &out, args).await,
        Command::Noop(args) => create::noop(&cli.settings, &out, args).await,
        Command::Backfill(args) => backfill::backfill(&cli.settings, &out, args).await,
        Command::Tasks(args) => listing::tasks(&cli.settings, &out, args).await,
        Command::Status(args) => inspect::status(&cli.settings, &out, args).await,
        Command::Segments(args) => inspect::segments(&cli.settings, &out, args).await,
        Command::Queues => inspect::queues(&cli.settings, &out).await,
        Command::Cancel(args) => inspect::cancel(&cli.settings, &out, args).await,
        Command::Retry(args) => inspect::retry(&cli.settings, &out, args).await,
        Command::Watch(args) => watch::watch(&cli.settings, &out, args).await,
        Command::Gc(args) => gc::gc(&cli.settings, &out, args).await,
        Command::Download(args) => downloads::download(&cli.settings, &out, args).await,
        Command::FetchDownload(args) => downloads::fetch(&cli.settings, &out, args).await,
        Command::Config { command } => configs::config(&cli.settings, &out, command).await,
        Command::SystemConfig { command } => {
            configs::system_config(&cli.settings, &out, command).await
        }
        Command::VideoInfo(args) => configs::video_info(&cli.settings, &out, args).await,
    }
}

/// Where results go: plain text for people or JSON for scripts.
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints one JSON value on its own line (with `--json`), else `text`.
    pub fn emit(&self, value: &serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", text());
        }
    }
}
