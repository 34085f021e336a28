//! Operators' state changes: `pending | processing -> cancelled` and
//! `failed | cancelled -> pending` (retry with a fresh budget).

use super::*;

/// Public ids of failed tasks that ended at or after `since` (database
/// time, UTC), oldest first, at most `limit`: for `retry --all-failed`.
pub async fn failed_since(
    conn: &mut PooledConnection<'_>,
    since: NaiveDateTime,
    limit: i64,
) -> anyhow::Result<Vec<String>> {
    pt::table
        .filter(pt::status.eq(TaskStatus::Failed.code()))
        .filter(pt::completed_at.ge(since))
        .order(pt::id)
        .select(pt::task_id)
        .limit(limit)
        .load(conn)
        .await
        .context("finding failed tasks")
}

/// Cancels the pending or running tasks among `task_ids` (public ids) and
/// returns how many were cancelled. A pending task will never be claimed; a
/// running one loses its lease at once, so its worker cannot commit and
/// stops it at its next lease check. One transaction, history included.
pub async fn cancel_tasks(
    conn: &mut PooledConnection<'_>,
    task_ids: &[String],
) -> anyhow::Result<usize> {
    let task_ids = task_ids.to_vec();
    conn.transaction(async move |conn| -> anyhow::Result<usize> {
        let cancelling = lock_in_status(
            conn,
            &task_ids,
            &[TaskStatus::Pending.code(), TaskStatus::Processing.code()],
        )
        .await
        .context("locking the tasks to cancel")?;
        if cancelling.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = cancelling.iter().map(|(id, _)| *id).collect();
        let cancelled = diesel::update(pt::table.filter(pt::id.eq_any(&ids)))
            .set((
                pt::status.eq(TaskStatus::Cancelled.code()),
                pt::current_step.eq(step::CANCELLED),
                pt::lease_expires_at.eq(None::<NaiveDateTime>),
                pt::completed_at.eq(sql::<Nullable<Timestamp>>("NOW()")),
            ))
            .execute(conn)
            .await
            .context("cancelling tasks")?;
        // A video whose task stopped half-way is back to "uploaded".
        let cancelled_videos = pt::table
            .filter(pt::id.eq_any(&ids))
            .filter(pt::task_type.eq(crate::models::task_type::VIDEO_CLIP))
            .select(pt::video_id);
        diesel::update(
            videos::table
                .filter(videos::id.eq_any(cancelled_videos))
                .filter(videos::status.eq(crate::videos::status::PROCESSING)),
        )
        .set(videos::status.eq(crate::videos::status::UPLOADED))
        .execute(conn)
        .await
        .context("marking cancelled tasks' videos uploaded")?;
        crate::history::record_changes_from(conn, &cancelling).await?;
        Ok(cancelled)
    })
    .await
}

/// Makes the failed or cancelled tasks among `task_ids` pending again with
/// a fresh retry budget; returns how many. A retried video task is in
/// flight again, so it must fit its user's `monthly_videos` quota like a new
/// one: unless `force`, a user whose retried tasks would exceed it gets
/// [`crate::BadInput`] naming the quota and nothing is retried. One
/// transaction: the quota rows stay locked until the tasks are pending.
pub async fn retry_tasks(
    conn: &mut PooledConnection<'_>,
    task_ids: &[String],
    force: bool,
) -> anyhow::Result<usize> {
    let task_ids = task_ids.to_vec();
    conn.transaction(async move |conn| -> anyhow::Result<usize> {
        let retryable = [TaskStatus::Failed.code(), TaskStatus::Cancelled.code()];
        if !force {
            let owners: Vec<(i64, String)> = pt::table
                .inner_join(crate::schema::users::table)
                .filter(pt::task_id.eq_any(&task_ids))
                .filter(pt::status.eq_any(retryable))
                .filter(pt::task_type.eq(crate::models::task_type::VIDEO_CLIP))
                .select((pt::user_id, crate::schema::users::username))
                .load(conn)
                .await
                .context("finding the owners of the video tasks to retry")?;
            let mut per_user = std::collections::BTreeMap::<(i64, String), i64>::new();
            for owner in owners {
                *per_user.entry(owner).or_default() += 1;
            }
            for ((user_id, username), n) in per_user {
                crate::quotas::check_monthly_videos(conn, user_id, &username, n).await?;
            }
        }
        let retrying = lock_in_status(conn, &task_ids, &retryable)
            .await
            .context("locking the tasks to retry")?;
        let ids: Vec<i64> = retrying.iter().map(|(id, _)| *id).collect();
        let retried = diesel::update(pt::table.filter(pt::id.eq_any(&ids)))
            .set((
                pt::status.eq(TaskStatus::Pending.code()),
                pt::queued_at.eq(None::<NaiveDateTime>),
                pt::next_attempt_at.eq(now3()),
                pt::retry_count.eq(0),
                pt::progress.eq(0),
                pt::current_step.eq(step::PENDING),
                pt::error_message.eq(None::<String>),
                pt::completed_at.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)
            .await
            .context("retrying tasks")?;
        crate::history::record_changes_from(conn, &retrying).await?;
        Ok(retried)
    })
    .await
}

/// Locks the rows among `task_ids` (public ids) whose status is one of
/// `statuses`, in id order; returns `(row id, status)` of each, the
/// "before" of the change the caller is about to make. By `uk_task_id`,
/// named, like the claim (`claim.rs`): served from a status-led index the
/// lock would take that index's entry before the row, the opposite order
/// of the scheduler's queueing, and the two could deadlock.
async fn lock_in_status(
    conn: &mut diesel_async::AsyncMysqlConnection,
    task_ids: &[String],
    statuses: &[i8],
) -> diesel::QueryResult<Vec<(i64, i8)>> {
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = TinyInt)]
        status: i8,
    }
    if task_ids.is_empty() || statuses.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders = vec!["?"; task_ids.len()].join(", ");
    let codes: Vec<String> = statuses.iter().map(i8::to_string).collect();
    let mut lock = diesel::sql_query(format!(
        "SELECT id, status FROM processing_tasks FORCE INDEX (uk_task_id) \
         WHERE task_id IN ({placeholders}) AND status IN ({}) ORDER BY id FOR UPDATE",
        codes.join(", ")
    ))
    .into_boxed();
    for id in task_ids {
        lock = lock.bind::<Text, _>(id);
    }
    let rows: Vec<Locked> = lock.load(conn).await?;
    Ok(rows.into_iter().map(|r| (r.id, r.status)).collect())
}
