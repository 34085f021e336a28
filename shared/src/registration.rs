//! Registering uploaded videos and creating their tasks: what `enqueue
//! video`, `enqueue task` and the API's `POST /api/v1/videos` and
//! `POST /api/v1/tasks` all do, written once.
//!
//! Two steps, so that bad input is refused before anything is written:
//! [`check_upload`] probes and hashes a file (bad media is [`BadInput`] with
//! ffprobe's reason), then [`register_videos`] stores the files and writes
//! every `videos` row and task in one transaction under the owner's lock
//! (the quota decision and the reuse of an earlier upload's stored object
//! are made under it). Either every file gets its rows, or none does and the
//! objects this call stored are removed again.

use crate::db::{Pool, PooledConnection};
use crate::models::{task_type, NewTask, NewVideo, TaskStatus, User, Video};
use crate::queue::{CachedStatus, Queue};
use crate::storage::Storage;
use crate::BadInput;
use anyhow::Context;
use bigdecimal::BigDecimal;
use diesel_async::AsyncConnection;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// What the caller asks of the tasks it creates.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    /// 1 (highest) .. 10 (lowest).
    pub priority: i8,
    /// A checked `video_clip` config ([`parse_config`]), or none.
    pub config: Option<serde_json::Value>,
    pub max_retries: i8,
    /// Create the tasks even past the owner's `monthly_videos` quota.
    pub force: bool,
}

/// Parses a task config given as text for a task of `task_type`: a JSON
/// object that is a valid config of that type, else [`BadInput`] saying why
/// (`what` names the field in the message, e.g. `--config`).
pub fn parse_config(
    text: &str,
    task_type: &str,
    what: &str,
) -> Result<serde_json::Value, BadInput> {
    let value = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value @ serde_json::Value::Object(_)) => value,
        Ok(_) => return Err(BadInput::new(format!("{what} must be a JSON object"))),
        Err(e) => return Err(BadInput::new(format!("{what} is not valid JSON: {e}"))),
    };
    crate::jobs::check_config(task_type, Some(&value))?;
    Ok(value)
}

/// A file that passed [`check_upload`], ready to register.
#[derive(Debug, Clone)]
pub struct CheckedUpload {
    pub path: PathBuf,
    /// The name the uploader gave it (`videos.original_filename`).
    pub original_name: String,
    pub size: u64,
    pub info: crate::probe::MediaInfo,
    /// SHA-256, hex (`videos.file_hash`).
    pub hash: String,
}

impl CheckedUpload {
    /// The stored file name: the hash with the original's extension when
    /// that is short and plain, else `.mp4`.
    fn stored_name(&self) -> String {
        let ext = Path::new(&self.original_name)
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .filter(|e| e.chars().all(|c| c.is_ascii_alphanumeric()) && e.len() <= 8)
            .unwrap_or_else(|| "mp4".into());
        format!("{}.{ext}", self.hash)
    }
}

/// Checks that the file at `path` (called `original_name` in messages) is
/// a non-empty video ffprobe reads completely and that has audio, and
/// hashes it. Returns [`BadInput`] with the reason otherwise.
pub async fn check_upload(path: &Path, original_name: &str) -> anyhow::Result<CheckedUpload> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| BadInput::new(format!("{original_name}: {e}")))?;
    if !meta.is_file() {
        return Err(BadInput::new(format!("{original_name} is not a file")).into());
    }
    if meta.len() == 0 {
        return Err(BadInput::new(format!("{original_name} is empty")).into());
    }
    let info = crate::probe::probe(path).await.map_err(|e| rename(e, path, original_name))?;
    crate::probe::check_complete(path).await.map_err(|e| rename(e, path, original_name))?;
    if !info.has_audio {
        return Err(BadInput::new(format!(
            "{original_name} has no audio stream: nothing to transcribe"
        ))
        .into());
    }
    let hash = sha256_file(path).await?;
    Ok(CheckedUpload {
        path: path.to_path_buf(),
        original_name: original_name.to_string(),
        size: meta.len(),
        info,
        hash,
    })
}

