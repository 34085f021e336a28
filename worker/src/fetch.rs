//! The apalis backend: a stream of claimed tasks fed from the Redis lists.
//!
//! apalis-redis cannot read our lists (its own key layout, no priorities),
//! so the worker uses apalis-core's `CustomBackend` with this fetcher:
//! BLMPOP up to "free slots" ids from `queue:high_priority`, else
//! `queue:video_processing` (strict priority, FIFO), claim them in the
//! database in one UPDATE (ids of tasks that are not pending and due are
//! dropped there), remember the leases, write their `task:status`, and hand
//! the tasks to apalis one by one.
//!
//! The stream never ends and never yields an error (either would stop the
//! apalis worker): failures are logged and retried with backoff.

use crate::held::HeldTasks;
use apalis::prelude::*;
use backon::{ExponentialBuilder, Retryable};
use futures_util::stream::BoxStream;
use futures_util::{sink, stream, SinkExt, StreamExt};
use shared::backoff::FailureBackoff;
use shared::db::Pool;
use shared::error::DatabaseFault;
use shared::models::TaskStatus;
use shared::queue::{CachedStatus, Popper, Queue};
use shared::tasks::ClaimedTask;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Longest a single BLMPOP waits before the fetcher looks around (idle
/// check, shutdown).
const POP_TIMEOUT: Duration = Duration::from_millis(500);

/// Everything the fetcher needs.
pub struct FetchState {
    pub pool: Pool,
    pub queue: Queue,
    pub popper: Popper,
    pub held: Arc<HeldTasks>,
    pub worker_id: String,
    pub lease_millis: u64,
    pub concurrency: usize,
    pub exit_when_idle: bool,
    /// Cancelled when `exit_when_idle` and no task is pending, queued or running.
    pub idle: CancellationToken,
    /// Cancelled at shutdown: claim nothing more.
    pub stopping: CancellationToken,
    claims: AtomicU64,
}

impl FetchState {
    /// Bundles the fetcher's dependencies.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pool: Pool,
        queue: Queue,
        popper: Popper,
        held: Arc<HeldTasks>,
        worker_id: String,
        lease_millis: u64,
        concurrency: usize,
        exit_when_idle: bool,
    ) -> Self {
        FetchState {
            pool,
            queue,
            popper,
            held,
            worker_id,
            lease_millis,
            concurrency,
            exit_when_idle,
            idle: CancellationToken::new(),
            stopping: CancellationToken::new(),
            claims: AtomicU64::new(0),
        }
    }

    /// Pops up to `max` ids and claims them; returns the tasks won (maybe
    /// none: timeout, or every id was stale).
    async fn fetch(&self, max: usize) -> anyhow::Result<Vec<ClaimedTask>> {
        let ids = self.popper.pop(max, POP_TIMEOUT).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let owner = format!("{}#{}", self.worker_id, self.claims.fetch_add(1, Ordering::Relaxed));
        let claimed = match self.claim(&ids, &owner).await {
            Ok(claimed) => claimed,
            Err(e) => {
                // The ids left Redis with the pop: put them back (at the head
                // of the high-priority list: they have waited already) so they
                // are not stranded until the scheduler's aging finds them.
                let entries: Vec<(&str, i8)> = ids.iter().map(|id| (id.as_str(), 0)).collect();
                if let Err(push) = self.queue.push(&entries, 0, true).await {
                    tracing::error!(
                        "claim failed and the ids could not be pushed back: {}",
                        shared::one_line(&push)
                    );
                }
                return Err(e);
            }
        };
        if claimed.len() < ids.len() {
            tracing::debug!(
                dropped = ids.len() - claimed.len(),
                "stale or duplicate queue entries dropped"
            );
            metrics::counter!("videoclip_queue_entries_dropped_total")
                .increment((ids.len() - claimed.len()) as u64);
        }
        for task in &claimed {
            metrics::counter!("videoclip_tasks_claimed_total", "task_type" => task.task_type.clone()).increment(1);
            self.held.insert(&task.task_id, task.lease());
        }
        let statuses: Vec<(String, CachedStatus)> = claimed
            .iter()
            .map(|t| {
                (
                    t.task_id.clone(),
                    CachedStatus::now(
                        TaskStatus::Processing,
                        0,
                        Some(shared::models::step::STARTED),
                    ),
                )
            })
            .collect();
        if let Err(e) = self.queue.set_statuses(&statuses).await {
            tracing::warn!("task:status not updated: {}", shared::one_line(&e));
        }
        Ok(claimed)
    }

    /// Claims `ids` for `owner`, retrying transient database errors (a
    /// deadlock with a scheduler's queueing transaction, a dropped
    /// connection: [`DatabaseFault`]) a few times, and nothing else. Retrying is safe: the claim UPDATE matches
    /// only pending rows, and the read-back finds every row `owner` won.
    async fn claim(&self, ids: &[String], owner: &str) -> anyhow::Result<Vec<ClaimedTask>> {
        let attempt = || async {
            let mut conn = shared::db::conn(&self.pool).await?;
            shared::tasks::claim_tasks(&mut conn, ids, owner, self.lease_millis).await
        };
        attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(20))
                    .with_max_delay(Duration::from_millis(500))
                    .with_max_times(4)
                    .with_jitter(),
            )
            // Only what running again can cure: a deadlock victim or a lost
            // connection. A bad row fails at once, with its whole chain.
            .when(|e| shared::error::database_fault(e) != DatabaseFault::Other)
            .notify(|e, delay| {
                tracing::debug!(?delay, "claim failed, retrying: {}", shared::one_line(e))
            })
            .await
    }

    /// True if no task is pending, queued or running anywhere (errors count
    /// as "not idle").
    async fn nothing_left(&self) -> bool {
        match shared::db::conn(&self.pool).await {
            Ok(mut conn) => matches!(shared::tasks::any_active(&mut conn).await, Ok(false)),
            Err(_) => false,
        }
    }
}

