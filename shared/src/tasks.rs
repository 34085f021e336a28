//! All SQL on `processing_tasks`: creating tasks, the scheduler's queries,
//! claiming, heartbeats and finishing.
//!
//! The queue protocol in one paragraph: a task is created pending
//! (`status = 0`, `queued_at IS NULL`). The scheduler selects due pending rows
//! by priority then age, pushes their ids to Redis and sets `queued_at`. A
//! worker pops ids and claims them with one guarded UPDATE (`status 0 -> 1`),
//! which only the first claimer wins; the claim writes a [`Lease`] (a unique
//! owner string, an expiry, and `attempts + 1` as the fencing token). The
//! worker finishes a batch of tasks in one transaction that first locks the
//! rows and keeps only those whose lease is still the worker's and unexpired,
//! so a worker that lost its lease cannot commit. Every statement handles
//! many rows: the queue's speed comes from batching, not from fast single
//! statements.

use crate::db::PooledConnection;
use crate::models::{NewResult, NewSegment, NewTask, TaskStatus, TaskSummary, VideoMetadata};
use crate::queue::Queue;
use crate::schema::{processing_results, processing_tasks as pt, video_segments, videos};
use anyhow::Context;
use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamp, TinyInt};
use diesel_async::{AsyncConnection, RunQueryDsl};

/// Rows per multi-row INSERT or `IN (...)` list.
pub const BATCH_ROWS: usize = 1000;

/// Database time with milliseconds; all queue times are the database's own,
/// so clocks of workers and schedulers never matter.
fn now3() -> diesel::expression::SqlLiteral<Timestamp> {
    sql::<Timestamp>("NOW(3)")
}

/// `NOW(3) + INTERVAL millis MICROSECOND*1000`, for lease expiries and backoff.
fn now_plus_millis(millis: u64) -> diesel::expression::SqlLiteral<Timestamp> {
    sql::<Timestamp>(&format!("NOW(3) + INTERVAL {} MICROSECOND", millis * 1000))
}

/// Inserts pending tasks, [`BATCH_ROWS`] per statement, and returns how many
/// rows were written.
pub async fn insert_tasks(
    conn: &mut PooledConnection<'_>,
    tasks: &[NewTask],
) -> anyhow::Result<usize> {
    let mut written = 0;
    for chunk in tasks.chunks(BATCH_ROWS) {
        written += diesel::insert_into(pt::table)
            .values(chunk)
            .execute(conn)
            .await
            .context("inserting processing_tasks rows")?;
    }
    Ok(written)
}

/// A task the scheduler is about to push to Redis.
#[derive(Debug, Clone, QueryableByName)]
pub struct DueTask {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub task_id: String,
    #[diesel(sql_type = TinyInt)]
    pub priority: i8,
}

/// Which due tasks [`queue_due_tasks`] selects.
#[derive(Debug, Clone, Copy)]
pub enum DueSelection {
    /// Pending tasks not yet in Redis, by priority then age: the normal path.
    ByPriority,
    /// Pending tasks not yet in Redis that have waited longer than this many
    /// seconds, oldest first, whatever their priority (aging).
    WaitingLongerThan(u32),
    /// Pending tasks pushed to Redis more than `seconds` ago, with a
    /// priority number above `above_priority`, still not claimed: starved
    /// behind higher priorities, or their Redis entry was lost (a worker
    /// died between popping and claiming). Pushed again to the head of the
    /// high-priority list (duplicates are harmless); `queued_at` restarts.
    QueuedLongerThan { seconds: u32, above_priority: i8 },
}

