//! All SQL on `task_status_history`: every status change of a task, with
//! time, worker and reason.
//!
//! Each status change has one owner function in `crate::tasks` (create,
//! backfill, claim, finish, reap, cancel, retry), and that function writes
//! the change's history rows itself, with [`record_created`] or
//! [`record_changes`], in the transaction of the change: one
//! `INSERT ... SELECT` per batch. Until migration 12 triggers on
//! `processing_tasks` wrote them; their mere presence cost a fifth of
//! MariaDB's CPU per no-op task (BENCHMARKS.md), so they are gone, and a
//! program that changes `status` with its own SQL is not recorded.

use crate::db::PooledConnection;
use crate::schema::{processing_tasks as pt, task_status_history as h};
use anyhow::Context;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncMysqlConnection, RunQueryDsl};
use serde::Serialize;

/// One status change of a task.
#[derive(Debug, Clone, Queryable, Serialize)]
pub struct StatusChange {
    pub from_status: Option<i8>,
    pub to_status: i8,
    pub attempt: i32,
    pub worker: Option<String>,
    pub reason: Option<String>,
    pub changed_at: NaiveDateTime,
}

/// Every status change of the task with this public id, oldest first.
pub async fn task_history(
    conn: &mut PooledConnection<'_>,
    task_id: &str,
) -> anyhow::Result<Vec<StatusChange>> {
    h::table
        .inner_join(pt::table.on(pt::id.eq(h::task_id)))
        .filter(pt::task_id.eq(task_id))
        .order((h::changed_at, h::id))
        .select((h::from_status, h::to_status, h::attempt, h::worker, h::reason, h::changed_at))
        .load(conn)
        .await
        .context("reading task history")
}

/// Records the creation of the tasks with these public ids (`NULL ->
/// status`, reason "created"). Returns the rows written.
pub async fn record_created(
    conn: &mut AsyncMysqlConnection,
    task_ids: &[&str],
) -> anyhow::Result<usize> {
    use diesel::dsl::sql;
    use diesel::sql_types::{Nullable, Text, TinyInt};
    let mut written = 0;
    for chunk in task_ids.chunks(crate::tasks::BATCH_ROWS) {
        let created = pt::table.filter(pt::task_id.eq_any(chunk)).select((
            pt::id,
            sql::<Nullable<TinyInt>>("NULL"),
            pt::status,
            pt::attempts,
            sql::<Nullable<Text>>("NULL"),
            sql::<Nullable<Text>>("'created'"),
        ));
        written += diesel::insert_into(h::table)
            .values(created)
            .into_columns((
                h::task_id,
                h::from_status,
                h::to_status,
                h::attempt,
                h::worker,
                h::reason,
            ))
            .execute(conn)
            .await
            .context("recording created tasks")?;
    }
    Ok(written)
}

/// Records, in one statement per [`crate::tasks::BATCH_ROWS`] ids, that the
/// tasks with these row ids just left `from_status` for the status they
/// have now: their attempt, lease owner, and `step: error` as the reason.
/// Ids whose status is still `from_status` get no row. Returns the rows
/// written.
pub async fn record_changes(
    conn: &mut AsyncMysqlConnection,
    from_status: i8,
    ids: &[i64],
) -> anyhow::Result<usize> {
    let mut written = 0;
    for chunk in ids.chunks(crate::tasks::BATCH_ROWS) {
        let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
        written += diesel::sql_query(format!(
            "INSERT INTO task_status_history (task_id, from_status, to_status, attempt, worker, reason) \
             SELECT id, {from_status}, status, attempts, lease_owner, \
                    LEFT(CONCAT_WS(': ', current_step, error_message), 500) \
             FROM processing_tasks WHERE id IN ({}) AND status <> {from_status}",
            list.join(",")
        ))
        .execute(conn)
        .await
        .context("recording status changes")?;
    }
    Ok(written)
}

/// [`record_changes`] for changes from several statuses: `(row id, status
/// before)` pairs, one statement per status before. Returns the rows
/// written.
pub async fn record_changes_from(
    conn: &mut AsyncMysqlConnection,
    changes: &[(i64, i8)],
) -> anyhow::Result<usize> {
    let mut by_status = std::collections::BTreeMap::<i8, Vec<i64>>::new();
    for &(id, from_status) in changes {
        by_status.entry(from_status).or_default().push(id);
    }
    let mut written = 0;
    for (from_status, ids) in by_status {
        written += record_changes(conn, from_status, &ids).await?;
    }
    Ok(written)
}
