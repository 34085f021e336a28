//! Every state change through the API writes one `operation_logs` row:
//! who (the caller's user), what (operation, resource), from where
//! (`ip_address`: the peer address of the connection; `user_agent`), the
//! request's parameters (never a token or file contents), the outcome and
//! how long it took. Best effort like the CLI's: a failed audit write is
//! logged and never changes the answer.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Instant;

/// Where a request came from.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    started: Instant,
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Client, Infallible> {
        let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(500).collect());
        Ok(Client { ip, user_agent, started: Instant::now() })
    }
}

/// One audited change.
pub struct Change<'a> {
    pub operation: &'static str,
    pub resource_type: &'static str,
    pub resource_id: Option<String>,
    pub request: serde_json::Value,
    pub outcome: Result<serde_json::Value, &'a ApiError>,
}

/// Writes the row for `change` made by `caller` (`None`: not
/// authenticated, e.g. a failed login) from `client`.
pub async fn record(
    state: &AppState,
    caller: Option<&Caller>,
    client: &Client,
    change: Change<'_>,
) {
    let (status, response, error) = match change.outcome {
        Ok(value) => (1, Some(value), None),
        Err(e) => (0, None, Some(e.message.clone())),
    };
    let operation = shared::audit::Operation {
        user_id: caller.map(|c| c.user_id),
        operation: format!("api {}", change.operation),
        resource_type: Some(change.resource_type.to_string()),
        resource_id: change.resource_id.map(|r| r.chars().take(100).collect()),
        ip_address: client.ip.clone(),
        user_agent: client.user_agent.clone(),
        request_data: Some(change.request),
        response_data: response,
        execution_time: Some(client.started.elapsed().as_millis().min(i32::MAX as u128) as i32),
        status,
        error_message: error,
    };
    let written = async {
        let mut conn = state.conn().await?;
        shared::audit::record(&mut conn, &operation).await
    }
    .await;
    if let Err(e) = written {
        tracing::warn!("operation_logs not written: {}", shared::one_line(&e));
    }
}
