//! `/api/v1/tasks`, the changes: create tasks for stored videos (one or a
//! batch, all or none), cancel and retry (one or a set). Every change is
//! checked against the read-only flag and the CSRF token first, scoped to
//! the caller, and audited in `operation_logs`.

use super::tasks::{task_json, visible_task, MAX_PAGE};
use super::{JsonBody, QueryParams};
use crate::audit::{self, Client};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::control::Change;
use shared::models::task_type;
use shared::registration::TaskRequest;

/// Body of `POST /api/v1/tasks` (and each item of a batch).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    pub video_id: i64,
    pub priority: Option<i8>,
    /// A `video_clip` config object.
    pub config: Option<Value>,
    pub max_retries: Option<i8>,
    /// Past the quota (operators only).
    #[serde(default)]
    pub force: bool,
}

/// Checks a request's options and returns them as a [`TaskRequest`].
pub fn task_request(
    caller: &Caller,
    priority: Option<i8>,
    config: Option<Value>,
    max_retries: Option<i8>,
    force: bool,
) -> ApiResult<TaskRequest> {
    let priority = priority.unwrap_or(5);
    if !(1..=10).contains(&priority) {
        return Err(ApiError::bad_request("priority must be 1..=10"));
    }
    let max_retries = max_retries.unwrap_or(3);
    if !(0..=20).contains(&max_retries) {
        return Err(ApiError::bad_request("max_retries must be 0..=20"));
    }
    if force {
        caller.require_operator()?;
    }
    if let Some(config) = &config {
        if !config.is_object() {
            return Err(ApiError::bad_request("config must be a JSON object"));
        }
        shared::jobs::check_config(task_type::VIDEO_CLIP, Some(config))
            .map_err(|e| ApiError::bad_request(format!("config: {e}")))?;
    }
    Ok(TaskRequest { priority, config, max_retries, force })
}

/// Creates the tasks of `items` (all or none) after checking each names a
/// video the caller owns; returns `[{video_id, task_id}]`.
async fn create_all(state: &AppState, caller: &Caller, items: Vec<CreateTask>) -> ApiResult<Value> {
    let mut conn = state.conn().await?;
    let mut checked = Vec::with_capacity(items.len());
    for item in items {
        let video = shared::videos::find_video(&mut conn, item.video_id)
            .await?
            .filter(|v| caller.sees(v.user_id) && v.file_path != "noop://placeholder")
            .ok_or_else(|| ApiError::not_found(format!("video {}", item.video_id)))?;
        let request =
            task_request(caller, item.priority, item.config, item.max_retries, item.force)?;
        checked.push((video, request));
    }
    let videos: Vec<i64> = checked.iter().map(|(v, _)| v.id).collect();
    let ids = shared::registration::create_tasks_for_videos(&mut conn, &checked).await?;
    drop(conn);
    shared::registration::cache_pending(&state.queue, &ids).await;
    Ok(Value::Array(
        videos.iter().zip(&ids).map(|(v, t)| json!({ "video_id": v, "task_id": t })).collect(),
    ))
}

/// `POST /api/v1/tasks`: a task for a stored video → `201 {video_id, task_id}`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    client: Client,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateTask>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.may_change(&state, &headers, None)?;
    let request = json!({ "video_id": body.video_id, "priority": body.priority });
    let result = create_all(&state, &caller, vec![body]).await;
    let change = |outcome| audit::Change {
        operation: "task create",
        resource_type: "processing_task",
        resource_id: None,
        request: request.clone(),
        outcome,
    };
    match result {
        Ok(Value::Array(mut created)) if created.len() == 1 => {
            let one = created.remove(0);
            audit::record(&state, Some(&caller), &client, change(Ok(one.clone()))).await;
            Ok((StatusCode::CREATED, Json(one)))
        }
        Ok(_) => Err(ApiError::from(anyhow::anyhow!("a single create made no task"))),
        Err(e) => {
            audit::record(&state, Some(&caller), &client, change(Err(&e))).await;
            Err(e)
        }
    }
}

/// Body of `POST /api/v1/tasks/batch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBatch {
    pub tasks: Vec<CreateTask>,
}

/// `POST /api/v1/tasks/batch`: up to 1000 tasks, all created or none →
/// `201 {"tasks": [{video_id, task_id}...]}`.
pub async fn create_batch(
    State(state): State<AppState>,
    caller: Caller,
    client: Client,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateBatch>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.may_change(&state, &headers, None)?;
    if body.tasks.is_empty() || body.tasks.len() > MAX_PAGE as usize {
        return Err(ApiError::bad_request(format!("tasks must hold 1..={MAX_PAGE} items")));
    }
    let request = json!({ "video_ids": body.tasks.iter().map(|t| t.video_id).collect::<Vec<_>>() });
    let result = create_all(&state, &caller, body.tasks).await;
    let outcome = result.as_ref().map(|v| json!({ "created": v.as_array().map(Vec::len) }));
    let change = audit::Change {
        operation: "task batch",
        resource_type: "processing_task",
        resource_id: None,
        request,
        outcome,
    };
    audit::record(&state, Some(&caller), &client, change).await;
    Ok((StatusCode::CREATED, Json(json!({ "tasks": result? }))))
}