/// Selects up to `limit` due tasks, pushes their ids into Redis (aged and
/// re-pushed tasks to the head of the high-priority list, others to the tail
/// of their priority's list),
/// and marks them queued, all in one transaction: rows are locked
/// (`FOR UPDATE SKIP LOCKED`, so concurrent schedulers take disjoint rows)
/// until the push has succeeded and `queued_at` is written. A worker that pops
/// an id before the commit blocks on the row lock and then sees the row
/// queued, so no entry is ever dropped by that race; if the push fails nothing
/// is marked. Returns the tasks pushed.
pub async fn queue_due_tasks(
    conn: &mut PooledConnection<'_>,
    selection: DueSelection,
    limit: usize,
    queue: &Queue,
    high_priority_threshold: i8,
) -> anyhow::Result<Vec<DueTask>> {
    // The index hints keep MariaDB from choosing a filesort, which would make
    // SKIP LOCKED lock every pending row (seen on MariaDB 10.11: with a
    // filesort the first claimer locks them all).
    let query = match selection {
        DueSelection::ByPriority => format!(
            "SELECT id, task_id, priority FROM processing_tasks FORCE INDEX (idx_queue) \
             WHERE status = 0 AND queued_at IS NULL AND next_attempt_at <= NOW(3) \
             ORDER BY priority, id LIMIT {limit} FOR UPDATE SKIP LOCKED"
        ),
        DueSelection::WaitingLongerThan(secs) => format!(
            "SELECT id, task_id, priority FROM processing_tasks FORCE INDEX (idx_waiting_since) \
             WHERE status = 0 AND queued_at IS NULL AND next_attempt_at <= NOW(3) - INTERVAL {secs} SECOND \
             ORDER BY next_attempt_at LIMIT {limit} FOR UPDATE SKIP LOCKED"
        ),
        DueSelection::QueuedLongerThan { seconds, above_priority } => format!(
            "SELECT id, task_id, priority FROM processing_tasks FORCE INDEX (idx_queue) \
             WHERE status = 0 AND queued_at < NOW(3) - INTERVAL {seconds} SECOND AND priority > {above_priority} \
             ORDER BY queued_at LIMIT {limit} FOR UPDATE SKIP LOCKED"
        ),
    };
    conn.transaction(async move |conn| -> anyhow::Result<Vec<DueTask>> {
        let due: Vec<DueTask> =
            diesel::sql_query(query).load(conn).await.context("selecting due tasks")?;
        if due.is_empty() {
            return Ok(due);
        }
        let to_front = !matches!(selection, DueSelection::ByPriority);
        queue
            .push(
                &due.iter().map(|t| (t.task_id.as_str(), t.priority)).collect::<Vec<_>>(),
                high_priority_threshold,
                to_front,
            )
            .await?;
        let ids: Vec<i64> = due.iter().map(|t| t.id).collect();
        diesel::update(pt::table.filter(pt::id.eq_any(&ids)))
            .set(pt::queued_at.eq(now3().nullable()))
            .execute(conn)
            .await
            .context("marking tasks queued")?;
        Ok(due)
    })
    .await
}

/// Forgets that pending tasks were pushed to Redis (`queued_at = NULL`), so
/// the scheduler pushes them again: used after Redis lost its data. Works
/// in batches; returns the number of tasks reset.
pub async fn forget_queued(conn: &mut PooledConnection<'_>) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let n = diesel::sql_query(format!(
            "UPDATE processing_tasks SET queued_at = NULL \
             WHERE status = 0 AND queued_at IS NOT NULL LIMIT {BATCH_ROWS}"
        ))
        .execute(conn)
        .await
        .context("resetting queued tasks")?;
        total += n;
        if n < BATCH_ROWS {
            return Ok(total);
        }
    }
}

/// The right to run one task: who holds it and with which fencing token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// `processing_tasks.id`.
    pub id: i64,
    /// Unique per claim: `{worker id}#{claim batch}`.
    pub owner: String,
    /// `attempts` after the claim: the fencing token.
    pub token: i32,
}

/// A task a worker has claimed, with everything needed to run it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = pt)]
pub struct ClaimedTask {
    pub id: i64,
    pub task_id: String,
    pub user_id: i64,
    pub video_id: i64,
    pub task_type: String,
    pub config: Option<serde_json::Value>,
    pub priority: i8,
    pub retry_count: i8,
    pub max_retries: i8,
    pub attempts: i32,
    #[diesel(select_expression = pt::lease_owner.assume_not_null())]
    pub lease_owner: String,
}

impl ClaimedTask {
    /// The lease this claim holds.
    pub fn lease(&self) -> Lease {
        Lease { id: self.id, owner: self.lease_owner.clone(), token: self.attempts }
    }
}

