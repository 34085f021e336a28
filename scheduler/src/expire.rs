//! The download sweeper: every `interval`, records past `expires_at` are
//! marked expired (status 2) and their packages deleted
//! (`shared::downloads::sweep_expired`, which says why deleting comes
//! first). Any number of schedulers may sweep at once. Failures (database
//! or storage away) are logged and the next sweep tries again.

use shared::db::Pool;
use shared::shutdown::Shutdown;
use shared::storage::Storage;
use std::time::Duration;

/// Records read per statement of a sweep.
const BATCH: usize = 500;

/// Sweeps until shutdown.
pub async fn run(pool: Pool, storage: Storage, interval: Duration, mut shutdown: Shutdown) {
    loop {
        match sweep_once(&pool, &storage).await {
            Ok(report) if report.expired > 0 || report.deleted_objects > 0 => {
                tracing::info!(
                    expired = report.expired,
                    deleted_objects = report.deleted_objects,
                    "download packages expired"
                );
                metrics::counter!("videoclip_downloads_expired_total")
                    .increment(report.expired as u64);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("download sweep failed: {}", shared::one_line(&e)),
        }
        if shutdown.sleep(interval).await {
            break;
        }
    }
}

async fn sweep_once(
    pool: &Pool,
    storage: &Storage,
) -> anyhow::Result<shared::downloads::SweepReport> {
    let mut conn = shared::db::conn(pool).await?;
    shared::downloads::sweep_expired(&mut conn, storage, BATCH).await
}
