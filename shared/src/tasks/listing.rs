//! Reading tasks: summaries, counts, listings and segments (no writes).
//! The display reads (counts, listings, segments) take a
//! [`ReadConnection`]: they may be served by the replica (crate::replica).

use super::*;
use crate::replica::ReadConnection;

/// True while any task is pending (queued or not) or running: what
/// `--exit-when-idle` waits for.
pub async fn any_active(conn: &mut PooledConnection<'_>) -> anyhow::Result<bool> {
    let found: Option<i64> = pt::table
        .filter(pt::status.le(TaskStatus::Processing.code()))
        .select(pt::id)
        .first(conn)
        .await
        .optional()
        .context("looking for active tasks")?;
    Ok(found.is_some())
}

/// The status of each task among `task_ids` (public ids), in no particular
/// order; unknown ids are simply absent.
pub async fn find_summaries(
    conn: &mut PooledConnection<'_>,
    task_ids: &[String],
) -> anyhow::Result<Vec<TaskSummary>> {
    pt::table
        .filter(pt::task_id.eq_any(task_ids))
        .select(TaskSummary::as_select())
        .load(conn)
        .await
        .context("reading tasks")
}

/// Number of tasks per status code, for `enqueue queues`.
pub async fn count_by_status(reader: &mut ReadConnection<'_>) -> anyhow::Result<Vec<(i8, i64)>> {
    let conn = reader.connection();
    pt::table
        .group_by(pt::status)
        .select((pt::status, diesel::dsl::count_star()))
        .load(conn)
        .await
        .context("counting tasks by status")
}

/// Running tasks per worker (the lease owner without its claim number).
pub async fn running_by_worker(
    reader: &mut ReadConnection<'_>,
) -> anyhow::Result<Vec<(String, i64)>> {
    let conn = reader.connection();
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        worker: String,
        #[diesel(sql_type = BigInt)]
        tasks: i64,
    }
    let rows: Vec<Row> = diesel::sql_query(format!(
        "SELECT SUBSTRING_INDEX(COALESCE(lease_owner, '?'), '#', 1) AS worker, COUNT(*) AS tasks \
         FROM processing_tasks FORCE INDEX (idx_queue) WHERE status = {} GROUP BY worker ORDER BY worker",
        TaskStatus::Processing.code()
    ))
    .load(conn)
    .await
    .context("counting running tasks per worker")?;
    Ok(rows.into_iter().map(|r| (r.worker, r.tasks)).collect())
}

/// Seconds the longest-waiting pending task has been due, if any is.
pub async fn oldest_wait_seconds(reader: &mut ReadConnection<'_>) -> anyhow::Result<Option<i64>> {
    let conn = reader.connection();
    let age: Option<i64> = pt::table
        .filter(pt::status.eq(TaskStatus::Pending.code()))
        .select(sql::<Nullable<BigInt>>("TIMESTAMPDIFF(SECOND, MIN(next_attempt_at), NOW(3))"))
        .first(conn)
        .await
        .context("finding the oldest waiting task")?;
    Ok(age.filter(|a| *a >= 0))
}

/// The segments of a task (public id), in time order.
pub async fn find_segments(
    reader: &mut ReadConnection<'_>,
    task_id: &str,
) -> anyhow::Result<Vec<crate::models::SegmentRow>> {
    let conn = reader.connection();
    video_segments::table
        .inner_join(pt::table)
        .filter(pt::task_id.eq(task_id))
        .order(video_segments::start_time)
        .select(crate::models::SegmentRow::as_select())
        .load(conn)
        .await
        .context("reading segments")
}

/// Which tasks [`list_tasks`] returns; empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// Any of these statuses.
    pub statuses: Vec<TaskStatus>,
    pub user_id: Option<i64>,
    pub task_type: Option<String>,
    /// `created_at` at or after this time (UTC).
    pub created_since: Option<NaiveDateTime>,
    /// Tasks of videos whose `original_filename` contains this text.
    pub video_name: Option<String>,
}

