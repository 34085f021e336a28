//! `GET /`: the fleet at a glance. A summary bar (tasks per state,
//! throughput this minute and over the last hour, drawn as a bar chart in
//! inline SVG), the queues with their depth and oldest wait, and the
//! workers alive with their running tasks. `app.js` refreshes the numbers
//! from `/api/v1/queues` every two seconds.

use super::html::{duration, esc};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use shared::models::TaskStatus;
use shared::overview::FleetOverview;
use std::fmt::Write;

/// The last hour's completions per minute as an SVG bar chart.
fn chart(per_minute: &[(i64, i64)]) -> String {
    let max = per_minute.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let mut bars = String::new();
    for (ago, n) in per_minute.iter().filter(|(ago, _)| (0..60).contains(ago)) {
        let h = (*n as f64 / max as f64 * 80.0).max(1.0);
        let x = (59 - ago) * 10;
        let _ = write!(
            bars,
            r#"<rect x="{x}" y="{y:.1}" width="8" height="{h:.1}"><title>{n} completed {ago} min ago</title></rect>"#,
            y = 90.0 - h
        );
    }
    format!(
        r#"<svg class="chart" viewBox="0 0 600 100" role="img" aria-label="completions per minute, last hour">{bars}<line x1="0" y1="90" x2="600" y2="90"/><text x="0" y="99">-60 min</text><text x="560" y="99">now</text><text x="0" y="9">{max}/min</text></svg>"#
    )
}

/// `GET /`.
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let state = &state;
    let operator = match super::operator(state, &headers).await {
        Ok(op) => op,
        Err(redirect) => return redirect,
    };
    let read = async {
        let fleet = FleetOverview::read(&state.reads, &state.queue).await?;
        let mut conn = state.conn().await?;
        let queued = shared::tasks::count_queued(&mut conn).await?;
        let per_minute = shared::tasks::completions_per_minute(&mut conn, 60).await?;
        anyhow::Ok((fleet, queued, per_minute))
    }
    .await;
    let (fleet, queued, per_minute) = match read {
        Ok(read) => read,
        Err(e) => return crate::error::ApiError::from(e).into_response(),
    };
    let now: i64 = per_minute.iter().filter(|(ago, _)| *ago == 0).map(|(_, n)| n).sum();
    let hour: i64 = per_minute.iter().map(|(_, n)| n).sum();
    let pending = fleet.count(TaskStatus::Pending);
    let mut summary = String::new();
    let cells = [
        ("pending", pending - queued, "waiting for the scheduler"),
        ("queued", queued, "in Redis, waiting for a worker"),
        ("processing", fleet.count(TaskStatus::Processing), "running under a lease"),
        ("completed", fleet.count(TaskStatus::Completed), ""),
        ("failed", fleet.count(TaskStatus::Failed), ""),
        ("cancelled", fleet.count(TaskStatus::Cancelled), ""),
    ];
    for (name, n, hint) in cells {
        let _ = write!(
            summary,
            r#"<a class="stat status-{name}" href="/tasks?status={link}" title="{hint}"><b data-count="{name}">{n}</b><span>{name}</span></a>"#,
            link = if name == "queued" { "pending" } else { name },
        );
    }
    let _ = write!(
        summary,
        r#"<div class="stat"><b data-count="per_minute">{now}</b><span>completed this minute</span></div><div class="stat"><b data-count="per_hour">{hour}</b><span>last hour</span></div>"#
    );
    let wait = fleet.oldest_wait_seconds.map(duration).unwrap_or_else(|| "-".into());
    let queues = format!(
        r#"<table><tr><th>queue</th><th>depth</th></tr>
<tr><td><code>{h}</code></td><td data-queue="{h}">{hn}</td></tr>
<tr><td><code>{v}</code></td><td data-queue="{v}">{vn}</td></tr></table>
<p>Oldest waiting task: <b data-oldest-wait>{wait}</b>{lost}</p>"#,
        h = shared::queue::HIGH_PRIORITY_QUEUE,
        v = shared::queue::VIDEO_PROCESSING_QUEUE,
        hn = fleet.high_priority,
        vn = fleet.video_processing,
        lost = if fleet.redis_holds_queues {
            ""
        } else {
            r#" · <span class="error">Redis lost its queues: the scheduler is rebuilding them from the database</span>"#
        },
    );
    let mut workers = String::from("<table><tr><th>worker</th><th>running</th><th>state</th></tr>");
    for worker in &fleet.workers_alive {
        let _ = write!(
            workers,
            r#"<tr><td><code>{w}</code></td><td><a href="/tasks?status=processing">{n}</a></td><td>alive</td></tr>"#,
            w = esc(worker),
            n = fleet.running_on(worker)
        );
    }
    for (worker, n) in
        fleet.running_per_worker.iter().filter(|(w, _)| !fleet.workers_alive.contains(w))
    {
        let _ = write!(
            workers,
            r#"<tr><td><code>{w}</code></td><td>{n}</td><td class="error">no heartbeat: its leases will expire and the tasks run again</td></tr>"#,
            w = esc(worker)
        );
    }
    workers.push_str("</table>");
    if fleet.workers_alive.is_empty() {
        workers.push_str("<p>No worker is alive: start one with <code>worker</code>.</p>");
    }
    let body = format!(
        r#"<h1>Overview</h1><section class="summary" data-live-overview>{summary}</section>
<section><h2>Throughput</h2>{chart}</section>
<div class="columns"><section><h2>Queues</h2>{queues}</section>
<section><h2>Workers</h2>{workers}<p class="hint">Drain a worker: send it SIGTERM; it takes no new task and finishes (or hands back) the running ones within its <code>--grace-seconds</code>. Stop at once: SIGKILL; its leases expire and the tasks run elsewhere, exactly once.</p></section></div>"#,
        chart = chart(&per_minute)
    );
    Html(super::html::page("Overview", Some(&operator.viewer(state)), &body)).into_response()
}
