//! Backfill's creation of tasks for stored videos (`-> pending`), one
//! transaction per batch, idempotent per video, within quotas.

use super::*;

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
/// created (`--dry-run`). Quotas are checked through `tally`, which a run
/// of batches keeps from one batch to the next so that each counts only
/// the tasks created since ([`crate::quotas::InFlightTally`]). Returns what
/// was created and why the rest was not.
pub async fn insert_tasks_for_idle_videos(
    conn: &mut PooledConnection<'_>,
    tasks: Vec<NewTask>,
    skip_completed: bool,
    max_new: usize,
    write: bool,
    check_quotas: bool,
    tally: &mut crate::quotas::InFlightTally,
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
        let quota_checked =
            write && check_quotas && task_type == crate::models::task_type::VIDEO_CLIP;
        if quota_checked {
            drop_over_quota(conn, &mut batch, tally).await?;
        }
        if write && !batch.created.is_empty() {
            insert_recorded(conn, &batch.created).await?;
        }
        if quota_checked {
            for (user_id, n) in per_user(&batch.created) {
                tally.created(conn, user_id, n).await?;
            }
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
    tally: &mut crate::quotas::InFlightTally,
) -> anyhow::Result<()> {
    let mut room = std::collections::HashMap::new();
    for (user_id, wanted) in per_user(&batch.created) {
        if let Some(left) = crate::quotas::monthly_videos_room(conn, user_id, wanted, tally).await?
        {
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

/// The number of tasks per user in `tasks`, by user id.
fn per_user(tasks: &[NewTask]) -> std::collections::BTreeMap<i64, i64> {
    let mut counts = std::collections::BTreeMap::new();
    for task in tasks {
        *counts.entry(task.user_id).or_default() += 1;
    }
    counts
}
