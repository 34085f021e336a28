//! All SQL on `user_quotas`. The one quota enforced today is
//! `monthly_videos`: how many video tasks a user may have completed per
//! period (`reset_period`: daily, weekly or monthly).
//!
//! Checked when tasks are created (completed this period, plus those still
//! in flight, plus the new ones must fit), counted when a video task completes (in the
//! completing transaction, so a task counts exactly once), and reset lazily:
//! the first check in a new period zeroes `used_quota`.
//!
//! Periods are calendar periods of the database server's clock (a day from
//! midnight, a week from Monday, a month from the 1st), and a reset records
//! the start of the period, not the time of the check: a quota checked late
//! in a month still resets on the 1st of the next, so periods never drift.

use crate::db::PooledConnection;
use crate::models::{task_type, TaskStatus};
use crate::schema::{processing_tasks as pt, user_quotas as q};
use crate::BadInput;
use anyhow::Context;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use diesel_async::RunQueryDsl;

/// The quota on completed video tasks.
pub const MONTHLY_VIDEOS: &str = "monthly_videos";

/// Reset periods `reset_period` may hold.
pub const PERIODS: &[&str] = &["daily", "weekly", "monthly"];

/// SQL: the start of the row's current calendar period (midnight today, of
/// this week's Monday, of this month's 1st).
const PERIOD_START: &str = "(CASE reset_period \
       WHEN 'daily' THEN CAST(CURDATE() AS DATETIME) \
       WHEN 'weekly' THEN CAST(CURDATE() - INTERVAL WEEKDAY(CURDATE()) DAY AS DATETIME) \
       ELSE CAST(CURDATE() - INTERVAL (DAYOFMONTH(CURDATE()) - 1) DAY AS DATETIME) END)";

/// SQL condition: this row was last reset before its current period began.
fn period_ended() -> diesel::expression::SqlLiteral<Bool> {
    sql::<Bool>(&format!("(last_reset_at IS NULL OR last_reset_at < {PERIOD_START})"))
}

/// Sets (creates or replaces) a user's `monthly_videos` quota.
pub async fn set_monthly_videos(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
    total: i64,
    period: &str,
) -> anyhow::Result<()> {
    if !PERIODS.contains(&period) {
        return Err(BadInput::new(format!(
            "reset period must be one of {PERIODS:?}, not {period:?}"
        ))
        .into());
    }
    diesel::insert_into(q::table)
        .values((
            q::user_id.eq(user_id),
            q::quota_type.eq(MONTHLY_VIDEOS),
            q::total_quota.eq(total),
            q::reset_period.eq(period),
        ))
        .on_conflict(diesel::dsl::DuplicatedKeys)
        .do_update()
        .set((q::total_quota.eq(total), q::reset_period.eq(period)))
        .execute(conn)
        .await
        .context("setting a quota")?;
    Ok(())
}

/// Checks that `user` may create `new` more video tasks. No quota row means
/// no limit. Returns [`BadInput`] naming the quota when it would be exceeded.
///
/// Call it inside the transaction that creates the tasks: it locks the
/// quota row (`SELECT … FOR UPDATE`), so two enqueues for one user are
/// decided one after the other and cannot both take the last video; the
/// second sees the first's tasks once it commits (READ COMMITTED sessions).
pub async fn check_monthly_videos(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
    username: &str,
    new: i64,
) -> anyhow::Result<()> {
    let Some((total, used, in_flight, period)) = lock_monthly_videos(conn, user_id).await? else {
        return Ok(());
    };
    if used + in_flight + new > total {
        return Err(BadInput::new(format!(
            "quota {MONTHLY_VIDEOS} of user {username:?} exceeded: {used} used + {in_flight} in progress + {new} new > {total} ({period}; --force to override)"
        ))
        .into());
    }
    Ok(())
}

/// What a long run of batches (backfill) remembers of each user's video
/// tasks in flight, so that a batch counts only the tasks created since the
/// previous one instead of all of them: counting them all in every batch
/// made a backfill of a million videos quadratic (1,000 rows/s after
/// 300,000, BENCHMARKS.md "Enqueue throughput").
///
/// The remembered count can only be too high (tasks that finished since
/// leave it, which frees room), except for failed tasks moved back into
/// flight by `enqueue retry` during the run, which keep their old ids; so
/// whenever a batch would be cut by the quota, the count is taken again in
/// full before deciding ([`monthly_videos_room`]).
#[derive(Debug, Default)]
pub struct InFlightTally {
    users: std::collections::HashMap<i64, Tally>,
}

#[derive(Debug, Clone, Copy)]
struct Tally {
    /// Video tasks of the user in flight, as of the last count plus those
    /// created since.
    in_flight: i64,
    /// Every task of the user with an id up to this one is in `in_flight`
    /// (if it was in flight when counted).
    counted_up_to: i64,
}

