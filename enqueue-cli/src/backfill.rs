//! `enqueue backfill`: tasks for videos already stored, for engineers
//! reprocessing them (a new model, a fixed pipeline).
//!
//! It walks `videos` by id ascending, one keyset page at a time (`WHERE id >
//! last ORDER BY id LIMIT batch`, never OFFSET), and for each page creates
//! in one transaction the tasks of videos that have none active (see
//! `shared::tasks::insert_tasks_for_idle_videos`): so it is idempotent (a
//! second run creates nothing while the first run's tasks are pending or
//! running) and resumable (every page is committed whole; Ctrl-C stops
//! after the current page and prints the `--after-id` to go on with).
//! `--rate` paces it so a large backfill does not flood the queue ahead of
//! live uploads, and it defaults to a low priority for the same reason.

use crate::Output;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use clap::Args;
use serde_json::json;
use shared::config::Settings;
use shared::models::{task_type, NewTask};
use shared::queue::Queue;
use shared::tasks::BATCH_ROWS;
use shared::videos::VideoFilter;
use shared::BadInput;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

#[derive(Args, Debug)]
pub struct BackfillArgs {
    /// Only this user's videos (a user name)
    #[arg(long)]
    pub user: Option<String>,
    /// Only videos created at or after this time: YYYY-MM-DD (00:00 UTC) or RFC 3339
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub since: Option<NaiveDateTime>,
    /// Only videos created before this time (exclusive): YYYY-MM-DD (00:00 UTC) or RFC 3339
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub until: Option<NaiveDateTime>,
    /// Only videos with this videos.status (1 uploaded, 2 processing, 3 completed, 4 failed)
    #[arg(long, value_parser = clap::value_parser!(i8).range(1..=4))]
    pub video_status: Option<i8>,
    /// Only videos with no completed task of this type either (never processed successfully)
    #[arg(long)]
    pub missing: bool,
    /// Type of the tasks to create
    #[arg(long, default_value = task_type::VIDEO_CLIP)]
    pub task_type: String,
    /// 1 (highest) .. 10 (lowest); the default leaves live uploads (5) ahead of a backfill
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i8).range(1..=10))]
    pub priority: i8,
    /// Processing configuration of every new task, a JSON object
    #[arg(long)]
    pub config: Option<String>,
    /// Retries allowed after transient failures
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i8).range(0..=20))]
    pub max_retries: i8,
    /// Create at most this many tasks, then stop (resume with --after-id)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Start after this video id (the last id a previous run reported)
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..))]
    pub after_id: i64,
    /// Videos looked at per transaction (one SELECT, one INSERT each)
    #[arg(long, default_value_t = BATCH_ROWS as u32, value_parser = clap::value_parser!(u32).range(1..=BATCH_ROWS as i64))]
    pub batch_size: u32,
    /// At most this many new tasks per second on average (default: unlimited)
    #[arg(long, value_parser = parse_rate, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
    /// Only report how many tasks would be created, and for whom; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Create tasks even for users whose monthly_videos quota is used up (operators)
    #[arg(long)]
    pub force: bool,
}

/// Parses `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time into UTC, the
/// session time zone of every database connection; the error is clap's
/// one-line reason.
pub(crate) fn parse_time(text: &str) -> Result<NaiveDateTime, String> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).expect("midnight exists"));
    }
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc).naive_utc()).map_err(|_| {
        "expected YYYY-MM-DD or an RFC 3339 time such as 2026-01-31T08:00:00Z".to_string()
    })
}

/// Parses `--rate`: a finite number of tasks per second above zero.
fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err("expected a number of tasks per second above 0".to_string()),
    }
}

/// The `--config` JSON, or [`BadInput`] when it is not a JSON object (the
/// same rule and wording as the other task-creating commands).
fn parsed_config(text: Option<&str>) -> Result<Option<serde_json::Value>, BadInput> {
    let Some(text) = text else { return Ok(None) };
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(Some(value)),
        Ok(_) => Err(BadInput::new("--config must be a JSON object")),
        Err(e) => Err(BadInput::new(format!("--config is not valid JSON: {e}"))),
    }
}