/// Claims the pending, due tasks among `task_ids` for `owner` (unique to
/// this call) with a lease of `lease_millis`. Ids of tasks that are running,
/// finished, cancelled, waiting out a retry backoff or unknown are dropped:
/// that is how stale and duplicate queue entries disappear. Returns the
/// tasks won, in no particular order.
pub async fn claim_tasks(
    conn: &mut PooledConnection<'_>,
    task_ids: &[String],
    owner: &str,
    lease_millis: u64,
) -> anyhow::Result<Vec<ClaimedTask>> {
    if task_ids.is_empty() {
        return Ok(Vec::new());
    }
    let won = diesel::update(
        pt::table
            .filter(pt::task_id.eq_any(task_ids))
            .filter(pt::status.eq(TaskStatus::Pending.code()))
            .filter(pt::next_attempt_at.le(now3())),
    )
    .set((
        pt::status.eq(TaskStatus::Processing.code()),
        pt::lease_owner.eq(owner),
        pt::lease_expires_at.eq(now_plus_millis(lease_millis).nullable()),
        pt::attempts.eq(pt::attempts + 1),
        pt::started_at.eq(sql::<Nullable<Timestamp>>("NOW()")),
        pt::progress.eq(0),
        pt::current_step.eq("started"),
        pt::error_message.eq(None::<String>),
    ))
    .execute(conn)
    .await
    .context("claiming tasks")?;
    if won == 0 {
        return Ok(Vec::new());
    }
    pt::table
        .filter(pt::task_id.eq_any(task_ids))
        .filter(pt::lease_owner.eq(owner))
        .filter(pt::status.eq(TaskStatus::Processing.code()))
        .select(ClaimedTask::as_select())
        .load(conn)
        .await
        .context("reading claimed tasks")
}

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
    let pattern = format!("{owner_prefix}#%");
    for chunk in ids.chunks(BATCH_ROWS) {
        let renewed = diesel::update(
            pt::table
                .filter(pt::id.eq_any(chunk))
                .filter(pt::status.eq(TaskStatus::Processing.code()))
                .filter(pt::lease_owner.like(&pattern)),
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
            .select(pt::id)
            .load(conn)
            .await
            .context("checking leases")?;
        held.extend(still);
    }
    Ok(held)
}

/// How a worker's run of a task ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Done: write these rows and mark the task completed.
    Completed(Box<Completion>),
    /// Failed. `retryable` failures go back to pending with a backoff until
    /// `max_retries` is used up; the others fail at once.
    Failed { reason: String, retryable: bool },
    /// Not run (worker shutting down): back to pending at once, no retry
    /// counted.
    HandedBack,
}

/// Everything a completed task writes, in its completing transaction.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    pub results: Vec<NewResult>,
    pub segments: Vec<NewSegment>,
    /// The probed metadata of the task's video, with the video's id.
    pub video: Option<(i64, VideoMetadata)>,
    /// The user whose `monthly_videos` quota this completion counts against.
    pub quota_user: Option<i64>,
}

impl Outcome {
    /// A completion that writes only these result rows.
    pub fn completed(results: Vec<NewResult>) -> Outcome {
        Outcome::Completed(Box::new(Completion { results, ..Completion::default() }))
    }
}

/// What [`finish_tasks`] did with one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// The task now has this status.
    Committed(TaskStatus),
    /// Back to pending, to run again (a retry or a hand-back).
    Requeued,
    /// The lease was no longer ours (expired, taken over, cancelled):
    /// nothing was written.
    LeaseLost,
}

/// A row as locked by [`finish_tasks`] to check its lease.
#[derive(QueryableByName)]
struct LockedTask {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    lease_owner: Option<String>,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = TinyInt)]
    status: i8,
    #[diesel(sql_type = TinyInt)]
    retry_count: i8,
    #[diesel(sql_type = TinyInt)]
    max_retries: i8,
    #[diesel(sql_type = Bool)]
    lease_valid: bool,
    #[diesel(sql_type = BigInt)]
    video_id: i64,
    #[diesel(sql_type = Text)]
    task_type: String,
}

