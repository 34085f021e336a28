//! Dashboard sessions: logging in with an API token once gives a cookie
//! (`vc_session`, `HttpOnly`, `SameSite=Strict`, `Secure` behind https)
//! holding a random session id. Redis keeps the session under
//! `session:{sha256(id)}` (the id itself is never stored, like tokens)
//! with the user, the token it came from and a CSRF token, expiring after
//! `API_SESSION_HOURS`. Revoking the token ends its sessions: each use
//! checks the token is still active.

use crate::state::AppState;
use axum::http::{header, HeaderMap};
use fred::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The cookie's name.
pub const COOKIE: &str = "vc_session";

/// A logged-in dashboard user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub user_id: i64,
    pub username: String,
    pub is_operator: bool,
    pub token_id: i64,
    /// Sent back with every change (form field `csrf` or `X-CSRF-Token`).
    pub csrf: String,
}

/// The Redis key of session `id`.
fn key(id: &str) -> String {
    format!("session:{}", hex::encode(Sha256::digest(id.as_bytes())))
}

/// True when `a` and `b` are the same secret, compared in constant time
/// for equal lengths (a CSRF token's length is no secret).
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len()
        && !b.is_empty()
        && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Starts a session for the token's owner; returns the session id (for the
/// cookie) and the session.
pub async fn create(
    state: &AppState,
    caller: &shared::tokens::Caller,
) -> anyhow::Result<(String, Session)> {
    let id = shared::tokens::generate_token();
    let session = Session {
        user_id: caller.user_id,
        username: caller.username.clone(),
        is_operator: caller.is_operator,
        token_id: caller.token_id,
        csrf: shared::tokens::generate_token(),
    };
    let seconds = (state.options.session_hours.max(1) * 3600) as i64;
    let _: () = state
        .queue
        .client()
        .set(key(&id), serde_json::to_string(&session)?, Some(Expiration::EX(seconds)), None, false)
        .await?;
    Ok((id, session))
}

/// The live session with this id, if any (expired, unknown, or its token
/// revoked: `None`).
pub async fn load(state: &AppState, id: &str) -> anyhow::Result<Option<Session>> {
    if id.len() > 128 {
        return Ok(None);
    }
    let text: Option<String> = state.queue.client().get(key(id)).await?;
    let Some(session) = text.and_then(|t| serde_json::from_str::<Session>(&t).ok()) else {
        return Ok(None);
    };
    let mut conn = state.conn().await?;
    if !shared::tokens::is_active(&mut conn, session.token_id).await? {
        return Ok(None);
    }
    Ok(Some(session))
}

/// Ends the session (logout).
pub async fn delete(state: &AppState, id: &str) -> anyhow::Result<()> {
    let _: i64 = state.queue.client().del(key(id)).await?;
    Ok(())
}

/// The session id in the request's cookies, if any.
pub fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// The `Set-Cookie` value that stores session `id`.
pub fn set_cookie(state: &AppState, id: &str) -> String {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let max_age = state.options.session_hours.max(1) * 3600;
    format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(state: &AppState) -> String {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}
