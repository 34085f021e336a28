//! `download_records` rows: created with their task, read, made ready in
//! the completing transaction with their link, and counted at each fetch.

use super::*;

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
pub(super) fn unix_columns(
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
