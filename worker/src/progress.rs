//! Progress of one running task, as the outside sees it.
//!
//! Every step change goes to the database (guarded by the lease, so a
//! worker that lost the task cannot overwrite its row) and to
//! `task:status:{task_id}`; progress within a step (whisper's percentage,
//! ffmpeg's position) goes only to Redis, at most every 250 ms.

use shared::db::Pool;
use shared::models::TaskStatus;
use shared::queue::{CachedStatus, Queue};
use shared::tasks::Lease;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Reports one task's step and percentage.
pub struct Progress {
    pool: Pool,
    queue: Queue,
    task_id: String,
    lease: Lease,
    state: Mutex<(String, i8, Option<Instant>)>,
}

impl Progress {
    /// A reporter for `task_id` under `lease`.
    pub fn new(pool: Pool, queue: Queue, task_id: String, lease: Lease) -> Self {
        Progress { pool, queue, task_id, lease, state: Mutex::new((String::new(), 0, None)) }
    }

    /// Enters `step` at `percent`: written to the database and to Redis.
    /// Failures are logged, never fatal (progress is information, not state).
    pub async fn step(&self, step: &str, percent: i8) {
        *self.state.lock().unwrap() = (step.to_string(), percent, Some(Instant::now()));
        tracing::info!(task_id = %self.task_id, step, percent, "step");
        let written = async {
            let mut conn = shared::db::conn(&self.pool).await?;
            shared::tasks::record_progress(&mut conn, &self.lease, step, percent).await
        }
        .await;
        if let Err(e) = written {
            tracing::warn!(task_id = %self.task_id, "progress not recorded: {}", shared::one_line(&e));
        }
        self.cache(step, percent).await;
    }

    /// Moves the percentage within the current step (Redis only, throttled).
    pub async fn within(&self, percent: i8) {
        let step = {
            let mut state = self.state.lock().unwrap();
            let due = state.2.map(|t| t.elapsed() >= Duration::from_millis(250)).unwrap_or(true);
            if !due || percent <= state.1 {
                return;
            }
            state.1 = percent;
            state.2 = Some(Instant::now());
            state.0.clone()
        };
        self.cache(&step, percent).await;
    }

    async fn cache(&self, step: &str, percent: i8) {
        let status = vec![(
            self.task_id.clone(),
            CachedStatus::now(TaskStatus::Processing, percent, Some(step)),
        )];
        if let Err(e) = self.queue.set_statuses(&status).await {
            tracing::debug!("task:status not updated: {}", shared::one_line(&e));
        }
    }
}
