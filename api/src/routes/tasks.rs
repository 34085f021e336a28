//! `/api/v1/tasks`, the reads: list tasks, read one (status, history,
//! segments, transcript). Creating, cancelling and retrying are
//! `task_changes.rs`.
//!
//! Scoping: a caller sees its own tasks, an operator every task; another
//! user's task answers exactly like a missing one (404), so ids leak nothing.

use super::QueryParams;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::models::TaskStatus;
use shared::tasks::{TaskFilter, TaskOwner};

/// Most tasks one list page or one bulk request names.
pub const MAX_PAGE: u32 = 1000;

/// Looks up a task the caller may see: 404 otherwise.
pub async fn visible_task(
    state: &AppState,
    caller: &Caller,
    task_id: &str,
) -> ApiResult<TaskOwner> {
    let mut conn = state.conn().await?;
    match shared::tasks::find_owner(&mut conn, task_id).await? {
        Some(owner) if caller.sees(owner.user_id) => Ok(owner),
        _ => Err(ApiError::not_found(format!("task {task_id}"))),
    }
}

/// The task's JSON as `GET /api/v1/tasks/{id}` answers it.
pub(super) async fn task_json(
    state: &AppState,
    owner: &TaskOwner,
    task_id: &str,
) -> ApiResult<Value> {
    let mut conn = state.conn().await?;
    let summary = shared::tasks::find_summaries(&mut conn, &[task_id.to_string()])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found(format!("task {task_id}")))?;
    let mut value = summary.to_json();
    value["user_id"] = json!(owner.user_id);
    value["video_id"] = json!(owner.video_id);
    Ok(value)
}

/// `GET /api/v1/tasks/{task_id}`: status, progress, current_step,
/// retry_count, error_message, timings.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(task_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let owner = visible_task(&state, &caller, &task_id).await?;
    Ok(Json(task_json(&state, &owner, &task_id).await?))
}

/// `GET /api/v1/tasks/{task_id}/history`: every status change, oldest first.
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(task_id): Path<String>,
) -> ApiResult<Json<Value>> {
    visible_task(&state, &caller, &task_id).await?;
    let mut conn = state.conn().await?;
    let changes = shared::history::task_history(&mut conn, &task_id).await?;
    let name =
        |code: Option<i8>| code.and_then(|c| TaskStatus::from_code(c).ok()).map(|s| s.name());
    let history: Vec<Value> = changes
        .iter()
        .map(|c| {
            json!({
                "from_status": name(c.from_status),
                "to_status": name(Some(c.to_status)),
                "attempt": c.attempt,
                "worker": c.worker,
                "reason": c.reason,
                "changed_at": c.changed_at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            })
        })
        .collect();
    Ok(Json(json!({ "task_id": task_id, "history": history })))
}

/// The base of absolute URLs in answers: `PUBLIC_BASE_URL` when set, else
/// the scheme-less `Host` the caller used (`http://HOST`).
pub fn base_url(headers: &HeaderMap) -> String {
    if std::env::var(shared::downloads::sign::PUBLIC_BASE_URL_ENV).is_ok() {
        return shared::downloads::sign::public_base_url();
    }
    match headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()) {
        Some(host) if host.chars().all(|c| c.is_ascii_alphanumeric() || ".:-[]".contains(c)) => {
            format!("http://{host}")
        }
        _ => shared::downloads::sign::public_base_url(),
    }
}

/// `GET /api/v1/tasks/{task_id}/segments`: the clips in time order, each
/// with `clip_url` and `thumbnail_url` served by this API.
pub async fn segments(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(task_id): Path<String>,
) -> ApiResult<Json<Value>> {
    visible_task(&state, &caller, &task_id).await?;
    let rows = shared::tasks::find_segments(&mut state.reader().await?, &task_id).await?;
    let base = base_url(&headers);
    let segments: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut value = row.to_json();
            let id = &row.segment_id;
            value["thumbnail_key"] = value["thumbnail_url"].take();
            value["clip_url"] =
                json!(row.file_path.as_ref().map(|_| format!("{base}/api/v1/segments/{id}/clip")));
            value["thumbnail_url"] = json!(row
                .thumbnail_url
                .as_ref()
                .map(|_| format!("{base}/api/v1/segments/{id}/thumbnail")));
            value
        })
        .collect();
    Ok(Json(json!({ "task_id": task_id, "segments": segments })))
}

