//! Finishing: `processing -> completed | failed | pending` (retry or
//! hand-back), only for the holder of an unexpired lease, with the results
//! in the same transaction.

use super::*;

/// How a worker's run of a task ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Done: write these rows and mark the task completed.
    Completed(Box<Completion>),
    /// Failed. `retryable` failures go back to pending with a backoff until
    /// `max_retries` is used up; the others fail at once.
    Failed { reason: String, retryable: bool },
    /// Not run (worker shutting down): back to pending at once, no retry
    /// counted.
    HandedBack,
}

/// Everything a completed task writes, in its completing transaction.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    pub results: Vec<NewResult>,
    pub segments: Vec<NewSegment>,
    /// The probed metadata of the task's video, with the video's id.
    pub video: Option<(i64, VideoMetadata)>,
    /// The user whose `monthly_videos` quota this completion counts against.
    pub quota_user: Option<i64>,
    /// `(templates.id, uses)`: templates applied to this task's clips, for
    /// `usage_count` (counted once, with the completion).
    pub template_uses: Vec<(i64, i32)>,
    /// A download package this completion makes ready (`download_package`).
    pub download: Option<crate::downloads::DownloadReady>,
}

impl Outcome {
    /// A completion that writes only these result rows.
    pub fn completed(results: Vec<NewResult>) -> Outcome {
        Outcome::Completed(Box::new(Completion { results, ..Completion::default() }))
    }
}

/// What [`finish_tasks`] did with one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// The task now has this status.
    Committed(TaskStatus),
    /// Back to pending, to run again (a retry or a hand-back).
    Requeued,
    /// The lease was no longer ours (expired, taken over, cancelled):
    /// nothing was written.
    LeaseLost,
}

/// What [`finish_batch`] did.
#[derive(Debug, Clone, Default)]
pub struct FinishReport {
    /// One per input, in input order.
    pub finished: Vec<Finished>,
    /// The `videos` rows the commit changed (metadata of a completion, or
    /// failed with their task): their `video:meta` keys are stale now.
    pub changed_videos: Vec<i64>,
}

/// A row as locked by [`finish_tasks`] to check its lease.
#[derive(QueryableByName)]
struct LockedTask {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    lease_owner: Option<String>,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = TinyInt)]
    status: i8,
    #[diesel(sql_type = TinyInt)]
    retry_count: i8,
    #[diesel(sql_type = TinyInt)]
    max_retries: i8,
    #[diesel(sql_type = Bool)]
    lease_valid: bool,
    #[diesel(sql_type = BigInt)]
    video_id: i64,
    #[diesel(sql_type = Text)]
    task_type: String,
}

/// Backoff before retry number `retry` (1-based): exponential from
/// `base_millis`, capped at an hour, with full jitter in its upper half so a
/// burst of failures does not come back as a burst.
pub fn backoff_millis(retry: u32, base_millis: u64) -> u64 {
    let exp = base_millis.saturating_mul(1u64 << retry.saturating_sub(1).min(20)).min(3_600_000);
    let jitter = fastrand::f64();
    exp / 2 + ((exp / 2) as f64 * jitter) as u64
}

/// Finishes a batch of tasks in one transaction: locks their rows, keeps
/// those whose lease is still the caller's (same owner and token, status
/// processing, not expired), then writes every completion with its result
/// rows, every failure and every hand-back, and their status history (one
/// row per task whose lease held). Returns one [`Finished`] per
/// input, in input order. `retry_base_millis` is the first retry's backoff.
pub async fn finish_tasks(
    conn: &mut PooledConnection<'_>,
    batch: Vec<(Lease, Outcome)>,
    retry_base_millis: u64,
) -> anyhow::Result<Vec<Finished>> {
    Ok(finish_batch(conn, batch, retry_base_millis).await?.finished)
}

