//! Claiming: `pending -> processing`. The guarded UPDATE here is the only
//! way into `processing`; whoever's UPDATE matched the row holds its
//! [`Lease`] (owner, expiry, and `attempts + 1` as the fencing token).

use super::*;

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
/// tasks won, in no particular order. The claim and its status history
/// (one row per task won, pending -> processing) commit together.
pub async fn claim_tasks(
    conn: &mut PooledConnection<'_>,
    task_ids: &[String],
    owner: &str,
    lease_millis: u64,
) -> anyhow::Result<Vec<ClaimedTask>> {
    if task_ids.is_empty() {
        return Ok(Vec::new());
    }
    conn.transaction(async |conn| -> anyhow::Result<Vec<ClaimedTask>> {
        // By `uk_task_id`, named: with few pending rows MariaDB preferred
        // `idx_waiting_since`, which locked that index's entry before the
        // row, the opposite order of the scheduler's queueing transaction
        // (row, then the index entry its `queued_at` update moves): a
        // deadlock whose victim, the scheduler, paused 110-190 ms before
        // retrying (BENCHMARKS.md, "Dispatch latency").
        let placeholders = vec!["?"; task_ids.len()].join(", ");
        let mut claim = diesel::sql_query(format!(
            "UPDATE processing_tasks FORCE INDEX (uk_task_id) SET status = {processing}, \
             lease_owner = ?, lease_expires_at = NOW(3) + INTERVAL {lease_micros} MICROSECOND, \
             attempts = attempts + 1, started_at = NOW(), progress = 0, current_step = ?, \
             error_message = NULL \
             WHERE task_id IN ({placeholders}) AND status = {pending} AND next_attempt_at <= NOW(3)",
            processing = TaskStatus::Processing.code(),
            pending = TaskStatus::Pending.code(),
            lease_micros = lease_millis * 1000,
        ))
        .into_boxed()
        .bind::<Text, _>(owner)
        .bind::<Text, _>(step::STARTED);
        for id in task_ids {
            claim = claim.bind::<Text, _>(id);
        }
        let won = claim.execute(conn).await.context("claiming tasks")?;
        let claimed = if won == 0 {
            Vec::new()
        } else {
            pt::table
                .filter(pt::task_id.eq_any(task_ids))
                .filter(pt::lease_owner.eq(owner))
                .filter(pt::status.eq(TaskStatus::Processing.code()))
                .select(ClaimedTask::as_select())
                .load(conn)
                .await
                .context("reading claimed tasks")?
        };
        let ids: Vec<i64> = claimed.iter().map(|t| t.id).collect();
        crate::history::record_changes(conn, TaskStatus::Pending.code(), &ids).await?;
        Ok(claimed)
    })
    .await
}
