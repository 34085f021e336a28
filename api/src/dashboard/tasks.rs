//! The task pages: `GET /tasks` (filters, search, cursor paging, bulk
//! actions) and `GET /tasks/{id}` (live progress, history, error,
//! transcript with sentence scores, playable clips, retry/cancel), and
//! the form posts behind their buttons. Lists and changes go through
//! `crate::routes::tasks`, the JSON API's own functions.

use super::html::{esc, page, query_value, status_badge};
use super::{error_page, operator};
use crate::audit::Client;
use crate::routes::task_changes;
use crate::routes::tasks::{self as api, ListQuery};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde_json::Value;
use shared::control::Change;
use shared::models::TaskStatus;
use std::fmt::Write;

/// The query string's fields as a [`ListQuery`] (a bad one is the error page).
fn parse_query(pairs: &[(String, String)]) -> Result<ListQuery, Box<Response>> {
    let get = |k: &str| pairs.iter().find(|(n, v)| n == k && !v.is_empty()).map(|(_, v)| v.clone());
    let after = match get("after").map(|a| a.parse::<i64>()) {
        Some(Ok(a)) => Some(a),
        Some(Err(_)) => {
            return Err(Box::new(error_page(StatusCode::BAD_REQUEST, "after must be a number")))
        }
        None => None,
    };
    Ok(ListQuery {
        status: get("status"),
        user: get("user"),
        task_type: get("type"),
        since: get("since"),
        q: get("q"),
        after,
        limit: Some(50),
        oldest_first: None,
    })
}

