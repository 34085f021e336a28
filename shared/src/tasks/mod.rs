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
use crate::models::{step, NewResult, NewSegment, NewTask, TaskStatus, TaskSummary, VideoMetadata};
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
pub(crate) fn now3() -> diesel::expression::SqlLiteral<Timestamp> {
    sql::<Timestamp>("NOW(3)")
}

/// `NOW(3) + INTERVAL millis MICROSECOND*1000`, for lease expiries and backoff.
pub(crate) fn now_plus_millis(millis: u64) -> diesel::expression::SqlLiteral<Timestamp> {
    sql::<Timestamp>(&format!("NOW(3) + INTERVAL {} MICROSECOND", millis * 1000))
}

mod admin;
mod backfill;
mod claim;
mod create;
mod finish;
mod lease;
mod listing;
mod schedule;
mod views;

pub use admin::*;
pub use backfill::*;
pub use claim::*;
pub use create::*;
pub use finish::*;
pub use lease::*;
pub use listing::*;
pub use schedule::*;
pub use views::*;