/// Backoff before retry number `retry` (1-based): exponential from
/// `base_millis`, capped at an hour, with full jitter in its upper half so a
/// burst of failures does not come back as a burst.
pub fn backoff_millis(retry: u32, base_millis: u64) -> u64 {
    let exp = base_millis.saturating_mul(1u64 << retry.saturating_sub(1).min(20)).min(3_600_000);
    let jitter = rand_fraction();
    exp / 2 + ((exp / 2) as f64 * jitter) as u64
}

/// A number in [0, 1) that differs between calls; enough for jitter.
fn rand_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Finishes a batch of tasks in one transaction: locks their rows, keeps
/// those whose lease is still the caller's (same owner and token, status
/// processing, not expired), then writes every completion with its result
/// rows, every failure and every hand-back. Returns one [`Finished`] per
/// input, in input order. `retry_base_millis` is the first retry's backoff.
pub async fn finish_tasks(
    conn: &mut PooledConnection<'_>,
    batch: Vec<(Lease, Outcome)>,
    retry_base_millis: u64,
) -> anyhow::Result<Vec<Finished>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    conn.transaction(async move |conn| -> anyhow::Result<Vec<Finished>> {
        let ids: Vec<String> = batch.iter().map(|(lease, _)| lease.id.to_string()).collect();
        let locked: Vec<LockedTask> = diesel::sql_query(format!(
            "SELECT id, lease_owner, attempts, status, retry_count, max_retries, video_id, task_type, \
             COALESCE(lease_expires_at > NOW(3), FALSE) AS lease_valid \
             FROM processing_tasks WHERE id IN ({}) FOR UPDATE",
            ids.join(",")
        ))
        .load(conn)
        .await
        .context("locking finished tasks")?;
        let locked: std::collections::HashMap<i64, LockedTask> = locked.into_iter().map(|t| (t.id, t)).collect();

        let mut report = Vec::with_capacity(batch.len());
        let mut completed_ids = Vec::new();
        let mut results = Vec::new();
        let mut segments = Vec::new();
        let mut video_updates = Vec::new();
        let mut quota_users = Vec::new();
        let mut failed_videos = Vec::new();
        for (lease, outcome) in batch {
            let row = locked.get(&lease.id).filter(|row| {
                row.status == TaskStatus::Processing.code()
                    && row.lease_owner.as_deref() == Some(lease.owner.as_str())
                    && row.attempts == lease.token
                    && row.lease_valid
            });
            let Some(row) = row else {
                report.push(Finished::LeaseLost);
                continue;
            };
            match outcome {
                Outcome::Completed(completion) => {
                    let completion = *completion;
                    completed_ids.push(lease.id);
                    results.extend(completion.results);
                    segments.extend(completion.segments);
                    video_updates.extend(completion.video);
                    quota_users.extend(completion.quota_user);
                    report.push(Finished::Committed(TaskStatus::Completed));
                }
                Outcome::HandedBack => {
                    diesel::update(pt::table.find(lease.id))
                        .set((
                            pt::status.eq(TaskStatus::Pending.code()),
                            pt::queued_at.eq(None::<NaiveDateTime>),
                            pt::lease_expires_at.eq(None::<NaiveDateTime>),
                            pt::current_step.eq("handed back"),
                            pt::next_attempt_at.eq(now3()),
                        ))
                        .execute(conn)
                        .await
                        .context("handing a task back")?;
                    report.push(Finished::Requeued);
                }
                Outcome::Failed { reason, retryable } => {
                    let retries_left = row.retry_count < row.max_retries;
                    if retryable && retries_left {
                        let retry = (row.retry_count as u32) + 1;
                        diesel::update(pt::table.find(lease.id))
                            .set((
                                pt::status.eq(TaskStatus::Pending.code()),
                                pt::queued_at.eq(None::<NaiveDateTime>),
                                pt::lease_expires_at.eq(None::<NaiveDateTime>),
                                pt::retry_count.eq(sql::<TinyInt>("retry_count + 1")),
                                pt::next_attempt_at.eq(now_plus_millis(backoff_millis(retry, retry_base_millis))),
                                pt::current_step.eq("waiting to retry"),
                                pt::error_message.eq(&reason),
                            ))
                            .execute(conn)
                            .await
                            .context("scheduling a retry")?;
                        report.push(Finished::Requeued);
                    } else {
                        let message = if retryable {
                            format!("{reason} (gave up after {} retries)", row.retry_count)
                        } else {
                            reason
                        };
                        diesel::update(pt::table.find(lease.id))
                            .set((
                                pt::status.eq(TaskStatus::Failed.code()),
                                pt::lease_expires_at.eq(None::<NaiveDateTime>),
                                pt::completed_at.eq(sql::<Nullable<Timestamp>>("NOW()")),
                                pt::actual_duration.eq(sql::<Nullable<Integer>>("TIMESTAMPDIFF(SECOND, started_at, NOW())")),
                                pt::current_step.eq("failed"),
                                pt::error_message.eq(&message),
                            ))
                            .execute(conn)
                            .await
                            .context("marking a task failed")?;
                        if row.task_type == crate::models::task_type::VIDEO_CLIP {
                            failed_videos.push(row.video_id);
                        }
                        report.push(Finished::Committed(TaskStatus::Failed));
                    }
                }
            }
        }
        for chunk in completed_ids.chunks(BATCH_ROWS) {
            diesel::update(pt::table.filter(pt::id.eq_any(chunk)))
                .set((
                    pt::status.eq(TaskStatus::Completed.code()),
                    pt::progress.eq(100),
                    pt::current_step.eq("completed"),
                    pt::lease_expires_at.eq(None::<NaiveDateTime>),
                    pt::completed_at.eq(sql::<Nullable<Timestamp>>("NOW()")),
                    pt::actual_duration.eq(sql::<Nullable<Integer>>("TIMESTAMPDIFF(SECOND, started_at, NOW())")),
                ))
                .execute(conn)
                .await
                .context("marking tasks completed")?;
        }
        for chunk in results.chunks(BATCH_ROWS) {
            diesel::insert_into(processing_results::table)
                .values(chunk)
                .execute(conn)
                .await
                .context("writing processing_results rows")?;
        }
        for chunk in segments.chunks(BATCH_ROWS) {
            diesel::insert_into(video_segments::table)
                .values(chunk)
                .execute(conn)
                .await
                .context("writing video_segments rows")?;
        }
        crate::quotas::count_completed(conn, &quota_users).await?;
        for (video_id, metadata) in &video_updates {
            diesel::update(videos::table.find(*video_id))
                .set(metadata)
                .execute(conn)
                .await
                .context("writing video metadata")?;
        }
        if !failed_videos.is_empty() {
            diesel::update(videos::table.filter(videos::id.eq_any(&failed_videos)))
                .set(videos::status.eq(crate::videos::status::FAILED))
                .execute(conn)
                .await
                .context("marking videos failed")?;
        }
        Ok(report)
    })
    .await
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
}

