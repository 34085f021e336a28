//! Download packages (`download_records`): all their SQL, the storage keys
//! of packages, the links they are fetched by, and the sweep that expires
//! them. The CLI (`enqueue download`, `enqueue fetch-download`), the
//! worker's `download_package` job, the scheduler's sweeper and a future
//! HTTP server all use this module, so a link means the same to each.
//!
//! A record's life: `enqueue download` checks the segments (the requesting
//! user's, `status` 1, each with a clip) and writes the row with status 0
//! (preparing) and a `download_package` task, in one transaction. The task
//! goes through the queue like any other; its job builds the package
//! ([`package::build`]), uploads it under [`package_key`] and its completion
//! sets `file_path`, `file_size`, `download_url`, `expires_at` and status 1
//! (ready) in the same transaction that completes the task, under the lease.
//! [`sweep_expired`] marks records past `expires_at` status 2 (expired) and
//! deletes their packages.
//!
//! `expires_at` is first set at enqueue (now + the requested lifetime), so
//! a record whose task never completes expires too; the completion sets it
//! again from the moment the package is ready. All times are the
//! database's (`NOW()`, `UNIX_TIMESTAMP()`).

pub mod package;
pub mod sign;

use crate::db::PooledConnection;
use crate::schema::{download_records as dr, video_segments as vs};
use crate::storage::Storage;
use crate::BadInput;
use anyhow::Context;
use bigdecimal::BigDecimal;
use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Timestamp};
use diesel_async::{AsyncConnection, RunQueryDsl};
use package::{PackageClip, PackageFormat};
use serde::Serialize;
pub use sign::SigningKey;

/// `download_records.status`.
pub mod status {
    /// Created; the package is being built.
    pub const PREPARING: i8 = 0;
    /// The package is stored and its link works until `expires_at`.
    pub const READY: i8 = 1;
    /// Past `expires_at`: the package is deleted, the link refused.
    pub const EXPIRED: i8 = 2;

    /// The status's name.
    pub fn name(code: i8) -> &'static str {
        match code {
            PREPARING => "preparing",
            READY => "ready",
            EXPIRED => "expired",
            _ => "unknown",
        }
    }
}

/// Longest lifetime of a link: a week, the longest an S3 presigned URL
/// may live (SigV4), and the same for signed `file://` links.
pub const MAX_EXPIRES_IN_SECONDS: u64 = 7 * 86_400;

/// A new download id (UUIDv7: unique without coordination, time-ordered).
pub fn new_download_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Where an attempt of a download's task stores its package:
/// `downloads/{user_id}/{download_id}/attempt-{n}`. Each attempt has its own
/// prefix (like clips, `references::attempt_prefix`), so removing the
/// package of an attempt that did not commit never touches a committed one.
pub fn attempt_prefix(user_id: i64, download_id: &str, attempts: i32) -> String {
    format!("{}/attempt-{attempts}", package_dir(user_id, download_id))
}

/// Everything stored for one download: `downloads/{user_id}/{download_id}`.
pub fn package_dir(user_id: i64, download_id: &str) -> String {
    format!("downloads/{user_id}/{download_id}")
}

/// The storage key of a package:
/// `downloads/{user_id}/{download_id}/attempt-{n}/{download_id}.{zip|tar}`
/// (the last part is the name a browser saves an S3 link's file under).
pub fn package_key(
    user_id: i64,
    download_id: &str,
    attempts: i32,
    format: PackageFormat,
) -> String {
    format!("{}/{download_id}.{}", attempt_prefix(user_id, download_id, attempts), format.as_str())
}

/// A `video_segments` row as a package needs it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = vs)]
pub struct SegmentForPackage {
    pub segment_id: String,
    pub task_id: i64,
    pub user_id: i64,
    pub original_video_id: i64,
    pub selling_point_type: String,
    pub start_time: BigDecimal,
    pub end_time: BigDecimal,
    pub duration: Option<BigDecimal>,
    pub confidence: Option<BigDecimal>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub file_path: Option<String>,
    pub thumbnail_url: Option<String>,
    pub status: i8,
}

