//! `enqueue watch` and the progress display behind `video --wait`.
//!
//! Each tick reads every unfinished task's `task:status:{task_id}` in one
//! pipelined MGET (`Queue::get_statuses`) (workers write it at every step and, within a step, up to
//! every 250 ms). The database is read as well:
//!
//! - for tasks whose key is missing or expired (TTL 1 h, or Redis flushed),
//!   every tick;
//! - when the cache shows a final status, which is never reported before the
//!   database confirms it;
//! - and at least every 2 s in any case, so a stale or lost cache cannot hide
//!   a status change (a lease reaped, a retry, a cancel).
//!
//! The database is the source of truth: a task is finished only when its row
//! says so, and its final report is that row. When the cache contradicts the
//! database, the cached value is ignored until it is written again (its
//! `updated_at` changes), so the display does not flap between the two.
//!
//! Output: one progress bar per task on stderr when stderr is a terminal;
//! otherwise (or with `--json`) one JSON line per change on stdout, then one
//! final line per task with its database summary. Exit 0 only if every task
//! completed, 1 if any failed or was cancelled (its error is printed) or the
//! watch was interrupted (Ctrl-C; the tasks keep running).
//!
//! (About 430 lines: the polling state machine is one type; its display is in `display.rs`.)

use crate::Output;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use shared::config::Settings;
use shared::db::Pool;
use shared::models::{TaskStatus, TaskSummary};
use shared::queue::{CachedStatus, Queue};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

mod display;

use display::*;

/// The database is read at least this often, whatever the cache says.
const DB_EVERY: Duration = Duration::from_secs(2);
/// A cache read slower than this counts as a miss (Redis down or reconnecting).
const CACHE_TIMEOUT: Duration = Duration::from_secs(1);
/// A database read slower than this is abandoned for this tick.
const DB_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Public task ids (processing_tasks.task_id)
    #[arg(required = true)]
    pub task_ids: Vec<String>,
    /// Pause between two looks at the tasks
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub interval_ms: u64,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One progress bar per task on stderr.
    Bars,
    /// One JSON line per change on stdout, then the database summary of each task.
    Json,
    /// One text line per change on stderr (`video --wait` without a terminal).
    Text,
}

/// `enqueue watch`.
pub async fn watch(settings: &Settings, out: &Output, args: WatchArgs) -> anyhow::Result<ExitCode> {
    // Listened to from the start, so neither signal kills the process
    // with its default action (exit 130 is not in the contract).
    let (signals, _trigger) = shared::shutdown::Shutdown::on_signals();
    let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
    let mode = if out.json || !std::io::stderr().is_terminal() { Mode::Json } else { Mode::Bars };
    let ids = dedup(&args.task_ids);
    let tasks = load_known(&pool, &ids).await?;
    let queue = connect_cache(&settings.redis_url).await;
    Watcher::new(pool, queue, tasks, mode, Duration::from_millis(args.interval_ms))
        .run(signals)
        .await
}

/// Follows tasks already known to exist until all are final (`video --wait`).
/// Without `redis_url` (or if Redis is unreachable) only the database is read.
pub async fn follow(
    pool: &Pool,
    redis_url: Option<&str>,
    task_ids: &[String],
    mode: Mode,
    interval: Duration,
) -> anyhow::Result<ExitCode> {
    // Listened to from the start, so neither signal kills the process
    // with its default action (exit 130 is not in the contract).
    let (signals, _trigger) = shared::shutdown::Shutdown::on_signals();
    let ids = dedup(task_ids);
    let tasks = load_known(pool, &ids).await?;
    let queue = match redis_url {
        Some(url) => connect_cache(url).await,
        None => None,
    };
    Watcher::new(pool.clone(), queue, tasks, mode, interval).run(signals).await
}

/// The ids in the order given, each once.
fn dedup(ids: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.iter().filter(|id| seen.insert(id.as_str())).cloned().collect()
}

/// The tasks, in the order asked for; an unknown id is bad input.
async fn load_known(pool: &Pool, ids: &[String]) -> anyhow::Result<Vec<TaskSummary>> {
    let mut conn = shared::db::conn(pool).await?;
    let found = shared::tasks::find_summaries(&mut conn, ids).await?;
    let mut ordered = Vec::with_capacity(ids.len());
    for id in ids {
        match found.iter().find(|t| &t.task_id == id) {
            Some(task) => ordered.push(task.clone()),
            None => return Err(shared::BadInput::new(format!("no task with id {id:?}")).into()),
        }
    }
    Ok(ordered)
}

