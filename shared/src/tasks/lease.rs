//! Keeping and losing leases: the heartbeat's renewal, progress recorded
//! under the lease, and the reaper (`processing -> pending | failed` when a
//! lease expired: the worker stopped responding).

use super::*;

/// Extends the leases of tasks still held by this worker (`owner_prefix` is
/// the worker id; each lease owner starts with it) and returns the ids whose
/// lease is still the worker's. An id missing from the answer lost its lease
/// (cancelled, reaped, taken over): its run must stop.
pub async fn renew_leases(
    conn: &mut PooledConnection<'_>,
    ids: &[i64],
    owner_prefix: &str,
    lease_millis: u64,
) -> anyhow::Result<Vec<i64>> {
    let mut held = Vec::with_capacity(ids.len());
    // The worker id is matched literally: `_` and `%` in a host name are
    // not wildcards.
    let literal = owner_prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    let pattern = format!("{literal}#%");
    for chunk in ids.chunks(BATCH_ROWS) {
        let renewed = diesel::update(
            pt::table
                .filter(pt::id.eq_any(chunk))
                .filter(pt::status.eq(TaskStatus::Processing.code()))
                .filter(pt::lease_owner.like(&pattern))
                // An expired lease is lost even before the reaper runs: it
                // is not revived (the commit would be refused anyway).
                .filter(pt::lease_expires_at.gt(now3().nullable())),
        )
        .set(pt::lease_expires_at.eq(now_plus_millis(lease_millis).nullable()))
        .execute(conn)
        .await
        .context("renewing leases")?;
        if renewed == chunk.len() {
            held.extend_from_slice(chunk);
            continue;
        }
        // Some row did not change: find out which are still ours.
        let still: Vec<i64> = pt::table
            .filter(pt::id.eq_any(chunk))
            .filter(pt::status.eq(TaskStatus::Processing.code()))
            .filter(pt::lease_owner.like(&pattern))
            .filter(pt::lease_expires_at.gt(now3().nullable()))
            .select(pt::id)
            .load(conn)
            .await
            .context("checking leases")?;
        held.extend(still);
    }
    Ok(held)
}

/// Records a running task's step and progress (0..=100), only while the
/// caller still holds its lease. Returns false if the lease is gone.
pub async fn record_progress(
    conn: &mut PooledConnection<'_>,
    lease: &Lease,
    step: &str,
    progress: i8,
) -> anyhow::Result<bool> {
    let n = diesel::update(
        pt::table
            .find(lease.id)
            .filter(pt::status.eq(TaskStatus::Processing.code()))
            .filter(pt::lease_owner.eq(&lease.owner))
            .filter(pt::attempts.eq(lease.token)),
    )
    .set((pt::current_step.eq(step), pt::progress.eq(progress)))
    .execute(conn)
    .await
    .context("recording progress")?;
    Ok(n == 1)
}

/// What the lease reaper did: the tasks it moved, with the status each now
/// has, so the caller can write their `task:status` keys.
#[derive(Debug, Default)]
pub struct Reaped {
    /// `(task_id, new status, current_step)` of every task that changed.
    pub changed: Vec<(String, TaskStatus, String)>,
    pub requeued: usize,
    pub failed: usize,
    /// `videos` rows marked failed with their task (their `video:meta` keys
    /// are stale now).
    pub failed_videos: Vec<i64>,
}