/// Checks the arguments that clap cannot, before anything is read or
/// written; returns the parsed `--config`.
fn validate(args: &BackfillArgs) -> Result<Option<serde_json::Value>, BadInput> {
    if !shared::jobs::TASK_TYPES.contains(&args.task_type.as_str()) {
        return Err(BadInput::new(format!(
            "--task-type {:?} is not a task type workers run (one of: {})",
            args.task_type,
            shared::jobs::TASK_TYPES.join(", ")
        )));
    }
    if let (Some(since), Some(until)) = (args.since, args.until) {
        if since >= until {
            return Err(BadInput::new("--since must be earlier than --until"));
        }
    }
    let config = parsed_config(args.config.as_deref())?;
    shared::jobs::check_config(&args.task_type, config.as_ref())?;
    Ok(config)
}

/// How long to wait after `created` tasks in `elapsed` so the average stays
/// at or under `rate` per second; zero when already slow enough.
fn pacing_delay(created: u64, elapsed: Duration, rate: f64) -> Duration {
    let due = Duration::from_secs_f64(created as f64 / rate);
    due.saturating_sub(elapsed)
}

/// What a run did, for the summary.
#[derive(Default)]
struct Totals {
    created: u64,
    skipped_active: u64,
    skipped_completed: u64,
    /// Videos left without a task because their owner's quota is used up.
    skipped_quota: u64,
    over_quota_users: std::collections::BTreeSet<String>,
    scanned: u64,
    /// The last video decided on: where a next run resumes (`--after-id`).
    last_video_id: Option<i64>,
    users: BTreeMap<String, u64>,
    interrupted: bool,
    limit_reached: bool,
}

/// Starts writing the new tasks' `task:status` (pending) and announcing
/// them, as the other creating commands do, in `writes`, so the next batch
/// is written to the database meanwhile (a first status written late
/// changes nothing: `SET NX`); a failure only warns.
fn cache_pending(writes: &mut JoinSet<()>, queue: Option<&Queue>, tasks: &[NewTask]) {
    let Some(queue) = queue.cloned() else { return };
    let ids: Vec<String> = tasks.iter().map(|t| t.task_id.clone()).collect();
    writes.spawn(async move { shared::registration::cache_pending(&queue, &ids).await });
}

/// Waits for the `task:status` writes started by [`cache_pending`].
async fn finish_writes(writes: &mut JoinSet<()>) {
    while writes.join_next().await.is_some() {}
}

