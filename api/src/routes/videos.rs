//! `POST /api/v1/videos`: upload a video and create its task, with the
//! same checks as `enqueue video` (`shared::registration`: probe, hash,
//! quota, one transaction).
//!
//! The upload is streamed: each multipart chunk is appended to a file in
//! the upload directory as it arrives, so memory stays bounded whatever
//! the size; the byte count is checked on the way (413 past
//! `API_MAX_UPLOAD_BYTES`), and the temporary file is removed whatever
//! happens. Bad media is 422 with ffprobe's reason and leaves no row and
//! no stored object.
//!
//! A refusal that comes before the body is read (read-only, CSRF, a
//! declared size over the limit) or while it is read (over the limit) still
//! reads and discards up to [`DRAIN_BYTES`] more of it, as web servers'
//! "lingering close" does: a client that is still sending would otherwise
//! see the connection reset instead of the answer.

use crate::audit::{self, Client};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::multipart::{Multipart, MultipartError};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

/// How much of a refused upload is read and discarded so the client gets
/// the answer; past it the connection is closed.
pub const DRAIN_BYTES: u64 = 64 * 1024 * 1024;

/// Reads and discards up to [`DRAIN_BYTES`] of `body`.
async fn drain(body: axum::body::Body) {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut read: u64 = 0;
    while let Some(Ok(chunk)) = stream.next().await {
        read += chunk.len() as u64;
        if read > DRAIN_BYTES {
            break;
        }
    }
}

/// A file in the upload directory, removed when dropped.
struct TempUpload(PathBuf);

impl Drop for TempUpload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What the form held.
struct Form {
    file: Option<(TempUpload, String)>,
    priority: Option<String>,
    config: Option<String>,
}

/// A multipart error as an API error (axum says which: 413 for a body
/// over a limit, 400 for a malformed one).
fn multipart_error(e: MultipartError, limit: u64) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(limit)
    } else {
        ApiError::bad_request(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// Reads the form, streaming the `file` field to disk.
async fn read_form(state: &AppState, mut multipart: Multipart) -> ApiResult<Form> {
    let limit = state.options.max_upload_bytes;
    let mut form = Form { file: None, priority: None, config: None };
    while let Some(mut field) =
        multipart.next_field().await.map_err(|e| multipart_error(e, limit))?
    {
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "file" => {
                if form.file.is_some() {
                    return Err(ApiError::bad_request("one field named file per upload"));
                }
                let original = field
                    .file_name()
                    .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n).to_string())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "upload.mp4".into());
                let path = state.upload_dir.join(format!("{}.part", uuid::Uuid::now_v7()));
                let temp = TempUpload(path.clone());
                let mut file = tokio::fs::File::create(&path).await.map_err(anyhow::Error::from)?;
                let mut written: u64 = 0;
                while let Some(chunk) =
                    field.chunk().await.map_err(|e| multipart_error(e, limit))?
                {
                    written += chunk.len() as u64;
                    if written > limit + DRAIN_BYTES {
                        break;
                    }
                    if written <= limit {
                        file.write_all(&chunk).await.map_err(anyhow::Error::from)?;
                    }
                }
                if written > limit {
                    // Read to the end (up to DRAIN_BYTES more), nothing kept.
                    return Err(ApiError::too_large(limit));
                }
                file.flush().await.map_err(anyhow::Error::from)?;
                form.file = Some((temp, original));
            }
            "priority" | "config" => {
                let text = field.text().await.map_err(|e| multipart_error(e, limit))?;
                if text.len() > 64 * 1024 {
                    return Err(ApiError::bad_request(format!("field {name} is too long")));
                }
                if name == "priority" {
                    form.priority = Some(text);
                } else {
                    form.config = Some(text);
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown form field {other:?} (file, priority, config)"
                )))
            }
        }
    }
    Ok(form)
}

