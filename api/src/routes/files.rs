//! Stored files served to the caller who owns them: a clip, its thumbnail,
//! the uploaded video. Only keys read from the owner's rows are served, and
//! each is checked like the worker checks keys (`shared::storage::check_key`:
//! no `..`, no absolute path), so nothing outside the storage root is
//! reachable. `file://` storage answers here with `Range` support (the
//! browser seeks in a clip); `s3://` storage redirects to a short-lived
//! presigned URL (S3 honours `Range` itself).

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Request};
use axum::response::{IntoResponse, Redirect, Response};
use shared::storage::Storage;
use tower::ServiceExt;

/// Seconds a presigned redirect stays valid.
const PRESIGNED_SECONDS: u32 = 900;

/// Request headers that steer a file answer (ranges, caching).
const PASSED_HEADERS: [header::HeaderName; 5] = [
    header::RANGE,
    header::IF_RANGE,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_MATCH,
];

/// Answers with the object under `key` (named `what` in a 404).
pub async fn serve_key(
    state: &AppState,
    key: &str,
    headers: &HeaderMap,
    what: &str,
) -> ApiResult<Response> {
    if shared::storage::check_key(key).is_err() {
        tracing::warn!("refused to serve a stored key that fails the key check");
        return Err(ApiError::not_found(what));
    }
    match &state.storage {
        Storage::Local { .. } => {
            let path = state.storage.local_path(key)?;
            if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
                return Err(ApiError::not_found(what));
            }
            let mut request = Request::builder().uri("/");
            for name in PASSED_HEADERS {
                if let Some(value) = headers.get(&name) {
                    request = request.header(name, value);
                }
            }
            let request = request.body(Body::empty()).map_err(anyhow::Error::from)?;
            let served = tower_http::services::ServeFile::new(path)
                .oneshot(request)
                .await
                .map_err(anyhow::Error::from)?;
            let mut response = served.map(Body::new).into_response();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("private, max-age=300"),
            );
            Ok(response)
        }
        Storage::S3 { .. } => {
            let url = state.storage.presigned_get(key, PRESIGNED_SECONDS, None).await?;
            Ok(Redirect::temporary(&url).into_response())
        }
    }
}

/// A segment's (owner, clip key, thumbnail key) if the caller sees it.
async fn visible_segment(
    state: &AppState,
    caller: &Caller,
    segment_id: &str,
) -> ApiResult<(Option<String>, Option<String>)> {
    let mut conn = state.conn().await?;
    match shared::tasks::find_segment_files(&mut conn, segment_id).await? {
        Some((owner, clip, thumb)) if caller.sees(owner) => Ok((clip, thumb)),
        _ => Err(ApiError::not_found(format!("segment {segment_id}"))),
    }
}

/// `GET /api/v1/segments/{segment_id}/clip`: the clip (MP4, seekable).
pub async fn clip(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(segment_id): Path<String>,
) -> ApiResult<Response> {
    let (clip, _) = visible_segment(&state, &caller, &segment_id).await?;
    let what = format!("clip of segment {segment_id}");
    let key = clip.ok_or_else(|| ApiError::not_found(&what))?;
    serve_key(&state, &key, &headers, &what).await
}

/// `GET /api/v1/segments/{segment_id}/thumbnail`: the thumbnail (JPEG).
pub async fn thumbnail(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(segment_id): Path<String>,
) -> ApiResult<Response> {
    let (_, thumb) = visible_segment(&state, &caller, &segment_id).await?;
    let what = format!("thumbnail of segment {segment_id}");
    let key = thumb.ok_or_else(|| ApiError::not_found(&what))?;
    serve_key(&state, &key, &headers, &what).await
}

/// `GET /api/v1/videos/{video_id}/file`: the uploaded video.
pub async fn video_file(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(video_id): Path<String>,
) -> ApiResult<Response> {
    let what = format!("video {video_id}");
    let id: i64 = video_id.parse().map_err(|_| ApiError::not_found(&what))?;
    let mut conn = state.conn().await?;
    let video = shared::videos::find_video(&mut conn, id)
        .await?
        .filter(|v| caller.sees(v.user_id) && v.file_path != "noop://placeholder")
        .ok_or_else(|| ApiError::not_found(&what))?;
    drop(conn);
    serve_key(&state, &video.file_path, &headers, &what).await
}
