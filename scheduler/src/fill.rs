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
        let to_front = !matches!(selection, DueSelection::ByPriority);
        push_and_mark(conn, &due, queue, high_priority_threshold, to_front, None).await?;
        Ok(due)
    })
    .await
}

/// Step 4 for a backlog: pushes up to `2 * limit` due tasks by priority in
/// two transactions that overlap, so MariaDB works on two cores. The first
/// locks its `limit` rows; only if that batch is full does a second
/// transaction, on a connection from `pool`, lock the next `limit` rows
/// (`SKIP LOCKED` passes over the first batch's, and under READ COMMITTED
/// neither waits for the other) while the first pushes and marks its own.
/// The second batch's ids reach Redis only after the first's, so the lists
/// keep the database's order. Each transaction keeps the order of the
/// module doc, so a failure of either loses nothing. Returns the number of
/// tasks pushed.
pub async fn queue_backlog_by_priority(
    conn: &mut PooledConnection<'_>,
    pool: &shared::db::Pool,
    limit: usize,
    queue: &Queue,
    high_priority_threshold: i8,
) -> anyhow::Result<usize> {
    conn.transaction(async move |conn| -> anyhow::Result<usize> {
        let first = tasks::lock_due_tasks(conn, DueSelection::ByPriority, limit).await?;
        if first.len() < limit {
            push_and_mark(conn, &first, queue, high_priority_threshold, false, None).await?;
            return Ok(first.len());
        }
        let (first_pushed, pushed_first) = tokio::sync::oneshot::channel::<()>();
        let mine = async {
            push_and_mark(conn, &first, queue, high_priority_threshold, false, Some(first_pushed))
                .await
        };
        let next = async {
            let mut other = shared::db::conn(pool).await?;
            other
                .transaction(async move |other| -> anyhow::Result<usize> {
                    let next =
                        tasks::lock_due_tasks(other, DueSelection::ByPriority, limit).await?;
                    // An error here means the first batch's push failed (its
                    // sender was dropped): push nothing out of order.
                    pushed_first.await.map_err(|_| anyhow::anyhow!("the first batch failed"))?;
                    push_and_mark(other, &next, queue, high_priority_threshold, false, None)
                        .await?;
                    Ok(next.len())
                })
                .await
        };
        let (mine, next) = tokio::join!(mine, next);
        mine?;
        Ok(first.len()
            + next.unwrap_or_else(|e| {
                tracing::warn!("second batch of the fill not pushed: {}", shared::one_line(&e));
                0
            }))
    })
    .await
}

/// Pushes `due` (to the head of the high-priority list with `to_front`,
/// else to the tail of their priority's list), tells `pushed` (if given)
/// once the ids are in Redis, and marks them queued, inside the caller's
/// transaction.
async fn push_and_mark(
    conn: &mut PooledConnection<'_>,
    due: &[DueTask],
    queue: &Queue,
    high_priority_threshold: i8,
    to_front: bool,
    pushed: Option<tokio::sync::oneshot::Sender<()>>,
) -> anyhow::Result<()> {
    if !due.is_empty() {
        let ids: Vec<(&str, i8)> = due.iter().map(|t| (t.task_id.as_str(), t.priority)).collect();
        queue.push(&ids, high_priority_threshold, to_front).await?;
    }
    if let Some(pushed) = pushed {
        let _ = pushed.send(());
    }
    if !due.is_empty() {
        let rows: Vec<i64> = due.iter().map(|t| t.id).collect();
        tasks::mark_queued(conn, &rows).await?;
    }
    Ok(())
}
