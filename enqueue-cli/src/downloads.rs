//! `enqueue download` and `enqueue fetch-download`: download packages.
//!
//! `download` asks for a package through `shared::downloads::request_package`
//! (everything checked first, then the record and its task written in one
//! transaction; the API does the same). `--wait` follows the task and
//! prints the link.
//!
//! `fetch-download` honours a link: a signed `file://`-storage link (its
//! signature and expiry checked with `shared::downloads::sign`, the code an
//! HTTP server uses too), an S3 link that is some record's `download_url`,
//! or a download id. It copies the package out and counts the fetch on the
//! record and on each of its segments.

use crate::Output;
use anyhow::Context;
use clap::{ArgGroup, Args};
use serde_json::json;
use shared::config::Settings;
use shared::downloads::package::PackageFormat;
use shared::downloads::sign::{self, SigningKey};
use shared::downloads::{self, Download, PackageRequest, Selection};
use shared::models::TaskStatus;
use shared::BadInput;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("what").required(true).args(["segment_ids", "task"])))]
pub struct DownloadArgs {
    /// Segments to package (video_segments.segment_id)
    pub segment_ids: Vec<String>,
    /// Package every clip (status 1) of this task instead (processing_tasks.task_id)
    #[arg(long)]
    pub task: Option<String>,
    /// The requesting user (a user name): only their segments can be packaged
    #[arg(long)]
    pub user: Option<String>,
    /// Package the templated clips (intro, outro, watermark...) instead of the plain ones
    #[arg(long)]
    pub templated: bool,
    /// Archive format
    #[arg(long, value_enum, default_value = "zip")]
    pub format: PackageFormat,
    /// How long the link works once the package is ready (e.g. 30m, 24h, 7d; at most 7d)
    #[arg(long, default_value = "24h", value_parser = parse_expires_in)]
    pub expires_in: Duration,
    /// 1 (highest) .. 10 (lowest)
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i8).range(1..=10))]
    pub priority: i8,
    /// Retries allowed after transient failures
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i8).range(0..=20))]
    pub max_retries: i8,
    /// Wait until the package is ready and print its link; exit 0 only if it is
    #[arg(long)]
    pub wait: bool,
}

#[derive(Args, Debug)]
pub struct FetchDownloadArgs {
    /// A download link (as `enqueue download` printed it) or a download id
    pub link: String,
    /// Where to write the package (default: DOWNLOAD_ID.zip or .tar here; a directory: inside it)
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
}

/// A lifetime between 1 second and a week.
fn parse_expires_in(text: &str) -> Result<Duration, String> {
    let duration = crate::gc::parse_duration(text)?;
    let max = downloads::MAX_EXPIRES_IN_SECONDS;
    if duration.is_zero() || duration.as_secs() > max {
        return Err(format!(
            "{text:?} must be between 1s and 7d (S3 presigned links live at most a week)"
        ));
    }
    Ok(duration)
}

/// The record as `--json` prints it, with the task building it.
fn record_json(download: &Download, task_id: &str) -> serde_json::Value {
    let mut value = serde_json::to_value(download.view()).unwrap_or_else(|_| json!({}));
    value["task_id"] = json!(task_id);
    value
}