impl InFlightTally {
    /// Records that this transaction created `n` video tasks for `user_id`
    /// (call it after their INSERT, in the same transaction).
    pub async fn created(
        &mut self,
        conn: &mut PooledConnection<'_>,
        user_id: i64,
        n: i64,
    ) -> anyhow::Result<()> {
        if let Some(tally) = self.users.get_mut(&user_id) {
            tally.in_flight += n;
            tally.counted_up_to = max_task_id(conn, user_id).await?;
        }
        Ok(())
    }
}

/// How many more video tasks `user_id` may create now (`None`: no limit),
/// with the quota row locked until the caller's transaction ends, counting
/// in-flight tasks incrementally through `tally` ([`InFlightTally`]): in
/// full the first time and whenever fewer than `wanted` would fit, else
/// only the tasks created since the tally's last look.
pub async fn monthly_videos_room(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
    wanted: i64,
    tally: &mut InFlightTally,
) -> anyhow::Result<Option<i64>> {
    let Some((total, used, _)) = lock_quota_row(conn, user_id).await? else { return Ok(None) };
    if let Some(known) = tally.users.get(&user_id).copied() {
        let since = count_in_flight(conn, user_id, Some(known.counted_up_to)).await?;
        let left = total - used - known.in_flight - since;
        if left >= wanted {
            tally.users.insert(
                user_id,
                Tally {
                    in_flight: known.in_flight + since,
                    counted_up_to: max_task_id(conn, user_id).await?,
                },
            );
            return Ok(Some(left));
        }
    }
    let counted_up_to = max_task_id(conn, user_id).await?;
    let in_flight = count_in_flight(conn, user_id, None).await?;
    tally.users.insert(user_id, Tally { in_flight, counted_up_to });
    Ok(Some((total - used - in_flight).max(0)))
}

/// The highest `processing_tasks.id` of the user's tasks (0 without any).
async fn max_task_id(conn: &mut PooledConnection<'_>, user_id: i64) -> anyhow::Result<i64> {
    let max: Option<i64> = pt::table
        .filter(pt::user_id.eq(user_id))
        .select(diesel::dsl::max(pt::id))
        .get_result(conn)
        .await
        .context("reading a user's newest task")?;
    Ok(max.unwrap_or(0))
}

/// The user's video tasks pending or processing (only those with an id
/// above `after`, if given).
async fn count_in_flight(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
    after: Option<i64>,
) -> anyhow::Result<i64> {
    let mut query = pt::table
        .filter(pt::user_id.eq(user_id))
        .filter(pt::task_type.eq(task_type::VIDEO_CLIP))
        .filter(pt::status.le(TaskStatus::Processing.code()))
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(pt::id.gt(after));
    }
    query.count().get_result(conn).await.context("counting a user's active tasks")
}

/// Locks the user's quota row (resetting it first if its period ended) and
/// returns (total, used, period), or `None` without a quota row.
async fn lock_quota_row(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
) -> anyhow::Result<Option<(i64, i64, String)>> {
    // Lazy reset, to the start of the current period.
    diesel::update(
        q::table
            .filter(q::user_id.eq(user_id))
            .filter(q::quota_type.eq(MONTHLY_VIDEOS))
            .filter(period_ended()),
    )
    .set((q::used_quota.eq(0), q::last_reset_at.eq(sql(PERIOD_START))))
    .execute(conn)
    .await
    .context("resetting a quota")?;
    let quota: Option<(i64, i64, String)> = q::table
        .filter(q::user_id.eq(user_id))
        .filter(q::quota_type.eq(MONTHLY_VIDEOS))
        .select((q::total_quota, q::used_quota, q::reset_period))
        .for_update()
        .first(conn)
        .await
        .optional()
        .context("locking a quota")?;
    Ok(quota)
}

/// Locks the user's quota row and returns (total, used, in flight, period),
/// or `None` without a quota row.
async fn lock_monthly_videos(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
) -> anyhow::Result<Option<(i64, i64, i64, String)>> {
    let Some((total, used, period)) = lock_quota_row(conn, user_id).await? else {
        return Ok(None);
    };
    let in_flight = count_in_flight(conn, user_id, None).await?;
    Ok(Some((total, used, in_flight, period)))
}

/// Counts completed video tasks against their users' quotas: `user_ids`
/// holds one entry per completed task. Part of the completing transaction.
pub async fn count_completed(
    conn: &mut PooledConnection<'_>,
    user_ids: &[i64],
) -> anyhow::Result<()> {
    let mut per_user: std::collections::BTreeMap<i64, i64> = Default::default();
    for id in user_ids {
        *per_user.entry(*id).or_default() += 1;
    }
    for (user_id, n) in per_user {
        diesel::update(
            q::table.filter(q::user_id.eq(user_id)).filter(q::quota_type.eq(MONTHLY_VIDEOS)),
        )
        .set(q::used_quota.eq(q::used_quota + n))
        .execute(conn)
        .await
        .context("counting a completed task against its quota")?;
    }
    Ok(())
}
