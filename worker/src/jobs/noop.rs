//! The `noop` task: sleep `sleep_ms`, fail with probability `fail_rate`
//! (a transient failure, so it is retried), else write one result row.
//! It takes exactly the queue path of a video task, which makes it the
//! yardstick for the queue's own speed and the subject of fault tests.

use crate::cancel::Cancel;
use serde_json::json;
use shared::jobs::NoopConfig;
use shared::models::NewResult;
use shared::tasks::{ClaimedTask, Outcome};
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// A number in [0, 1) fixed by the task and its attempt, so a run with a
/// fail rate is reproducible.
fn draw(task: &ClaimedTask) -> f64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (task.task_id.as_str(), task.attempts).hash(&mut hasher);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs one noop task with its (already validated) config.
pub async fn run(task: &ClaimedTask, config: NoopConfig, cancel: &Cancel) -> Outcome {
    if config.sleep_ms > 0 {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(config.sleep_ms)) => {}
            _ = cancel.cancelled() => {
                return Outcome::Failed { reason: "stopped: lease lost or task cancelled".into(), retryable: false };
            }
        }
    }
    if draw(task) < config.fail_rate {
        return Outcome::Failed {
            reason: format!("noop failed on purpose (fail_rate {})", config.fail_rate),
            retryable: true,
        };
    }
    Outcome::completed(vec![NewResult {
        task_id: task.id,
        user_id: task.user_id,
        video_id: task.video_id,
        result_type: "analysis".into(),
        result_data: Some(
            json!({ "noop": true, "slept_ms": config.sleep_ms, "attempt": task.attempts }),
        ),
        file_path: None,
        file_size: None,
        metadata: None,
    }])
}
