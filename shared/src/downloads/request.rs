//! Asking for a package: what `enqueue download` and the API's
//! `POST /api/v1/downloads` both do. Everything is checked first (the
//! segments are the requester's, `status` 1, each with a clip; the
//! templated clips exist when asked for; `file://` storage has a signing
//! key), then the `download_records` row and its `download_package` task
//! are written in one transaction.

use super::package::PackageFormat;
use super::sign::{LinkSettings, SigningKey};
use super::*;
use crate::jobs::DownloadPackageConfig;
use crate::models::{task_type, NewTask, User};

/// Which clips to package.
#[derive(Debug, Clone)]
pub enum Selection {
    /// These segments (`video_segments.segment_id`), in this order.
    Segments(Vec<String>),
    /// Every clip (status 1) of this task (`processing_tasks.task_id`).
    Task(String),
}

/// A package request.
#[derive(Debug, Clone)]
pub struct PackageRequest {
    pub selection: Selection,
    /// Package the templated clips instead of the plain ones.
    pub templated: bool,
    pub format: PackageFormat,
    /// Link lifetime once ready, 1 s ..= [`MAX_EXPIRES_IN_SECONDS`].
    pub expires_in_seconds: u64,
    pub priority: i8,
    pub max_retries: i8,
}

/// The download asked for and the task building it.
#[derive(Debug, Clone)]
pub struct Requested {
    pub download_id: String,
    pub task_id: String,
}

/// Checks `request` for `requester` (`None`: an operator, any one user's
/// clips) and writes the record and its task; returns their ids. Bad
/// requests are [`BadInput`] naming the segment or task at fault; a task or
/// segment of another user is reported as not found-like bad input with
/// its id, never its owner.
pub async fn request_package(
    conn: &mut PooledConnection<'_>,
    storage: &Storage,
    requester: Option<&User>,
    request: &PackageRequest,
) -> anyhow::Result<Requested> {
    if request.expires_in_seconds == 0 || request.expires_in_seconds > MAX_EXPIRES_IN_SECONDS {
        return Err(BadInput::new("expires_in must be between 1s and 7d").into());
    }
    let links = LinkSettings::from_env()?;
    if !storage.is_s3() && links.signing_key.is_none() {
        SigningKey::require_from_env()?;
    }
    let segments: Vec<SegmentForPackage> = match &request.selection {
        Selection::Task(task_id) => {
            let found = find_task(conn, task_id).await?;
            let task_pk = match (found, requester) {
                (Some((_, owner)), Some(user)) if owner != user.id => {
                    return Err(BadInput::new(format!(
                        "task {task_id} is not one of user {:?}'s tasks",
                        user.username
                    ))
                    .into())
                }
                (Some((pk, _)), _) => pk,
                (None, _) => {
                    return Err(BadInput::new(format!("no task with id {task_id:?}")).into())
                }
            };
            let segments = segments_of_task(conn, task_pk).await?;
            if segments.is_empty() {
                return Err(BadInput::new(format!(
                    "task {task_id} has no clips with status 1 to package"
                ))
                .into());
            }
            for segment in &segments {
                check_segment(segment)?;
            }
            segments
        }
        Selection::Segments(ids) => {
            let found = segments_by_ids(conn, ids).await?;
            check_packageable(ids, &found, requester.map(|u| (u.id, u.username.as_str())))?
        }
    };
    if request.templated {
        // Refused now, with the segment named, rather than by the task.
        resolve_clips(storage, &segments, true).await?;
    }
    let owner = requester.map(|u| u.id).unwrap_or(segments[0].user_id);
    let download_id = new_download_id();
    let record = NewDownload::for_segments(&download_id, owner, &segments, request.format);
    let expires_in = request.expires_in_seconds;
    let config = serde_json::to_value(DownloadPackageConfig {
        download_id: download_id.clone(),
        templated: request.templated,
        expires_in_seconds: expires_in,
    })?;
    crate::jobs::check_config(task_type::DOWNLOAD_PACKAGE, Some(&config))?;
    let task = NewTask {
        task_id: crate::registration::new_task_id(),
        user_id: owner,
        // A task names a video (a required foreign key): the first clip's.
        video_id: segments[0].original_video_id,
        task_type: task_type::DOWNLOAD_PACKAGE.into(),
        config: Some(config),
        priority: request.priority,
        max_retries: request.max_retries,
    };
    conn.transaction(async |conn| -> anyhow::Result<()> {
        insert_download(conn, &record, expires_in).await?;
        crate::tasks::insert_tasks(conn, std::slice::from_ref(&task)).await?;
        Ok(())
    })
    .await?;
    Ok(Requested { download_id, task_id: task.task_id })
}
