//! The scheduler's loop. Each tick, in this order:
//!
//! 1. **Redis lost its data?** If `queue:epoch` is missing, or names
//!    another replication history than the server's (a Sentinel failover
//!    promoted a replica that may lack the last pushes), every pending
//!    task's `queued_at` is cleared so it is pushed again (the database is the
//!    source of truth), then the marker is set.
//! 2. **Reap** running tasks whose lease expired: back to pending with
//!    `retry_count + 1`, or failed once `max_retries` is used up.
//! 3. **Age**: pending tasks that waited longer than the maximum wait in the
//!    database, or in the normal list, go to the head of
//!    `queue:high_priority`; so do queued tasks of any priority after four
//!    times the maximum wait (their entry was lost with a dying worker).
//! 4. **Fill** the lists with due tasks by priority then age, keeping about
//!    two seconds of the workers' recent consumption waiting in Redis (at
//!    least `min_queued`). Keeping Redis short keeps priorities meaningful:
//!    the backlog stays ordered in the database, where a new high-priority
//!    task overtakes it, and a million pending rows cost nothing but index
//!    pages. With room for two batches, a full first batch is followed by
//!    a second on another connection while the first is pushed and
//!    marked (`fill::queue_backlog_by_priority`): a backlog drains on two
//!    of MariaDB's cores.
//!
//! Ticks come every `--tick-ms`, and at once when a program that committed
//! new tasks announces them on `queue:new_tasks` (`NewTaskSignal`): a new
//! task waits for a tick's SQL, not for the tick interval. A lost
//! announcement costs at most one interval.
//!
//! Errors (database or Redis down) are logged and the tick is retried with
//! backoff; the scheduler never exits on them.

use shared::db::Pool;
use shared::queue::{CachedStatus, NewTaskSignal, Queue};
use shared::replica::ReadPool;
use shared::shutdown::Shutdown;
use shared::tasks::{self, DueSelection};
use std::time::{Duration, Instant};

/// Rows per scheduler statement.
const BATCH: usize = tasks::BATCH_ROWS;

/// How the loop behaves.
pub struct Options {
    pub high_priority_threshold: i8,
    pub max_wait_seconds: u32,
    pub min_queued: u64,
    pub tick: Duration,
    pub exit_when_idle: bool,
}

/// What one tick did.
#[derive(Default, Debug)]
struct TickReport {
    pushed: usize,
    aged: usize,
    reaped: usize,
    failed_by_reaper: usize,
    /// True when the fill stopped at the batch limit, not for lack of work.
    more_waiting: bool,
}

/// Tracks how fast workers drain the lists, to size the Redis buffer.
struct DrainRate {
    last_depth: u64,
    last_at: Instant,
    per_second: f64,
}

impl DrainRate {
    /// Updates the rate from the depth now and what was pushed since the
    /// last observation; returns the target depth.
    fn observe(&mut self, depth: u64, min_queued: u64) -> u64 {
        let elapsed = self.last_at.elapsed().as_secs_f64();
        // Back-to-back ticks (a large backlog) are too close to measure.
        if elapsed >= 0.1 {
            let drained = self.last_depth.saturating_sub(depth) as f64;
            self.per_second = 0.7 * self.per_second + 0.3 * (drained / elapsed);
            self.last_at = Instant::now();
            self.last_depth = depth;
        }
        ((self.per_second * 2.0) as u64).clamp(min_queued, 200_000)
    }

    /// Remembers that `n` ids were pushed since the last observation.
    fn pushed(&mut self, n: usize) {
        self.last_depth += n as u64;
    }
}

/// Runs ticks until shutdown (or, with `exit_when_idle`, until no task is
/// pending, queued or running).
pub async fn run(
    pool: Pool,
    reads: ReadPool,
    queue: Queue,
    mut new_tasks: NewTaskSignal,
    options: Options,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
    tokio::spawn(crate::gauges::run(pool.clone(), reads, shutdown.clone()));
    let mut rate = DrainRate { last_depth: 0, last_at: Instant::now(), per_second: 0.0 };
    let mut backoff = shared::backoff::FailureBackoff::default();
    while !shutdown.is_triggered() {
        // A tick stuck on an unreachable database or Redis must not delay a
        // shutdown: the tick's transactions roll back when dropped.
        let result = tokio::select! {
            result = tick(&pool, &queue, &options, &mut rate) => result,
            _ = shutdown.wait() => break,
        };
        match result {
            Ok(report) => {
                let failures = backoff.succeeded();
                if failures > 0 {
                    tracing::info!("scheduler recovered after {failures} failed tick(s)");
                }
                if report.pushed + report.aged + report.reaped + report.failed_by_reaper > 0 {
                    tracing::debug!(?report, "tick");
                }
                if report.more_waiting {
                    continue;
                }
                if options.exit_when_idle && report.pushed == 0 && !is_active(&pool).await {
                    tracing::info!("no task pending, queued or running: exiting");
                    return Ok(());
                }
                // The next tick: after `--tick-ms`, or at once when new
                // tasks are announced (dispatch latency without the tick).
                tokio::select! {
                    _ = shutdown.sleep(options.tick) => {}
                    _ = new_tasks.next() => {}
                }
            }
            Err(err) => {
                let (failures, delay) = backoff.failed();
                tracing::warn!(
                    "tick failed ({failures} in a row), retrying in {delay:?}: {}",
                    shared::one_line(&err)
                );
                shutdown.sleep(delay).await;
            }
        }
    }
    tracing::info!("scheduler stopped");
    Ok(())
}

