//! Group commit of task outcomes.
//!
//! Each running task hands its outcome to the finisher and waits. The
//! finisher takes everything that has arrived (up to [`MAX_BATCH`]) and
//! commits it in one transaction (`shared::tasks::finish_tasks`), so at high
//! concurrency one round trip settles hundreds of tasks; at low concurrency
//! a batch is simply one task and nobody waits for a timer. After the
//! commit it writes the tasks' `task:status` keys in one Redis pipeline and
//! deletes the `video:meta` keys of the videos rows it changed.
//!
//! A failed commit (database away) is retried with backoff until it
//! succeeds or the process stops; leases may expire meanwhile, in which case
//! the commit is refused and the task runs again elsewhere: never twice in
//! the database.

use backon::{ExponentialBuilder, Retryable};
use shared::cache::Cache;
use shared::db::Pool;
use shared::models::TaskStatus;
use shared::queue::{CachedStatus, Queue};
use shared::tasks::{FinishReport, Finished, Lease, Outcome};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most outcomes per transaction.
const MAX_BATCH: usize = 512;

struct Request {
    task_id: String,
    lease: Lease,
    outcome: Outcome,
    reply: oneshot::Sender<Finished>,
}

/// Handle to submit outcomes.
#[derive(Clone)]
pub struct Finisher {
    sender: mpsc::Sender<Request>,
}

impl Finisher {
    /// Starts the commit loop and returns its handle.
    pub fn start(pool: Pool, queue: Queue, retry_base_millis: u64) -> Finisher {
        let (sender, receiver) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(commit_loop(pool, queue, receiver, retry_base_millis));
        Finisher { sender }
    }

    /// Commits one task's outcome (with others that arrive at the same time)
    /// and returns what happened to it.
    pub async fn finish(
        &self,
        task_id: &str,
        lease: Lease,
        outcome: Outcome,
    ) -> anyhow::Result<Finished> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Request { task_id: task_id.to_string(), lease, outcome, reply })
            .await
            .map_err(|_| anyhow::anyhow!("the finisher has stopped"))?;
        answer.await.map_err(|_| anyhow::anyhow!("the finisher dropped the outcome"))
    }
}

async fn commit_loop(
    pool: Pool,
    queue: Queue,
    mut receiver: mpsc::Receiver<Request>,
    retry_base_millis: u64,
) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let FinishReport { finished: report, changed_videos } =
            commit_with_retry(&pool, &batch, retry_base_millis).await;
        if let Err(e) = Cache::new(&queue).invalidate_videos(&changed_videos).await {
            tracing::warn!("video:meta not invalidated: {}", shared::one_line(&e));
        }
        let statuses: Vec<(String, CachedStatus)> = batch
            .iter()
            .zip(&report)
            .filter_map(|(request, finished)| {
                let cached = match finished {
                    Finished::Committed(status) => {
                        let progress = if *status == TaskStatus::Completed { 100 } else { 0 };
                        CachedStatus::now(*status, progress, Some(status.name()))
                    }
                    Finished::Requeued => CachedStatus::now(
                        TaskStatus::Pending,
                        0,
                        Some(shared::models::step::WAITING_TO_RETRY),
                    ),
                    Finished::LeaseLost => return None,
                };
                Some((request.task_id.clone(), cached))
            })
            .collect();
        if let Err(e) = queue.set_statuses(&statuses).await {
            tracing::warn!("task:status not updated: {}", shared::one_line(&e));
        }
        for (request, finished) in batch.into_iter().zip(report) {
            if finished == Finished::LeaseLost {
                tracing::warn!(task_id = %request.task_id, "lease lost before commit: result discarded");
            }
            let _ = request.reply.send(finished);
        }
    }
}

/// Commits the batch, retrying database errors with backoff (100 ms
/// doubling to 5 s, with jitter, for about ten minutes; then the outcomes
/// are reported lost so the tasks run again elsewhere).
async fn commit_with_retry(pool: &Pool, batch: &[Request], retry_base_millis: u64) -> FinishReport {
    let commit = || async {
        let items: Vec<(Lease, Outcome)> =
            batch.iter().map(|r| (r.lease.clone(), r.outcome.clone())).collect();
        let mut conn = shared::db::conn(pool).await?;
        shared::tasks::finish_batch(&mut conn, items, retry_base_millis).await
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_total_delay(Some(Duration::from_secs(600)))
        .without_max_times()
        .with_jitter();
    let result = commit
        .retry(backoff)
        .notify(|e, delay| {
            tracing::warn!(
                "commit of {} outcome(s) failed, retrying in {delay:?}: {}",
                batch.len(),
                shared::one_line(e)
            )
        })
        .await;
    result.unwrap_or_else(|e| {
        tracing::error!(
            "giving up committing {} outcome(s): {}",
            batch.len(),
            shared::one_line(&e)
        );
        FinishReport {
            finished: vec![Finished::LeaseLost; batch.len()],
            changed_videos: Vec::new(),
        }
    })
}