/// `GET /tasks`.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let op = match operator(&state, &headers).await {
        Ok(op) => op,
        Err(r) => return r,
    };
    let query = match parse_query(&pairs) {
        Ok(q) => q,
        Err(r) => return *r,
    };
    let page_rows = match api::list_page(&state, &op.caller, &query).await {
        Ok(p) => p,
        Err(e) => return error_page(e.status, &e.message),
    };
    let value = |v: &Option<String>| esc(v.as_deref().unwrap_or(""));
    let mut status_options = String::from(r#"<option value="">any status</option>"#);
    for s in TaskStatus::ALL {
        let selected = if query.status.as_deref() == Some(s.name()) { " selected" } else { "" };
        let _ = write!(status_options, r#"<option{selected}>{}</option>"#, s.name());
    }
    let mut rows = String::new();
    for (task, user) in &page_rows.tasks {
        let status = TaskStatus::from_code(task.status).map(|s| s.name()).unwrap_or("unknown");
        let detail = match (&task.error_message, &task.current_step) {
            (Some(e), _) if task.status != TaskStatus::Completed.code() => e.clone(),
            (_, Some(step)) => step.clone(),
            _ => String::new(),
        };
        let _ = write!(
            rows,
            r#"<tr><td><input type="checkbox" name="task_ids" value="{id}" form="bulk"></td><td><a href="/tasks/{id}"><code>{id}</code></a></td><td>{user}</td><td>{ty}</td><td>{badge}</td><td><progress max="100" value="{p}"></progress> {p}%</td><td>{created}</td><td class="detail">{detail}</td></tr>"#,
            id = esc(&task.task_id),
            user = esc(user),
            ty = esc(&task.task_type),
            badge = status_badge(status),
            p = task.progress,
            created = task
                .created_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default(),
            detail = esc(&detail),
        );
    }
    if rows.is_empty() {
        rows.push_str(r#"<tr><td colspan="8">No tasks match.</td></tr>"#);
    }
    let next = match page_rows.next_cursor {
        Some(cursor) => {
            let mut link = format!("/tasks?after={cursor}");
            for (k, v) in [
                ("status", &query.status),
                ("user", &query.user),
                ("type", &query.task_type),
                ("since", &query.since),
                ("q", &query.q),
            ] {
                if let Some(v) = v {
                    let _ = write!(link, "&{k}={}", query_value(v));
                }
            }
            format!(r#"<a class="next" href="{}">Next page →</a>"#, esc(&link))
        }
        None => String::new(),
    };
    let csrf = esc(&op.csrf);
    let actions = if state.options.read_only {
        String::new()
    } else {
        format!(
            r#"<form id="bulk" method="post" action="/tasks/bulk" data-confirm="Apply to the selected tasks?" class="bulk">
<input type="hidden" name="csrf" value="{csrf}">
<button name="action" value="cancel">Cancel selected</button> <button name="action" value="retry">Retry selected</button></form>
<form method="post" action="/tasks/bulk" data-confirm="Retry every task that failed since this date?" class="bulk">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="action" value="retry_failed">
<label>Retry all failed since <input type="date" name="failed_since" required></label> <button>Retry failed</button></form>"#
        )
    };
    let body = format!(
        r#"<h1>Tasks</h1>
<form method="get" action="/tasks" class="filters">
<input name="q" placeholder="task id or video file name" value="{q}">
<select name="status">{status_options}</select>
<input name="user" placeholder="user" value="{user}">
<input name="type" placeholder="type (video_clip, noop…)" value="{ty}">
<label>since <input type="date" name="since" value="{since}"></label>
<button>Filter</button> <a href="/tasks">clear</a></form>
{actions}
<table class="tasks"><tr><th></th><th>task</th><th>user</th><th>type</th><th>status</th><th>progress</th><th>created (UTC)</th><th>step / error</th></tr>{rows}</table>
{next}"#,
        q = value(&query.q),
        user = value(&query.user),
        ty = value(&query.task_type),
        since = value(&query.since),
    );
    Html(page("Tasks", Some(&op.viewer(&state)), &body)).into_response()
}

/// Seconds from a JSON number, for display.
fn secs(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// `GET /tasks/{task_id}`.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(task_id): Path<String>,
) -> Response {
    let op = match operator(&state, &headers).await {
        Ok(op) => op,
        Err(r) => return r,
    };
    match render_task(&state, &op, &task_id).await {
        Ok(html) => Html(html).into_response(),
        Err(e) => error_page(e.status, &e.message),
    }
}

async fn render_task(
    state: &AppState,
    op: &super::Operator,
    task_id: &str,
) -> crate::error::ApiResult<String> {
    let owner = api::visible_task(state, &op.caller, task_id).await?;
    let mut conn = state.conn().await?;
    let summary = shared::tasks::find_summaries(&mut conn, &[task_id.to_string()])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| crate::error::ApiError::not_found(format!("task {task_id}")))?;
    let history = shared::history::task_history(&mut conn, task_id).await?;
    let segments = shared::tasks::find_segments(&mut state.reader().await?, task_id).await?;
    let analysis = shared::tasks::find_result(&mut conn, owner.id, "analysis").await?;
    let video = shared::videos::find_video(&mut conn, owner.video_id).await?;
    let user = shared::users::find_user_by_id(&mut conn, owner.user_id).await?;
    drop(conn);
    let status = TaskStatus::from_code(summary.status)?;
    let csrf = esc(&op.csrf);
    let id = esc(task_id);

    let mut actions = String::new();
    if !state.options.read_only {
        if !status.is_final() {
            let _ = write!(
                actions,
                r#"<form method="post" action="/tasks/{id}/action" data-confirm="Cancel this task?" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button name="action" value="cancel">Cancel</button></form>"#
            );
        }
        if matches!(status, TaskStatus::Failed | TaskStatus::Cancelled) {
            let _ = write!(
                actions,
                r#"<form method="post" action="/tasks/{id}/action" data-confirm="Run this task again?" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button name="action" value="retry">Retry</button></form>"#
            );
        }
    }
    let error = summary
        .error_message
        .as_deref()
        .filter(|_| status != TaskStatus::Completed)
        .map(|e| format!(r#"<p class="error" data-error>{}</p>"#, esc(e)))
        .unwrap_or_default();
    let video_name = video.as_ref().map(|v| esc(&v.original_filename)).unwrap_or_default();

    let mut timeline = String::from("<table><tr><th>when (UTC)</th><th>from</th><th>to</th><th>attempt</th><th>lease holder</th><th>why</th></tr>");
    let name = |c: Option<i8>| {
        c.and_then(|c| TaskStatus::from_code(c).ok()).map(|s| s.name()).unwrap_or("-")
    };
    for change in &history {
        let _ = write!(
            timeline,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            change.changed_at.format("%Y-%m-%d %H:%M:%S%.3f"),
            name(change.from_status),
            status_badge(name(Some(change.to_status))),
            change.attempt,
            esc(change.worker.as_deref().unwrap_or("-")),
            esc(change.reason.as_deref().unwrap_or("")),
        );
    }
    timeline.push_str("</table>");

    let mut clips = String::new();
    for s in &segments {
        let v = s.to_json();
        let sid = esc(&s.segment_id);
        let poster = if s.thumbnail_url.is_some() {
            format!(r#" poster="/api/v1/segments/{sid}/thumbnail""#)
        } else {
            String::new()
        };
        let player = if s.file_path.is_some() {
            format!(
                r#"<video controls preload="metadata" src="/api/v1/segments/{sid}/clip"{poster} data-segment="{sid}" data-duration="{d:.3}"></video>"#,
                d = secs(&v["end_time"]) - secs(&v["start_time"])
            )
        } else {
            String::new()
        };
        let _ = write!(
            clips,
            r#"<figure class="clip">{player}<figcaption><b>{ty}</b> · {start:.2}–{end:.2} s · confidence {conf:.2}<br>{title}</figcaption></figure>"#,
            ty = esc(&s.selling_point_type),
            start = secs(&v["start_time"]),
            end = secs(&v["end_time"]),
            conf = v["confidence"].as_f64().unwrap_or(0.0),
            title = esc(s.title.as_deref().unwrap_or("")),
        );
    }
    if clips.is_empty() {
        clips.push_str("<p>No clips (yet).</p>");
    }

    let mut transcript = String::new();
    if let Some(sentences) = analysis.as_ref().and_then(|a| a["sentences"].as_array()) {
        transcript.push_str("<table class=\"transcript\"><tr><th>time</th><th>sentence</th><th>scores</th><th>label</th></tr>");
        for s in sentences {
            let scores: Vec<String> = s["scores"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            format!(
                                "{} {:.2}",
                                esc(p[0].as_str().unwrap_or("?")),
                                p[1].as_f64().unwrap_or(0.0)
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let _ = write!(
                transcript,
                "<tr><td>{:.2}–{:.2}</td><td>{}</td><td class=\"scores\">{}</td><td>{}</td></tr>",
                secs(&s["sentence"]["start"]),
                secs(&s["sentence"]["end"]),
                esc(s["sentence"]["text"].as_str().unwrap_or("")),
                scores.join(" · "),
                esc(s["label"].as_str().unwrap_or("")),
            );
        }
        transcript.push_str("</table>");
    } else {
        transcript.push_str("<p>No transcript (yet).</p>");
    }

    let body = format!(
        r#"<h1>Task <code>{id}</code></h1>
<p>{ty} · {badge} · user {user} · video {video_name} · attempt {attempts}, retries {retries}/{max}</p>
<section class="progress" data-live-task="{id}" data-final="{is_final}">
<progress id="task-progress" max="100" value="{progress}"></progress> <b id="task-percent">{progress}%</b>
<span id="task-step">{step}</span></section>
{actions}{error}
<section><h2>Clips</h2><div class="clips">{clips}</div></section>
<section><h2>History</h2>{timeline}</section>
<section><h2>Transcript</h2>{transcript}</section>"#,
        ty = esc(&summary.task_type),
        badge = status_badge(status.name()),
        user = esc(user.as_ref().map(|u| u.username.as_str()).unwrap_or("?")),
        attempts = summary.attempts,
        retries = summary.retry_count,
        max = summary.max_retries,
        is_final = status.is_final(),
        progress = summary.progress,
        step = esc(summary.current_step.as_deref().unwrap_or("")),
    );
    Ok(page(&format!("Task {task_id}"), Some(&op.viewer(state)), &body))
}

/// The fields of a dashboard form, repeated names kept.
type Fields = Vec<(String, String)>;

fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// `POST /tasks/{task_id}/action` (`action` = cancel | retry).
pub async fn action(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Path(task_id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let op = match operator(&state, &headers).await {
        Ok(op) => op,
        Err(r) => return r,
    };
    let change = match field(&fields, "action") {
        Some("cancel") => Change::Cancel,
        Some("retry") => Change::Retry { force: false },
        _ => return error_page(StatusCode::BAD_REQUEST, "action must be cancel or retry"),
    };
    let result = async {
        op.caller.may_change(&state, &headers, field(&fields, "csrf"))?;
        task_changes::change_tasks(&state, &op.caller, &client, vec![task_id.clone()], change).await
    }
    .await;
    match result {
        Ok(_) => Redirect::to(&format!("/tasks/{}", query_value(&task_id))).into_response(),
        Err(e) => error_page(e.status, &e.message),
    }
}

/// `POST /tasks/bulk`: `action` = cancel | retry with `task_ids`, or
/// `retry_failed` with `failed_since`.
pub async fn bulk(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    let op = match operator(&state, &headers).await {
        Ok(op) => op,
        Err(r) => return r,
    };
    let ids: Vec<String> =
        fields.iter().filter(|(n, _)| n == "task_ids").map(|(_, v)| v.clone()).collect();
    let result = async {
        op.caller.may_change(&state, &headers, field(&fields, "csrf"))?;
        match field(&fields, "action") {
            Some("cancel") => {
                task_changes::change_tasks(&state, &op.caller, &client, ids, Change::Cancel).await
            }
            Some("retry") => {
                task_changes::change_tasks(
                    &state,
                    &op.caller,
                    &client,
                    ids,
                    Change::Retry { force: false },
                )
                .await
            }
            Some("retry_failed") => {
                let since = field(&fields, "failed_since").unwrap_or("");
                let ids = task_changes::failed_since(&state, &op.caller, since).await?;
                if ids.is_empty() {
                    return Ok(serde_json::json!({ "changed": 0 }));
                }
                task_changes::change_tasks(
                    &state,
                    &op.caller,
                    &client,
                    ids,
                    Change::Retry { force: false },
                )
                .await
            }
            _ => Err(crate::error::ApiError::bad_request(
                "action must be cancel, retry or retry_failed",
            )),
        }
    }
    .await;
    match result {
        Ok(_) => Redirect::to("/tasks").into_response(),
        Err(e) => error_page(e.status, &e.message),
    }
}
