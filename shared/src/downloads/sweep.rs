//! The expiry sweep: records past `expires_at` lose their package and
//! become expired (status 2).

use super::*;

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
pub(super) struct DueRecord {
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
