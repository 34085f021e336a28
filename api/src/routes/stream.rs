//! Live progress as Server-Sent Events: `GET /api/v1/tasks/{id}/events`
//! for one task, `GET /api/v1/events?task_ids=a,b` for a set.
//!
//! Driven by Redis: every [`POLL`] the stream reads every task's
//! `task:status` in one MGET (what workers write at every step; the same
//! read and the same rules as `enqueue watch`) and sends an event when
//! status, progress or step changed. The database stays the truth: it is
//! read every [`DATABASE_EVERY`] polls, whenever Redis cannot be reached
//! or has no entry, and before any final status is announced, so a stream
//! never reports "completed" that the database does not hold. Events
//! carry increasing `id`s; a task's events arrive in the order its states
//! happened. When every task is final the stream sends `end` and closes.

use super::QueryParams;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;
use serde::Deserialize;
use serde_json::json;
use shared::models::TaskStatus;
use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

/// Time between two reads of `task:status`.
pub const POLL: Duration = Duration::from_millis(200);
/// Every this many polls, the database is read even if Redis answered.
pub const DATABASE_EVERY: u32 = 10;
/// A cache read slower than this counts as a miss (Redis down or reconnecting).
pub const CACHE_TIMEOUT: Duration = Duration::from_secs(1);
/// Most tasks one stream follows.
pub const MAX_TASKS: usize = 100;

/// What a task looked like at its last event.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    status: i8,
    progress: i8,
    step: Option<String>,
}

/// The stream's own state between polls.
struct Follow {
    state: AppState,
    tasks: Vec<String>,
    seen: BTreeMap<String, Seen>,
    done: std::collections::BTreeSet<String>,
    pending: VecDeque<Event>,
    polls: u32,
    next_id: u64,
    ended: bool,
    /// The server's shutdown: a stream ends when it starts.
    stopping: Option<shared::shutdown::Shutdown>,
}

impl Follow {
    /// An event with the next id.
    fn event(&mut self, name: &str, data: serde_json::Value) -> Event {
        self.next_id += 1;
        Event::default().event(name).id(self.next_id.to_string()).data(data.to_string())
    }

    /// One poll: queues an event for every task that changed.
    async fn poll(&mut self) -> anyhow::Result<()> {
        let live: Vec<String> =
            self.tasks.iter().filter(|t| !self.done.contains(*t)).cloned().collect();
        let mut from_redis = BTreeMap::new();
        let mut need_database = self.polls.is_multiple_of(DATABASE_EVERY);
        let cached =
            tokio::time::timeout(CACHE_TIMEOUT, self.state.queue.get_statuses(&live)).await;
        match cached {
            Ok(Ok(values)) => {
                for (id, value) in live.iter().zip(values) {
                    match value {
                        Some(cached) => {
                            let is_final = TaskStatus::from_code(cached.status)
                                .map(|s| s.is_final())
                                .unwrap_or(true);
                            need_database |= is_final;
                            from_redis.insert(id.clone(), cached);
                        }
                        None => need_database = true,
                    }
                }
            }
            // Redis unreadable or slow: the database answers this poll.
            _ => need_database = true,
        }
        self.polls += 1;
        if need_database {
            let mut conn = self.state.conn().await?;
            let rows = shared::tasks::find_summaries(&mut conn, &live).await?;
            drop(conn);
            for row in rows {
                let seen = Seen {
                    status: row.status,
                    progress: row.progress,
                    step: row.current_step.clone(),
                };
                let is_final =
                    TaskStatus::from_code(row.status).map(|s| s.is_final()).unwrap_or(false);
                // The database's progress may lag the cache's (it is written
                // less often): never step back within a status.
                let behind = self.seen.get(&row.task_id).is_some_and(|prev| {
                    prev.status == seen.status && prev.progress > seen.progress
                });
                if !behind && self.seen.get(&row.task_id) != Some(&seen) {
                    let data = status_data(&row.task_id, &seen, Some(&row), "database");
                    let event = self.event("status", data);
                    self.pending.push_back(event);
                    self.seen.insert(row.task_id.clone(), seen);
                }
                if is_final {
                    self.done.insert(row.task_id.clone());
                }
                from_redis.remove(&row.task_id);
            }
        }
        // Redis entries not superseded by a database read this poll; a
        // cached final status waits for the database to confirm it.
        for (id, cached) in from_redis {
            let seen = Seen {
                status: cached.status,
                progress: cached.progress,
                step: cached.current_step,
            };
            let is_final = TaskStatus::from_code(seen.status).map(|s| s.is_final()).unwrap_or(true);
            if is_final || self.seen.get(&id) == Some(&seen) {
                continue;
            }
            // Never step back: an older cached state after a newer database one.
            if let Some(prev) = self.seen.get(&id) {
                if prev.status == seen.status && prev.progress > seen.progress {
                    continue;
                }
            }
            let data = status_data(&id, &seen, None, "redis");
            let event = self.event("status", data);
            self.pending.push_back(event);
            self.seen.insert(id, seen);
        }
        Ok(())
    }
}

