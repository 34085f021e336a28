//! The fleet and the server itself: `GET /api/v1/queues` (what `enqueue
//! queues` shows), `/healthz` (the process answers), `/readyz` (the
//! database and Redis answer too), `/metrics` (Prometheus text: this
//! server's request counters plus the queue's gauges, read at scrape time).

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use shared::overview::FleetOverview;

/// `GET /api/v1/queues` (operators): queue depths, task counts, the oldest
/// wait, workers alive and their running tasks.
pub async fn queues(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require_operator()?;
    let fleet = FleetOverview::read(&state.reads, &state.queue).await?;
    let mut value = fleet.to_json();
    let mut conn = state.conn().await?;
    // Pending tasks already in Redis, apart from those the scheduler has yet to push.
    value["queued"] = json!(shared::tasks::count_queued(&mut conn).await?);
    let per_minute = shared::tasks::completions_per_minute(&mut conn, 60).await?;
    value["completed_last_minute"] =
        json!(per_minute.iter().filter(|(ago, _)| *ago == 0).map(|(_, n)| n).sum::<i64>());
    value["completed_last_hour"] = json!(per_minute.iter().map(|(_, n)| n).sum::<i64>());
    Ok(Json(value))
}

/// `GET /healthz`: 200 while the process serves.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 when the database and Redis both answer, else 503
/// naming which does not (no addresses or credentials).
pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = async {
        let mut conn = state.conn().await?;
        shared::downloads::database_now(&mut conn).await
    };
    let database = tokio::time::timeout(std::time::Duration::from_secs(3), database).await;
    let database_ok = matches!(database, Ok(Ok(_)));
    let redis = tokio::time::timeout(std::time::Duration::from_secs(3), state.queue.state()).await;
    let redis_ok = matches!(redis, Ok(Ok(_)));
    let body = json!({
        "status": if database_ok && redis_ok { "ready" } else { "not ready" },
        "database": if database_ok { "ok" } else { "unreachable" },
        "redis": if redis_ok { "ok" } else { "unreachable" },
    });
    let status =
        if database_ok && redis_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// `GET /metrics`: the exposition text. Queue gauges are refreshed first
/// (best effort: a scrape still answers when the database does not).
pub async fn metrics(State(state): State<AppState>) -> Response {
    let fleet = FleetOverview::read(&state.reads, &state.queue).await;
    match fleet {
        Ok(fleet) => {
            for (status, n) in &fleet.tasks {
                metrics::gauge!("videoclip_tasks", "status" => status.name()).set(*n as f64);
            }
            metrics::gauge!("videoclip_queue_depth", "queue" => shared::queue::HIGH_PRIORITY_QUEUE)
                .set(fleet.high_priority as f64);
            metrics::gauge!("videoclip_queue_depth", "queue" => shared::queue::VIDEO_PROCESSING_QUEUE)
                .set(fleet.video_processing as f64);
            metrics::gauge!("videoclip_workers_alive").set(fleet.workers_alive.len() as f64);
            metrics::gauge!("videoclip_oldest_wait_seconds")
                .set(fleet.oldest_wait_seconds.unwrap_or(0) as f64);
        }
        Err(e) => tracing::warn!("metrics: fleet not read: {}", shared::one_line(&e)),
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
        .into_response()
}
