//! The scheduler's statements: which pending rows are due, marking them
//! queued (`queued_at`) once their ids are in Redis, and forgetting that
//! after Redis lost its data. The Redis push itself is the scheduler's
//! (`scheduler/src/fill.rs`), between [`lock_due_tasks`] and
//! [`mark_queued`] in one transaction.

use super::*;

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

/// Which due tasks [`lock_due_tasks`] selects.
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

/// Locks and returns up to `limit` due tasks (`FOR UPDATE SKIP LOCKED`, so
/// concurrent schedulers take disjoint rows). Call it inside a transaction
/// that pushes the ids to Redis and then [`mark_queued`]s them: see
/// `scheduler/src/fill.rs` for why that order loses nothing.
pub async fn lock_due_tasks(
    conn: &mut PooledConnection<'_>,
    selection: DueSelection,
    limit: usize,
) -> anyhow::Result<Vec<DueTask>> {
    // The index hints keep MariaDB from choosing a filesort, which would make
    // SKIP LOCKED lock every pending row (seen on MariaDB 10.11: with a
    // filesort the first claimer locks them all).
    let pending = TaskStatus::Pending.code();
    let query = match selection {
        DueSelection::ByPriority => format!(
            "SELECT id, task_id, priority FROM processing_tasks FORCE INDEX (idx_queue) \
             WHERE status = {pending} AND queued_at IS NULL AND next_attempt_at <= NOW(3) \
             ORDER BY priority, id LIMIT {limit} FOR UPDATE SKIP LOCKED"
        ),
        DueSelection::WaitingLongerThan(secs) => format!(
            "SELECT id, task_id, priority FROM processing_tasks FORCE INDEX (idx_waiting_since) \
             WHERE status = {pending} AND queued_at IS NULL AND next_attempt_at <= NOW(3) - INTERVAL {secs} SECOND \
             ORDER BY next_attempt_at LIMIT {limit} FOR UPDATE SKIP LOCKED"
        ),
        DueSelection::QueuedLongerThan { seconds, above_priority } => format!(
            "SELECT id, task_id, priority FROM processing_tasks FORCE INDEX (idx_queue) \
             WHERE status = {pending} AND queued_at < NOW(3) - INTERVAL {seconds} SECOND AND priority > {above_priority} \
             ORDER BY queued_at LIMIT {limit} FOR UPDATE SKIP LOCKED"
        ),
    };
    diesel::sql_query(query).load(conn).await.context("selecting due tasks")
}

/// Marks tasks queued (`queued_at = NOW(3)`): their ids are in Redis.
pub async fn mark_queued(conn: &mut PooledConnection<'_>, ids: &[i64]) -> anyhow::Result<()> {
    for chunk in ids.chunks(BATCH_ROWS) {
        diesel::update(pt::table.filter(pt::id.eq_any(chunk)))
            .set(pt::queued_at.eq(now3().nullable()))
            .execute(conn)
            .await
            .context("marking tasks queued")?;
    }
    Ok(())
}

/// Forgets that pending tasks were pushed to Redis (`queued_at = NULL`), so
/// the scheduler pushes them again: used after Redis lost its data. Works
/// in batches; returns the number of tasks reset.
pub async fn forget_queued(conn: &mut PooledConnection<'_>) -> anyhow::Result<usize> {
    let pending = TaskStatus::Pending.code();
    let mut total = 0;
    loop {
        let n = diesel::sql_query(format!(
            "UPDATE processing_tasks SET queued_at = NULL \
             WHERE status = {pending} AND queued_at IS NOT NULL LIMIT {BATCH_ROWS}"
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
