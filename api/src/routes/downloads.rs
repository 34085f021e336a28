//! Templates and download packages as the templates-and-downloads work
//! defines them (`shared::templates`, `shared::downloads`): list the
//! templates a caller may use, ask for a package, follow it, and fetch it
//! through its signed, expiring link (`/api/v1/downloads/{id}/file?expires=&sig=`,
//! the link `file://` storage hands out; `s3://` links are S3's own).
//! A fetch is counted in `download_count` of the record and its segments.

use super::{JsonBody, QueryParams};
use crate::audit::{self, Client};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::downloads::package::PackageFormat;
use shared::downloads::{self, sign, PackageRequest, Selection};

/// Query of `GET /api/v1/templates`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplatesQuery {
    #[serde(rename = "type")]
    pub template_type: Option<String>,
}

/// `GET /api/v1/templates[?type=intro|outro|watermark|captions]`: the
/// enabled templates the caller may use (their own, public and system
/// ones; operators: all).
pub async fn templates(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<TemplatesQuery>,
) -> ApiResult<Json<Value>> {
    let kind = match query.template_type.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            shared::templates::TemplateKind::parse(text)
                .map_err(|e| ApiError::bad_request(shared::one_line(&e)))?,
        ),
    };
    let mut conn = state.conn().await?;
    let found = shared::templates::list_templates(&mut conn, caller.scope(), kind, false).await?;
    Ok(Json(json!({ "templates": found })))
}

/// Body of `POST /api/v1/downloads`: `segment_ids` or `task_id`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateDownload {
    #[serde(default)]
    pub segment_ids: Vec<String>,
    pub task_id: Option<String>,
    #[serde(default)]
    pub templated: bool,
    pub format: Option<String>,
    /// Link lifetime once ready (default a day, at most 7 days).
    pub expires_in_seconds: Option<u64>,
    pub priority: Option<i8>,
}

/// `POST /api/v1/downloads` → `202 {download_id, task_id, status}`: the
/// package is built by a `download_package` task; follow it with
/// `GET /api/v1/downloads/{id}` or the task's events.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    client: Client,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateDownload>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.may_change(&state, &headers, None)?;
    let selection = match (body.task_id.clone(), body.segment_ids.is_empty()) {
        (Some(task_id), true) => {
            super::tasks::visible_task(&state, &caller, &task_id).await?;
            Selection::Task(task_id)
        }
        (None, false) => Selection::Segments(body.segment_ids.clone()),
        _ => return Err(ApiError::bad_request("give segment_ids or task_id (one of them)")),
    };
    let format = PackageFormat::parse(body.format.as_deref().unwrap_or("zip"))
        .map_err(|e| ApiError::bad_request(e.0))?;
    let priority = body.priority.unwrap_or(5);
    if !(1..=10).contains(&priority) {
        return Err(ApiError::bad_request("priority must be 1..=10"));
    }
    let request = PackageRequest {
        selection,
        templated: body.templated,
        format,
        expires_in_seconds: body.expires_in_seconds.unwrap_or(86_400),
        priority,
        max_retries: 3,
    };
    let result = async {
        let mut conn = state.conn().await?;
        // Operators package any one user's clips; others only their own.
        let requester = match caller.scope() {
            Some(user_id) => Some(
                shared::users::find_user_by_id(&mut conn, user_id)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("the caller's user vanished"))?,
            ),
            None => None,
        };
        let requested =
            downloads::request_package(&mut conn, &state.storage, requester.as_ref(), &request)
                .await?;
        anyhow::Ok(requested)
    }
    .await
    .map_err(|e| match shared::bad_input_reason(&e) {
        // Another user's segment reads like an unknown one.
        Some(reason) if reason.0.contains("is not one of user") => {
            ApiError::not_found("segment or task")
        }
        _ => ApiError::from(e),
    });
    let outcome =
        result.as_ref().map(|r| json!({ "download_id": r.download_id, "task_id": r.task_id }));
    let change = audit::Change {
        operation: "download create",
        resource_type: "download_record",
        resource_id: result.as_ref().ok().map(|r| r.download_id.clone()),
        request: json!({ "segment_ids": body.segment_ids, "task_id": body.task_id, "templated": body.templated }),
        outcome,
    };
    audit::record(&state, Some(&caller), &client, change).await;
    let requested = result?;
    shared::registration::cache_pending(&state.queue, std::slice::from_ref(&requested.task_id))
        .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "download_id": requested.download_id,
            "task_id": requested.task_id,
            "status": "preparing",
        })),
    ))
}

/// `GET /api/v1/downloads/{download_id}`: the record (the seed's columns;
/// `download_url` once ready).
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(download_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut conn = state.conn().await?;
    let found = downloads::find_download(&mut conn, &download_id)
        .await?
        .filter(|d| caller.sees(d.row.user_id))
        .ok_or_else(|| ApiError::not_found(format!("download {download_id}")))?;
    Ok(Json(serde_json::to_value(found.view()).map_err(anyhow::Error::from)?))
}

/// Query of a signed link.
#[derive(Debug, Deserialize)]
pub struct SignedQuery {
    pub expires: Option<String>,
    pub sig: Option<String>,
}

/// `GET /api/v1/downloads/{download_id}/file?expires=&sig=`: the package,
/// for whoever holds the link (the signature is the credential: no token).
/// A bad or expired signature is 403; a package not ready yet 409; one
/// expired and deleted 410. Counted once per full fetch (a `Range`
/// continuation is not a new download).
pub async fn file(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(download_id): Path<String>,
    QueryParams(query): QueryParams<SignedQuery>,
) -> ApiResult<Response> {
    let key = state.links.signing_key.as_ref().ok_or_else(|| {
        ApiError::not_found("download links (this server has no DOWNLOAD_SIGNING_KEY)")
    })?;
    let text = format!(
        "{}?expires={}&sig={}",
        sign::file_path(&download_id),
        query.expires.unwrap_or_default(),
        query.sig.unwrap_or_default()
    );
    let link =
        sign::parse_link(&text).ok_or_else(|| ApiError::forbidden("not a valid download link"))?;
    let mut conn = state.conn().await?;
    let now = downloads::database_now(&mut conn).await?;
    sign::verify(key, &link, now).map_err(|e| ApiError::forbidden(e.0))?;
    let download = downloads::find_download(&mut conn, &link.download_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("download {}", link.download_id)))?;
    if let Err(reason) = download.check_fetchable() {
        let status = if download.row.status == downloads::status::PREPARING {
            StatusCode::CONFLICT
        } else {
            StatusCode::GONE
        };
        return Err(ApiError::new(status, reason.0));
    }
    let stored = download.row.file_path.clone().unwrap_or_default();
    let name = format!(
        "{}.{}",
        download.row.download_id,
        download.format().map_err(|e| ApiError::bad_request(e.0))?.as_str()
    );
    let mut response =
        super::files::serve_key(&state, &stored, &headers, &format!("download {download_id}"))
            .await?;
    if response.status() == StatusCode::OK {
        downloads::count_fetch(&mut conn, &download).await?;
    }
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
