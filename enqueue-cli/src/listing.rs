//! `enqueue tasks`: list tasks for operators, filtered and paged.
//!
//! Paging is by cursor (`--after ID`, the `processing_tasks.id` that the
//! previous page reported as `next_cursor`), never by offset: every page
//! costs the same however deep, and tasks created while an operator pages
//! do not shift the pages already seen, so each task appears exactly once.

use crate::Output;
use chrono::NaiveDateTime;
use clap::Args;
use serde_json::json;
use shared::config::Settings;
use shared::models::TaskStatus;
use shared::tasks::{TaskFilter, BATCH_ROWS};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct TasksArgs {
    /// Only tasks with this status (repeat for several)
    #[arg(long, value_enum)]
    pub status: Vec<TaskStatus>,
    /// Only this user's tasks (a user name)
    #[arg(long)]
    pub user: Option<String>,
    /// Only tasks of this task_type (e.g. video_clip, noop)
    #[arg(long = "type", value_name = "TYPE")]
    pub task_type: Option<String>,
    /// Only tasks created at or after this time: YYYY-MM-DD (00:00 UTC) or RFC 3339
    #[arg(long, value_parser = crate::backfill::parse_time, value_name = "TIME")]
    pub since: Option<NaiveDateTime>,
    /// Tasks per page
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=BATCH_ROWS as i64))]
    pub limit: u32,
    /// Cursor: continue after this task (the next_cursor a previous page printed)
    #[arg(long, value_name = "ID", allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..))]
    pub after: Option<i64>,
    /// Oldest first (default: newest first)
    #[arg(long)]
    pub oldest_first: bool,
}

/// The name of a status code, or `unknown` for a code docs/CONTRACT.md does
/// not define (listed rather than refused: this command is for looking).
fn status_name(code: i8) -> &'static str {
    TaskStatus::from_code(code).map(|s| s.name()).unwrap_or("unknown")
}

/// At most `max` characters of `text`, with `…` when cut: keeps a table
/// row on one line.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max.saturating_sub(1)).collect::<String>())
    }
}

/// `enqueue tasks`: prints one page of matching tasks and the cursor of the
/// next page (`null`/absent when this was the last one).
pub async fn tasks(settings: &Settings, out: &Output, args: TasksArgs) -> anyhow::Result<ExitCode> {
    let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
    let user_id = match &args.user {
        Some(name) => {
            let mut conn = shared::db::conn(&pool).await?;
            Some(shared::users::require_user(&mut conn, name).await?.id)
        }
        None => None,
    };
    // A display read: the replica's, if one is configured.
    let reads = settings.read_pool(pool, 1)?;
    let mut conn = reads.reader().await?;
    let filter = TaskFilter {
        statuses: args.status.clone(),
        user_id,
        task_type: args.task_type.clone(),
        created_since: args.since,
        video_name: None,
    };
    let limit = args.limit as usize;
    // One row more than the page tells whether another page exists.
    let mut rows =
        shared::tasks::list_tasks(&mut conn, &filter, args.after, args.oldest_first, limit + 1)
            .await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more { rows.last().map(|(t, _)| t.id) } else { None };

    if out.json {
        for (task, username) in &rows {
            println!("{}", task.to_json(username));
        }
        println!("{}", json!({ "next_cursor": next_cursor }));
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = crate::table::with_header(&[
        "ID",
        "TASK",
        "USER",
        "TYPE",
        "STATUS",
        "PRI",
        "PCT",
        "CREATED (UTC)",
        "STEP / ERROR",
    ]);
    for (task, username) in &rows {
        let detail = match (&task.error_message, &task.current_step) {
            (Some(error), _) if task.status != TaskStatus::Completed.code() => error.as_str(),
            (_, Some(step)) => step.as_str(),
            _ => "",
        };
        table.add_row([
            task.id.to_string(),
            task.task_id.clone(),
            clip(username, 16),
            clip(&task.task_type, 10),
            status_name(task.status).to_string(),
            task.priority.to_string(),
            format!("{}%", task.progress),
            task.created_at.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default(),
            clip(detail, 80),
        ]);
    }
    println!("{}", crate::table::render(table, &[0, 5, 6]));
    match next_cursor {
        Some(id) => println!("more: add --after {id}"),
        None if rows.is_empty() => println!("no tasks"),
        None => {}
    }
    Ok(ExitCode::SUCCESS)
}