/// `enqueue download`.
pub async fn download(
    settings: &Settings,
    out: &Output,
    args: DownloadArgs,
) -> anyhow::Result<ExitCode> {
    let storage = shared::storage::Storage::from_url(&settings.storage_url)?;
    let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
    let mut conn = shared::db::conn(&pool).await?;
    let user = match &args.user {
        Some(name) => Some(shared::users::require_user(&mut conn, name).await?),
        None => None,
    };
    let selection = match &args.task {
        Some(task_id) => Selection::Task(task_id.clone()),
        None => Selection::Segments(args.segment_ids.clone()),
    };
    let request = PackageRequest {
        selection,
        templated: args.templated,
        format: args.format,
        expires_in_seconds: args.expires_in.as_secs(),
        priority: args.priority,
        max_retries: args.max_retries,
    };
    let requested =
        downloads::request_package(&mut conn, &storage, user.as_ref(), &request).await?;
    let download_id = requested.download_id.clone();
    let task = requested;
    crate::create::cache_pending(settings, std::slice::from_ref(&task.task_id)).await;
    // The pool has one connection: following the task needs it.
    drop(conn);

    if args.wait {
        use std::io::IsTerminal;
        let mode = if !out.json && std::io::stderr().is_terminal() {
            crate::watch::Mode::Bars
        } else {
            crate::watch::Mode::Text
        };
        let ids = std::slice::from_ref(&task.task_id);
        crate::watch::follow(
            &pool,
            Some(&settings.redis_url),
            ids,
            mode,
            Duration::from_millis(250),
        )
        .await?;
        let mut conn = shared::db::conn(&pool).await?;
        let summary = shared::tasks::find_summaries(&mut conn, ids)
            .await?
            .into_iter()
            .next()
            .context("the download's task vanished")?;
        if TaskStatus::from_code(summary.status)? != TaskStatus::Completed {
            anyhow::bail!(
                "download {download_id}: task {} {}: {}",
                task.task_id,
                TaskStatus::from_code(summary.status)?.name(),
                summary.error_message.as_deref().unwrap_or("stopped before it finished")
            );
        }
    }
    let mut conn = shared::db::conn(&pool).await?;
    let stored = downloads::find_download(&mut conn, &download_id)
        .await?
        .context("the new download record vanished")?;
    out.emit(&record_json(&stored, &task.task_id), || match &stored.row.download_url {
        Some(url) if stored.row.status == downloads::status::READY => format!(
            "{url}\n(download {download_id}: {} bytes, expires {})",
            stored.row.file_size.unwrap_or(0),
            stored.expires_unix.map(sign::unix_to_rfc3339).unwrap_or_else(|| "-".into())
        ),
        _ => format!("download {download_id} -> task {} (preparing)", task.task_id),
    });
    Ok(ExitCode::SUCCESS)
}

/// `enqueue fetch-download`.
pub async fn fetch(
    settings: &Settings,
    out: &Output,
    args: FetchDownloadArgs,
) -> anyhow::Result<ExitCode> {
    let storage = shared::storage::Storage::from_url(&settings.storage_url)?;
    let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
    let mut conn = shared::db::conn(&pool).await?;
    let text = args.link.trim();
    let download = if let Some(link) = sign::parse_link(text) {
        let key = SigningKey::require_from_env()?;
        let now = downloads::database_now(&mut conn).await?;
        sign::verify(&key, &link, now)?;
        downloads::find_download(&mut conn, &link.download_id)
            .await?
            .ok_or_else(|| BadInput::new(format!("download {} does not exist", link.download_id)))?
    } else if text.contains("://") {
        downloads::find_download_by_url(&mut conn, text).await?.ok_or_else(|| {
            BadInput::new(
                "not a download link: neither signed (/api/v1/downloads/ID/file?expires=..&sig=..) nor the link of any download",
            )
        })?
    } else if sign::is_plain_id(text) {
        downloads::find_download(&mut conn, text)
            .await?
            .ok_or_else(|| BadInput::new(format!("download {text} does not exist")))?
    } else {
        return Err(BadInput::new("give a download link or a download id").into());
    };
    download.check_fetchable()?;
    let key = download.row.file_path.clone().unwrap_or_default();
    let name = format!("{}.{}", download.row.download_id, download.format()?.as_str());
    let target = match args.output {
        Some(path) if path.is_dir() => path.join(&name),
        Some(path) => path,
        None => PathBuf::from(&name),
    };
    let size = storage.fetch_to(&key, &target).await?;
    downloads::count_fetch(&mut conn, &download).await?;
    let count = download.row.download_count + 1;
    out.emit(
        &json!({
            "download_id": download.row.download_id,
            "output": target.display().to_string(),
            "file_size": size,
            "download_count": count,
        }),
        || format!("{} ({size} bytes)", target.display()),
    );
    Ok(ExitCode::SUCCESS)
}
