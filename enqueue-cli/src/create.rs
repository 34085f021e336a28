//! Commands that create tasks: `video`, `task`, `noop`.
//!
//! Each validates everything first (files readable and probed, user known,
//! config a JSON object), then writes. Registration itself is
//! `shared::registration`, which the API's upload uses too.

use crate::Output;
use anyhow::Context;
use clap::Args;
use serde_json::json;
use shared::config::Settings;
use shared::models::{task_type, NewTask};
use shared::queue::Queue;
use shared::registration::TaskRequest;
use shared::BadInput;
use std::path::PathBuf;
use std::process::ExitCode;

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
        shared::registration::parse_config(text, task_type, "--config").map(Some)
    }

    /// These options as a [`TaskRequest`] for tasks of `task_type`.
    fn request(&self, task_type: &str) -> Result<TaskRequest, BadInput> {
        Ok(TaskRequest {
            priority: self.priority,
            config: self.parsed_config(task_type)?,
            max_retries: self.max_retries,
            force: self.force,
        })
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

/// Writes the initial `task:status` of new tasks (best effort: a Redis
/// that cannot be reached is only a warning, the tasks are in the database).
pub(crate) async fn cache_pending(settings: &Settings, task_ids: &[String]) {
    match Queue::connect(&settings.redis_url).await {
        Ok(queue) => shared::registration::cache_pending(&queue, task_ids).await,
        Err(e) => tracing::warn!(
            "task:status not written (tasks are in the database): {}",
            shared::one_line(&e)
        ),
    }
}

/// `enqueue video`: checks every file, then registers them all in one
/// transaction ([`shared::registration::register_videos`]): either every
/// file gets its `videos` row and task, or none does.
pub async fn video(settings: &Settings, out: &Output, args: VideoArgs) -> anyhow::Result<ExitCode> {
    let request = args.options.request(task_type::VIDEO_CLIP)?;
    let mut files = Vec::new();
    for path in &args.files {
        // Messages name the path given; the row keeps the file's own name.
        let mut checked =
            shared::registration::check_upload(path, &path.display().to_string()).await?;
        checked.original_name =
            path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        files.push(checked);
    }
    let storage = shared::storage::Storage::from_url(&settings.storage_url)?;
    let pool = shared::db::connect(settings.require_database_url()?, 2).await?;
    let user = {
        let mut conn = shared::db::conn(&pool).await?;
        shared::users::require_user(&mut conn, &args.user).await?
    };
    let registered =
        shared::registration::register_videos(&pool, &storage, &user, &files, &request).await?;
    let mut created = Vec::new();
    for r in registered {
        out.emit(
            &json!({ "video_id": r.video_id, "task_id": r.task_id, "reused_stored_file": r.reused_stored_file }),
            || {
                let reused = if r.reused_stored_file { " (same file as an earlier upload: stored object reused)" } else { "" };
                format!("video {} ({}) -> task {}{reused}", r.video_id, r.original_name, r.task_id)
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

/// `enqueue task`: a new task for a stored video, with its quota decided
/// under the same lock as `enqueue video`'s.
pub async fn task(settings: &Settings, out: &Output, args: TaskArgs) -> anyhow::Result<ExitCode> {
    let request = args.options.request(task_type::VIDEO_CLIP)?;
    let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
    let mut conn = shared::db::conn(&pool).await?;
    let video = shared::videos::find_video(&mut conn, args.video_id)
        .await?
        .ok_or_else(|| BadInput::new(format!("no video with id {}", args.video_id)))?;
    let video_id = video.id;
    let created =
        shared::registration::create_tasks_for_videos(&mut conn, &[(video, request)]).await?;
    let task_id = created.into_iter().next().unwrap_or_default();
    cache_pending(settings, std::slice::from_ref(&task_id)).await;
    out.emit(&json!({ "video_id": video_id, "task_id": task_id }), || task_id.clone());
    Ok(ExitCode::SUCCESS)
}

/// Connections `enqueue noop` inserts over at once.
const INSERT_CONNECTIONS: usize = 2;

/// The outcome of one spawned batch insert: its error, or a panic as an error.
fn joined_insert(
    joined: Result<anyhow::Result<usize>, tokio::task::JoinError>,
) -> anyhow::Result<()> {
    joined.context("a batch insert panicked")?.map(drop)
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
    let pool =
        shared::db::connect(settings.require_database_url()?, INSERT_CONNECTIONS as u32).await?;
    let mut conn = shared::db::conn(&pool).await?;
    let user = shared::users::ensure_user(&mut conn, NOOP_USER).await?;
    let video_id = shared::videos::ensure_placeholder_video(&mut conn, user.id).await?;
    drop(conn);

    // Batches go in over INSERT_CONNECTIONS connections at once, so that the
    // server inserts one batch while this process builds the next
    // (BENCHMARKS.md, enqueue throughput).
    let mut ids = Vec::with_capacity(args.count as usize);
    let mut inserting = tokio::task::JoinSet::new();
    let mut remaining = args.count;
    while remaining > 0 {
        let n = remaining.min(shared::tasks::BATCH_ROWS as u64 * 10);
        let batch: Vec<NewTask> = (0..n)
            .map(|_| NewTask {
                task_id: shared::registration::new_task_id(),
                user_id: user.id,
                video_id,
                task_type: task_type::NOOP.into(),
                config: Some(config.clone()),
                priority: args.options.priority,
                max_retries: args.options.max_retries,
            })
            .collect();
        ids.extend(batch.iter().map(|t| t.task_id.clone()));
        remaining -= n;
        while inserting.len() >= INSERT_CONNECTIONS {
            if let Some(done) = inserting.join_next().await {
                joined_insert(done)?;
            }
        }
        let pool = pool.clone();
        inserting.spawn(async move {
            let mut conn = pool.get_owned().await.context("no database connection available")?;
            shared::tasks::insert_tasks(&mut conn, &batch).await
        });
    }
    while let Some(done) = inserting.join_next().await {
        joined_insert(done)?;
    }
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
