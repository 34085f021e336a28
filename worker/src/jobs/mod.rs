//! What running a task means, per `task_type`. Each job takes the claimed
//! task and its cancel flag and returns an [`Outcome`]; it never touches the
//! task row itself (the finisher commits the outcome under the lease).

mod noop;

use crate::cancel::Cancel;
use shared::models::task_type;
use shared::tasks::{ClaimedTask, Outcome};

/// Runs `task` to its outcome.
pub async fn run(task: &ClaimedTask, cancel: &Cancel) -> Outcome {
    match task.task_type.as_str() {
        task_type::NOOP => noop::run(task, cancel).await,
        task_type::VIDEO_CLIP => Outcome::Failed {
            reason: "video_clip tasks need the media pipeline, which this worker build does not include yet".into(),
            retryable: false,
        },
        other => Outcome::Failed { reason: format!("unknown task_type {other:?}"), retryable: false },
    }
}