/// `enqueue backfill`: creates tasks for the stored videos that match the
/// filters and have no active task of the type, page by page; returns
/// success once the walk is done, 1 if interrupted (after printing where to
/// resume).
pub async fn backfill(
    settings: &Settings,
    out: &Output,
    args: BackfillArgs,
) -> anyhow::Result<ExitCode> {
    let config = validate(&args)?;
    // Two connections: batches are written on one while the next page of
    // videos is read on the other.
    let pool = shared::db::connect(settings.require_database_url()?, 2).await?;
    let mut conn = shared::db::conn(&pool).await?;
    let mut reader = shared::db::conn(&pool).await?;
    let user_id = match &args.user {
        Some(name) => Some(shared::users::require_user(&mut conn, name).await?.id),
        None => None,
    };
    let filter = VideoFilter {
        user_id,
        created_since: args.since,
        created_before: args.until,
        status: args.video_status,
    };
    let queue = if args.dry_run {
        None
    } else {
        match Queue::connect(&settings.redis_url).await {
            Ok(queue) => Some(queue),
            Err(e) => {
                tracing::warn!("task:status will not be written: {}", shared::one_line(&e));
                None
            }
        }
    };
    // Under a rate, a page never holds more than about a second of tasks,
    // so the queue sees a trickle rather than bursts.
    let batch = match args.rate {
        Some(rate) => (args.batch_size as usize).min(rate.ceil().max(1.0) as usize),
        None => args.batch_size as usize,
    };
    let (mut shutdown, _trigger) = shared::shutdown::Shutdown::on_signals();
    let started = Instant::now();
    let mut totals =
        Totals { last_video_id: (args.after_id > 0).then_some(args.after_id), ..Totals::default() };
    let mut after = args.after_id;
    let mut tally = shared::quotas::InFlightTally::default();
    let verb = if args.dry_run { "would create" } else { "created" };
    // The page read while the previous batch was written, if any.
    let mut prefetched: Option<anyhow::Result<Vec<shared::videos::VideoOwner>>> = None;
    let mut writes = JoinSet::new();

    // The walk; its errors wait for the status writes already started, so
    // every committed batch still gets its `task:status`.
    let walked: anyhow::Result<()> = async {
        loop {
            if shutdown.is_triggered() {
                totals.interrupted = true;
                break;
            }
            let remaining = args.limit.map(|l| l - totals.created).unwrap_or(u64::MAX);
            let page = match prefetched.take() {
                Some(page) => page,
                None => shared::videos::page_after(&mut reader, &filter, after, batch).await,
            };
            let page = page.map_err(|e| e.context(resume_hint(&totals)))?;
            if page.is_empty() {
                break;
            }
            let candidates: Vec<NewTask> = page
                .iter()
                .map(|video| NewTask {
                    task_id: uuid::Uuid::now_v7().to_string(),
                    user_id: video.user_id,
                    video_id: video.id,
                    task_type: args.task_type.clone(),
                    config: config.clone(),
                    priority: args.priority,
                    max_retries: args.max_retries,
                })
                .collect();
            // The next page starts after this one's last video, which is where
            // the next batch starts unless this one stops early (--limit): then
            // the loop ends and the page read ahead is dropped.
            let full = page.len() == batch;
            let last_in_page = page[page.len() - 1].id;
            let read_ahead = async {
                if full {
                    Some(shared::videos::page_after(&mut reader, &filter, last_in_page, batch).await)
                } else {
                    None
                }
            };
            let (done, next_page) = tokio::join!(
                shared::tasks::insert_tasks_for_idle_videos(
                    &mut conn,
                    candidates,
                    args.missing,
                    remaining.min(usize::MAX as u64) as usize,
                    !args.dry_run,
                    !args.force,
                    &mut tally,
                ),
                read_ahead
            );
            let done = done.map_err(|e| e.context(resume_hint(&totals)))?;
            if done.examined == page.len() {
                prefetched = next_page;
            }
            if !args.dry_run {
                // At most two batches' writes at a time: Redis keeps up or the
                // walk waits for it.
                if writes.len() >= 2 {
                    writes.join_next().await;
                }
                cache_pending(&mut writes, queue.as_ref(), &done.created);
            }
            if done.examined == 0 {
                break;
            }
            let last = page[done.examined - 1].id;
            after = last;
            totals.last_video_id = Some(last);
            totals.scanned += done.examined as u64;
            totals.created += done.created.len() as u64;
            totals.skipped_active += done.skipped_active as u64;
            totals.skipped_completed += done.skipped_completed as u64;
            totals.skipped_quota += done.skipped_quota as u64;
            let user_names: std::collections::HashMap<i64, &str> =
                page.iter().map(|v| (v.user_id, v.username.as_str())).collect();
            for user_id in &done.over_quota_users {
                totals
                    .over_quota_users
                    .insert(user_names.get(user_id).copied().unwrap_or_default().to_string());
            }
            let owners: std::collections::HashMap<i64, &str> =
                page.iter().map(|v| (v.id, v.username.as_str())).collect();
            for task in &done.created {
                let name = owners.get(&task.video_id).copied().unwrap_or_default();
                *totals.users.entry(name.to_string()).or_default() += 1;
            }
            eprintln!(
                "backfill: videos up to id {last}: {} looked at, {verb} {} task(s) in all, {} skipped (active), {} skipped (completed)",
                totals.scanned, totals.created, totals.skipped_active, totals.skipped_completed
            );
            if args.limit.is_some_and(|l| totals.created >= l) {
                totals.limit_reached = true;
                break;
            }
            if page.len() < batch {
                break;
            }
            if let (Some(rate), false) = (args.rate, args.dry_run) {
                let delay = pacing_delay(totals.created, started.elapsed(), rate);
                if !delay.is_zero() && shutdown.sleep(delay).await {
                    totals.interrupted = true;
                    break;
                }
            }
        }
        Ok(())
    }
    .await;
    finish_writes(&mut writes).await;
    walked?;
    // Keep the average at or under the rate to the end, so runs chained
    // with --limit/--after-id respect it too.
    if let (Some(rate), false, false) = (args.rate, args.dry_run, totals.interrupted) {
        let delay = pacing_delay(totals.created, started.elapsed(), rate);
        if !delay.is_zero() && shutdown.sleep(delay).await {
            totals.interrupted = true;
        }
    }
    if totals.interrupted || totals.limit_reached {
        let why = if totals.interrupted { "interrupted" } else { "--limit reached" };
        match totals.last_video_id {
            Some(id) => eprintln!("backfill: {why} after video {id}; resume with --after-id {id}"),
            None => eprintln!("backfill: {why} before any video; run it again as it was"),
        }
    }
    report(out, &args, &totals);
    Ok(if totals.interrupted { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// What an error of the walk says after what was done: how many tasks were
/// created and the `--after-id` to resume with.
fn resume_hint(totals: &Totals) -> String {
    let resume = totals.last_video_id.map(|id| format!(" --after-id {id}")).unwrap_or_default();
    format!("backfill stopped after creating {} task(s); resume with{resume}", totals.created)
}

/// Prints the summary: one JSON object, or a few lines for people.
fn report(out: &Output, args: &BackfillArgs, totals: &Totals) {
    let value = json!({
        "created": totals.created,
        "skipped_active": totals.skipped_active,
        "skipped_completed": totals.skipped_completed,
        "skipped_quota": totals.skipped_quota,
        "over_quota_users": totals.over_quota_users,
        "last_video_id": totals.last_video_id,
        "dry_run": args.dry_run,
        "interrupted": totals.interrupted,
        "task_type": args.task_type,
        "users": totals.users,
    });
    out.emit(&value, || {
        let mut text = format!(
            "{}{} {} {} task(s) for {} user(s); skipped {} video(s) with an active task",
            if args.dry_run { "dry run: " } else { "" },
            if args.dry_run { "would create" } else { "created" },
            totals.created,
            args.task_type,
            totals.users.len(),
            totals.skipped_active,
        );
        if args.missing {
            text.push_str(&format!(", {} with a completed one", totals.skipped_completed));
        }
        if totals.skipped_quota > 0 {
            text.push_str(&format!(
                ", {} whose owner's quota {} is used up ({}; --force to override)",
                totals.skipped_quota,
                shared::quotas::MONTHLY_VIDEOS,
                totals.over_quota_users.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if let Some(id) = totals.last_video_id {
            text.push_str(&format!("; last video id {id}"));
        }
        if !totals.users.is_empty() {
            let mut table = comfy_table::Table::new();
            for (name, n) in &totals.users {
                table.add_row([name.to_string(), n.to_string()]);
            }
            for line in crate::table::render(table, &[]).lines() {
                text.push_str(&format!("\n  {line}"));
            }
        }
        text
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_rfc3339_times_parse_to_utc() {
        assert_eq!(parse_time("2026-01-31").unwrap().to_string(), "2026-01-31 00:00:00");
        assert_eq!(
            parse_time("2026-01-31T08:30:00+08:00").unwrap().to_string(),
            "2026-01-31 00:30:00"
        );
        assert_eq!(
            parse_time("2026-01-31T08:30:00.250Z").unwrap().to_string(),
            "2026-01-31 08:30:00.250"
        );
        assert!(parse_time("31/01/2026").is_err());
        assert!(parse_time("2026-02-30").is_err());
    }

    #[test]
    fn rate_must_be_a_positive_number() {
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        for bad in ["0", "-1", "NaN", "inf", "fast"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pacing_waits_until_the_average_is_under_the_rate() {
        assert_eq!(
            pacing_delay(100, Duration::from_millis(500), 50.0),
            Duration::from_millis(1500)
        );
        assert_eq!(pacing_delay(100, Duration::from_secs(3), 50.0), Duration::ZERO);
        assert_eq!(pacing_delay(0, Duration::ZERO, 1.0), Duration::ZERO);
    }
}
