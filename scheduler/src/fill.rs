//! Moving due tasks from the database into Redis: the one place where a
//! task's id enters a queue list.
//!
//! Ordering, and why it loses nothing: in one transaction the scheduler
//! (1) locks the due rows (`FOR UPDATE SKIP LOCKED`), (2) pushes their ids
//! to Redis, (3) sets `queued_at`, (4) commits.
//! - If the push fails, the transaction rolls back: nothing is marked, the
//!   rows stay due and the next tick pushes them again.
//! - If the commit fails after the push, the ids are in Redis but the rows
//!   are not marked: they are pushed again later. A duplicate id is
//!   harmless, because only the claim UPDATE moves a row to processing and
//!   it matches once.
//! - A worker that pops an id before the commit and tries to claim it waits
//!   on the row lock, then sees the committed row and claims it: no entry is
//!   dropped by that race.
//!
//! Pushing after the commit instead would open a window where a crash
//! leaves a row marked queued with no id in Redis, recovered only by the
//! aging pass much later.

use diesel_async::AsyncConnection;
use shared::db::PooledConnection;
use shared::queue::Queue;
use shared::tasks::{self, DueSelection, DueTask};

/// Locks up to `limit` due tasks of `selection`, pushes their ids (aged and
/// re-pushed ones to the head of the high-priority list, the rest to the
/// tail of their priority's list), marks them queued and commits. Returns
/// the tasks pushed.
pub async fn queue_due_tasks(
    conn: &mut PooledConnection<'_>,
    selection: DueSelection,
    limit: usize,
    queue: &Queue,
    high_priority_threshold: i8,
) -> anyhow::Result<Vec<DueTask>> {
    conn.transaction(async move |conn| -> anyhow::Result<Vec<DueTask>> {
        let due = tasks::lock_due_tasks(conn, selection, limit).await?;
        if due.is_empty() {
            return Ok(due);
        }
        let to_front = !matches!(selection, DueSelection::ByPriority);
        let ids: Vec<(&str, i8)> = due.iter().map(|t| (t.task_id.as_str(), t.priority)).collect();
        queue.push(&ids, high_priority_threshold, to_front).await?;
        let rows: Vec<i64> = due.iter().map(|t| t.id).collect();
        tasks::mark_queued(conn, &rows).await?;
        Ok(due)
    })
    .await
}