fn number(d: &BigDecimal) -> f64 {
    d.to_string().parse().unwrap_or(0.0)
}

/// The segments with these ids that exist (any user, any status).
pub async fn segments_by_ids(
    conn: &mut PooledConnection<'_>,
    ids: &[String],
) -> anyhow::Result<Vec<SegmentForPackage>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(crate::tasks::BATCH_ROWS) {
        let rows: Vec<SegmentForPackage> = vs::table
            .filter(vs::segment_id.eq_any(chunk))
            .select(SegmentForPackage::as_select())
            .load(conn)
            .await
            .context("reading segments")?;
        found.extend(rows);
    }
    Ok(found)
}

/// The packageable segments (status 1) of the task with primary key
/// `task_pk`, in time order.
pub async fn segments_of_task(
    conn: &mut PooledConnection<'_>,
    task_pk: i64,
) -> anyhow::Result<Vec<SegmentForPackage>> {
    vs::table
        .filter(vs::task_id.eq(task_pk))
        .filter(vs::status.eq(1))
        .order((vs::start_time, vs::id))
        .select(SegmentForPackage::as_select())
        .load(conn)
        .await
        .context("reading the task's segments")
}

/// The primary key and owner (`user_id`) of the task with this public id.
pub async fn find_task(
    conn: &mut PooledConnection<'_>,
    task_id: &str,
) -> anyhow::Result<Option<(i64, i64)>> {
    use crate::schema::processing_tasks as pt;
    pt::table
        .filter(pt::task_id.eq(task_id))
        .select((pt::id, pt::user_id))
        .first(conn)
        .await
        .optional()
        .context("looking up a task")
}

/// The requested segments in the order asked for (each once), or the
/// reason they cannot be packaged: an id that does not exist, a segment of
/// another user than `user_id` (when given; else all must be one user's), a
/// segment whose `status` is not 1 (deleted), one without a clip file.
pub fn check_packageable(
    requested: &[String],
    found: &[SegmentForPackage],
    user: Option<(i64, &str)>,
) -> Result<Vec<SegmentForPackage>, BadInput> {
    let mut seen = std::collections::HashSet::new();
    let mut ordered: Vec<SegmentForPackage> = Vec::new();
    for id in requested.iter().filter(|id| seen.insert(id.as_str())) {
        let Some(segment) = found.iter().find(|s| &s.segment_id == id) else {
            return Err(BadInput::new(format!("unknown segment id {id:?}")));
        };
        match user {
            Some((user_id, name)) if segment.user_id != user_id => {
                return Err(BadInput::new(format!(
                    "segment {id} is not one of user {name:?}'s segments"
                )));
            }
            None if !ordered.is_empty() && ordered[0].user_id != segment.user_id => {
                return Err(BadInput::new(format!(
                    "segment {id} belongs to another user than segment {} (one user's segments per package)",
                    ordered[0].segment_id
                )));
            }
            _ => {}
        }
        check_segment(segment)?;
        ordered.push(segment.clone());
    }
    if ordered.is_empty() {
        return Err(BadInput::new("no segment to package"));
    }
    Ok(ordered)
}

/// One segment's own conditions: `status` 1 and a clip file.
pub fn check_segment(segment: &SegmentForPackage) -> Result<(), BadInput> {
    if segment.status != 1 {
        return Err(BadInput::new(format!(
            "segment {} has status {} (only segments with status 1 can be packaged)",
            segment.segment_id, segment.status
        )));
    }
    if segment.file_path.as_deref().is_none_or(str::is_empty) {
        return Err(BadInput::new(format!("segment {} has no clip file", segment.segment_id)));
    }
    Ok(())
}

