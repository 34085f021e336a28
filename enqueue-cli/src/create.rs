//! Commands that create tasks: `video`, `task`, `noop`.
//!
//! Each validates everything first (files readable and probed, user known,
//! config a JSON object), then writes. Task ids are UUIDv7 strings: unique
//! without coordination and time-ordered, which keeps the unique index on
//! `task_id` append-mostly.
//!
//! (About 420 lines: `video`'s one-transaction registration is kept whole.)

use crate::Output;
use anyhow::Context;
use bigdecimal::BigDecimal;
use clap::Args;
use diesel_async::AsyncConnection;
use serde_json::json;
use sha2::{Digest, Sha256};
use shared::config::Settings;
use shared::models::{task_type, NewTask, NewVideo, TaskStatus};
use shared::queue::{CachedStatus, Queue};
use shared::BadInput;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

/// Options every task-creating command shares.
#[derive(Args, Debug, Clone)]
pub struct TaskOptions {
    /// 1 (highest) .. 10 (lowest)
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i8).range(1..=10))]
    pub priority: i8,
    /// Processing configuration, a JSON object (e.g. '{"language":"zh"}')
    #[arg(long)]
    pub config: Option<String>,
    /// Retries allowed after transient failures
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i8).range(0..=20))]
    pub max_retries: i8,
    /// Create the tasks even if the user's monthly_videos quota is used up (operators)
    #[arg(long)]
    pub force: bool,
}

impl TaskOptions {
    /// The `--config` JSON for a task of `task_type`, or [`BadInput`] when
    /// it is not a JSON object or not a valid config of that type (unknown
    /// keys, bad values: refused here, before any row exists).
    fn parsed_config(&self, task_type: &str) -> Result<Option<serde_json::Value>, BadInput> {
        let Some(text) = &self.config else { return Ok(None) };
        let value = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(value @ serde_json::Value::Object(_)) => value,
            Ok(_) => return Err(BadInput::new("--config must be a JSON object")),
            Err(e) => return Err(BadInput::new(format!("--config is not valid JSON: {e}"))),
        };
        shared::jobs::check_config(task_type, Some(&value))?;
        Ok(Some(value))
    }
}

#[derive(Args, Debug)]
pub struct VideoArgs {
    /// Video files to register
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Owner of the videos (a user name)
    #[arg(long)]
    pub user: String,
    #[command(flatten)]
    pub options: TaskOptions,
    /// Show progress until every task has finished; exit 0 only if all completed
    #[arg(long)]
    pub wait: bool,
}

#[derive(Args, Debug)]
pub struct TaskArgs {
    /// id of a registered video (videos.id)
    pub video_id: i64,
    #[command(flatten)]
    pub options: TaskOptions,
}

#[derive(Args, Debug)]
pub struct NoopArgs {
    /// How many tasks
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub count: u64,
    /// How long each task sleeps
    #[arg(long, default_value_t = 0)]
    pub sleep_ms: u64,
    /// Probability (0..1) that a run fails with a transient error
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    #[command(flatten)]
    pub options: TaskOptions,
}

