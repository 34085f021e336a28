//! The operators' dashboard: server-rendered pages (`overview`, `tasks`)
//! with a little vendored JavaScript (`assets/app.js`: live numbers, the
//! live progress bar over the task's SSE stream, confirmations). Nothing is
//! fetched from another site, so it works offline.
//!
//! Login takes an operator API token once and starts a session
//! (`crate::auth::session`); every form carries the session's CSRF token
//! and every action goes through the same `shared` calls as the JSON API.
//! With `--read-only` the pages show no actions and refuse them.

mod html;
mod overview;
mod tasks;

use crate::audit::{self, Client};
use crate::auth::{self, session, Caller, Via};
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;

pub use html::Viewer;

/// The dashboard's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/tasks", get(tasks::list))
        .route("/tasks/bulk", post(tasks::bulk))
        .route("/tasks/{task_id}", get(tasks::show))
        .route("/tasks/{task_id}/action", post(tasks::action))
        .route("/assets/app.css", get(css))
        .route("/assets/app.js", get(js))
}

/// A logged-in operator viewing a page.
pub struct Operator {
    pub caller: Caller,
    pub csrf: String,
}

impl Operator {
    /// The frame's view of this operator.
    pub fn viewer<'a>(&'a self, state: &AppState) -> Viewer<'a> {
        Viewer {
            username: &self.caller.username,
            csrf: &self.csrf,
            read_only: state.options.read_only,
        }
    }
}

/// The operator behind a page request, or the redirect to the login page.
pub async fn operator(state: &AppState, headers: &HeaderMap) -> Result<Operator, Response> {
    let caller = match auth::identify(state, headers).await {
        Ok(Some(caller)) => caller,
        Ok(None) => return Err(Redirect::to("/login").into_response()),
        Err(e) => return Err(e.into_response()),
    };
    match &caller.via {
        Via::Session { csrf } if caller.is_operator => {
            let csrf = csrf.clone();
            Ok(Operator { caller, csrf })
        }
        _ => Err(Redirect::to("/login").into_response()),
    }
}

/// An error page with `status`.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        r#"<h1>{}</h1><p class="error">{}</p><p><a href="/">Back</a></p>"#,
        status.as_u16(),
        html::esc(message)
    );
    (status, Html(html::page("Error", None, &body))).into_response()
}

/// `GET /login`.
async fn login_page() -> Html<String> {
    Html(login_form(None))
}

fn login_form(error: Option<&str>) -> String {
    let error =
        error.map(|e| format!(r#"<p class="error">{}</p>"#, html::esc(e))).unwrap_or_default();
    html::page(
        "Log in",
        None,
        &format!(
            r#"<section class="login"><h1>Operator login</h1>{error}
<form method="post" action="/login"><label>API token <input type="password" name="token" autocomplete="off" required autofocus></label>
<button type="submit">Log in</button></form>
<p class="hint">An operator token from <code>enqueue token create USER --operator</code>.</p></section>"#
        ),
    )
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

/// `POST /login`: an operator token starts a session (cookie), anything
/// else shows the form again with 401. Audited either way (never the token).
async fn login(
    State(state): State<AppState>,
    client: Client,
    Form(form): Form<LoginForm>,
) -> Response {
    let found = async {
        let mut conn = state.conn().await?;
        shared::tokens::authenticate(&mut conn, form.token.trim()).await
    }
    .await;
    let caller = match found {
        Ok(Some(c)) if c.is_operator => c,
        Ok(Some(_)) => {
            return (
                StatusCode::UNAUTHORIZED,
                Html(login_form(Some("that token is not an operator token"))),
            )
                .into_response()
        }
        Ok(None) => {
            let error = crate::error::ApiError::unauthorized();
            let change = audit::Change {
                operation: "login",
                resource_type: "session",
                resource_id: None,
                request: json!({}),
                outcome: Err(&error),
            };
            audit::record(&state, None, &client, change).await;
            return (StatusCode::UNAUTHORIZED, Html(login_form(Some("unknown or revoked token"))))
                .into_response();
        }
        Err(e) => return crate::error::ApiError::from(e).into_response(),
    };
    let (id, _) = match session::create(&state, &caller).await {
        Ok(created) => created,
        Err(e) => return crate::error::ApiError::from(e).into_response(),
    };
    let who = Caller {
        user_id: caller.user_id,
        username: caller.username.clone(),
        is_operator: true,
        via: Via::Token,
    };
    let change = audit::Change {
        operation: "login",
        resource_type: "session",
        resource_id: None,
        request: json!({}),
        outcome: Ok(json!({ "user": caller.username })),
    };
    audit::record(&state, Some(&who), &client, change).await;
    ([(header::SET_COOKIE, session::set_cookie(&state, &id))], Redirect::to("/")).into_response()
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /logout`: ends the session (with its CSRF token).
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> ApiResult<Response> {
    if let Some(id) = session::cookie(&headers) {
        if let Some(found) = session::load(&state, id).await? {
            if session::same_secret(form.csrf.as_deref().unwrap_or(""), &found.csrf) {
                session::delete(&state, id).await?;
            } else {
                return Ok(error_page(
                    StatusCode::FORBIDDEN,
                    "missing or wrong CSRF token: reload the page",
                ));
            }
        }
    }
    Ok(([(header::SET_COOKIE, session::clear_cookie(&state))], Redirect::to("/login"))
        .into_response())
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("../../assets/app.css"))
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../assets/app.js"),
    )
        .into_response()
}