/// `GET /api/v1/tasks/{task_id}/transcript`: what whisper heard (sentences
/// with times, words) and how detection scored each sentence.
pub async fn transcript(
    State(state): State<AppState>,
    caller: Caller,
    Path(task_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let owner = visible_task(&state, &caller, &task_id).await?;
    let mut conn = state.conn().await?;
    let transcript = shared::tasks::find_result(&mut conn, owner.id, "transcript").await?;
    let analysis = shared::tasks::find_result(&mut conn, owner.id, "analysis").await?;
    Ok(Json(json!({ "task_id": task_id, "transcript": transcript, "analysis": analysis })))
}

/// Query of `GET /api/v1/tasks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Status names, comma-separated.
    pub status: Option<String>,
    /// A user name (operators only; others see their own tasks).
    pub user: Option<String>,
    #[serde(rename = "type")]
    pub task_type: Option<String>,
    /// Created at or after: `YYYY-MM-DD` or RFC 3339.
    pub since: Option<String>,
    /// A task id, or text in the video's original file name.
    pub q: Option<String>,
    /// Cursor: the `next_cursor` of the previous page.
    pub after: Option<i64>,
    pub limit: Option<u32>,
    pub oldest_first: Option<bool>,
}

/// Parses a comma-separated list of status names.
pub fn parse_statuses(text: &str) -> ApiResult<Vec<TaskStatus>> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            TaskStatus::ALL.iter().copied().find(|s| s.name() == name).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown status {name:?} (pending, processing, completed, failed, cancelled)"
                ))
            })
        })
        .collect()
}

/// Parses `YYYY-MM-DD` (00:00 UTC) or RFC 3339.
pub fn parse_since(text: &str) -> ApiResult<chrono::NaiveDateTime> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.naive_utc());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default());
    }
    Err(ApiError::bad_request(format!("since {text:?} is not YYYY-MM-DD or RFC 3339")))
}

/// One page of tasks and the cursor of the next page.
pub struct Page {
    pub tasks: Vec<(shared::tasks::ListedTask, String)>,
    pub next_cursor: Option<i64>,
}

/// The page `query` asks for, scoped to what `caller` sees (shared by the
/// JSON list and the dashboard's task table).
pub async fn list_page(state: &AppState, caller: &Caller, query: &ListQuery) -> ApiResult<Page> {
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(format!("limit must be 1..={MAX_PAGE}")));
    }
    if query.after.is_some_and(|a| a < 0) {
        return Err(ApiError::bad_request("after must be a cursor from a previous page"));
    }
    let mut conn = state.conn().await?;
    let user_id = match (query.user.as_deref().filter(|u| !u.is_empty()), caller.scope()) {
        (None, scope) => scope,
        (Some(name), None) => match shared::users::find_user(&mut conn, name).await? {
            Some(user) => Some(user.id),
            None => return Err(ApiError::bad_request(format!("no user named {name:?}"))),
        },
        (Some(name), Some(own)) if name == caller.username => Some(own),
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("only operators list other users' tasks"))
        }
    };
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if let Some(task_id) = q.filter(|q| uuid::Uuid::parse_str(q).is_ok()) {
        // A task id: that task alone, if visible.
        let found = shared::tasks::find_owner(&mut conn, task_id).await?;
        let Some(owner) = found.filter(|o| caller.sees(o.user_id)) else {
            return Ok(Page { tasks: Vec::new(), next_cursor: None });
        };
        let filter = TaskFilter { user_id: Some(owner.user_id), ..TaskFilter::default() };
        let mut reader = state.reader().await?;
        let rows =
            shared::tasks::list_tasks(&mut reader, &filter, Some(owner.id + 1), false, 1).await?;
        return Ok(Page { tasks: rows, next_cursor: None });
    }
    let filter = TaskFilter {
        statuses: match &query.status {
            Some(text) => parse_statuses(text)?,
            None => Vec::new(),
        },
        user_id,
        task_type: query.task_type.clone().filter(|t| !t.is_empty()),
        created_since: match query.since.as_deref().filter(|s| !s.is_empty()) {
            Some(text) => Some(parse_since(text)?),
            None => None,
        },
        video_name: q.map(str::to_string),
    };
    let oldest_first = query.oldest_first.unwrap_or(false);
    let limit = limit as usize;
    drop(conn);
    let mut reader = state.reader().await?;
    let mut rows =
        shared::tasks::list_tasks(&mut reader, &filter, query.after, oldest_first, limit + 1)
            .await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more { rows.last().map(|(t, _)| t.id) } else { None };
    Ok(Page { tasks: rows, next_cursor })
}

/// `GET /api/v1/tasks?status=&user=&type=&since=&q=&after=&limit=`: newest
/// first (or `oldest_first=true`), paged by cursor.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ListQuery>,
) -> ApiResult<Json<Value>> {
    let page = list_page(&state, &caller, &query).await?;
    let tasks: Vec<Value> = page.tasks.iter().map(|(t, user)| t.to_json(user)).collect();
    Ok(Json(json!({ "tasks": tasks, "next_cursor": page.next_cursor })))
}