/// A new UUIDv7 task id.
fn new_task_id() -> String {
    uuid::Uuid::now_v7().to_string()
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

/// A file that passed validation, ready to register.
struct CheckedFile {
    path: PathBuf,
    size: u64,
    info: shared::probe::MediaInfo,
}

/// Checks that `path` is a non-empty, readable video ffprobe understands.
async fn check_file(path: &Path) -> anyhow::Result<CheckedFile> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| BadInput::new(format!("{}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(BadInput::new(format!("{} is not a file", path.display())).into());
    }
    if meta.len() == 0 {
        return Err(BadInput::new(format!("{} is empty", path.display())).into());
    }
    let info = shared::probe::probe(path).await?;
    shared::probe::check_complete(path).await?;
    if !info.has_audio {
        return Err(BadInput::new(format!(
            "{} has no audio stream: nothing to transcribe",
            path.display()
        ))
        .into());
    }
    Ok(CheckedFile { path: path.to_path_buf(), size: meta.len(), info })
}

/// Writes the initial `task:status` of new tasks; the database already has
/// them, so a Redis failure here is only a warning.
pub(crate) async fn cache_pending(settings: &Settings, task_ids: &[String]) {
    let result = async {
        let queue = Queue::connect(&settings.redis_url).await?;
        for chunk in task_ids.chunks(10_000) {
            let statuses: Vec<(String, CachedStatus)> = chunk
                .iter()
                .map(|id| {
                    (
                        id.clone(),
                        CachedStatus::now(
                            TaskStatus::Pending,
                            0,
                            Some(shared::models::step::PENDING),
                        ),
                    )
                })
                .collect();
            queue.set_statuses(&statuses).await?;
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(
            "task:status not written (tasks are in the database): {}",
            shared::one_line(&e)
        );
    }
}

/// A checked file with its SHA-256 and the names it is stored under.
struct HashedFile {
    checked: CheckedFile,
    hash: String,
    original: String,
    filename: String,
}

/// What one file became: its rows, and whether an earlier upload's stored
/// object was reused.
struct Registered {
    path: PathBuf,
    video_id: i64,
    task_id: String,
    reused_stored_file: bool,
}

/// `enqueue video`: registers each file and creates its task, all in one
/// transaction: either every file gets its `videos` row and task, or none
/// does and the objects this run stored are removed again.
pub async fn video(settings: &Settings, out: &Output, args: VideoArgs) -> anyhow::Result<ExitCode> {
    let config = args.options.parsed_config(task_type::VIDEO_CLIP)?;
    let mut files = Vec::new();
    for path in &args.files {
        let checked = check_file(path).await?;
        let hash = sha256_file(&checked.path).await?;
        let original =
            checked.path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let ext = checked
            .path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .filter(|e| e.chars().all(|c| c.is_ascii_alphanumeric()) && e.len() <= 8)
            .unwrap_or_else(|| "mp4".into());
        let filename = format!("{hash}.{ext}");
        files.push(HashedFile { checked, hash, original, filename });
    }
    let storage = shared::storage::Storage::from_url(&settings.storage_url)?;
    let pool = shared::db::connect(settings.require_database_url()?, 2).await?;
    let mut conn = shared::db::conn(&pool).await?;
    let user = shared::users::require_user(&mut conn, &args.user).await?;

    // Keys of objects this run wrote, to remove if the transaction fails.
    let stored_here = std::sync::Mutex::new(Vec::<String>::new());
    let options = &args.options;
    let result = conn
        .transaction(async |conn| -> anyhow::Result<Vec<Registered>> {
            // One enqueue per user at a time: the quota decision and the
            // reuse of stored objects are made under this lock.
            shared::videos::lock_owner(conn, user.id).await?;
            if !options.force {
                shared::quotas::check_monthly_videos(
                    conn,
                    user.id,
                    &user.username,
                    files.len() as i64,
                )
                .await?;
            }
            let mut registered = Vec::new();
            for file in &files {
                let earlier =
                    shared::videos::stored_file_with_hash(conn, user.id, &file.hash).await?;
                let reusable = match &earlier {
                    Some(key) => storage.exists(key).await?,
                    None => false,
                };
                let key = match earlier.filter(|_| reusable) {
                    Some(key) => key,
                    None => {
                        let key = format!("videos/{}/{}", user.id, file.filename);
                        if !storage.exists(&key).await? {
                            stored_here.lock().unwrap().push(key.clone());
                        }
                        storage.put_file(&file.checked.path, &key).await?;
                        key
                    }
                };
                let video_id =
                    shared::videos::insert_video(conn, &new_video(user.id, file, key)).await?;
                let info = &file.checked.info;
                let frame = info.width.zip(info.height);
                let config =
                    shared::templates::choose_for_task(conn, user.id, config.clone(), frame)
                        .await?;
                let task = NewTask {
                    task_id: new_task_id(),
                    user_id: user.id,
                    video_id,
                    task_type: task_type::VIDEO_CLIP.into(),
                    config,
                    priority: options.priority,
                    max_retries: options.max_retries,
                };
                shared::tasks::insert_tasks(conn, std::slice::from_ref(&task)).await?;
                registered.push(Registered {
                    path: file.checked.path.clone(),
                    video_id,
                    task_id: task.task_id,
                    reused_stored_file: reusable,
                });
            }
            Ok(registered)
        })
        .await;
    let registered = match result {
        Ok(registered) => registered,
        Err(err) => {
            for key in stored_here.into_inner().unwrap() {
                if let Err(e) = storage.delete(&key).await {
                    tracing::warn!(
                        "could not remove {key} after a failed enqueue: {}",
                        shared::one_line(&e)
                    );
                }
            }
            return Err(err);
        }
    };
    drop(conn);
    let mut created = Vec::new();
    for r in registered {
        out.emit(
            &json!({ "video_id": r.video_id, "task_id": r.task_id, "reused_stored_file": r.reused_stored_file }),
            || {
                let reused = if r.reused_stored_file { " (same file as an earlier upload: stored object reused)" } else { "" };
                format!("video {} ({}) -> task {}{reused}", r.video_id, r.path.display(), r.task_id)
            },
        );
        created.push(r.task_id);
    }
    cache_pending(settings, &created).await;
    if args.wait {
        return crate::inspect::wait_for(&pool, out, &created).await;
    }
    Ok(ExitCode::SUCCESS)
}

/// The `videos` row of a checked file stored under `key`.
fn new_video(user_id: i64, file: &HashedFile, key: String) -> NewVideo {
    let decimal = |v: f64| BigDecimal::from_str(&format!("{v:.2}")).ok();
    let info = &file.checked.info;
    NewVideo {
        user_id,
        filename: file.filename.clone(),
        original_filename: file.original.chars().take(255).collect(),
        file_path: key,
        file_size: file.checked.size as i64,
        file_hash: Some(file.hash.clone()),
        mime_type: Some(info.mime_type().to_string()),
        duration: decimal(info.duration_seconds),
        width: info.width,
        height: info.height,
        frame_rate: info.frame_rate.filter(|r| *r < 1000.0).and_then(decimal),
        bitrate: info.bitrate,
    }
}

/// `enqueue task`: a new task for a stored video, with its quota decided
/// under the same lock as `enqueue video`'s.
pub async fn task(settings: &Settings, out: &Output, args: TaskArgs) -> anyhow::Result<ExitCode> {
    let config = args.options.parsed_config(task_type::VIDEO_CLIP)?;
    let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
    let mut conn = shared::db::conn(&pool).await?;
    let video = shared::videos::find_video(&mut conn, args.video_id)
        .await?
        .ok_or_else(|| BadInput::new(format!("no video with id {}", args.video_id)))?;
    let frame = video.width.zip(video.height);
    let config =
        shared::templates::choose_for_task(&mut conn, video.user_id, config, frame).await?;
    let task = NewTask {
        task_id: new_task_id(),
        user_id: video.user_id,
        video_id: video.id,
        task_type: task_type::VIDEO_CLIP.into(),
        config,
        priority: args.options.priority,
        max_retries: args.options.max_retries,
    };
    let force = args.options.force;
    conn.transaction(async |conn| -> anyhow::Result<()> {
        shared::videos::lock_owner(conn, video.user_id).await?;
        if !force {
            let owner = shared::users::find_user_by_id(conn, video.user_id).await?;
            let name = owner.map(|u| u.username).unwrap_or_default();
            shared::quotas::check_monthly_videos(conn, video.user_id, &name, 1).await?;
        }
        shared::tasks::insert_tasks(conn, std::slice::from_ref(&task)).await?;
        Ok(())
    })
    .await?;
    cache_pending(settings, std::slice::from_ref(&task.task_id)).await;
    out.emit(&json!({ "video_id": video.id, "task_id": task.task_id }), || task.task_id.clone());
    Ok(ExitCode::SUCCESS)
}

/// Name of the system user that owns no-op tasks.
const NOOP_USER: &str = "noop";

/// `enqueue noop`: `count` no-op tasks, inserted in batches.
pub async fn noop(settings: &Settings, out: &Output, args: NoopArgs) -> anyhow::Result<ExitCode> {
    if !(0.0..=1.0).contains(&args.fail_rate) {
        return Err(BadInput::new("--fail-rate must be between 0 and 1").into());
    }
    let mut config = args.options.parsed_config(task_type::NOOP)?.unwrap_or_else(|| json!({}));
    config["sleep_ms"] = json!(args.sleep_ms);
    config["fail_rate"] = json!(args.fail_rate);
    shared::jobs::check_config(task_type::NOOP, Some(&config))?;
    let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
    let mut conn = shared::db::conn(&pool).await?;
    let user = shared::users::ensure_user(&mut conn, NOOP_USER).await?;
    let video_id = shared::videos::ensure_placeholder_video(&mut conn, user.id).await?;

    let mut ids = Vec::with_capacity(args.count as usize);
    let mut remaining = args.count;
    while remaining > 0 {
        let n = remaining.min(shared::tasks::BATCH_ROWS as u64 * 10);
        let batch: Vec<NewTask> = (0..n)
            .map(|_| NewTask {
                task_id: new_task_id(),
                user_id: user.id,
                video_id,
                task_type: task_type::NOOP.into(),
                config: Some(config.clone()),
                priority: args.options.priority,
                max_retries: args.options.max_retries,
            })
            .collect();
        shared::tasks::insert_tasks(&mut conn, &batch).await?;
        ids.extend(batch.into_iter().map(|t| t.task_id));
        remaining -= n;
    }
    drop(conn);
    cache_pending(settings, &ids).await;
    if out.json {
        for id in &ids {
            println!("{}", json!({ "task_id": id }));
        }
    } else {
        println!("created {} noop task(s)", ids.len());
    }
    Ok(ExitCode::SUCCESS)
}
