//! Reads for the API and the dashboard (no writes): who owns a task, its
//! stored results, the video behind it, and completions over time.

use super::*;

/// Who owns a task and what it works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskOwner {
    /// `processing_tasks.id`.
    pub id: i64,
    pub user_id: i64,
    pub video_id: i64,
}

/// The owner of the task with public id `task_id`, or `None` when there is
/// no such task. Callers scope every request with it.
pub async fn find_owner(
    conn: &mut PooledConnection<'_>,
    task_id: &str,
) -> anyhow::Result<Option<TaskOwner>> {
    let row: Option<(i64, i64, i64)> = pt::table
        .filter(pt::task_id.eq(task_id))
        .select((pt::id, pt::user_id, pt::video_id))
        .first(conn)
        .await
        .optional()
        .context("looking up a task's owner")?;
    Ok(row.map(|(id, user_id, video_id)| TaskOwner { id, user_id, video_id }))
}

/// The public ids among `task_ids` that exist and, unless `user_id` is
/// `None` (operators), belong to that user.
pub async fn owned_task_ids(
    conn: &mut PooledConnection<'_>,
    task_ids: &[String],
    user_id: Option<i64>,
) -> anyhow::Result<Vec<String>> {
    let mut query = pt::table.filter(pt::task_id.eq_any(task_ids)).select(pt::task_id).into_boxed();
    if let Some(user_id) = user_id {
        query = query.filter(pt::user_id.eq(user_id));
    }
    query.load(conn).await.context("checking tasks' owners")
}

/// The `result_data` of the task's `processing_results` row of
/// `result_type` (`transcript`, `analysis`, ...), the newest if several.
pub async fn find_result(
    conn: &mut PooledConnection<'_>,
    task_pk: i64,
    result_type: &str,
) -> anyhow::Result<Option<serde_json::Value>> {
    let data: Option<Option<serde_json::Value>> = processing_results::table
        .filter(processing_results::task_id.eq(task_pk))
        .filter(processing_results::result_type.eq(result_type))
        .order(processing_results::id.desc())
        .select(processing_results::result_data)
        .first(conn)
        .await
        .optional()
        .context("reading a task's results")?;
    Ok(data.flatten())
}

/// A segment with the stored keys of its clip and thumbnail, for serving
/// them: (task's owner, clip key, thumbnail key).
pub async fn find_segment_files(
    conn: &mut PooledConnection<'_>,
    segment_id: &str,
) -> anyhow::Result<Option<(i64, Option<String>, Option<String>)>> {
    video_segments::table
        .filter(video_segments::segment_id.eq(segment_id))
        .select((video_segments::user_id, video_segments::file_path, video_segments::thumbnail_url))
        .first(conn)
        .await
        .optional()
        .context("looking up a segment's files")
}

/// Tasks completed per minute over the last `minutes` minutes, oldest
/// first, as (minutes ago, count); minutes without completions are absent.
pub async fn completions_per_minute(
    conn: &mut PooledConnection<'_>,
    minutes: i64,
) -> anyhow::Result<Vec<(i64, i64)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        ago: i64,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let rows: Vec<Row> = diesel::sql_query(format!(
        "SELECT CAST(TIMESTAMPDIFF(MINUTE, completed_at, NOW()) AS SIGNED) AS ago, COUNT(*) AS n \
         FROM processing_tasks WHERE status = {} AND completed_at >= NOW() - INTERVAL {minutes} MINUTE \
         GROUP BY ago ORDER BY ago DESC",
        TaskStatus::Completed.code()
    ))
    .load(conn)
    .await
    .context("counting completions per minute")?;
    Ok(rows.into_iter().map(|r| (r.ago, r.n)).collect())
}

/// Pending tasks already pushed to Redis (`queued_at` set): the "queued"
/// the dashboard shows apart from those still waiting for the scheduler.
pub async fn count_queued(conn: &mut PooledConnection<'_>) -> anyhow::Result<i64> {
    pt::table
        .filter(pt::status.eq(TaskStatus::Pending.code()))
        .filter(pt::queued_at.is_not_null())
        .count()
        .get_result(conn)
        .await
        .context("counting queued tasks")
}
