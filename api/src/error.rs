//! One error shape for every JSON endpoint: a status and
//! `{"error": "one line"}` (429 adds `Retry-After`). Handlers return
//! `Result<_, ApiError>`; `?` on an `anyhow::Error` makes bad input a 400
//! with its reason and anything else a 500 whose details go to the log
//! only (they may name hosts or files; the caller gets a short line).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this status and one-line message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        let message: String = message.into();
        ApiError { status, message: message.replace('\n', " "), retry_after: None }
    }

    /// 400: the request itself is wrong.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401: no token, or one that is unknown or revoked.
    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "missing or invalid API token")
    }

    /// 403: allowed for nobody with this token (operator-only, read-only).
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    /// 404: absent, or another user's (the two look the same).
    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, format!("{} not found", what.into()))
    }

    /// 413: the upload is larger than the server takes.
    pub fn too_large(limit: u64) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("upload larger than the server's limit of {limit} bytes"),
        )
    }

    /// 422: the upload arrived but is not usable media.
    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 429: rate limited; try again after `seconds`.
    pub fn too_many(endpoint: &str, seconds: u64) -> ApiError {
        ApiError {
            retry_after: Some(seconds.max(1)),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("rate limit reached for {endpoint}; retry in {}s", seconds.max(1)),
            )
        }
    }

    /// 403 for state changes on a read-only server.
    pub fn read_only() -> ApiError {
        ApiError::forbidden("this server is read-only (API_READ_ONLY): no changes accepted")
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> ApiError {
        match shared::bad_input_reason(&err) {
            Some(reason) => ApiError::bad_request(reason.0.clone()),
            None => {
                let id = uuid::Uuid::now_v7();
                tracing::error!(error_id = %id, "request failed: {}", shared::one_line(&err));
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("internal error (logged as {id})"),
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, Json(serde_json::json!({ "error": self.message }))).into_response();
        if let Some(seconds) = self.retry_after {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// What handlers return.
pub type ApiResult<T> = Result<T, ApiError>;
