//! Requests per user and endpoint, counted in Redis under the seed's key
//! `rate_limit:{user_id}:{endpoint}`: a fixed window (`API_RATE_WINDOW_SECONDS`)
//! that starts with the first request; past `API_RATE_LIMIT` requests in a
//! window the answer is 429 with `Retry-After` (the window's remaining
//! seconds). Counted by one Lua script (increment, and set the expiry on
//! the first), so every server behind a balancer shares the count and a
//! key never outlives its window.
//!
//! A Redis that cannot be reached does not stop the API (the database is
//! the truth, and a limit is a courtesy): the request passes, with a warning.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use fred::prelude::*;

/// Increments and returns (count, seconds left in the window).
const SCRIPT: &str = r#"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
"#;

/// The endpoint part of the key: method and route template, braces
/// replaced (`GET:/api/v1/tasks/:task_id`) so that a Redis Cluster never
/// reads them as a hash tag.
pub fn endpoint_name(method: &str, route: &str) -> String {
    format!("{method}:{}", route.replace('{', ":").replace('}', ""))
}

/// The Redis key counting `user_id`'s requests to `endpoint`.
pub fn key(user_id: i64, endpoint: &str) -> String {
    format!("rate_limit:{user_id}:{endpoint}")
}

/// Counts one request; `Err(429)` once the window's limit is passed.
pub async fn count(state: &AppState, user_id: i64, endpoint: &str) -> ApiResult<()> {
    let window = state.options.rate_window_seconds.max(1);
    let result: Result<Vec<i64>, Error> = state
        .queue
        .client()
        .eval(SCRIPT, vec![key(user_id, endpoint)], vec![window.to_string()])
        .await;
    match result {
        Ok(values) if values.len() == 2 => {
            let (n, ttl) = (values[0], values[1]);
            if n as u64 > state.options.rate_limit {
                metrics::counter!("videoclip_api_rate_limited_total").increment(1);
                return Err(ApiError::too_many(endpoint, ttl.max(1) as u64));
            }
            Ok(())
        }
        Ok(other) => {
            tracing::warn!("rate limit script answered {other:?}; request let through");
            Ok(())
        }
        Err(e) => {
            tracing::warn!("rate limit not counted (Redis): {e}; request let through");
            Ok(())
        }
    }
}
