//! What running a task means, per `task_type`. Each job takes the claimed
//! task and its cancel flag and returns an [`Outcome`]; it never writes the
//! task's status itself (the finisher commits the outcome under the lease).

mod noop;
pub mod video_clip;

use crate::cancel::Cancel;
use crate::pipeline::transcribe::Transcriber;
use crate::progress::Progress;
use shared::db::Pool;
use shared::models::task_type;
use shared::queue::Queue;
use shared::storage::Storage;
use shared::tasks::{ClaimedTask, Outcome};
use std::sync::Arc;

/// The long-lived things jobs use, shared by every task of the process.
pub struct Services {
    pub pool: Pool,
    pub queue: Queue,
    pub storage: Storage,
    /// Loaded once per process; `None` if this worker has no model.
    pub transcriber: Option<Arc<Transcriber>>,
}

/// Runs `task` to its outcome.
pub async fn run(task: &ClaimedTask, cancel: &Cancel, services: &Services) -> Outcome {
    match task.task_type.as_str() {
        task_type::NOOP => noop::run(task, cancel).await,
        task_type::VIDEO_CLIP => {
            let progress = Progress::new(services.pool.clone(), services.queue.clone(), task.task_id.clone(), task.lease());
            let deps = video_clip::Deps {
                pool: &services.pool,
                storage: &services.storage,
                transcriber: services.transcriber.as_deref(),
                progress: &progress,
            };
            video_clip::run(task, cancel, &deps).await
        }
        other => Outcome::Failed { reason: format!("unknown task_type {other:?}"), retryable: false },
    }
}