/// Returns running tasks whose lease expired to pending (`retry_count + 1`,
/// queued again at once), or fails those that used up `max_retries`.
/// Finds candidates with a plain read (running rows are few and the read
/// takes no locks), then, in one transaction with their history, locks them
/// by primary key with the expiry re-checked (a lease renewed in between is
/// kept) and updates them. Returns the tasks it changed (read back after
/// the updates) so their cached status is fixed.
pub async fn reap_expired_leases(conn: &mut PooledConnection<'_>) -> anyhow::Result<Reaped> {
    let candidates: Vec<i64> = pt::table
        .filter(pt::status.eq(TaskStatus::Processing.code()))
        .filter(pt::lease_expires_at.lt(now3().nullable()))
        .select(pt::id)
        .limit(BATCH_ROWS as i64)
        .load(conn)
        .await
        .context("looking for expired leases")?;
    if candidates.is_empty() {
        return Ok(Reaped::default());
    }
    conn.transaction(async move |conn| -> anyhow::Result<Reaped> {
        // Locked by primary key with the expiry re-checked: a lease renewed
        // (or a task finished) since the read above is left alone.
        let expired: Vec<ExpiredLease> = diesel::sql_query(format!(
            "SELECT id, retry_count >= max_retries AS spent FROM processing_tasks \
             WHERE id IN ({}) AND status = {running} AND lease_expires_at < NOW(3) \
             ORDER BY id FOR UPDATE",
            candidates.iter().map(i64::to_string).collect::<Vec<_>>().join(","),
            running = TaskStatus::Processing.code(),
        ))
        .load(conn)
        .await
        .context("locking tasks whose lease expired")?;
        let list = |spent: bool| {
            expired.iter().filter(|e| e.spent == spent).map(|e| e.id.to_string()).collect::<Vec<_>>()
        };
        let (spent, renewable) = (list(true), list(false));
        let mut failed_videos = Vec::new();
        let mut failed = 0;
        if !spent.is_empty() {
            let ids = spent.join(",");
            failed = diesel::sql_query(format!(
                "UPDATE processing_tasks SET status = {failed}, \
                 error_message = CONCAT('lease of ', COALESCE(lease_owner, '?'), ' expired on attempt ', attempts, ' with no retries left (the worker stopped responding)'), \
                 current_step = '{REAPED_FAILED_STEP}', completed_at = NOW(), lease_expires_at = NULL \
                 WHERE id IN ({ids})",
                failed = TaskStatus::Failed.code(),
            ))
            .execute(conn)
            .await
            .context("failing tasks whose lease expired too often")?;
            failed_videos = diesel::sql_query(format!(
                "SELECT video_id FROM processing_tasks WHERE id IN ({ids}) AND task_type = '{video_clip}'",
                video_clip = crate::models::task_type::VIDEO_CLIP,
            ))
            .load::<VideoOfTask>(conn)
            .await
            .context("reading the videos of failed tasks")?
            .into_iter()
            .map(|v| v.video_id)
            .collect();
            if !failed_videos.is_empty() {
                diesel::update(videos::table.filter(videos::id.eq_any(&failed_videos)))
                    .set(videos::status.eq(crate::videos::status::FAILED))
                    .execute(conn)
                    .await
                    .context("marking the videos of failed tasks failed")?;
            }
        }
        let mut requeued = 0;
        if !renewable.is_empty() {
            requeued = diesel::sql_query(format!(
                "UPDATE processing_tasks SET status = {pending}, queued_at = NULL, \
                 retry_count = retry_count + 1, next_attempt_at = NOW(3), lease_expires_at = NULL, \
                 current_step = '{REAPED_STEP}', \
                 error_message = CONCAT('lease of ', COALESCE(lease_owner, '?'), ' expired') \
                 WHERE id IN ({})",
                renewable.join(","),
                pending = TaskStatus::Pending.code(),
            ))
            .execute(conn)
            .await
            .context("requeueing tasks whose lease expired")?;
        }
        let ids: Vec<i64> = expired.iter().map(|e| e.id).collect();
        crate::history::record_changes(conn, TaskStatus::Processing.code(), &ids).await?;
        let rows: Vec<(String, i8, Option<String>)> = pt::table
            .filter(pt::id.eq_any(&ids))
            .select((pt::task_id, pt::status, pt::current_step))
            .load(conn)
            .await
            .context("reading back reaped tasks")?;
        let changed = rows
            .into_iter()
            .filter_map(|(id, code, step)| {
                Some((id, TaskStatus::from_code(code).ok()?, step.unwrap_or_default()))
            })
            .collect();
        Ok(Reaped { changed, requeued, failed, failed_videos })
    })
    .await
}

/// A running task whose lease expired, as locked by the reaper.
#[derive(QueryableByName)]
struct ExpiredLease {
    #[diesel(sql_type = BigInt)]
    id: i64,
    /// No retries left: the task fails instead of going back to pending.
    #[diesel(sql_type = Bool)]
    spent: bool,
}

#[derive(QueryableByName)]
struct VideoOfTask {
    #[diesel(sql_type = BigInt)]
    video_id: i64,
}

/// `current_step` of a task the reaper sent back to pending.
pub const REAPED_STEP: &str = step::LEASE_EXPIRED;
/// `current_step` of a task the reaper failed (lease expired too often).
pub const REAPED_FAILED_STEP: &str = step::FAILED;