/// Where the templated variant of a segment's clip is stored, if the
/// segment has a clip at all: beside the plain clip, `.templated` before
/// the extension (`…/{segment_id}.templated.mp4`). Whether it exists is
/// the storage's to say ([`resolve_clips`]). The one place that decides
/// where templated clips live; templates are applied by another part of
/// the system, which must store them here (or change this function).
pub fn templated_clip_key(segment: &SegmentForPackage) -> Option<String> {
    let plain = segment.file_path.as_deref().filter(|k| !k.is_empty())?;
    Some(crate::references::templated_key(plain))
}

/// The subtitle files a clip may have: beside it and timed to it
/// (`crate::references::subtitle_keys`; a templated clip's own are shifted
/// by its intro).
pub fn subtitle_candidates(clip_key: &str) -> Vec<String> {
    crate::references::subtitle_keys(clip_key).to_vec()
}

/// The package's clips with the storage keys of their files: the plain or
/// (with `templated`) the templated clip, the thumbnail, the subtitle files
/// that exist. A templated clip that is not stored is [`BadInput`] naming
/// the segment.
pub async fn resolve_clips(
    storage: &Storage,
    segments: &[SegmentForPackage],
    templated: bool,
) -> anyhow::Result<Vec<PackageClip>> {
    let mut clips = Vec::with_capacity(segments.len());
    for segment in segments {
        check_segment(segment)?;
        let plain = segment.file_path.clone().unwrap_or_default();
        let clip_key = if templated {
            let key = templated_clip_key(segment).unwrap_or_default();
            if !storage.exists(&key).await? {
                return Err(BadInput::new(format!(
                    "segment {} has no templated clip (apply templates to its video first, or leave out --templated)",
                    segment.segment_id
                ))
                .into());
            }
            key
        } else {
            plain
        };
        let mut subtitle_keys = Vec::new();
        for key in subtitle_candidates(&clip_key) {
            if storage.exists(&key).await? {
                subtitle_keys.push(key);
            }
        }
        let (start, end) = (number(&segment.start_time), number(&segment.end_time));
        clips.push(PackageClip {
            segment_id: segment.segment_id.clone(),
            selling_point_type: segment.selling_point_type.clone(),
            start_time: start,
            end_time: end,
            duration: segment.duration.as_ref().map(number).unwrap_or(end - start),
            title: segment.title.clone(),
            description: segment.description.clone(),
            confidence: segment.confidence.as_ref().map(number),
            clip_key,
            thumbnail_key: segment.thumbnail_url.clone().filter(|k| !k.is_empty()),
            subtitle_keys,
        });
    }
    Ok(clips)
}

/// A `download_records` row about to be created (status preparing).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = dr)]
pub struct NewDownload {
    pub download_id: String,
    pub user_id: i64,
    /// `single` (one segment) or `batch`.
    pub download_type: String,
    /// The segment ids, a JSON array.
    pub segment_ids: Option<serde_json::Value>,
    /// The clips' container (`mp4`).
    pub file_format: String,
    pub package_format: Option<String>,
    pub status: i8,
}

impl NewDownload {
    /// The row for a package of `segments` owned by `user_id`.
    pub fn for_segments(
        download_id: &str,
        user_id: i64,
        segments: &[SegmentForPackage],
        format: PackageFormat,
    ) -> NewDownload {
        let file_format = segments
            .first()
            .and_then(|s| s.file_path.as_deref())
            .and_then(|k| k.rsplit('/').next())
            .and_then(|name| name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()))
            .filter(|e| !e.is_empty() && e.len() <= 20)
            .unwrap_or_else(|| "mp4".into());
        NewDownload {
            download_id: download_id.to_string(),
            user_id,
            download_type: if segments.len() == 1 { "single" } else { "batch" }.into(),
            segment_ids: Some(serde_json::Value::from(
                segments.iter().map(|s| s.segment_id.clone()).collect::<Vec<_>>(),
            )),
            file_format,
            package_format: Some(format.as_str().into()),
            status: status::PREPARING,
        }
    }
}

