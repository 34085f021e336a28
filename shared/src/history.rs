//! All SQL on `task_status_history` (rows are written by triggers on
//! `processing_tasks`; see migration 3).

use crate::db::PooledConnection;
use crate::schema::{processing_tasks as pt, task_status_history as h};
use anyhow::Context;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
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