/// Returns running tasks whose lease expired to pending (`retry_count + 1`,
/// queued again at once), or fails those that used up `max_retries`.
/// Finds candidates with a plain read (running rows are few and the read
/// takes no locks), then updates them by primary key with the expiry
/// re-checked, so a lease renewed in between is kept. Returns the tasks it
/// changed (read back after the updates) so their cached status is fixed.
pub async fn reap_expired_leases(conn: &mut PooledConnection<'_>) -> anyhow::Result<Reaped> {
    let expired: Vec<i64> = pt::table
        .filter(pt::status.eq(TaskStatus::Processing.code()))
        .filter(pt::lease_expires_at.lt(now3().nullable()))
        .select(pt::id)
        .limit(BATCH_ROWS as i64)
        .load(conn)
        .await
        .context("looking for expired leases")?;
    if expired.is_empty() {
        return Ok(Reaped::default());
    }
    let ids = expired.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let running = TaskStatus::Processing.code();
    let failed = diesel::sql_query(format!(
        "UPDATE processing_tasks SET status = {failed}, \
         error_message = CONCAT('lease expired ', attempts, ' times (worker ', COALESCE(lease_owner, '?'), ' stopped responding)'), \
         current_step = '{REAPED_FAILED_STEP}', completed_at = NOW(), lease_expires_at = NULL \
         WHERE id IN ({ids}) AND status = {running} AND lease_expires_at < NOW(3) AND retry_count >= max_retries",
        failed = TaskStatus::Failed.code(),
    ))
    .execute(conn)
    .await
    .context("failing tasks whose lease expired too often")?;
    if failed > 0 {
        diesel::sql_query(format!(
            "UPDATE videos SET status = {video_failed} WHERE id IN (SELECT video_id FROM processing_tasks \
             WHERE id IN ({ids}) AND status = {failed} AND task_type = '{video_clip}' AND current_step = '{REAPED_FAILED_STEP}')",
            video_failed = crate::videos::status::FAILED,
            failed = TaskStatus::Failed.code(),
            video_clip = crate::models::task_type::VIDEO_CLIP,
        ))
        .execute(conn)
        .await
        .context("marking the videos of failed tasks failed")?;
    }
    let requeued = diesel::sql_query(format!(
        "UPDATE processing_tasks SET status = {pending}, queued_at = NULL, \
         retry_count = retry_count + 1, next_attempt_at = NOW(3), lease_expires_at = NULL, \
         current_step = '{REAPED_STEP}', \
         error_message = CONCAT('lease of ', COALESCE(lease_owner, '?'), ' expired') \
         WHERE id IN ({ids}) AND status = {running} AND lease_expires_at < NOW(3)",
        pending = TaskStatus::Pending.code(),
    ))
    .execute(conn)
    .await
    .context("requeueing tasks whose lease expired")?;
    let mut changed = Vec::new();
    if requeued + failed > 0 {
        // Only rows this call moved carry its step names; a lease renewed in
        // between is still processing and keeps its cached status.
        let rows: Vec<(String, i8, Option<String>)> = pt::table
            .filter(pt::id.eq_any(&expired))
            .filter(pt::current_step.eq_any([REAPED_STEP, REAPED_FAILED_STEP]))
            .filter(pt::status.eq_any([TaskStatus::Pending.code(), TaskStatus::Failed.code()]))
            .select((pt::task_id, pt::status, pt::current_step))
            .load(conn)
            .await
            .context("reading back reaped tasks")?;
        changed = rows
            .into_iter()
            .filter_map(|(id, code, step)| {
                Some((id, TaskStatus::from_code(code).ok()?, step.unwrap_or_default()))
            })
            .collect();
    }
    Ok(Reaped { changed, requeued, failed })
}