/// Inserts a record whose link (if it is ever built) expires
/// `expires_in_seconds` from now, database time.
pub async fn insert_download(
    conn: &mut PooledConnection<'_>,
    record: &NewDownload,
    expires_in_seconds: u64,
) -> anyhow::Result<()> {
    diesel::insert_into(dr::table)
        .values(record)
        .execute(conn)
        .await
        .context("inserting a download_records row")?;
    diesel::update(dr::table.filter(dr::download_id.eq(&record.download_id)))
        .set(dr::expires_at.eq(sql::<Nullable<Timestamp>>(&format!(
            "NOW() + INTERVAL {expires_in_seconds} SECOND"
        ))))
        .execute(conn)
        .await
        .context("setting the download's expiry")?;
    Ok(())
}

/// A `download_records` row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = dr)]
pub struct DownloadRow {
    pub id: i64,
    pub download_id: String,
    pub user_id: i64,
    pub download_type: String,
    pub segment_ids: Option<serde_json::Value>,
    pub file_format: String,
    pub package_format: Option<String>,
    pub file_path: Option<String>,
    pub file_size: Option<i64>,
    pub download_url: Option<String>,
    pub expires_at: Option<NaiveDateTime>,
    pub download_count: i32,
    pub status: i8,
    pub created_at: Option<NaiveDateTime>,
}

/// A record with its expiry and the database's clock as Unix seconds.
#[derive(Debug, Clone)]
pub struct Download {
    pub row: DownloadRow,
    pub expires_unix: Option<i64>,
    /// `UNIX_TIMESTAMP()` when the row was read.
    pub now_unix: i64,
}

/// What `--json` of the download commands prints: the seed's columns.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadView {
    pub download_id: String,
    pub user_id: i64,
    pub download_type: String,
    pub segment_ids: Option<serde_json::Value>,
    pub file_format: String,
    pub package_format: Option<String>,
    pub status: i8,
    pub status_name: &'static str,
    pub file_path: Option<String>,
    pub file_size: Option<i64>,
    pub download_url: Option<String>,
    /// RFC 3339, UTC.
    pub expires_at: Option<String>,
    pub download_count: i32,
}

