//! What `enqueue queues`, the API's `GET /api/v1/queues` and the dashboard
//! show about the fleet: queue depths from Redis, task counts, the oldest
//! wait and the running tasks per worker from the database (the replica if
//! one is configured: these are display reads), and the replica's lag. One
//! reader, so the three never disagree.

use crate::models::TaskStatus;
use crate::queue::{Queue, HIGH_PRIORITY_QUEUE, VIDEO_PROCESSING_QUEUE};
use crate::replica::{ReadPool, ReplicaLag};
use serde_json::json;

/// The fleet at one moment.
#[derive(Debug, Clone)]
pub struct FleetOverview {
    pub high_priority: u64,
    pub video_processing: u64,
    /// False after Redis lost its queues, until the scheduler rebuilt them.
    pub redis_holds_queues: bool,
    /// Tasks per status, every status present (0 when none).
    pub tasks: Vec<(TaskStatus, i64)>,
    pub oldest_wait_seconds: Option<i64>,
    /// Workers whose heartbeat is fresh.
    pub workers_alive: Vec<String>,
    /// Running tasks per lease owner (alive or not).
    pub running_per_worker: Vec<(String, i64)>,
    /// The replica's replication state (`None`: no replica configured;
    /// `Some(Err)`: configured but unreachable, with the reason).
    pub replica: Option<Result<ReplicaLag, String>>,
}

impl FleetOverview {
    /// Reads the overview: Redis for the lists and heartbeats, `reads` for
    /// the counts and the replica's state.
    pub async fn read(reads: &ReadPool, queue: &Queue) -> anyhow::Result<Self> {
        let state = queue.state().await?;
        let (high, normal, epoch) = (state.high, state.normal, state.intact);
        let workers = queue.live_workers().await?;
        let (counts, running, oldest_wait) = {
            // Dropped before the lag query, which needs a connection of its own.
            let mut reader = reads.reader().await?;
            let conn = &mut reader;
            (
                crate::tasks::count_by_status(conn).await?,
                crate::tasks::running_by_worker(conn).await?,
                crate::tasks::oldest_wait_seconds(conn).await?,
            )
        };
        let tasks = TaskStatus::ALL
            .iter()
            .map(|status| {
                let n = counts
                    .iter()
                    .find(|(code, _)| *code == status.code())
                    .map(|(_, n)| *n)
                    .unwrap_or(0);
                (*status, n)
            })
            .collect();
        Ok(FleetOverview {
            high_priority: high,
            video_processing: normal,
            redis_holds_queues: epoch,
            tasks,
            oldest_wait_seconds: oldest_wait,
            workers_alive: workers,
            running_per_worker: running,
            replica: reads
                .replica_lag()
                .await
                .transpose()
                .map(|r| r.map_err(|e| crate::one_line(&e))),
        })
    }

    /// How many tasks have `status`.
    pub fn count(&self, status: TaskStatus) -> i64 {
        self.tasks.iter().find(|(s, _)| *s == status).map(|(_, n)| *n).unwrap_or(0)
    }

    /// The running tasks of `worker`.
    pub fn running_on(&self, worker: &str) -> i64 {
        self.running_per_worker.iter().find(|(w, _)| w == worker).map(|(_, n)| *n).unwrap_or(0)
    }

    /// The JSON form (`enqueue queues --json` and `GET /api/v1/queues`).
    pub fn to_json(&self) -> serde_json::Value {
        let tasks: serde_json::Map<_, _> =
            self.tasks.iter().map(|(s, n)| (s.name().to_string(), json!(n))).collect();
        let running: serde_json::Map<_, _> =
            self.running_per_worker.iter().map(|(w, n)| (w.clone(), json!(n))).collect();
        json!({
            "queues": { HIGH_PRIORITY_QUEUE: self.high_priority, VIDEO_PROCESSING_QUEUE: self.video_processing },
            "redis_holds_queues": self.redis_holds_queues,
            "tasks": tasks,
            "oldest_wait_seconds": self.oldest_wait_seconds,
            "workers_alive": self.workers_alive,
            "running_per_worker": running,
            "replica": match &self.replica {
                None => serde_json::Value::Null,
                Some(Ok(lag)) => json!({"lag_seconds": lag.seconds, "running": lag.running}),
                Some(Err(reason)) => json!({"error": reason}),
            },
        })
    }
}