/// True if any task is pending or running; errors count as active so the
/// scheduler keeps going while the database is away.
async fn is_active(pool: &Pool) -> bool {
    match shared::db::conn(pool).await {
        Ok(mut conn) => tasks::any_active(&mut conn).await.unwrap_or(true),
        Err(_) => true,
    }
}

/// One pass of the four steps in the module doc.
async fn tick(
    pool: &Pool,
    queue: &Queue,
    options: &Options,
    rate: &mut DrainRate,
) -> anyhow::Result<TickReport> {
    let mut report = TickReport::default();
    let mut conn = shared::db::conn(pool).await?;
    let state = queue.state().await?;
    let (high, normal) = (state.high, state.normal);
    metrics::gauge!("videoclip_queue_depth", "queue" => shared::queue::HIGH_PRIORITY_QUEUE)
        .set(high as f64);
    metrics::gauge!("videoclip_queue_depth", "queue" => shared::queue::VIDEO_PROCESSING_QUEUE)
        .set(normal as f64);
    if !state.intact {
        let reset = tasks::forget_queued(&mut conn).await?;
        queue.set_epoch(&state.history).await?;
        metrics::counter!("videoclip_queue_rebuilds_total").increment(1);
        if reset > 0 {
            tracing::warn!(
                tasks = reset,
                "Redis lost the queues or a replica took over: pushing every pending task again"
            );
        }
    }
    let reaped_tasks = tasks::reap_expired_leases(&mut conn).await?;
    let (reaped, failed) = (reaped_tasks.requeued, reaped_tasks.failed);
    report.reaped = reaped;
    report.failed_by_reaper = failed;
    if !reaped_tasks.changed.is_empty() {
        // Every status change reaches `task:status` (ARCHITECTURE.md): a
        // reaped task must not show "processing" until the key expires.
        let statuses: Vec<(String, CachedStatus)> = reaped_tasks
            .changed
            .iter()
            .map(|(id, status, step)| (id.clone(), CachedStatus::now(*status, 0, Some(step))))
            .collect();
        queue.set_statuses(&statuses).await?;
    }
    if !reaped_tasks.failed_videos.is_empty() {
        // Their rows changed (failed with the task): the cached metadata goes.
        if let Err(e) =
            shared::cache::Cache::new(queue).invalidate_videos(&reaped_tasks.failed_videos).await
        {
            tracing::warn!("video:meta not invalidated: {}", shared::one_line(&e));
        }
    }
    if reaped + failed > 0 {
        tracing::warn!(requeued = reaped, failed, "leases expired");
        metrics::counter!("videoclip_leases_expired_total", "action" => "requeued")
            .increment(reaped as u64);
        metrics::counter!("videoclip_leases_expired_total", "action" => "failed")
            .increment(failed as u64);
    }

    for selection in [
        // Waiting in the database too long, whatever the priority.
        DueSelection::WaitingLongerThan(options.max_wait_seconds),
        // Starving in the normal list behind high-priority work.
        DueSelection::QueuedLongerThan {
            seconds: options.max_wait_seconds,
            above_priority: options.high_priority_threshold,
        },
        // Any queued task whose entry must have been lost (a worker died
        // between popping and claiming): far past the maximum wait.
        DueSelection::QueuedLongerThan {
            seconds: options.max_wait_seconds.saturating_mul(4),
            above_priority: 0,
        },
    ] {
        let aged = crate::fill::queue_due_tasks(
            &mut conn,
            selection,
            BATCH,
            queue,
            options.high_priority_threshold,
        )
        .await?;
        report.aged += aged.len();
    }
    rate.pushed(report.aged);
    metrics::counter!("videoclip_tasks_aged_total").increment(report.aged as u64);
    if report.aged > 0 {
        tracing::info!(
            tasks = report.aged,
            "waited longer than {}s: moved to the front",
            options.max_wait_seconds
        );
    }

    let depth = high + normal;
    let target = rate.observe(depth, options.min_queued);
    let room = target.saturating_sub(depth) as usize;
    if room > 0 {
        let threshold = options.high_priority_threshold;
        // Room for two batches: a backlog may be waiting, fill with two
        // overlapping transactions (the second only if the first is full).
        let (pushed, limit) = if room >= 2 * BATCH {
            let n =
                crate::fill::queue_backlog_by_priority(&mut conn, pool, BATCH, queue, threshold)
                    .await?;
            (n, 2 * BATCH)
        } else {
            let limit = room.min(BATCH);
            let due = DueSelection::ByPriority;
            let pushed =
                crate::fill::queue_due_tasks(&mut conn, due, limit, queue, threshold).await?;
            (pushed.len(), limit)
        };
        report.pushed = pushed;
        metrics::counter!("videoclip_tasks_queued_total").increment(pushed as u64);
        report.more_waiting = pushed == limit;
        rate.pushed(pushed);
    }
    Ok(report)
}