impl Download {
    /// The segment ids of the package, in order.
    pub fn segment_ids(&self) -> Vec<String> {
        self.row
            .segment_ids
            .as_ref()
            .and_then(|v| v.as_array())
            .map(|ids| ids.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }

    /// The package format the record asks for (zip when unset).
    pub fn format(&self) -> Result<PackageFormat, BadInput> {
        PackageFormat::parse(self.row.package_format.as_deref().unwrap_or("zip"))
    }

    /// The record as `--json` shows it.
    pub fn view(&self) -> DownloadView {
        let row = &self.row;
        DownloadView {
            download_id: row.download_id.clone(),
            user_id: row.user_id,
            download_type: row.download_type.clone(),
            segment_ids: row.segment_ids.clone(),
            file_format: row.file_format.clone(),
            package_format: row.package_format.clone(),
            status: row.status,
            status_name: status::name(row.status),
            file_path: row.file_path.clone(),
            file_size: row.file_size,
            download_url: row.download_url.clone(),
            expires_at: self.expires_unix.map(sign::unix_to_rfc3339),
            download_count: row.download_count,
        }
    }

    /// Whether the package may be fetched now: ready and not past its
    /// expiry (database time). `Err` is the reason.
    pub fn check_fetchable(&self) -> Result<(), BadInput> {
        let id = &self.row.download_id;
        match self.row.status {
            status::READY => {}
            status::PREPARING => {
                return Err(BadInput::new(format!(
                    "download {id} is not ready yet (its package is being built)"
                )))
            }
            status::EXPIRED => {
                return Err(BadInput::new(format!(
                    "download {id} has expired{} and its package is deleted",
                    self.expires_unix
                        .map(|t| format!(" at {}", sign::unix_to_rfc3339(t)))
                        .unwrap_or_default()
                )))
            }
            other => {
                return Err(BadInput::new(format!("download {id} has unknown status {other}")))
            }
        }
        match self.expires_unix {
            Some(expires) if self.now_unix >= expires => Err(BadInput::new(format!(
                "download {id} expired at {} ({} ago)",
                sign::unix_to_rfc3339(expires),
                sign::human_seconds(self.now_unix - expires)
            ))),
            _ if self.row.file_path.is_none() => {
                Err(BadInput::new(format!("download {id} has no package file")))
            }
            _ => Ok(()),
        }
    }
}

/// Unix seconds of `expires_at`, and of the database's clock now.
fn unix_columns(
) -> (diesel::expression::SqlLiteral<Nullable<BigInt>>, diesel::expression::SqlLiteral<BigInt>) {
    (
        sql::<Nullable<BigInt>>("CAST(UNIX_TIMESTAMP(download_records.expires_at) AS SIGNED)"),
        sql::<BigInt>("CAST(UNIX_TIMESTAMP() AS SIGNED)"),
    )
}

/// The record with this download id, if any.
pub async fn find_download(
    conn: &mut PooledConnection<'_>,
    download_id: &str,
) -> anyhow::Result<Option<Download>> {
    let found: Option<(DownloadRow, Option<i64>, i64)> = dr::table
        .filter(dr::download_id.eq(download_id))
        .select((DownloadRow::as_select(), unix_columns().0, unix_columns().1))
        .first(conn)
        .await
        .optional()
        .context("reading a download record")?;
    Ok(found.map(|(row, expires_unix, now_unix)| Download { row, expires_unix, now_unix }))
}

/// The record whose `download_url` is exactly `url`, if any (an S3
/// presigned link handed to `fetch-download`).
pub async fn find_download_by_url(
    conn: &mut PooledConnection<'_>,
    url: &str,
) -> anyhow::Result<Option<Download>> {
    let found: Option<(DownloadRow, Option<i64>, i64)> = dr::table
        .filter(dr::download_url.eq(url))
        .select((DownloadRow::as_select(), unix_columns().0, unix_columns().1))
        .first(conn)
        .await
        .optional()
        .context("reading a download record")?;
    Ok(found.map(|(row, expires_unix, now_unix)| Download { row, expires_unix, now_unix }))
}

/// The database's clock, Unix seconds.
pub async fn database_now(conn: &mut PooledConnection<'_>) -> anyhow::Result<i64> {
    diesel::select(unix_columns().1).get_result(conn).await.context("reading the database clock")
}

/// What a completed `download_package` task writes to its record.
#[derive(Debug, Clone)]
pub struct DownloadReady {
    pub download_id: String,
    pub file_path: String,
    pub file_size: i64,
    pub download_url: String,
    /// Unix seconds.
    pub expires_unix: i64,
}

/// Marks a preparing record ready, in the completing task's transaction.
/// Returns false when the record was no longer preparing (swept as
/// expired meanwhile): nothing is written, and the package, which no row
/// refers to, is left to `enqueue gc`.
pub async fn mark_ready(
    conn: &mut PooledConnection<'_>,
    ready: &DownloadReady,
) -> anyhow::Result<bool> {
    let updated = diesel::update(
        dr::table
            .filter(dr::download_id.eq(&ready.download_id))
            .filter(dr::status.eq(status::PREPARING)),
    )
    .set((
        dr::status.eq(status::READY),
        dr::file_path.eq(&ready.file_path),
        dr::file_size.eq(ready.file_size),
        dr::download_url.eq(&ready.download_url),
        dr::expires_at
            .eq(sql::<Nullable<Timestamp>>(&format!("FROM_UNIXTIME({})", ready.expires_unix))),
    ))
    .execute(conn)
    .await
    .context("marking a download ready")?;
    Ok(updated == 1)
}

/// The link to a package stored under `key` that works until `expires`
/// (Unix seconds; `now` is the database's clock): for `s3://` storage a
/// presigned GET that S3 itself refuses after `expires`, for `file://`
/// storage a link signed with `signing_key` under `base_url`. A `file://`
/// storage without a key is an error (an operator's to fix: retryable).
pub async fn make_link(
    storage: &Storage,
    signing_key: Option<&SigningKey>,
    base_url: &str,
    download_id: &str,
    key: &str,
    expires: i64,
    now: i64,
) -> anyhow::Result<String> {
    if storage.is_s3() {
        let seconds = u32::try_from((expires - now).max(1)).unwrap_or(u32::MAX);
        let name = key.rsplit('/').next().unwrap_or(key);
        return storage.presigned_get(key, seconds, Some(name)).await;
    }
    let signing_key = signing_key.with_context(|| {
        format!(
            "{} is not set: cannot sign a link to a package on file:// storage",
            sign::SIGNING_KEY_ENV
        )
    })?;
    Ok(sign::signed_url(signing_key, base_url, download_id, expires))
}

/// Counts one fetch of a package: `download_count + 1` on the record and
/// on each of its segments' `video_segments` rows, in one transaction.
pub async fn count_fetch(
    conn: &mut PooledConnection<'_>,
    download: &Download,
) -> anyhow::Result<()> {
    let id = download.row.id;
    let segment_ids = download.segment_ids();
    conn.transaction(async |conn| -> anyhow::Result<()> {
        diesel::update(dr::table.find(id))
            .set(dr::download_count.eq(dr::download_count + 1))
            .execute(conn)
            .await
            .context("counting a download")?;
        for chunk in segment_ids.chunks(crate::tasks::BATCH_ROWS) {
            diesel::update(vs::table.filter(vs::segment_id.eq_any(chunk)))
                .set(vs::download_count.eq(vs::download_count + 1))
                .execute(conn)
                .await
                .context("counting a download on its segments")?;
        }
        Ok(())
    })
    .await
}

/// What one [`sweep_expired`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Records marked expired (status 2).
    pub expired: usize,
    /// Stored objects deleted.
    pub deleted_objects: usize,
}

