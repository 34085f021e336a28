//! Rows as the code sees them, and the enums behind the seed's TINYINT codes.

use crate::schema::{processing_results, processing_tasks, users, videos};
use bigdecimal::BigDecimal;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

/// `processing_tasks.current_step` values the queue itself writes (the
/// video pipeline adds its own step names while it runs: "transcribing",
/// "cutting clips", ...). One name per state change, so scripts and the
/// dashboard can rely on them.
pub mod step {
    /// Created, not yet claimed (or made pending again by `enqueue retry`).
    pub const PENDING: &str = "pending";
    /// Claimed by a worker, before the job reports its first step.
    pub const STARTED: &str = "started";
    /// Failed transiently; pending again after its backoff.
    pub const WAITING_TO_RETRY: &str = "waiting to retry";
    /// Given back by a worker shutting down; pending again at once.
    pub const HANDED_BACK: &str = "handed back";
    /// Its worker stopped renewing the lease; pending again (the reaper).
    pub const LEASE_EXPIRED: &str = "lease expired";
    /// Final states.
    pub const COMPLETED: &str = "completed";
    pub const FAILED: &str = "failed";
    pub const CANCELLED: &str = "cancelled";
}

/// `processing_tasks.status`, as docs/CONTRACT.md fixes the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Pending = 0,
    Processing = 1,
    Completed = 2,
    Failed = 3,
    Cancelled = 4,
}

impl TaskStatus {
    /// Every status, in code order (for counts and listings).
    pub const ALL: [TaskStatus; 5] = [
        TaskStatus::Pending,
        TaskStatus::Processing,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    /// The database code.
    pub fn code(self) -> i8 {
        self as i8
    }

    /// The status for a database code; unknown codes are reported, not guessed.
    pub fn from_code(code: i8) -> anyhow::Result<Self> {
        Ok(match code {
            0 => Self::Pending,
            1 => Self::Processing,
            2 => Self::Completed,
            3 => Self::Failed,
            4 => Self::Cancelled,
            other => anyhow::bail!("unknown task status code {other}"),
        })
    }

    /// Lower-case name, as shown by the CLI and written to `task:status`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// True once nothing more will happen to the task by itself.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// The kinds of task a worker knows how to run (`processing_tasks.task_type`).
pub mod task_type {
    use crate::jobs::JobKind;
    /// Transcribe, detect selling points, cut clips.
    pub const VIDEO_CLIP: &str = crate::jobs::VideoClip::TYPE;
    /// Sleep, then write one result row: the queue path without media work.
    pub const NOOP: &str = crate::jobs::Noop::TYPE;
    /// Build a download package of clips and store it with its link.
    pub const DOWNLOAD_PACKAGE: &str = crate::jobs::DownloadPackage::TYPE;
}

/// A `users` row.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub status: i8,
}

/// A user about to be created.
#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
}

/// A `videos` row about to be registered.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = videos)]
pub struct NewVideo {
    pub user_id: i64,
    pub filename: String,
    pub original_filename: String,
    pub file_path: String,
    pub file_size: i64,
    pub file_hash: Option<String>,
    pub mime_type: Option<String>,
    pub duration: Option<BigDecimal>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub frame_rate: Option<BigDecimal>,
    pub bitrate: Option<i64>,
}

/// A `videos` row as the worker reads it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = videos)]
pub struct Video {
    pub id: i64,
    pub user_id: i64,
    pub filename: String,
    pub original_filename: String,
    pub file_path: String,
    pub file_size: i64,
    pub file_hash: Option<String>,
    pub status: i8,
    /// Seconds, as probed at upload (sizes the worker's step deadlines).
    pub duration: Option<BigDecimal>,
    /// Frame size as probed at upload (a watermark must fit it).
    pub width: Option<i32>,
    pub height: Option<i32>,
}

