//! Keeps this worker's leases alive and notices the ones it lost.
//!
//! Once a second, one UPDATE extends every held lease. A task whose lease
//! is gone (an operator cancelled it, the reaper gave it to another worker
//! after this process stalled) gets its cancel flag set, so its run stops
//! within about a second; its commit would be refused anyway.

use crate::held::HeldTasks;
use shared::db::Pool;
use shared::queue::Queue;
use shared::shutdown::Shutdown;
use std::sync::Arc;
use std::time::Duration;

/// How often leases are renewed and checked.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Runs until shutdown.
pub async fn run(
    pool: Pool,
    queue: Queue,
    held: Arc<HeldTasks>,
    worker_id: String,
    lease_millis: u64,
    mut shutdown: Shutdown,
) {
    loop {
        if let Err(e) = queue.mark_worker_alive(&worker_id).await {
            tracing::debug!("worker heartbeat not recorded in Redis: {}", shared::one_line(&e));
        }
        if shutdown.sleep(INTERVAL).await {
            // Keep renewing during the grace period: tasks are still finishing.
            if held.is_empty() {
                let _ = queue.mark_worker_gone(&worker_id).await;
                return;
            }
        }
        let ids = held.lease_ids();
        metrics::counter!("videoclip_heartbeats_total").increment(1);
        metrics::gauge!("videoclip_held_tasks").set(ids.len() as f64);
        if ids.is_empty() {
            continue;
        }
        let result = async {
            let mut conn = shared::db::conn(&pool).await?;
            shared::tasks::renew_leases(&mut conn, &ids, &worker_id, lease_millis).await
        }
        .await;
        match result {
            Ok(still_held) => {
                metrics::counter!("videoclip_lease_renewals_total")
                    .increment(still_held.len() as u64);
                let lost = held.cancel_lost(&ids, &still_held);
                metrics::counter!("videoclip_leases_lost_total").increment(lost as u64);
                if lost > 0 {
                    tracing::warn!(lost, "leases lost (cancelled or reaped): stopping those tasks");
                }
            }
            Err(e) => {
                metrics::counter!("videoclip_heartbeat_failures_total").increment(1);
                tracing::warn!("heartbeat failed: {}", shared::one_line(&e));
            }
        }
    }
}
