//! The `download_package` task: read the record and its segments → build
//! the zip or tar in a scratch directory, one stored file at a time →
//! upload it under this attempt's prefix → the completion marks the record
//! ready with its link, in the transaction that completes the task.
//!
//! The segments are checked again here (the user's, `status` 1, with a
//! clip; the templated clip stored when asked for): one deleted since
//! `enqueue download` fails the task without retries, as bad input.

use crate::cancel::Cancel;
use crate::deadline::{run_step, StepLimits};
use crate::progress::Progress;
use shared::db::Pool;
use shared::downloads::sign::LinkSettings;
use shared::downloads::{self, package, status, DownloadReady};
use shared::jobs::DownloadPackageConfig;
use shared::storage::Storage;
use shared::tasks::{ClaimedTask, Completion, Outcome};
use shared::BadInput;
use std::path::Path;

/// What a download task needs besides the task itself.
pub struct Deps<'a> {
    pub pool: &'a Pool,
    pub storage: &'a Storage,
    pub progress: &'a Progress,
    pub links: &'a LinkSettings,
    /// The packaging step's time limit, scaled to the clips' duration.
    pub limits: StepLimits,
}

/// The longest `download_url` the column holds.
const MAX_URL_CHARS: usize = 2048;

/// Runs one download task to its outcome.
pub async fn run(
    task: &ClaimedTask,
    config: &DownloadPackageConfig,
    cancel: &Cancel,
    deps: &Deps<'_>,
) -> Outcome {
    let scratch =
        std::env::temp_dir().join(format!("videoclip-download-{}-{}", task.task_id, task.attempts));
    let result = tokio::select! {
        result = build_and_store(task, config, cancel, deps, &scratch) => result,
        _ = cancel.cancelled() => Err(anyhow::anyhow!("stopped")),
    };
    let _ = tokio::fs::remove_dir_all(&scratch).await;
    match result {
        Ok(completion) => Outcome::Completed(Box::new(completion)),
        Err(_) if cancel.is_cancelled() => Outcome::Failed {
            reason: "stopped: task cancelled or lease lost".into(),
            retryable: false,
        },
        Err(err) => {
            let retryable = shared::bad_input_reason(&err).is_none();
            Outcome::Failed { reason: shared::one_line(&err), retryable }
        }
    }
}

async fn build_and_store(
    task: &ClaimedTask,
    config: &DownloadPackageConfig,
    cancel: &Cancel,
    deps: &Deps<'_>,
    scratch: &Path,
) -> anyhow::Result<Completion> {
    let id = &config.download_id;
    deps.progress.step("reading segments", 2).await;
    let (download, segments) = {
        let mut conn = shared::db::conn(deps.pool).await?;
        let download = downloads::find_download(&mut conn, id)
            .await?
            .ok_or_else(|| BadInput::new(format!("download {id} does not exist")))?;
        let ids = download.segment_ids();
        let found = downloads::segments_by_ids(&mut conn, &ids).await?;
        (download, downloads::check_packageable(&ids, &found, None)?)
    };
    if download.row.user_id != task.user_id {
        return Err(BadInput::new(format!("download {id} is not the task's user's")).into());
    }
    if let Some(other) = segments.iter().find(|s| s.user_id != task.user_id) {
        return Err(BadInput::new(format!(
            "segment {} is not one of user {}'s segments",
            other.segment_id, task.user_id
        ))
        .into());
    }
    match download.row.status {
        status::PREPARING => {}
        status::EXPIRED => {
            return Err(BadInput::new(format!(
                "download {id} expired before its package was built"
            ))
            .into())
        }
        other => {
            return Err(BadInput::new(format!(
                "download {id} is {} already, not preparing",
                status::name(other)
            ))
            .into())
        }
    }
    let format = download.format()?;
    let clips = downloads::resolve_clips(deps.storage, &segments, config.templated).await?;

    // Packaging and storing are one step with a deadline scaled to the
    // clips' total duration (the heartbeat would renew a hung step's lease
    // forever): past it the attempt is retried.
    let media_seconds: f64 = clips.iter().map(|c| c.duration.max(0.0)).sum();
    deps.progress.step("packaging", 5).await;
    let key = downloads::package_key(task.user_id, id, task.attempts, format);
    let (key_ref, clips_ref) = (&key, &clips);
    let (built, size) =
        run_step("package", deps.limits, media_seconds, cancel, |step| async move {
            let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<(usize, usize)>();
            let request = package::PackageRequest {
                download_id: id,
                format,
                templated: config.templated,
                clips: clips_ref,
            };
            let build = package::build(
                deps.storage,
                request,
                scratch,
                move |done, total| {
                    let _ = sender.send((done, total));
                },
                || step.is_cancelled(),
            );
            tokio::pin!(build);
            let built = loop {
                tokio::select! {
                    built = &mut build => break built?,
                    Some((done, total)) = receiver.recv() => {
                        deps.progress.within(5 + (done * 80 / total.max(1)) as i8).await;
                    }
                }
            };
            deps.progress.step("storing package", 88).await;
            let size = deps.storage.put_file(&built.path, key_ref).await?;
            Ok((built, size))
        })
        .await?;
    let now = {
        let mut conn = shared::db::conn(deps.pool).await?;
        downloads::database_now(&mut conn).await?
    };
    let expires = now + config.expires_in_seconds as i64;
    let url = downloads::make_link(
        deps.storage,
        deps.links.signing_key.as_ref(),
        &deps.links.base_url,
        id,
        &key,
        expires,
        now,
    )
    .await?;
    if url.chars().count() > MAX_URL_CHARS {
        return Err(BadInput::new(format!(
            "the link is {} characters long, more than download_url holds ({MAX_URL_CHARS}); shorten PUBLIC_BASE_URL or the storage prefix",
            url.chars().count()
        ))
        .into());
    }
    tracing::info!(
        download_id = %id,
        clips = built.manifest.clips.len(),
        bytes = size,
        key = %key,
        "package stored"
    );
    metrics::counter!("videoclip_download_packages_total", "format" => format.as_str())
        .increment(1);
    metrics::counter!("videoclip_download_package_bytes_total").increment(size);
    deps.progress.step("saving results", 97).await;
    Ok(Completion {
        download: Some(DownloadReady {
            download_id: id.clone(),
            file_path: key,
            file_size: size as i64,
            download_url: url,
            expires_unix: expires,
        }),
        ..Completion::default()
    })
}

/// Where an attempt of this task stores its package (removed when the
/// attempt does not commit).
pub fn attempt_prefix(task: &ClaimedTask, config: &DownloadPackageConfig) -> String {
    downloads::attempt_prefix(task.user_id, &config.download_id, task.attempts)
}