/// [`finish_tasks`], also saying which videos rows the commit changed.
pub async fn finish_batch(
    conn: &mut PooledConnection<'_>,
    batch: Vec<(Lease, Outcome)>,
    retry_base_millis: u64,
) -> anyhow::Result<FinishReport> {
    if batch.is_empty() {
        return Ok(FinishReport::default());
    }
    conn.transaction(async move |conn| -> anyhow::Result<FinishReport> {
        let ids: Vec<String> = batch.iter().map(|(lease, _)| lease.id.to_string()).collect();
        let locked: Vec<LockedTask> = diesel::sql_query(format!(
            "SELECT id, lease_owner, attempts, status, retry_count, max_retries, video_id, task_type, \
             COALESCE(lease_expires_at > NOW(3), FALSE) AS lease_valid \
             FROM processing_tasks WHERE id IN ({}) FOR UPDATE",
            ids.join(",")
        ))
        .load(conn)
        .await
        .context("locking finished tasks")?;
        let locked: std::collections::HashMap<i64, LockedTask> = locked.into_iter().map(|t| (t.id, t)).collect();

        let mut report = Vec::with_capacity(batch.len());
        let mut completed_ids = Vec::new();
        let mut results = Vec::new();
        let mut segments = Vec::new();
        let mut video_updates = Vec::new();
        let mut quota_users = Vec::new();
        let mut template_uses = Vec::new();
        let mut downloads = Vec::new();
        let mut failed_videos = Vec::new();
        let mut changed_ids = Vec::new();
        for (lease, outcome) in batch {
            let row = locked.get(&lease.id).filter(|row| {
                row.status == TaskStatus::Processing.code()
                    && row.lease_owner.as_deref() == Some(lease.owner.as_str())
                    && row.attempts == lease.token
                    && row.lease_valid
            });
            let Some(row) = row else {
                report.push(Finished::LeaseLost);
                continue;
            };
            changed_ids.push(lease.id);
            match outcome {
                Outcome::Completed(completion) => {
                    let completion = *completion;
                    completed_ids.push(lease.id);
                    results.extend(completion.results);
                    segments.extend(completion.segments);
                    video_updates.extend(completion.video);
                    quota_users.extend(completion.quota_user);
                    template_uses.extend(completion.template_uses);
                    downloads.extend(completion.download);
                    report.push(Finished::Committed(TaskStatus::Completed));
                }
                Outcome::HandedBack => {
                    diesel::update(pt::table.find(lease.id))
                        .set((
                            pt::status.eq(TaskStatus::Pending.code()),
                            pt::queued_at.eq(None::<NaiveDateTime>),
                            pt::lease_expires_at.eq(None::<NaiveDateTime>),
                            pt::current_step.eq(step::HANDED_BACK),
                            pt::next_attempt_at.eq(now3()),
                        ))
                        .execute(conn)
                        .await
                        .context("handing a task back")?;
                    report.push(Finished::Requeued);
                }
                Outcome::Failed { reason, retryable } => {
                    let retries_left = row.retry_count < row.max_retries;
                    if retryable && retries_left {
                        let retry = (row.retry_count as u32) + 1;
                        diesel::update(pt::table.find(lease.id))
                            .set((
                                pt::status.eq(TaskStatus::Pending.code()),
                                pt::queued_at.eq(None::<NaiveDateTime>),
                                pt::lease_expires_at.eq(None::<NaiveDateTime>),
                                pt::retry_count.eq(sql::<TinyInt>("retry_count + 1")),
                                pt::next_attempt_at.eq(now_plus_millis(backoff_millis(retry, retry_base_millis))),
                                pt::current_step.eq(step::WAITING_TO_RETRY),
                                pt::error_message.eq(&reason),
                            ))
                            .execute(conn)
                            .await
                            .context("scheduling a retry")?;
                        report.push(Finished::Requeued);
                    } else {
                        let message = if retryable {
                            format!("{reason} (gave up after {} retries)", row.retry_count)
                        } else {
                            reason
                        };
                        diesel::update(pt::table.find(lease.id))
                            .set((
                                pt::status.eq(TaskStatus::Failed.code()),
                                pt::lease_expires_at.eq(None::<NaiveDateTime>),
                                pt::completed_at.eq(sql::<Nullable<Timestamp>>("NOW()")),
                                pt::actual_duration.eq(sql::<Nullable<Integer>>("TIMESTAMPDIFF(SECOND, started_at, NOW())")),
                                pt::current_step.eq(step::FAILED),
                                pt::error_message.eq(&message),
                            ))
                            .execute(conn)
                            .await
                            .context("marking a task failed")?;
                        if row.task_type == crate::models::task_type::VIDEO_CLIP {
                            failed_videos.push(row.video_id);
                        }
                        report.push(Finished::Committed(TaskStatus::Failed));
                    }
                }
            }
        }
        for chunk in completed_ids.chunks(BATCH_ROWS) {
            diesel::update(pt::table.filter(pt::id.eq_any(chunk)))
                .set((
                    pt::status.eq(TaskStatus::Completed.code()),
                    pt::progress.eq(100),
                    pt::current_step.eq(step::COMPLETED),
                    pt::lease_expires_at.eq(None::<NaiveDateTime>),
                    pt::completed_at.eq(sql::<Nullable<Timestamp>>("NOW()")),
                    pt::actual_duration.eq(sql::<Nullable<Integer>>("TIMESTAMPDIFF(SECOND, started_at, NOW())")),
                ))
                .execute(conn)
                .await
                .context("marking tasks completed")?;
        }
        for chunk in results.chunks(BATCH_ROWS) {
            diesel::insert_into(processing_results::table)
                .values(chunk)
                .execute(conn)
                .await
                .context("writing processing_results rows")?;
        }
        for chunk in segments.chunks(BATCH_ROWS) {
            diesel::insert_into(video_segments::table)
                .values(chunk)
                .execute(conn)
                .await
                .context("writing video_segments rows")?;
        }
        crate::quotas::count_completed(conn, &quota_users).await?;
        crate::templates::count_usage(conn, &template_uses).await?;
        for (video_id, metadata) in &video_updates {
            diesel::update(videos::table.find(*video_id))
                .set(metadata)
                .execute(conn)
                .await
                .context("writing video metadata")?;
        }
        for ready in &downloads {
            if !crate::downloads::mark_ready(conn, ready).await? {
                tracing::warn!(
                    download_id = %ready.download_id,
                    "the download expired while its package was built: {} is left to enqueue gc",
                    ready.file_path
                );
            }
        }
        if !failed_videos.is_empty() {
            diesel::update(videos::table.filter(videos::id.eq_any(&failed_videos)))
                .set(videos::status.eq(crate::videos::status::FAILED))
                .execute(conn)
                .await
                .context("marking videos failed")?;
        }
        crate::history::record_changes(conn, TaskStatus::Processing.code(), &changed_ids).await?;
        let mut changed_videos: Vec<i64> =
            video_updates.iter().map(|(id, _)| *id).chain(failed_videos).collect();
        changed_videos.sort_unstable();
        changed_videos.dedup();
        Ok(FinishReport { finished: report, changed_videos })
    })
    .await
}