/// `POST /api/v1/videos` (multipart: `file`, optional `priority` 1..10 and
/// `config`, a JSON object) → `201 {video_id, task_id, reused_stored_file}`.
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    client: Client,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if let Err(refused) = caller.may_change(&state, &headers, None) {
        drain(request.into_body()).await;
        return Err(refused);
    }
    let result = upload_inner(&state, &caller, &headers, request).await;
    let change = audit::Change {
        operation: "video upload",
        resource_type: "video",
        resource_id: result.as_ref().ok().map(|v| v["video_id"].to_string()),
        request: json!({ "content_length": headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()) }),
        outcome: result.as_ref().map(Value::clone),
    };
    audit::record(&state, Some(&caller), &client, change).await;
    Ok((StatusCode::CREATED, Json(result?)))
}

async fn upload_inner(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    request: axum::extract::Request,
) -> ApiResult<Value> {
    let limit = state.options.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // The form's own overhead is small; refuse what cannot fit before reading it.
    if declared.is_some_and(|n| n > limit + 64 * 1024) {
        if declared.is_some_and(|n| n <= limit + DRAIN_BYTES) {
            drain(request.into_body()).await;
        }
        return Err(ApiError::too_large(limit));
    }
    let multipart =
        <Multipart as axum::extract::FromRequest<AppState>>::from_request(request, state).await;
    let multipart = multipart.map_err(|e| {
        ApiError::bad_request(format!("expected a multipart/form-data body: {}", e.body_text()))
    })?;
    let form = read_form(state, multipart).await?;
    let Some((temp, original)) = form.file else {
        return Err(ApiError::bad_request("the form has no field named file"));
    };
    let priority = match form.priority.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<i8>()
                .map_err(|_| ApiError::bad_request(format!("priority {text:?} is not 1..=10")))?,
        ),
    };
    let config = match form.config.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(text) => Some(
            shared::registration::parse_config(
                text,
                shared::models::task_type::VIDEO_CLIP,
                "config",
            )
            .map_err(|e| ApiError::bad_request(e.0))?,
        ),
    };
    let request = super::task_changes::task_request(caller, priority, config, None, false)?;
    let checked = match shared::registration::check_upload(&temp.0, &original).await {
        Ok(checked) => checked,
        Err(e) => match shared::bad_input_reason(&e) {
            Some(reason) => return Err(ApiError::unprocessable(reason.0.clone())),
            None => return Err(e.into()),
        },
    };
    let mut conn = state.conn().await?;
    let user = shared::users::find_user_by_id(&mut conn, caller.user_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    drop(conn);
    let registered = shared::registration::register_videos(
        &state.pool,
        &state.storage,
        &user,
        std::slice::from_ref(&checked),
        &request,
    )
    .await?;
    drop(temp);
    let r = registered.into_iter().next().ok_or_else(|| anyhow::anyhow!("nothing registered"))?;
    shared::registration::cache_pending(&state.queue, std::slice::from_ref(&r.task_id)).await;
    Ok(
        json!({ "video_id": r.video_id, "task_id": r.task_id, "reused_stored_file": r.reused_stored_file }),
    )
}

/// `GET /api/v1/videos/{video_id}`: the stored video's facts.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(video_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id: i64 = video_id.parse().map_err(|_| ApiError::not_found(format!("video {video_id}")))?;
    let mut conn = state.conn().await?;
    let video = shared::videos::find_video(&mut conn, id)
        .await?
        .filter(|v| caller.sees(v.user_id) && v.file_path != "noop://placeholder")
        .ok_or_else(|| ApiError::not_found(format!("video {video_id}")))?;
    let base = super::tasks::base_url(&headers);
    Ok(Json(json!({
        "video_id": video.id,
        "user_id": video.user_id,
        "original_filename": video.original_filename,
        "filename": video.filename,
        "file_size": video.file_size,
        "file_hash": video.file_hash,
        "status": video.status,
        "duration": video.duration.map(|d| d.to_string().parse::<f64>().unwrap_or(0.0)),
        "width": video.width,
        "height": video.height,
        "file_url": format!("{base}/api/v1/videos/{}/file", video.id),
    })))
}
