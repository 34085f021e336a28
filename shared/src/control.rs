//! Operators' and API callers' changes to existing tasks, whole: the state
//! change in the database ([`crate::tasks::cancel_tasks`],
//! [`crate::tasks::retry_tasks`]) followed by the caches that describe the
//! changed rows (`task:status`, `video:meta`). `enqueue cancel|retry`, the
//! API and the dashboard all call these.

use crate::db::Pool;
use crate::models::{TaskStatus, TaskSummary};
use crate::queue::{CachedStatus, Queue};

/// What to do to the tasks named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// `pending | processing -> cancelled`.
    Cancel,
    /// `failed | cancelled -> pending`, with a fresh retry budget; `force`
    /// skips the owners' quota check.
    Retry { force: bool },
}

/// Applies `change` to the tasks among `task_ids` it applies to, refreshes
/// their cached status (best effort: `queue` may be `None` or unreachable)
/// and returns how many changed and every named task as it is now. Tasks in
/// another state are left as they are; ids that do not exist are absent
/// from the result (callers check existence first, with their own scope).
pub async fn apply(
    pool: &Pool,
    queue: Option<&Queue>,
    task_ids: &[String],
    change: Change,
) -> anyhow::Result<(usize, Vec<TaskSummary>)> {
    let mut conn = crate::db::conn(pool).await?;
    let changed = match change {
        Change::Cancel => crate::tasks::cancel_tasks(&mut conn, task_ids).await?,
        Change::Retry { force } => crate::tasks::retry_tasks(&mut conn, task_ids, force).await?,
    };
    // A cancel may have moved the tasks' videos back to uploaded.
    let videos = match change {
        Change::Cancel if changed > 0 => crate::tasks::video_ids_of(&mut conn, task_ids).await?,
        _ => Vec::new(),
    };
    let tasks = crate::tasks::find_summaries(&mut conn, task_ids).await?;
    drop(conn);
    if let Some(queue) = queue {
        refresh_cache(queue, &tasks, &videos).await;
    }
    Ok((changed, tasks))
}

/// Writes the new state of changed tasks to `task:status` and drops the
/// changed videos' `video:meta` (best effort: a warning on failure).
async fn refresh_cache(queue: &Queue, tasks: &[TaskSummary], videos: &[i64]) {
    if let Err(e) = crate::cache::Cache::new(queue).invalidate_videos(videos).await {
        tracing::warn!("video:meta not invalidated: {}", crate::one_line(&e));
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
        tracing::warn!("task:status not updated: {}", crate::one_line(&e));
    }
}