/// `current_step` of a task the reaper sent back to pending.
pub const REAPED_STEP: &str = "lease expired";
/// `current_step` of a task the reaper failed (lease expired too often).
pub const REAPED_FAILED_STEP: &str = "failed";

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
pub async fn count_by_status(conn: &mut PooledConnection<'_>) -> anyhow::Result<Vec<(i8, i64)>> {
    pt::table
        .group_by(pt::status)
        .select((pt::status, diesel::dsl::count_star()))
        .load(conn)
        .await
        .context("counting tasks by status")
}

/// Running tasks per worker (the lease owner without its claim number).
pub async fn running_by_worker(
    conn: &mut PooledConnection<'_>,
) -> anyhow::Result<Vec<(String, i64)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        worker: String,
        #[diesel(sql_type = BigInt)]
        tasks: i64,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT SUBSTRING_INDEX(COALESCE(lease_owner, '?'), '#', 1) AS worker, COUNT(*) AS tasks \
         FROM processing_tasks FORCE INDEX (idx_queue) WHERE status = 1 GROUP BY worker ORDER BY worker",
    )
    .load(conn)
    .await
    .context("counting running tasks per worker")?;
    Ok(rows.into_iter().map(|r| (r.worker, r.tasks)).collect())
}

/// Seconds the longest-waiting pending task has been due, if any is.
pub async fn oldest_wait_seconds(conn: &mut PooledConnection<'_>) -> anyhow::Result<Option<i64>> {
    let age: Option<i64> = pt::table
        .filter(pt::status.eq(TaskStatus::Pending.code()))
        .select(sql::<Nullable<BigInt>>("TIMESTAMPDIFF(SECOND, MIN(next_attempt_at), NOW(3))"))
        .first(conn)
        .await
        .context("finding the oldest waiting task")?;
    Ok(age.filter(|a| *a >= 0))
}

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
/// stops it at its next lease check.
pub async fn cancel_tasks(
    conn: &mut PooledConnection<'_>,
    task_ids: &[String],
) -> anyhow::Result<usize> {
    let cancelled = diesel::update(
        pt::table
            .filter(pt::task_id.eq_any(task_ids))
            .filter(pt::status.le(TaskStatus::Processing.code())),
    )
    .set((
        pt::status.eq(TaskStatus::Cancelled.code()),
        pt::current_step.eq("cancelled"),
        pt::lease_expires_at.eq(None::<NaiveDateTime>),
        pt::completed_at.eq(sql::<Nullable<Timestamp>>("NOW()")),
    ))
    .execute(conn)
    .await
    .context("cancelling tasks")?;
    if cancelled > 0 {
        // A video whose task stopped half-way is back to "uploaded".
        let cancelled_videos = pt::table
            .filter(pt::task_id.eq_any(task_ids))
            .filter(pt::status.eq(TaskStatus::Cancelled.code()))
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
    }
    Ok(cancelled)
}

