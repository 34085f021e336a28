//! All SQL on `task_status_history`.
//!
//! Rows are written by the triggers on `processing_tasks` (migrations 3 and
//! 12), so a status change made by any program is recorded in its own
//! transaction. The two hot protocol steps, claiming and finishing, write
//! their rows themselves instead: one `INSERT ... SELECT` per batch costs a
//! fraction of one trigger run per row. They do it inside a transaction
//! opened with [`app_records_history`], which tells the trigger to stay
//! silent for this connection, and close it with [`record_changes`] and
//! [`triggers_record_history`]; a connection that leaves such a transaction
//! early gets [`triggers_record_history`] from the caller on the error path,
//! and a dropped transaction breaks the connection, which the pool discards.

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

/// Tells the status-change trigger to stay silent on this connection: the
/// caller records its changes with [`record_changes`] before it commits.
/// Returns once the session variable is set.
pub async fn app_records_history(conn: &mut AsyncMysqlConnection) -> anyhow::Result<()> {
    diesel::sql_query("SET @videoclip_history_by_app = 1")
        .execute(conn)
        .await
        .context("handing status history to the application")?;
    Ok(())
}

/// Gives status history back to the trigger on this connection (the
/// connection's normal state). Returns once the session variable is unset.
pub async fn triggers_record_history(conn: &mut AsyncMysqlConnection) -> anyhow::Result<()> {
    diesel::sql_query("SET @videoclip_history_by_app = NULL")
        .execute(conn)
        .await
        .context("handing status history back to the trigger")?;
    Ok(())
}

/// Call after a transaction that began with [`app_records_history`]: if it
/// failed before its own [`triggers_record_history`], hands history back to
/// the trigger (best effort: a broken connection is discarded by the pool
/// anyway). Returns `result` unchanged.
pub async fn after_transaction<T>(
    conn: &mut AsyncMysqlConnection,
    result: anyhow::Result<T>,
) -> anyhow::Result<T> {
    if result.is_err() {
        let _ = triggers_record_history(conn).await;
    }
    result
}

/// Records the creation of the tasks with these public ids, as the trigger
/// would (`NULL -> status`, reason "created"). Returns the rows written.
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

/// Records, in one statement, that the tasks with these row ids just left
/// `from_status` for the status they have now, with the same attempt,
/// worker and reason the trigger would write. Returns the rows written.
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