/// The JSON of a status event.
fn status_data(
    task_id: &str,
    seen: &Seen,
    row: Option<&shared::models::TaskSummary>,
    source: &str,
) -> serde_json::Value {
    let status = TaskStatus::from_code(seen.status).map(|s| s.name()).unwrap_or("unknown");
    let mut data = json!({
        "task_id": task_id,
        "status": status,
        "progress": seen.progress,
        "current_step": seen.step,
        "source": source,
    });
    if let Some(row) = row {
        data["retry_count"] = json!(row.retry_count);
        data["error_message"] = json!(row.error_message);
    }
    data
}

/// The event stream following `tasks` (already checked visible).
fn follow(state: AppState, tasks: Vec<String>) -> impl Stream<Item = Result<Event, Infallible>> {
    let stopping = state.stopping.get().cloned();
    let start = Follow {
        state,
        tasks,
        seen: BTreeMap::new(),
        done: Default::default(),
        pending: VecDeque::new(),
        polls: 0,
        next_id: 0,
        ended: false,
        stopping,
    };
    futures_util::stream::unfold(start, |mut f| async move {
        loop {
            if let Some(event) = f.pending.pop_front() {
                return Some((Ok(event), f));
            }
            if f.ended {
                return None;
            }
            if f.done.len() == f.tasks.len() {
                f.ended = true;
                let event = f.event("end", json!({ "tasks": f.tasks.len() }));
                return Some((Ok(event), f));
            }
            if f.polls > 0 {
                match f.stopping.as_mut() {
                    Some(s) => {
                        if s.sleep(POLL).await {
                            return None;
                        }
                    }
                    None => tokio::time::sleep(POLL).await,
                }
            }
            if let Err(e) = f.poll().await {
                tracing::warn!("event stream: {}", shared::one_line(&e));
                let event = f.event("error", json!({ "error": "status unavailable; retrying" }));
                f.pending.push_back(event);
            }
        }
    })
}

/// `GET /api/v1/tasks/{task_id}/events`.
pub async fn task_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(task_id): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    super::tasks::visible_task(&state, &caller, &task_id).await?;
    Ok(Sse::new(follow(state, vec![task_id])).keep_alive(KeepAlive::default()))
}

/// Query of `GET /api/v1/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetQuery {
    /// Comma-separated task ids.
    pub task_ids: String,
}

/// `GET /api/v1/events?task_ids=a,b,c`: one stream for up to 100 tasks.
pub async fn set_events(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<SetQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let mut ids: Vec<String> = Vec::new();
    for id in query.task_ids.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    }
    if ids.is_empty() || ids.len() > MAX_TASKS {
        return Err(ApiError::bad_request(format!("task_ids must name 1..={MAX_TASKS} tasks")));
    }
    let mut conn = state.conn().await?;
    let visible = shared::tasks::owned_task_ids(&mut conn, &ids, caller.scope()).await?;
    drop(conn);
    if let Some(missing) = ids.iter().find(|id| !visible.contains(id)) {
        return Err(ApiError::not_found(format!("task {missing}")));
    }
    Ok(Sse::new(follow(state, ids)).keep_alive(KeepAlive::default()))
}