/// `err` with the temporary path in its bad-input reason replaced by the
/// uploader's name for the file (an API caller never sees server paths).
fn rename(err: anyhow::Error, path: &Path, original_name: &str) -> anyhow::Error {
    match crate::bad_input_reason(&err) {
        Some(reason) if path.display().to_string() != original_name => {
            BadInput::new(reason.0.replace(&path.display().to_string(), original_name)).into()
        }
        _ => err,
    }
}

/// SHA-256 of a file, hex, read in 1 MiB blocks off the async runtime.
async fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        use std::io::Read;
        let mut file =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(format!("{:x}", hasher.finalize()))
    })
    .await?
}

/// What one file became.
#[derive(Debug, Clone)]
pub struct Registered {
    pub original_name: String,
    pub video_id: i64,
    pub task_id: String,
    /// An earlier upload of the same bytes by the same user was stored
    /// already; its object is shared instead of stored again.
    pub reused_stored_file: bool,
}

/// A new UUIDv7 task id: unique without coordination and time-ordered,
/// which keeps the unique index on `task_id` append-mostly.
pub fn new_task_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Stores each checked file under `videos/{user}/{hash}.{ext}` (or reuses
/// the user's earlier object with the same hash) and writes its `videos`
/// row and one pending `video_clip` task, all in one transaction; returns
/// what each file became, in order. On failure, the objects this call
/// stored are deleted again and the error is returned (a quota that does
/// not fit is [`BadInput`]).
pub async fn register_videos(
    pool: &Pool,
    storage: &Storage,
    user: &User,
    files: &[CheckedUpload],
    request: &TaskRequest,
) -> anyhow::Result<Vec<Registered>> {
    let mut conn = crate::db::conn(pool).await?;
    // Keys of objects this call wrote, to remove if the transaction fails.
    let stored_here = std::sync::Mutex::new(Vec::<String>::new());
    let result = conn
        .transaction(async |conn| -> anyhow::Result<Vec<Registered>> {
            crate::videos::lock_owner(conn, user.id).await?;
            if !request.force {
                crate::quotas::check_monthly_videos(
                    conn,
                    user.id,
                    &user.username,
                    files.len() as i64,
                )
                .await?;
            }
            let mut registered = Vec::new();
            for file in files {
                let earlier =
                    crate::videos::stored_file_with_hash(conn, user.id, &file.hash).await?;
                let reusable = match &earlier {
                    Some(key) => storage.exists(key).await?,
                    None => false,
                };
                let key = match earlier.filter(|_| reusable) {
                    Some(key) => key,
                    None => {
                        let key = format!("videos/{}/{}", user.id, file.stored_name());
                        if !storage.exists(&key).await? {
                            stored_here.lock().unwrap().push(key.clone());
                        }
                        storage.put_file(&file.path, &key).await?;
                        key
                    }
                };
                let video_id =
                    crate::videos::insert_video(conn, &new_video(user.id, file, key)).await?;
                let frame = file.info.width.zip(file.info.height);
                let task_id = insert_video_task(conn, user.id, video_id, frame, request).await?;
                registered.push(Registered {
                    original_name: file.original_name.clone(),
                    video_id,
                    task_id,
                    reused_stored_file: reusable,
                });
            }
            Ok(registered)
        })
        .await;
    if result.is_err() {
        for key in stored_here.into_inner().unwrap() {
            if let Err(e) = storage.delete(&key).await {
                tracing::warn!(
                    "could not remove {key} after a failed registration: {}",
                    crate::one_line(&e)
                );
            }
        }
    }
    result
}

/// Creates one pending `video_clip` task for each stored video with its
/// request, all in one transaction: each owner is locked (in id order, so
/// two batches never deadlock) and its quota decided for all its new tasks
/// at once, as [`register_videos`] does; returns the new task ids in order.
/// Either every task is created or none (a quota that does not fit is
/// [`BadInput`]).
pub async fn create_tasks_for_videos(
    conn: &mut PooledConnection<'_>,
    items: &[(Video, TaskRequest)],
) -> anyhow::Result<Vec<String>> {
    conn.transaction(async |conn| -> anyhow::Result<Vec<String>> {
        let mut owners = std::collections::BTreeMap::<i64, i64>::new();
        for (video, request) in items {
            if !request.force {
                *owners.entry(video.user_id).or_default() += 1;
            } else {
                owners.entry(video.user_id).or_default();
            }
        }
        for (&user_id, &new) in &owners {
            crate::videos::lock_owner(conn, user_id).await?;
            if new > 0 {
                let owner = crate::users::find_user_by_id(conn, user_id).await?;
                let name = owner.map(|u| u.username).unwrap_or_default();
                crate::quotas::check_monthly_videos(conn, user_id, &name, new).await?;
            }
        }
        let mut ids = Vec::with_capacity(items.len());
        for (video, request) in items {
            let frame = video.width.zip(video.height);
            ids.push(insert_video_task(conn, video.user_id, video.id, frame, request).await?);
        }
        Ok(ids)
    })
    .await
}

/// Inserts the task row of a video (templates chosen for its frame size, see
/// [`crate::templates::choose_for_task`]); returns its public id.
async fn insert_video_task(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
    video_id: i64,
    frame: Option<(i32, i32)>,
    request: &TaskRequest,
) -> anyhow::Result<String> {
    let config =
        crate::templates::choose_for_task(conn, user_id, request.config.clone(), frame).await?;
    let task = NewTask {
        task_id: new_task_id(),
        user_id,
        video_id,
        task_type: task_type::VIDEO_CLIP.into(),
        config,
        priority: request.priority,
        max_retries: request.max_retries,
    };
    crate::tasks::insert_tasks(conn, std::slice::from_ref(&task)).await?;
    Ok(task.task_id)
}

/// The `videos` row of a checked file stored under `key`.
fn new_video(user_id: i64, file: &CheckedUpload, key: String) -> NewVideo {
    let decimal = |v: f64| BigDecimal::from_str(&format!("{v:.2}")).ok();
    let info = &file.info;
    NewVideo {
        user_id,
        filename: file.stored_name(),
        original_filename: file.original_name.chars().take(255).collect(),
        file_path: key,
        file_size: file.size as i64,
        file_hash: Some(file.hash.clone()),
        mime_type: Some(info.mime_type().to_string()),
        duration: decimal(info.duration_seconds),
        width: info.width,
        height: info.height,
        frame_rate: info.frame_rate.filter(|r| *r < 1000.0).and_then(decimal),
        bitrate: info.bitrate,
    }
}

/// Writes the initial `task:status` of new tasks and tells the schedulers
/// they exist ([`Queue::announce_new_tasks`]); the database already has
/// them, so a Redis failure here is only a warning.
pub async fn cache_pending(queue: &Queue, task_ids: &[String]) {
    if task_ids.is_empty() {
        return;
    }
    for chunk in task_ids.chunks(10_000) {
        let statuses: Vec<(String, CachedStatus)> = chunk
            .iter()
            .map(|id| {
                let pending = Some(crate::models::step::PENDING);
                (id.clone(), CachedStatus::now(TaskStatus::Pending, 0, pending))
            })
            .collect();
        if let Err(e) = queue.set_first_statuses(&statuses).await {
            tracing::warn!(
                "task:status not written (tasks are in the database): {}",
                crate::one_line(&e)
            );
            return;
        }
    }
    if let Err(e) = queue.announce_new_tasks().await {
        tracing::warn!(
            "new tasks not announced (the next tick takes them): {}",
            crate::one_line(&e)
        );
    }
}