/// Applies `change` to tasks the caller may see (all must be: else 404
/// naming the first that is not), audits it, and returns each task's new
/// state.
pub async fn change_tasks(
    state: &AppState,
    caller: &Caller,
    client: &Client,
    task_ids: Vec<String>,
    change: Change,
) -> ApiResult<Value> {
    if task_ids.is_empty() || task_ids.len() > MAX_PAGE as usize {
        return Err(ApiError::bad_request(format!("task_ids must hold 1..={MAX_PAGE} ids")));
    }
    let mut conn = state.conn().await?;
    let visible = shared::tasks::owned_task_ids(&mut conn, &task_ids, caller.scope()).await?;
    drop(conn);
    if let Some(missing) = task_ids.iter().find(|id| !visible.contains(id)) {
        return Err(ApiError::not_found(format!("task {missing}")));
    }
    let (operation, force) = match change {
        Change::Cancel => ("cancel", false),
        Change::Retry { force } => ("retry", force),
    };
    let result = shared::control::apply(&state.pool, Some(&state.queue), &task_ids, change).await;
    let result: ApiResult<Value> = result.map_err(ApiError::from).map(|(changed, tasks)| {
        json!({ "changed": changed, "tasks": tasks.iter().map(|t| t.to_json()).collect::<Vec<_>>() })
    });
    let audited = audit::Change {
        operation,
        resource_type: "processing_task",
        resource_id: Some(task_ids.join(",")),
        request: json!({ "task_ids": task_ids, "force": force }),
        outcome: result.as_ref().map(|v| json!({ "changed": v["changed"] })),
    };
    audit::record(state, Some(caller), client, audited).await;
    result
}

/// Query of the single-task retry.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RetryQuery {
    #[serde(default)]
    pub force: bool,
}

/// `POST /api/v1/tasks/{task_id}/cancel`: a pending task never runs, a
/// running one is stopped at its next lease check → the task as it is now.
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    client: Client,
    headers: HeaderMap,
    Path(task_id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.may_change(&state, &headers, None)?;
    let owner = visible_task(&state, &caller, &task_id).await?;
    change_tasks(&state, &caller, &client, vec![task_id.clone()], Change::Cancel).await?;
    Ok(Json(task_json(&state, &owner, &task_id).await?))
}

/// `POST /api/v1/tasks/{task_id}/retry[?force=true]`: a failed or
/// cancelled task is pending again with a fresh retry budget.
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    client: Client,
    headers: HeaderMap,
    Path(task_id): Path<String>,
    QueryParams(query): QueryParams<RetryQuery>,
) -> ApiResult<Json<Value>> {
    caller.may_change(&state, &headers, None)?;
    if query.force {
        caller.require_operator()?;
    }
    let owner = visible_task(&state, &caller, &task_id).await?;
    let change = Change::Retry { force: query.force };
    change_tasks(&state, &caller, &client, vec![task_id.clone()], change).await?;
    Ok(Json(task_json(&state, &owner, &task_id).await?))
}

/// Body of the bulk endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bulk {
    #[serde(default)]
    pub task_ids: Vec<String>,
    /// Retry only: every failed task that ended since (operators).
    pub failed_since: Option<String>,
    #[serde(default)]
    pub force: bool,
}

/// `POST /api/v1/tasks/cancel` with `{"task_ids": [...]}`.
pub async fn cancel_many(
    State(state): State<AppState>,
    caller: Caller,
    client: Client,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Bulk>,
) -> ApiResult<Json<Value>> {
    caller.may_change(&state, &headers, None)?;
    if body.failed_since.is_some() {
        return Err(ApiError::bad_request("failed_since is for retry only"));
    }
    Ok(Json(change_tasks(&state, &caller, &client, body.task_ids, Change::Cancel).await?))
}

/// The failed tasks that ended since `since` (the bulk retry's
/// `failed_since`, operators only), at most [`MAX_PAGE`].
pub async fn failed_since(
    state: &AppState,
    caller: &Caller,
    since: &str,
) -> ApiResult<Vec<String>> {
    caller.require_operator()?;
    let since = super::tasks::parse_since(since)?;
    let mut conn = state.conn().await?;
    Ok(shared::tasks::failed_since(&mut conn, since, MAX_PAGE as i64).await?)
}

/// `POST /api/v1/tasks/retry` with `{"task_ids": [...]}` or
/// `{"failed_since": "2026-12-01"}` (operators; at most 1000 per call).
pub async fn retry_many(
    State(state): State<AppState>,
    caller: Caller,
    client: Client,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Bulk>,
) -> ApiResult<Json<Value>> {
    caller.may_change(&state, &headers, None)?;
    if body.force {
        caller.require_operator()?;
    }
    let ids = match (&body.failed_since, body.task_ids.is_empty()) {
        (Some(since), true) => {
            let ids = failed_since(&state, &caller, since).await?;
            if ids.is_empty() {
                return Ok(Json(json!({ "changed": 0, "tasks": [] })));
            }
            ids
        }
        (Some(_), false) => {
            return Err(ApiError::bad_request("give task_ids or failed_since, not both"))
        }
        (None, _) => body.task_ids,
    };
    let change = Change::Retry { force: body.force };
    Ok(Json(change_tasks(&state, &caller, &client, ids, change).await?))
}
