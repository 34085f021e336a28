//! What running a task means, per `task_type`. Each job takes the claimed
//! task and its cancel flag and returns an [`Outcome`]; it never writes the
//! task's status itself (the finisher commits the outcome under the lease).

mod branding;
pub mod download_package;
mod noop;
pub mod video_clip;

use crate::cancel::Cancel;
use crate::deadline::StepLimits;
use crate::pipeline::transcribe::Transcriber;
use crate::progress::Progress;
use shared::cache::Cache;
use shared::db::Pool;
use shared::detection::DetectionConfig;
use shared::downloads::sign::LinkSettings;
use shared::jobs::{
    DownloadPackage, DownloadPackageConfig, JobKind, Noop, NoopConfig, VideoClip, VideoClipConfig,
};
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
    /// Time limits of a video task's steps.
    pub step_limits: StepLimits,
    /// How download links are made (signing key, public base URL).
    pub links: LinkSettings,
    /// `video:meta` and `user:config` over the queue's Redis.
    pub cache: Cache,
    /// The detector's defaults with the `system_configs` clip limits
    /// applied; each user's and task's `selling_points` go on top.
    pub detection: Arc<DetectionConfig>,
}

/// A task type this worker runs: the shared [`JobKind`] (its `task_type`
/// name and typed, validated config) plus what running it means. Like
/// crates.io's `BackgroundJob`: the registry is the `match` in [`run`].
pub trait Job: JobKind {
    /// Runs one claimed task with its parsed config to its outcome. Never
    /// writes the task's status (the finisher commits the outcome).
    fn run(
        task: &ClaimedTask,
        config: Self::Config,
        cancel: &Cancel,
        services: &Services,
    ) -> impl std::future::Future<Output = Outcome> + Send;
}

impl Job for Noop {
    async fn run(task: &ClaimedTask, config: NoopConfig, cancel: &Cancel, _: &Services) -> Outcome {
        noop::run(task, config, cancel).await
    }
}

impl Job for VideoClip {
    async fn run(
        task: &ClaimedTask,
        config: VideoClipConfig,
        cancel: &Cancel,
        services: &Services,
    ) -> Outcome {
        let progress = Progress::new(
            services.pool.clone(),
            services.queue.clone(),
            task.task_id.clone(),
            task.lease(),
        );
        let deps = video_clip::Deps {
            pool: &services.pool,
            storage: &services.storage,
            transcriber: services.transcriber.as_deref(),
            progress: &progress,
            limits: services.step_limits,
            cache: &services.cache,
            detection: &services.detection,
        };
        video_clip::run(task, &config, cancel, &deps).await
    }
}

impl Job for DownloadPackage {
    async fn run(
        task: &ClaimedTask,
        config: DownloadPackageConfig,
        cancel: &Cancel,
        services: &Services,
    ) -> Outcome {
        let progress = Progress::new(
            services.pool.clone(),
            services.queue.clone(),
            task.task_id.clone(),
            task.lease(),
        );
        let deps = download_package::Deps {
            pool: &services.pool,
            storage: &services.storage,
            progress: &progress,
            links: &services.links,
            limits: services.step_limits,
        };
        download_package::run(task, &config, cancel, &deps).await
    }
}

/// Parses `task`'s config as `J`'s and runs it; a config that does not
/// parse (a row written by another system) fails the task without retry.
async fn run_as<J: Job>(task: &ClaimedTask, cancel: &Cancel, services: &Services) -> Outcome {
    match shared::jobs::parse_config::<J>(task.config.as_ref()) {
        Ok(config) => J::run(task, config, cancel, services).await,
        Err(reason) => Outcome::Failed { reason: reason.0, retryable: false },
    }
}

/// Runs `task` to its outcome: the registry of task types.
pub async fn run(task: &ClaimedTask, cancel: &Cancel, services: &Services) -> Outcome {
    match task.task_type.as_str() {
        Noop::TYPE => run_as::<Noop>(task, cancel, services).await,
        VideoClip::TYPE => run_as::<VideoClip>(task, cancel, services).await,
        DownloadPackage::TYPE => run_as::<DownloadPackage>(task, cancel, services).await,
        other => {
            Outcome::Failed { reason: format!("unknown task_type {other:?}"), retryable: false }
        }
    }
}

/// Removes what an attempt stored when its outcome was not committed as
/// completed (failed, retried, refused because the lease was lost or the
/// task cancelled): nothing refers to those objects, and nothing will.
/// Best effort; `enqueue gc` removes whatever this misses (a killed worker).
pub async fn discard_attempt(task: &ClaimedTask, services: &Services) {
    let prefix = match task.task_type.as_str() {
        task_type::VIDEO_CLIP => video_clip::attempt_prefix(task),
        task_type::DOWNLOAD_PACKAGE => {
            match shared::jobs::parse_config::<DownloadPackage>(task.config.as_ref()) {
                Ok(config) => download_package::attempt_prefix(task, &config),
                Err(_) => return,
            }
        }
        _ => return,
    };
    // Bounded: a storage server that hangs must not hold the task's slot.
    match tokio::time::timeout(DISCARD_TIMEOUT, services.storage.delete_all_under(&prefix)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => {
            tracing::info!(task_id = %task.task_id, objects = n, "removed the objects of an attempt that did not complete")
        }
        Ok(Err(e)) => {
            tracing::warn!(task_id = %task.task_id, "could not remove {prefix}: {}", shared::one_line(&e))
        }
        Err(_) => {
            tracing::warn!(task_id = %task.task_id, "could not remove {prefix} within {DISCARD_TIMEOUT:?} (enqueue gc will)")
        }
    }
}

/// Longest wait for removing a discarded attempt's objects.
const DISCARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