/// A task as `enqueue tasks` lists it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = pt)]
pub struct ListedTask {
    /// `processing_tasks.id`: the paging cursor.
    pub id: i64,
    pub task_id: String,
    pub user_id: i64,
    pub video_id: i64,
    pub task_type: String,
    pub status: i8,
    pub priority: i8,
    pub progress: i8,
    pub current_step: Option<String>,
    pub retry_count: i8,
    pub max_retries: i8,
    pub error_message: Option<String>,
    pub created_at: Option<NaiveDateTime>,
    pub started_at: Option<NaiveDateTime>,
    pub completed_at: Option<NaiveDateTime>,
}

impl ListedTask {
    /// The JSON form `enqueue tasks --json` and the API print: the columns,
    /// the owner's name and the status name.
    pub fn to_json(&self, username: &str) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "task_id": self.task_id,
            "user": username,
            "user_id": self.user_id,
            "video_id": self.video_id,
            "task_type": self.task_type,
            "status": TaskStatus::from_code(self.status).map(|s| s.name()).unwrap_or("unknown"),
            "priority": self.priority,
            "progress": self.progress,
            "current_step": self.current_step,
            "retry_count": self.retry_count,
            "max_retries": self.max_retries,
            "error_message": self.error_message,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
        })
    }
}

/// Up to `limit` tasks matching `filter`, each with its owner's name,
/// newest first (`id` descending) or with `oldest_first` oldest first,
/// starting after the cursor `after` (an `id` from a previous page: keyset
/// paging, so a page costs the same at any depth and rows added meanwhile
/// never shift a page). The page is read from `processing_tasks` alone:
/// with a user filter `idx_user_id` (`user_id`, then `id`) is walked in
/// order, a status filter can use `idx_queue`, otherwise the primary key
/// is walked in order and the walk stops at `limit` rows. Owners' names
/// come from a second lookup by primary key, since a join lets the
/// optimizer start from `users` and sort every task (seen with EXPLAIN).
pub async fn list_tasks(
    reader: &mut ReadConnection<'_>,
    filter: &TaskFilter,
    after: Option<i64>,
    oldest_first: bool,
    limit: usize,
) -> anyhow::Result<Vec<(ListedTask, String)>> {
    let conn = reader.connection();
    let mut query = pt::table.select(ListedTask::as_select()).into_boxed();
    if !filter.statuses.is_empty() {
        query = query.filter(
            pt::status.eq_any(filter.statuses.iter().map(|s| s.code()).collect::<Vec<_>>()),
        );
    }
    if let Some(user_id) = filter.user_id {
        query = query.filter(pt::user_id.eq(user_id));
    }
    if let Some(task_type) = &filter.task_type {
        query = query.filter(pt::task_type.eq(task_type.clone()));
    }
    if let Some(since) = filter.created_since {
        query = query.filter(pt::created_at.ge(since));
    }
    if let Some(name) = &filter.video_name {
        let escaped = name.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let matching = videos::table
            .filter(videos::original_filename.like(format!("%{escaped}%")))
            .select(videos::id);
        query = query.filter(pt::video_id.eq_any(matching));
    }
    query = match (oldest_first, after) {
        (true, Some(after)) => query.filter(pt::id.gt(after)),
        (false, Some(after)) => query.filter(pt::id.lt(after)),
        (_, None) => query,
    };
    query = if oldest_first { query.order(pt::id.asc()) } else { query.order(pt::id.desc()) };
    let tasks: Vec<ListedTask> =
        query.limit(limit as i64).load(conn).await.context("listing tasks")?;
    let owner_ids: Vec<i64> = tasks.iter().map(|t| t.user_id).collect();
    let names = crate::users::usernames(conn, &owner_ids).await?;
    Ok(tasks
        .into_iter()
        .map(|t| {
            let name = names.get(&t.user_id).cloned().unwrap_or_default();
            (t, name)
        })
        .collect())
}

/// The videos of the `video_clip` tasks among `task_ids` (public ids): the
/// rows a cancel may have changed.
pub async fn video_ids_of(
    conn: &mut PooledConnection<'_>,
    task_ids: &[String],
) -> anyhow::Result<Vec<i64>> {
    pt::table
        .filter(pt::task_id.eq_any(task_ids))
        .filter(pt::task_type.eq(crate::models::task_type::VIDEO_CLIP))
        .select(pt::video_id)
        .distinct()
        .load(conn)
        .await
        .context("reading the tasks' videos")
}
