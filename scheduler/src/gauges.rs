//! Gauges the scheduler publishes every five seconds, beside its ticks:
//! task counts per status (a display read: the replica's if one is
//! configured) and the database's own health (shared::db_health) of the
//! primary and, if configured, the replica's lag and replication state.
//! A failed read skips that sample; nothing here affects the queue.

use shared::db::Pool;
use shared::db_health::DatabaseHealth;
use shared::models::TaskStatus;
use shared::replica::ReadPool;
use shared::shutdown::Shutdown;
use std::time::{Duration, Instant};

const EVERY: Duration = Duration::from_secs(5);

/// Publishes the gauges now and every [`EVERY`] until shutdown.
pub async fn run(primary: Pool, reads: ReadPool, mut shutdown: Shutdown) {
    let mut last: Option<(Instant, DatabaseHealth)> = None;
    loop {
        publish_task_counts(&reads).await;
        last = publish_database_health(&primary, last).await;
        publish_replica(&reads).await;
        if shutdown.sleep(EVERY).await {
            return;
        }
    }
}

async fn publish_task_counts(reads: &ReadPool) {
    let Ok(mut conn) = reads.reader().await else { return };
    let Ok(counts) = shared::tasks::count_by_status(&mut conn).await else { return };
    for status in TaskStatus::ALL {
        let n = counts.iter().find(|(code, _)| *code == status.code()).map(|(_, n)| *n);
        metrics::gauge!("videoclip_tasks", "status" => status.name()).set(n.unwrap_or(0) as f64);
    }
}

/// Publishes a sample of the primary; returns it (with its time) for the
/// per-second rates of the next one, or `previous` if the read failed.
async fn publish_database_health(
    primary: &Pool,
    previous: Option<(Instant, DatabaseHealth)>,
) -> Option<(Instant, DatabaseHealth)> {
    let Ok(mut conn) = shared::db::conn(primary).await else { return previous };
    let health = match DatabaseHealth::read(&mut conn).await {
        Ok(health) => health,
        Err(e) => {
            tracing::debug!("database health not read: {}", shared::one_line(&e));
            return previous;
        }
    };
    let now = Instant::now();
    metrics::gauge!("videoclip_db_connections").set(health.connections as f64);
    metrics::gauge!("videoclip_db_max_connections").set(health.max_connections as f64);
    if health.max_connections > 0 {
        metrics::gauge!("videoclip_db_connection_usage_ratio")
            .set(health.connections as f64 / health.max_connections as f64);
    }
    metrics::counter!("videoclip_db_queries_total").absolute(health.queries);
    metrics::counter!("videoclip_db_transactions_total").absolute(health.transactions);
    metrics::counter!("videoclip_db_slow_queries_total").absolute(health.slow_queries);
    metrics::counter!("videoclip_db_row_lock_waits_total").absolute(health.row_lock_waits);
    metrics::gauge!("videoclip_db_row_lock_wait_seconds_total")
        .set(health.row_lock_wait_ms as f64 / 1000.0);
    if let Some((at, before)) = &previous {
        let seconds = now.duration_since(*at).as_secs_f64().max(0.001);
        let rate = |after: u64, before: u64| after.saturating_sub(before) as f64 / seconds;
        metrics::gauge!("videoclip_db_queries_per_second")
            .set(rate(health.queries, before.queries));
        metrics::gauge!("videoclip_db_transactions_per_second")
            .set(rate(health.transactions, before.transactions));
    }
    Some((now, health))
}

async fn publish_replica(reads: &ReadPool) {
    match reads.replica_lag().await {
        Ok(None) => {}
        Ok(Some(lag)) => {
            metrics::gauge!("videoclip_db_replica_up").set(1.0);
            metrics::gauge!("videoclip_db_replica_running").set(if lag.running {
                1.0
            } else {
                0.0
            });
            if let Some(seconds) = lag.seconds {
                metrics::gauge!("videoclip_db_replica_lag_seconds").set(seconds as f64);
            }
        }
        Err(_) => {
            metrics::gauge!("videoclip_db_replica_up").set(0.0);
            metrics::gauge!("videoclip_db_replica_running").set(0.0);
        }
    }
}