/// Makes the failed or cancelled tasks among `task_ids` pending again with
/// a fresh retry budget; returns how many.
pub async fn retry_tasks(
    conn: &mut PooledConnection<'_>,
    task_ids: &[String],
) -> anyhow::Result<usize> {
    diesel::update(
        pt::table
            .filter(pt::task_id.eq_any(task_ids))
            .filter(pt::status.eq_any([TaskStatus::Failed.code(), TaskStatus::Cancelled.code()])),
    )
    .set((
        pt::status.eq(TaskStatus::Pending.code()),
        pt::queued_at.eq(None::<NaiveDateTime>),
        pt::next_attempt_at.eq(now3()),
        pt::retry_count.eq(0),
        pt::progress.eq(0),
        pt::current_step.eq("pending"),
        pt::error_message.eq(None::<String>),
        pt::completed_at.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)
    .await
    .context("retrying tasks")
}

/// The segments of a task (public id), in time order.
pub async fn find_segments(
    conn: &mut PooledConnection<'_>,
    task_id: &str,
) -> anyhow::Result<Vec<crate::models::SegmentRow>> {
    video_segments::table
        .inner_join(pt::table)
        .filter(pt::task_id.eq(task_id))
        .order(video_segments::start_time)
        .select(crate::models::SegmentRow::as_select())
        .load(conn)
        .await
        .context("reading segments")
}

/// What [`insert_tasks_for_idle_videos`] did with a batch of candidate tasks.
#[derive(Debug, Default)]
pub struct IdleVideoBatch {
    /// The tasks written (or, without `write`, that would have been), in
    /// input order.
    pub created: Vec<NewTask>,
    /// Candidates dropped because their video has a pending or processing
    /// task of the same type.
    pub skipped_active: usize,
    /// Candidates dropped because their video has a completed task of the
    /// same type (only with `skip_completed`).
    pub skipped_completed: usize,
    /// Candidates dropped because their video row no longer exists.
    pub vanished: usize,
    /// Candidates dropped because their owner's `monthly_videos` quota is
    /// used up (only with `check_quotas`), and those owners' ids.
    pub skipped_quota: usize,
    pub over_quota_users: Vec<i64>,
    /// How many candidates, from the start of the input, were decided on:
    /// all of them unless `max_new` was reached first. Whoever resumes
    /// after this batch starts after candidate `examined - 1`'s video.
    pub examined: usize,
}

/// Creates, in one transaction, the tasks among `tasks` (one per video,
/// all of one `task_type`, at most [`BATCH_ROWS`], in video id order) whose
/// video has no pending or processing task of that type, nor, with
/// `skip_completed`, a completed one; stops once `max_new` are chosen.
/// The video rows are locked first (`FOR UPDATE`, in id order), so two
/// backfills running at once over the same videos cannot both create a
/// task for one video; the existing tasks are then read with one query and
/// the chosen ones written with one multi-row INSERT. With `write` false
/// nothing is locked or written and the answer says what would have been
/// created (`--dry-run`). Returns what was created and why the rest was not.
pub async fn insert_tasks_for_idle_videos(
    conn: &mut PooledConnection<'_>,
    tasks: Vec<NewTask>,
    skip_completed: bool,
    max_new: usize,
    write: bool,
    check_quotas: bool,
) -> anyhow::Result<IdleVideoBatch> {
    if tasks.is_empty() {
        return Ok(IdleVideoBatch::default());
    }
    anyhow::ensure!(
        tasks.len() <= BATCH_ROWS,
        "at most {BATCH_ROWS} tasks per batch, got {}",
        tasks.len()
    );
    let task_type = tasks[0].task_type.clone();
    anyhow::ensure!(tasks.iter().all(|t| t.task_type == task_type), "one task_type per batch");
    conn.transaction(async move |conn| -> anyhow::Result<IdleVideoBatch> {
        let video_ids: Vec<i64> = tasks.iter().map(|t| t.video_id).collect();
        let present: std::collections::HashSet<i64> = if write {
            videos::table
                .filter(videos::id.eq_any(&video_ids))
                .order(videos::id)
                .select(videos::id)
                .for_update()
                .load::<i64>(conn)
                .await
                .context("locking the batch's videos")?
                .into_iter()
                .collect()
        } else {
            video_ids.iter().copied().collect()
        };
        let existing: Vec<(i64, i8)> = pt::table
            .filter(pt::video_id.eq_any(&video_ids))
            .filter(pt::task_type.eq(&task_type))
            .filter(pt::status.eq_any([
                TaskStatus::Pending.code(),
                TaskStatus::Processing.code(),
                TaskStatus::Completed.code(),
            ]))
            .select((pt::video_id, pt::status))
            .distinct()
            .load(conn)
            .await
            .context("looking for the videos' existing tasks")?;
        let mut active = std::collections::HashSet::new();
        let mut completed = std::collections::HashSet::new();
        for (video_id, status) in existing {
            if status == TaskStatus::Completed.code() {
                completed.insert(video_id);
            } else {
                active.insert(video_id);
            }
        }
        let mut batch = IdleVideoBatch::default();
        for task in tasks {
            if batch.created.len() >= max_new {
                break;
            }
            batch.examined += 1;
            if !present.contains(&task.video_id) {
                batch.vanished += 1;
            } else if !active.insert(task.video_id) {
                // Already active, or a second candidate for the same video.
                batch.skipped_active += 1;
            } else if skip_completed && completed.contains(&task.video_id) {
                batch.skipped_completed += 1;
            } else {
                batch.created.push(task);
            }
        }
        if write && check_quotas && task_type == crate::models::task_type::VIDEO_CLIP {
            drop_over_quota(conn, &mut batch).await?;
        }
        if write && !batch.created.is_empty() {
            diesel::insert_into(pt::table)
                .values(batch.created.as_slice())
                .execute(conn)
                .await
                .context("inserting processing_tasks rows")?;
        }
        Ok(batch)
    })
    .await
}

/// Drops from `batch.created` the tasks of users whose `monthly_videos`
/// quota has no room for them (keeping as many per user as fit, oldest
/// video first); the quota rows stay locked until the transaction ends.
async fn drop_over_quota(
    conn: &mut PooledConnection<'_>,
    batch: &mut IdleVideoBatch,
) -> anyhow::Result<()> {
    let mut users: Vec<i64> = batch.created.iter().map(|t| t.user_id).collect();
    users.sort_unstable();
    users.dedup();
    let mut room = std::collections::HashMap::new();
    for user_id in users {
        if let Some(left) = crate::quotas::monthly_videos_left(conn, user_id).await? {
            room.insert(user_id, left);
        }
    }
    let before = batch.created.len();
    let mut over = std::collections::BTreeSet::new();
    batch.created.retain(|task| match room.get_mut(&task.user_id) {
        None => true,
        Some(left) if *left > 0 => {
            *left -= 1;
            true
        }
        Some(_) => {
            over.insert(task.user_id);
            false
        }
    });
    batch.skipped_quota += before - batch.created.len();
    batch.over_quota_users.extend(over);
    Ok(())
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
    conn: &mut PooledConnection<'_>,
    filter: &TaskFilter,
    after: Option<i64>,
    oldest_first: bool,
    limit: usize,
) -> anyhow::Result<Vec<(ListedTask, String)>> {
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
