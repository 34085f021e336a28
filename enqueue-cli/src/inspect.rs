//! Commands that look at and steer existing tasks: `status`, `queues`,
//! `cancel`, `retry`, and the `--wait` loop.

use crate::Output;
use clap::Args;
use serde_json::json;
use shared::config::Settings;
use shared::control::Change;
use shared::db::Pool;
use shared::models::{TaskStatus, TaskSummary};
use shared::queue::{Queue, HIGH_PRIORITY_QUEUE, VIDEO_PROCESSING_QUEUE};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Public task ids (processing_tasks.task_id)
    #[arg(required = true)]
    pub task_ids: Vec<String>,
    /// Also show every status change: time, worker, reason
    #[arg(long)]
    pub history: bool,
}

#[derive(Args, Debug)]
pub struct SegmentsArgs {
    /// Public task id (processing_tasks.task_id)
    pub task_id: String,
}

#[derive(Args, Debug)]
pub struct TaskIds {
    /// Public task ids (processing_tasks.task_id)
    #[arg(required = true)]
    pub task_ids: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RetryArgs {
    /// Public task ids (processing_tasks.task_id)
    #[arg(required_unless_present = "all_failed")]
    pub task_ids: Vec<String>,
    /// Retry every failed task (with --since: that ended since then)
    #[arg(long, conflicts_with = "task_ids")]
    pub all_failed: bool,
    /// With --all-failed: only tasks that failed at or after this time
    /// (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, UTC)
    #[arg(long, requires = "all_failed")]
    pub since: Option<String>,
    /// Retry even past the users' monthly_videos quotas (operators)
    #[arg(long)]
    pub force: bool,
}

/// Reads the tasks, refusing unknown ids as bad input (nothing is changed).
async fn load(pool: &Pool, task_ids: &[String]) -> anyhow::Result<Vec<TaskSummary>> {
    let mut conn = shared::db::conn(pool).await?;
    let found = shared::tasks::find_summaries(&mut conn, task_ids).await?;
    if let Some(missing) = task_ids.iter().find(|id| !found.iter().any(|t| &t.task_id == *id)) {
        return Err(shared::BadInput::new(format!("no task with id {missing:?}")).into());
    }
    // In the order asked for.
    let mut ordered = Vec::with_capacity(task_ids.len());
    for id in task_ids {
        if let Some(task) = found.iter().find(|t| &t.task_id == id) {
            ordered.push(task.clone());
        }
    }
    Ok(ordered)
}

/// `enqueue status`.
pub async fn status(
    settings: &Settings,
    out: &Output,
    args: StatusArgs,
) -> anyhow::Result<ExitCode> {
    let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
    let tasks = load(&pool, &args.task_ids).await?;
    let mut table =
        crate::table::with_header(&["TASK", "TYPE", "STATUS", "PCT", "STEP", "RETRIES", "ERROR"]);
    let mut changes = crate::table::with_header(&[
        "TASK",
        "CHANGED (UTC)",
        "FROM",
        "TO",
        "ATTEMPT",
        "WORKER",
        "REASON",
    ]);
    for task in &tasks {
        let mut value = task.to_json();
        let history = if args.history {
            shared::history::task_history(&mut shared::db::conn(&pool).await?, &task.task_id)
                .await?
        } else {
            Vec::new()
        };
        if args.history {
            value["history"] = serde_json::to_value(&history)?;
        }
        if out.json {
            println!("{value}");
            continue;
        }
        let name = |code: Option<i8>| {
            code.and_then(|c| TaskStatus::from_code(c).ok()).map(|s| s.name()).unwrap_or("-")
        };
        table.add_row([
            task.task_id.clone(),
            task.task_type.clone(),
            value["status"].as_str().unwrap_or("?").to_string(),
            format!("{}%", task.progress),
            task.current_step.clone().unwrap_or_else(|| "-".into()),
            format!("{}/{}", task.retry_count, task.max_retries),
            task.error_message.clone().unwrap_or_default(),
        ]);
        for change in &history {
            changes.add_row([
                task.task_id.clone(),
                change.changed_at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                name(change.from_status).to_string(),
                name(Some(change.to_status)).to_string(),
                change.attempt.to_string(),
                change.worker.clone().unwrap_or_else(|| "-".into()),
                change.reason.clone().unwrap_or_default(),
            ]);
        }
    }
    if !out.json {
        println!("{}", crate::table::render(table, &[3, 5]));
        if args.history {
            println!("\n{}", crate::table::render(changes, &[4]));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `enqueue queues`: list depths from Redis and task counts from the database.
pub async fn queues(settings: &Settings, out: &Output) -> anyhow::Result<ExitCode> {
    let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
    let reads = settings.read_pool(pool, 1)?;
    let queue = Queue::connect(&settings.redis_url).await?;
    let fleet = shared::overview::FleetOverview::read(&reads, &queue).await?;
    out.emit(&fleet.to_json(), || {
        let mut table = comfy_table::Table::new();
        table.add_row([HIGH_PRIORITY_QUEUE.to_string(), fleet.high_priority.to_string()]);
        table.add_row([VIDEO_PROCESSING_QUEUE.to_string(), fleet.video_processing.to_string()]);
        for (status, n) in &fleet.tasks {
            table.add_row([format!("tasks {}", status.name()), n.to_string()]);
        }
        let wait = fleet.oldest_wait_seconds.map(|s| format!("{s}s")).unwrap_or_else(|| "-".into());
        table.add_row(["oldest waiting task".to_string(), wait]);
        let replica = match &fleet.replica {
            None => None,
            Some(Ok(lag)) if lag.running => {
                Some(lag.seconds.map(|s| format!("{s}s")).unwrap_or_else(|| "-".into()))
            }
            Some(Ok(_)) => Some("replication stopped".to_string()),
            Some(Err(reason)) => Some(format!("unreachable: {reason}")),
        };
        if let Some(replica) = replica {
            table.add_row(["replica lag".to_string(), replica]);
        }
        table.add_row(["workers alive".to_string(), fleet.workers_alive.len().to_string()]);
        for worker in &fleet.workers_alive {
            table.add_row([format!("  {worker}"), format!("{} running", fleet.running_on(worker))]);
        }
        for (worker, n) in
            fleet.running_per_worker.iter().filter(|(w, _)| !fleet.workers_alive.contains(w))
        {
            table.add_row([
                format!("  {worker}"),
                format!("{n} running (no heartbeat: leases will expire)"),
            ]);
        }
        crate::table::render(table, &[])
    });
    Ok(ExitCode::SUCCESS)
}

/// `enqueue cancel`.
pub async fn cancel(settings: &Settings, out: &Output, args: TaskIds) -> anyhow::Result<ExitCode> {
    change(settings, out, args, Change::Cancel).await
}

/// `enqueue retry`: the tasks named, or every failed task (`--all-failed`,
/// optionally `--since`), up to 100,000 at a time.
pub async fn retry(settings: &Settings, out: &Output, args: RetryArgs) -> anyhow::Result<ExitCode> {
    let task_ids = if args.all_failed {
        let since = match &args.since {
            None => chrono::DateTime::UNIX_EPOCH.naive_utc(),
            Some(text) => parse_time(text)?,
        };
        let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
        let ids = shared::tasks::failed_since(&mut shared::db::conn(&pool).await?, since, 100_000)
            .await?;
        if ids.is_empty() {
            out.emit(&json!({ "retried": 0 }), || "no failed task to retry".to_string());
            return Ok(ExitCode::SUCCESS);
        }
        ids
    } else {
        args.task_ids
    };
    change(settings, out, TaskIds { task_ids }, Change::Retry { force: args.force }).await
}

/// Parses `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS` (UTC), else bad input.
fn parse_time(text: &str) -> anyhow::Result<chrono::NaiveDateTime> {
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S") {
        return Ok(t);
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default());
    }
    Err(shared::BadInput::new(format!("--since {text:?} is not YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS"))
        .into())
}

/// Checks every id exists (else bad input, nothing changed), applies the
/// change ([`shared::control::apply`]: rows, then caches) and prints each
/// task's new status, in the order named.
async fn change(
    settings: &Settings,
    out: &Output,
    args: TaskIds,
    change: Change,
) -> anyhow::Result<ExitCode> {
    let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
    load(&pool, &args.task_ids).await?;
    let queue = Queue::connect(&settings.redis_url).await.ok();
    let (changed, _) =
        shared::control::apply(&pool, queue.as_ref(), &args.task_ids, change).await?;
    let tasks = load(&pool, &args.task_ids).await?;
    for task in &tasks {
        let value = task.to_json();
        out.emit(&value, || {
            format!("{} {}", task.task_id, value["status"].as_str().unwrap_or("?"))
        });
    }
    tracing::info!(changed, "done");
    Ok(ExitCode::SUCCESS)
}

/// Follows the tasks until all are final with the `watch` display (bars on
/// a terminal, JSON lines on stdout with `--json`, else text lines on
/// stderr). Exit 0 only if every task completed.
pub async fn wait_for(pool: &Pool, out: &Output, task_ids: &[String]) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;
    // The Redis URL from the same flags, environment and .env as this command.
    let redis_url =
        <crate::Cli as clap::Parser>::try_parse().ok().map(|cli| cli.settings.redis_url);
    let mode = if out.json {
        crate::watch::Mode::Json
    } else if std::io::stderr().is_terminal() {
        crate::watch::Mode::Bars
    } else {
        crate::watch::Mode::Text
    };
    crate::watch::follow(pool, redis_url.as_deref(), task_ids, mode, Duration::from_millis(250))
        .await
}

/// `enqueue segments`: the task's clips in time order.
pub async fn segments(
    settings: &Settings,
    out: &Output,
    args: SegmentsArgs,
) -> anyhow::Result<ExitCode> {
    let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
    load(&pool, std::slice::from_ref(&args.task_id)).await?;
    let reads = settings.read_pool(pool, 1)?;
    let rows = shared::tasks::find_segments(&mut reads.reader().await?, &args.task_id).await?;
    let number = |d: &bigdecimal::BigDecimal| d.to_string().parse::<f64>().unwrap_or(0.0);
    let mut table = crate::table::with_header(&["TYPE", "START", "END", "CONF", "TITLE", "CLIP"]);
    for row in &rows {
        let value = row.to_json();
        if out.json {
            println!("{value}");
            continue;
        }
        table.add_row([
            row.selling_point_type.clone(),
            format!("{:.3}", number(&row.start_time)),
            format!("{:.3}", number(&row.end_time)),
            format!("{:.2}", row.confidence.as_ref().map(number).unwrap_or(0.0)),
            row.title.clone().unwrap_or_default(),
            row.file_path.clone().unwrap_or_default(),
        ]);
    }
    if !out.json {
        println!("{}", crate::table::render(table, &[1, 2, 3]));
    }
    Ok(ExitCode::SUCCESS)
}