/// The status cache, if Redis can be reached; without it the database is
/// polled alone (the cache only makes progress finer and cheaper to follow).
async fn connect_cache(url: &str) -> Option<Queue> {
    match tokio::time::timeout(Duration::from_secs(5), Queue::connect(url)).await {
        Ok(Ok(queue)) => Some(queue),
        Ok(Err(e)) => {
            tracing::warn!(
                "task:status cache unavailable, following the database only: {}",
                shared::one_line(&e)
            );
            None
        }
        Err(_) => {
            tracing::warn!(
                "task:status cache unavailable (Redis did not answer), following the database only"
            );
            None
        }
    }
}

/// What is shown of a task; a change of any field is reported.
#[derive(Debug, Clone, PartialEq)]
struct Shown {
    status: TaskStatus,
    progress: i8,
    step: Option<String>,
}

impl Shown {
    fn from_db(row: &TaskSummary) -> Option<Shown> {
        Some(Shown {
            status: TaskStatus::from_code(row.status).ok()?,
            progress: row.progress,
            step: row.current_step.clone(),
        })
    }

    fn from_cache(cached: &CachedStatus) -> Option<Shown> {
        Some(Shown {
            status: TaskStatus::from_code(cached.status).ok()?,
            progress: cached.progress,
            step: cached.current_step.clone(),
        })
    }
}

/// One task being followed.
struct Watched {
    /// Latest database row.
    db: TaskSummary,
    /// Last state reported.
    shown: Option<Shown>,
    /// `updated_at` of a cache value the database contradicted: ignored
    /// until the cache is written again.
    stale_cache: Option<String>,
    /// When the current attempt started running (as seen from here).
    started: Option<Instant>,
    finished: bool,
    bar: Option<ProgressBar>,
}

/// The polling loop and the display.
struct Watcher {
    pool: Pool,
    queue: Option<Queue>,
    tasks: Vec<Watched>,
    mode: Mode,
    interval: Duration,
    bars: Option<MultiProgress>,
    last_db: Instant,
    db_failing: bool,
    cache_failing: bool,
}

enum Stop {
    Done,
    Interrupted,
}

impl Watcher {
    fn new(
        pool: Pool,
        queue: Option<Queue>,
        rows: Vec<TaskSummary>,
        mode: Mode,
        interval: Duration,
    ) -> Watcher {
        let bars = (mode == Mode::Bars)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let shorts = short_ids(&rows.iter().map(|r| r.task_id.clone()).collect::<Vec<_>>());
        let style = ProgressStyle::with_template("{prefix}  [{bar:30}] {pos:>3}%  {wide_msg}")
            .expect("valid progress template")
            .progress_chars("=> ");
        let tasks = rows
            .into_iter()
            .zip(shorts)
            .map(|(db, short)| {
                let bar = bars.as_ref().map(|m| {
                    let bar = m.add(ProgressBar::new(100).with_style(style.clone()));
                    bar.set_prefix(short);
                    bar
                });
                Watched { db, shown: None, stale_cache: None, started: None, finished: false, bar }
            })
            .collect();
        Watcher {
            pool,
            queue,
            tasks,
            mode,
            interval,
            bars,
            last_db: Instant::now(),
            db_failing: false,
            cache_failing: false,
        }
    }

    async fn run(mut self, mut signals: shared::shutdown::Shutdown) -> anyhow::Result<ExitCode> {
        // The rows just loaded are the first look.
        for i in 0..self.tasks.len() {
            self.apply_db(i);
        }
        let stop = loop {
            if self.tasks.iter().all(|t| t.finished) {
                break Stop::Done;
            }
            let interrupted = tokio::select! {
                _ = tokio::time::sleep(self.interval) => false,
                _ = signals.wait() => true,
            };
            if interrupted {
                break Stop::Interrupted;
            }
            let interrupted = tokio::select! {
                _ = self.tick() => false,
                _ = signals.wait() => true,
            };
            if interrupted {
                break Stop::Interrupted;
            }
        };
        Ok(match stop {
            Stop::Done => self.report(),
            Stop::Interrupted => self.interrupted(),
        })
    }

