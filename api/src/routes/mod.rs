//! The router: every path the server answers, in one place. The JSON API
//! lives under `/api/v1` (one file per resource below), the dashboard at
//! `/` (`crate::dashboard`), and the probes and metrics at the top level.
//! Requests are counted per route and status for `/metrics`.

mod downloads;
mod extract;
mod files;
mod fleet;
mod stream;
pub mod task_changes;
pub mod tasks;
mod videos;

pub use extract::{JsonBody, QueryParams};

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

/// The OpenAPI description of `/api/v1`, served as is.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/openapi.json", get(openapi))
        // The upload counts its own bytes against API_MAX_UPLOAD_BYTES.
        .route("/videos", post(videos::upload).layer(DefaultBodyLimit::disable()))
        .route("/videos/{video_id}", get(videos::show))
        .route("/videos/{video_id}/file", get(files::video_file))
        .route("/tasks", get(tasks::list).post(task_changes::create))
        .route("/tasks/batch", post(task_changes::create_batch))
        .route("/tasks/cancel", post(task_changes::cancel_many))
        .route("/tasks/retry", post(task_changes::retry_many))
        .route("/tasks/{task_id}", get(tasks::show))
        .route("/tasks/{task_id}/history", get(tasks::history))
        .route("/tasks/{task_id}/segments", get(tasks::segments))
        .route("/tasks/{task_id}/transcript", get(tasks::transcript))
        .route("/tasks/{task_id}/events", get(stream::task_events))
        .route("/tasks/{task_id}/cancel", post(task_changes::cancel))
        .route("/tasks/{task_id}/retry", post(task_changes::retry))
        .route("/events", get(stream::set_events))
        .route("/segments/{segment_id}/clip", get(files::clip))
        .route("/segments/{segment_id}/thumbnail", get(files::thumbnail))
        .route("/templates", get(downloads::templates))
        .route("/downloads", post(downloads::create))
        .route("/downloads/{download_id}", get(downloads::show))
        .route("/downloads/{download_id}/file", get(downloads::file))
        .route("/queues", get(fleet::queues))
        .fallback(api_not_found);
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(fleet::healthz))
        .route("/readyz", get(fleet::readyz))
        .route("/metrics", get(fleet::metrics))
        .merge(crate::dashboard::router())
        .layer(axum::middleware::from_fn(count_requests))
        .with_state(state)
}

/// `GET /api/v1/openapi.json`.
async fn openapi() -> Response {
    Response::builder()
        .header("content-type", "application/json")
        .body(OPENAPI.into())
        .unwrap_or_default()
}

/// Any other `/api/v1` path: a JSON 404.
async fn api_not_found() -> ApiError {
    ApiError::not_found("endpoint")
}

/// Counts each answered request by route template and status, and times it.
async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("videoclip_api_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("videoclip_api_request_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