/// What the fetcher yields to apalis.
pub type TaskStream = BoxStream<'static, Result<Option<Task<ClaimedTask>>, BoxDynError>>;
type NoSink = sink::SinkMapErr<sink::Drain<Task<ClaimedTask>>, fn(Infallible) -> BoxDynError>;
/// The backend type (named, because `impl Backend` would hide its layer).
pub type QueueBackend = CustomBackend<ClaimedTask, Arc<FetchState>, TaskStream, NoSink>;

/// Builds the apalis backend around `state`.
pub fn backend(state: Arc<FetchState>) -> QueueBackend {
    BackendBuilder::new()
        .database(state)
        .fetcher(fetcher)
        // apalis insists on a sink; tasks are only ever created in the database.
        .sink(|_state, _config| {
            sink::drain::<Task<ClaimedTask>>()
                .sink_map_err((|e: Infallible| match e {}) as fn(Infallible) -> BoxDynError)
        })
        .build()
        .expect("the backend has a fetcher and a sink")
}

fn fetcher(state: &mut Arc<FetchState>, _config: &(), worker: &WorkerContext) -> TaskStream {
    let (state, worker) = (state.clone(), worker.clone());
    stream::unfold(VecDeque::<ClaimedTask>::new(), move |mut buffer| {
        let (state, worker) = (state.clone(), worker.clone());
        async move {
            let mut backoff = FailureBackoff::default();
            loop {
                if let Some(task) = buffer.pop_front() {
                    let id = TaskId::String(task.task_id.clone());
                    return Some((Ok(Some(TaskBuilder::new(task).task_id(id).build())), buffer));
                }
                if state.stopping.is_cancelled() {
                    // Shutting down: hand out nothing more; apalis stops polling.
                    std::future::pending::<()>().await;
                }
                // Polled only when a slot is free: take no more than the free slots.
                let free = state.concurrency.saturating_sub(worker.task_count()).max(1);
                match state.fetch(free).await {
                    Ok(batch) if !batch.is_empty() => {
                        backoff.succeeded();
                        buffer.extend(batch);
                    }
                    Ok(_) => {
                        backoff.succeeded();
                        if state.exit_when_idle
                            && worker.task_count() == 0
                            && state.nothing_left().await
                        {
                            // main.rs stops the worker; until then, nothing to hand out.
                            state.idle.cancel();
                            state.stopping.cancelled().await;
                        }
                    }
                    Err(e) => {
                        let (failures, delay) = backoff.failed();
                        tracing::warn!(
                            "fetch failed ({failures} in a row), retrying in {delay:?}: {}",
                            shared::one_line(&e)
                        );
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
    })
    .boxed()
}
