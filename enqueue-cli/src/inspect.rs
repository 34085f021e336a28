//! Commands that look at and steer existing tasks: `status`, `queues`,
//! `cancel`, `retry`, and the `--wait` loop.

use crate::Output;
use clap::Args;
use serde_json::json;
use shared::config::Settings;
use shared::db::Pool;
use shared::models::{TaskStatus, TaskSummary};
use shared::queue::{CachedStatus, Queue, HIGH_PRIORITY_QUEUE, VIDEO_PROCESSING_QUEUE};
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

/// A task as JSON: every summary field plus the status name.
fn summary_json(task: &TaskSummary) -> serde_json::Value {
    let mut value = serde_json::to_value(task).unwrap_or_default();
    let status = TaskStatus::from_code(task.status).map(|s| s.name()).unwrap_or("unknown");
    value["status"] = json!(status);
    value
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
        let mut value = summary_json(task);
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
    let queue = Queue::connect(&settings.redis_url).await?;
    let (high, normal, epoch) = queue.lengths_and_epoch().await?;
    let workers = queue.live_workers().await?;
    let mut conn = shared::db::conn(&pool).await?;
    let counts = shared::tasks::count_by_status(&mut conn).await?;
    let running = shared::tasks::running_by_worker(&mut conn).await?;
    let oldest_wait = shared::tasks::oldest_wait_seconds(&mut conn).await?;
    let mut by_status = serde_json::Map::new();
    for status in TaskStatus::ALL {
        let n =
            counts.iter().find(|(code, _)| *code == status.code()).map(|(_, n)| *n).unwrap_or(0);
        by_status.insert(status.name().to_string(), json!(n));
    }
    let value = json!({
        "queues": { HIGH_PRIORITY_QUEUE: high, VIDEO_PROCESSING_QUEUE: normal },
        "redis_holds_queues": epoch,
        "tasks": by_status,
        "oldest_wait_seconds": oldest_wait,
        "workers_alive": workers,
        "running_per_worker": running.iter().map(|(w, n)| (w.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
    });
    out.emit(&value, || {
        let mut table = comfy_table::Table::new();
        table.add_row([HIGH_PRIORITY_QUEUE.to_string(), high.to_string()]);
        table.add_row([VIDEO_PROCESSING_QUEUE.to_string(), normal.to_string()]);
        for (name, n) in &by_status {
            table.add_row([format!("tasks {name}"), n.to_string()]);
        }
        let wait = oldest_wait.map(|s| format!("{s}s")).unwrap_or_else(|| "-".into());
        table.add_row(["oldest waiting task".to_string(), wait]);
        table.add_row(["workers alive".to_string(), workers.len().to_string()]);
        for worker in &workers {
            let n = running.iter().find(|(w, _)| w == worker).map(|(_, n)| *n).unwrap_or(0);
            table.add_row([format!("  {worker}"), format!("{n} running")]);
        }
        for (worker, n) in running.iter().filter(|(w, _)| !workers.contains(w)) {
            table.add_row([
                format!("  {worker}"),
                format!("{n} running (no heartbeat: leases will expire)"),
            ]);
        }
        crate::table::render(table, &[])
    });
    Ok(ExitCode::SUCCESS)
}

/// Writes the new state of changed tasks to the status cache (best effort).
async fn refresh_cache(settings: &Settings, tasks: &[TaskSummary], videos: &[i64]) {
    if let Ok(queue) = Queue::connect(&settings.redis_url).await {
        if let Err(e) = shared::cache::Cache::new(&queue).invalidate_videos(videos).await {
            tracing::warn!("video:meta not invalidated: {}", shared::one_line(&e));
        }
        let statuses: Vec<(String, CachedStatus)> = tasks
            .iter()
            .filter_map(|t| {
                let status = TaskStatus::from_code(t.status).ok()?;
                Some((
                    t.task_id.clone(),
                    CachedStatus::now(status, t.progress, t.current_step.as_deref()),
                ))
            })
            .collect();
        if let Err(e) = queue.set_statuses(&statuses).await {
            tracing::warn!("task:status not updated: {}", shared::one_line(&e));
        }
    }
}

/// A change `cancel` or `retry` makes to the tasks named.
#[derive(Clone, Copy)]
enum Change {
    Cancel,
    Retry { force: bool },
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
/// change, refreshes the status cache and prints each task's new status.
async fn change(
    settings: &Settings,
    out: &Output,
    args: TaskIds,
    change: Change,
) -> anyhow::Result<ExitCode> {
    let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
    load(&pool, &args.task_ids).await?;
    let mut conn = shared::db::conn(&pool).await?;
    let changed = match change {
        Change::Cancel => shared::tasks::cancel_tasks(&mut conn, &args.task_ids).await?,
        Change::Retry { force } => {
            shared::tasks::retry_tasks(&mut conn, &args.task_ids, force).await?
        }
    };
    // A cancel may have moved the tasks' videos back to uploaded.
    let videos = match change {
        Change::Cancel if changed > 0 => {
            shared::tasks::video_ids_of(&mut conn, &args.task_ids).await?
        }
        _ => Vec::new(),
    };
    drop(conn);
    let tasks = load(&pool, &args.task_ids).await?;
    refresh_cache(settings, &tasks, &videos).await;
    for task in &tasks {
        let value = summary_json(task);
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
    let rows =
        shared::tasks::find_segments(&mut shared::db::conn(&pool).await?, &args.task_id).await?;
    let number = |d: &bigdecimal::BigDecimal| d.to_string().parse::<f64>().unwrap_or(0.0);
    let mut table = crate::table::with_header(&["TYPE", "START", "END", "CONF", "TITLE", "CLIP"]);
    for row in &rows {
        let value = json!({
            "segment_id": row.segment_id,
            "selling_point_type": row.selling_point_type,
            "start_time": number(&row.start_time),
            "end_time": number(&row.end_time),
            "confidence": row.confidence.as_ref().map(number),
            "title": row.title,
            "description": row.description,
            "file_path": row.file_path,
            "file_size": row.file_size,
            "thumbnail_url": row.thumbnail_url,
        });
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
