//! Who is calling, and whether they may: the [`Caller`] extractor.
//!
//! A request is authenticated by `Authorization: Bearer TOKEN` (an API
//! token from `enqueue token create`, looked up by its SHA-256 hash) or by
//! the dashboard's session cookie. Every handler that takes a `Caller` is
//! therefore authenticated and rate limited (per user and endpoint, before
//! the handler runs); the handler then scopes what it reads with
//! [`Caller::scope`] and, before any change, calls [`Caller::may_change`]
//! (the read-only flag, and the CSRF token for cookie callers: a browser
//! sends cookies on any site's forms, never a custom header or a form field
//! it cannot read).

pub mod rate_limit;
pub mod session;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

/// Header a cookie caller sends its CSRF token in (the dashboard's
/// JavaScript does); forms send the field `csrf` instead.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum Via {
    /// A bearer token: no ambient credential, no CSRF risk.
    Token,
    /// The dashboard's session cookie, with the session's CSRF token.
    Session { csrf: String },
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: i64,
    pub username: String,
    pub is_operator: bool,
    pub via: Via,
}

impl Caller {
    /// The user whose rows this caller may see: `None` for operators (all).
    pub fn scope(&self) -> Option<i64> {
        (!self.is_operator).then_some(self.user_id)
    }

    /// True when this caller may see rows owned by `user_id`.
    pub fn sees(&self, user_id: i64) -> bool {
        self.is_operator || self.user_id == user_id
    }

    /// 403 unless the caller holds an operator token.
    pub fn require_operator(&self) -> ApiResult<()> {
        if self.is_operator {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "this needs an operator token (enqueue token create USER --operator)",
            ))
        }
    }

    /// Whether this request may change state: not on a read-only server,
    /// and for cookie callers only with the session's CSRF token (header
    /// [`CSRF_HEADER`], or `form_token` from a form field).
    pub fn may_change(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        form_token: Option<&str>,
    ) -> ApiResult<()> {
        if state.options.read_only {
            return Err(ApiError::read_only());
        }
        match &self.via {
            Via::Token => Ok(()),
            Via::Session { csrf } => {
                let sent = headers
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .or(form_token)
                    .unwrap_or("");
                if session::same_secret(sent, csrf) {
                    Ok(())
                } else {
                    Err(ApiError::forbidden("missing or wrong CSRF token: reload the page"))
                }
            }
        }
    }
}

/// The bearer token of a request, if it sent one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Authenticates without rate limiting (the dashboard's pages, which
/// redirect to the login page instead of answering 401): `None` when the
/// request carries no valid credential.
pub async fn identify(state: &AppState, headers: &HeaderMap) -> ApiResult<Option<Caller>> {
    if let Some(token) = bearer(headers) {
        let mut conn = state.conn().await?;
        let found = shared::tokens::authenticate(&mut conn, token).await?;
        return Ok(found.map(|c| Caller {
            user_id: c.user_id,
            username: c.username,
            is_operator: c.is_operator,
            via: Via::Token,
        }));
    }
    if let Some(id) = session::cookie(headers) {
        if let Some(found) = session::load(state, id).await? {
            return Ok(Some(Caller {
                user_id: found.user_id,
                username: found.username,
                is_operator: found.is_operator,
                via: Via::Session { csrf: found.csrf },
            }));
        }
    }
    Ok(None)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Caller> {
        let caller = identify(state, &parts.headers).await?.ok_or_else(ApiError::unauthorized)?;
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| parts.uri.path().to_string());
        let endpoint = rate_limit::endpoint_name(parts.method.as_str(), &route);
        rate_limit::count(state, caller.user_id, &endpoint).await?;
        Ok(caller)
    }
}