    /// One look: the cache for every unfinished task, the database when needed.
    async fn tick(&mut self) {
        let active: Vec<usize> =
            (0..self.tasks.len()).filter(|&i| !self.tasks[i].finished).collect();
        let cached = self.read_cache(&active).await;
        let confirm = active.iter().zip(&cached).any(|(&i, c)| match c {
            None => true,
            Some(c) => {
                TaskStatus::from_code(c.status).map(|s| s.is_final()).unwrap_or(true)
                    && self.tasks[i].stale_cache.as_deref() != Some(c.updated_at.as_str())
            }
        });
        let fresh = if confirm || self.last_db.elapsed() >= DB_EVERY {
            self.read_db(&active).await
        } else {
            None
        };
        for (&i, cache) in active.iter().zip(cached) {
            let mut from_db = false;
            if let Some(rows) = &fresh {
                if let Some(row) = rows.iter().find(|r| r.task_id == self.tasks[i].db.task_id) {
                    self.tasks[i].db = row.clone();
                    from_db = true;
                }
            }
            let task = &mut self.tasks[i];
            let db = Shown::from_db(&task.db);
            if from_db && db.as_ref().is_some_and(|d| d.status.is_final()) {
                self.finish(i);
                continue;
            }
            let shown = match (cache.as_ref().and_then(Shown::from_cache), db) {
                (Some(c), Some(d)) if from_db => {
                    if c.status != d.status {
                        // Written before the row changed, or never confirmed.
                        task.stale_cache = cache.map(|c| c.updated_at);
                        d
                    } else {
                        task.stale_cache = None;
                        // Progress within a step is in the cache only; a lost
                        // cache write leaves the database ahead.
                        if d.progress > c.progress {
                            d
                        } else {
                            c
                        }
                    }
                }
                (Some(c), Some(d)) => {
                    let updated = cache.map(|c| c.updated_at);
                    if c.status.is_final() || updated == task.stale_cache {
                        d
                    } else {
                        task.stale_cache = None;
                        c
                    }
                }
                (None, Some(d)) => d,
                (Some(c), None) => c,
                (None, None) => continue,
            };
            self.show(i, shown);
        }
        self.redraw_clocks();
    }

    /// `task:status` of the given tasks: `None` where missing, unreadable
    /// or when Redis does not answer.
    async fn read_cache(&mut self, active: &[usize]) -> Vec<Option<CachedStatus>> {
        let Some(queue) = &self.queue else { return vec![None; active.len()] };
        let ids: Vec<String> = active.iter().map(|&i| self.tasks[i].db.task_id.clone()).collect();
        let values = match tokio::time::timeout(CACHE_TIMEOUT, queue.get_statuses(&ids)).await {
            Ok(Ok(values)) => values,
            Ok(Err(e)) => {
                self.cache_trouble(&shared::one_line(&e));
                return vec![None; active.len()];
            }
            Err(_) => {
                self.cache_trouble("Redis did not answer");
                return vec![None; active.len()];
            }
        };
        if self.cache_failing {
            self.cache_failing = false;
            self.note("task:status cache readable again");
        }
        values
    }

    fn cache_trouble(&mut self, why: &str) {
        if !self.cache_failing {
            self.cache_failing = true;
            self.note(&format!("task:status cache unreadable, following the database: {why}"));
        }
    }

    /// The rows of the given tasks, or `None` (reported once) when the
    /// database cannot be read this time.
    async fn read_db(&mut self, active: &[usize]) -> Option<Vec<TaskSummary>> {
        self.last_db = Instant::now();
        let ids: Vec<String> = active.iter().map(|&i| self.tasks[i].db.task_id.clone()).collect();
        let read = async {
            let mut conn = shared::db::conn(&self.pool).await?;
            shared::tasks::find_summaries(&mut conn, &ids).await
        };
        match tokio::time::timeout(DB_TIMEOUT, read).await {
            Ok(Ok(rows)) => {
                if self.db_failing {
                    self.db_failing = false;
                    self.note("database readable again");
                }
                Some(rows)
            }
            Ok(Err(e)) => {
                self.db_trouble(&shared::one_line(&e));
                None
            }
            Err(_) => {
                self.db_trouble("no answer");
                None
            }
        }
    }

    fn db_trouble(&mut self, why: &str) {
        if !self.db_failing {
            self.db_failing = true;
            self.note(&format!(
                "database unreadable, retrying (final statuses wait for it): {why}"
            ));
        }
    }
}