/// Records past `expires_at` that are not yet marked expired.
#[derive(Debug, Clone, Queryable)]
struct DueRecord {
    id: i64,
    download_id: String,
    user_id: i64,
    file_path: Option<String>,
}

/// Expires every record past `expires_at` (database time), `batch` at a
/// time: deletes its package (every object under the download's
/// directory, attempts that never committed included), then marks it
/// status 2. Deleting first means a sweep that fails half-way leaves the
/// record to the next sweep, never an expired record whose package lives
/// on. Safe to run from several schedulers at once: deleting is
/// idempotent and the UPDATE re-checks the status.
pub async fn sweep_expired(
    conn: &mut PooledConnection<'_>,
    storage: &Storage,
    batch: usize,
) -> anyhow::Result<SweepReport> {
    let mut report = SweepReport::default();
    let mut after = 0i64;
    loop {
        let due: Vec<DueRecord> = dr::table
            .filter(dr::status.eq_any([status::PREPARING, status::READY]))
            .filter(dr::expires_at.le(sql::<Nullable<Timestamp>>("NOW()")))
            .filter(dr::id.gt(after))
            .order(dr::id)
            .limit(batch.max(1) as i64)
            .select((dr::id, dr::download_id, dr::user_id, dr::file_path))
            .load(conn)
            .await
            .context("finding expired downloads")?;
        let Some(last) = due.last() else { break };
        after = last.id;
        for record in &due {
            if let Some(key) = &record.file_path {
                storage.delete(key).await?;
            }
            report.deleted_objects += usize::from(record.file_path.is_some());
            if sign::is_plain_id(&record.download_id) {
                // What is left: packages of attempts that never committed.
                let dir = package_dir(record.user_id, &record.download_id);
                report.deleted_objects += storage.delete_all_under(&dir).await?;
            }
            let marked = diesel::update(
                dr::table
                    .find(record.id)
                    .filter(dr::status.eq_any([status::PREPARING, status::READY]))
                    .filter(dr::expires_at.le(sql::<Nullable<Timestamp>>("NOW()"))),
            )
            .set(dr::status.eq(status::EXPIRED))
            .execute(conn)
            .await
            .context("marking a download expired")?;
            report.expired += marked;
        }
        if due.len() < batch.max(1) {
            break;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn segment(id: &str, user_id: i64, status: i8) -> SegmentForPackage {
        SegmentForPackage {
            segment_id: id.into(),
            task_id: 1,
            user_id,
            original_video_id: 1,
            selling_point_type: "hook".into(),
            start_time: BigDecimal::from_str("1.5").unwrap(),
            end_time: BigDecimal::from_str("4").unwrap(),
            duration: None,
            confidence: None,
            title: None,
            description: None,
            file_path: Some(format!("clips/{user_id}/t/attempt-1/{id}.mp4")),
            thumbnail_url: None,
            status,
        }
    }

    #[test]
    fn only_the_users_live_segments_with_clips_are_packageable() {
        let found = vec![segment("a", 1, 1), segment("b", 2, 1), segment("c", 1, 0)];
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ok = check_packageable(&ids(&["a", "a"]), &found, Some((1, "shop"))).unwrap();
        assert_eq!(ok.len(), 1);
        let other = check_packageable(&ids(&["a", "b"]), &found, Some((1, "shop"))).unwrap_err();
        assert!(other.0.contains("not one of user \"shop\"'s"), "{other}");
        let mixed = check_packageable(&ids(&["a", "b"]), &found, None).unwrap_err();
        assert!(mixed.0.contains("another user"), "{mixed}");
        let deleted = check_packageable(&ids(&["c"]), &found, Some((1, "shop"))).unwrap_err();
        assert!(deleted.0.contains("status 0"), "{deleted}");
        let unknown = check_packageable(&ids(&["z"]), &found, None).unwrap_err();
        assert!(unknown.0.contains("unknown segment id \"z\""), "{unknown}");
        let mut no_clip = segment("d", 1, 1);
        no_clip.file_path = None;
        assert!(check_packageable(&ids(&["d"]), &[no_clip], None)
            .unwrap_err()
            .0
            .contains("no clip"));
    }

    #[test]
    fn templated_clips_and_subtitles_live_beside_the_plain_clip() {
        let s = segment("a", 7, 1);
        assert_eq!(templated_clip_key(&s).unwrap(), "clips/7/t/attempt-1/a.templated.mp4");
        assert_eq!(
            subtitle_candidates("clips/7/t/attempt-1/a.templated.mp4"),
            vec!["clips/7/t/attempt-1/a.templated.srt", "clips/7/t/attempt-1/a.templated.vtt"]
        );
        assert_eq!(subtitle_candidates("x.y/clip"), vec!["x.y/clip.srt", "x.y/clip.vtt"]);
    }

    #[test]
    fn package_keys_pass_the_storage_key_rules() {
        let key = package_key(7, "0190-ab", 2, PackageFormat::Zip);
        assert_eq!(key, "downloads/7/0190-ab/attempt-2/0190-ab.zip");
        crate::storage::check_key(&key).unwrap();
        assert!(key.starts_with(&format!("{}/", attempt_prefix(7, "0190-ab", 2))));
    }

    #[test]
    fn the_record_of_one_segment_is_single_and_of_more_a_batch() {
        let one = NewDownload::for_segments("d", 1, &[segment("a", 1, 1)], PackageFormat::Tar);
        assert_eq!((one.download_type.as_str(), one.file_format.as_str()), ("single", "mp4"));
        assert_eq!(one.package_format.as_deref(), Some("tar"));
        let two = NewDownload::for_segments(
            "d",
            1,
            &[segment("a", 1, 1), segment("b", 1, 1)],
            PackageFormat::Zip,
        );
        assert_eq!(two.download_type, "batch");
        assert_eq!(two.segment_ids, Some(serde_json::json!(["a", "b"])));
    }
}