/// A `processing_tasks` row about to be created (status pending).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = processing_tasks)]
pub struct NewTask {
    pub task_id: String,
    pub user_id: i64,
    pub video_id: i64,
    pub task_type: String,
    pub config: Option<serde_json::Value>,
    pub priority: i8,
    pub max_retries: i8,
}

/// What `enqueue status` shows of a task.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = processing_tasks)]
pub struct TaskSummary {
    pub task_id: String,
    pub task_type: String,
    #[serde(skip)]
    pub status: i8,
    pub priority: i8,
    pub progress: i8,
    pub current_step: Option<String>,
    pub retry_count: i8,
    pub max_retries: i8,
    pub attempts: i32,
    pub error_message: Option<String>,
    pub lease_owner: Option<String>,
    pub created_at: Option<NaiveDateTime>,
    pub queued_at: Option<NaiveDateTime>,
    pub started_at: Option<NaiveDateTime>,
    pub completed_at: Option<NaiveDateTime>,
    pub actual_duration: Option<i32>,
}

impl TaskSummary {
    /// The JSON form `enqueue status --json` and the API print: every
    /// field, with the status as its name.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        let status = TaskStatus::from_code(self.status).map(|s| s.name()).unwrap_or("unknown");
        value["status"] = serde_json::json!(status);
        value
    }
}

/// A `processing_results` row about to be written with its task's completion.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = processing_results)]
pub struct NewResult {
    pub task_id: i64,
    pub user_id: i64,
    pub video_id: i64,
    pub result_type: String,
    pub result_data: Option<serde_json::Value>,
    pub file_path: Option<String>,
    pub file_size: Option<i64>,
    pub metadata: Option<serde_json::Value>,
}

/// A `video_segments` row about to be written with its task's completion
/// (`duration` is generated by the database).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = crate::schema::video_segments)]
pub struct NewSegment {
    pub segment_id: String,
    pub task_id: i64,
    pub user_id: i64,
    pub original_video_id: i64,
    pub selling_point_type: String,
    pub start_time: BigDecimal,
    pub end_time: BigDecimal,
    pub confidence: Option<BigDecimal>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub file_path: Option<String>,
    pub file_size: Option<i64>,
    pub thumbnail_url: Option<String>,
}

/// What a probe learned about a stored video, written to its `videos` row.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = videos)]
pub struct VideoMetadata {
    pub duration: Option<BigDecimal>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub frame_rate: Option<BigDecimal>,
    pub bitrate: Option<i64>,
    pub mime_type: Option<String>,
    /// `videos.status` after the task (3 completed; `None` leaves it).
    pub status: Option<i8>,
    /// A still of the video, stored beside its clips.
    pub thumbnail_url: Option<String>,
}

/// A `video_segments` row as `enqueue segments` shows it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::video_segments)]
pub struct SegmentRow {
    pub segment_id: String,
    pub selling_point_type: String,
    pub start_time: BigDecimal,
    pub end_time: BigDecimal,
    pub confidence: Option<BigDecimal>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub file_path: Option<String>,
    pub file_size: Option<i64>,
    pub thumbnail_url: Option<String>,
}

impl SegmentRow {
    /// The JSON form `enqueue segments --json` and the API print (the
    /// seed's column names; times and confidence as numbers).
    pub fn to_json(&self) -> serde_json::Value {
        let number = |d: &BigDecimal| d.to_string().parse::<f64>().unwrap_or(0.0);
        serde_json::json!({
            "segment_id": self.segment_id,
            "selling_point_type": self.selling_point_type,
            "start_time": number(&self.start_time),
            "end_time": number(&self.end_time),
            "confidence": self.confidence.as_ref().map(number),
            "title": self.title,
            "description": self.description,
            "file_path": self.file_path,
            "file_size": self.file_size,
            "thumbnail_url": self.thumbnail_url,
        })
    }
}

/// A database time (UTC: every session runs in UTC) as RFC 3339, the form
/// JSON output and cached values use (`2026-12-02T10:30:00Z`).
pub fn rfc3339(time: NaiveDateTime) -> String {
    time.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
