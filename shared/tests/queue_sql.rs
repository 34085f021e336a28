//! In-process tests of the queue's SQL: `shared::tasks` and `shared::quotas`
//! called directly against a real MariaDB.
//!
//! This layer sits between the unit tests inside `shared/src` (pure code, no
//! database) and the end-to-end tests in `enqueue-cli/tests` (the real
//! binaries, MariaDB and Redis). No Redis and no processes here: each state
//! change of the queue protocol (claim, renew, reap, finish, cancel, retry,
//! the scheduler's selection, the quota check) is driven by the same library
//! call the scheduler, the worker or the CLI makes, and checked in the rows
//! it leaves behind.
//!
//! Each test gets a fresh, migrated database `test_sql_<pid>_<n>` on the
//! server named by `TEST_DATABASE_URL`, else by `DATABASE_URL` in the
//! repository's `.env` (written by `scripts/services.sh up`). The database is
//! dropped when the test passes and kept for inspection when it fails.
//! Without a configured server every test fails; none is skipped.
//!
//! Run: `./scripts/test.sh` (everything), or with the services up
//! `cargo test -p shared --test queue_sql`.
//!
//! No test sleeps to synchronise: concurrent claimers start at a barrier, and
//! a lease expires either because the test writes `lease_expires_at` into
//! the past or because the test polls the database clock, with a deadline,
//! until the lease's end has passed.
//!
//! (Long on purpose: one scenario per test function, all on one harness.)

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Timestamp};
use diesel_async::{AsyncConnection, RunQueryDsl};
use shared::db::{Pool, PooledConnection};
use shared::error::{database_fault, DatabaseFault};
use shared::models::{step, task_type, NewResult, NewTask, TaskStatus};
use shared::schema::{processing_tasks as pt, user_quotas, videos};
use shared::tasks::{
    backoff_millis, cancel_tasks, claim_tasks, finish_tasks, forget_queued, insert_tasks,
    lock_due_tasks, mark_queued, reap_expired_leases, renew_leases, retry_tasks, ClaimedTask,
    DueSelection, Finished, Lease, Outcome,
};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Helpers: the test database, fixtures, reading rows back.
// ---------------------------------------------------------------------------

/// Lease for claims that must not expire during a test.
const LONG_LEASE_MS: u64 = 60_000;

static NEXT_DATABASE: AtomicU32 = AtomicU32::new(0);

/// The server URL without a database name, and the URL's query string
/// (`?require_ssl=true` and the like, empty if none).
fn server_url() -> (String, String) {
    let configured = std::env::var("TEST_DATABASE_URL").ok().or_else(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
        let env = std::fs::read_to_string(root.join(".env")).ok()?;
        env.lines().find_map(|l| l.strip_prefix("DATABASE_URL=").map(|u| u.trim().to_string()))
    });
    let Some(url) = configured.filter(|u| !u.trim().is_empty()) else {
        panic!("no test database: run ./scripts/test.sh (it starts MariaDB and writes .env) or set TEST_DATABASE_URL");
    };
    let (scheme, rest) = url.split_once("://").expect("DATABASE_URL is scheme://...");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let query = path.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
    (format!("{scheme}://{authority}"), query)
}

/// One test's database and a pool of connections to it.
struct TestDb {
    name: String,
    /// URL of the server's `mysql` database, for CREATE and DROP.
    admin_url: String,
    pool: Pool,
}

impl TestDb {
    /// Creates a fresh database, applies the migrations (the function
    /// `enqueue migrate` calls) and connects a pool to it.
    async fn new() -> TestDb {
        let (server, query) = server_url();
        let name = format!(
            "test_sql_{}_{}",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, Ordering::SeqCst)
        );
        let admin_url = format!("{server}/mysql{query}");
        let mut admin = shared::db::establish(&admin_url).await.unwrap_or_else(|e| {
            panic!("{} (is the test MariaDB up? run ./scripts/test.sh)", shared::one_line(&e))
        });
        for statement in [
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"),
        ] {
            diesel::sql_query(&statement).execute(&mut admin).await.expect(&statement);
        }
        let url = format!("{server}/{name}{query}");
        shared::db::run_migrations(&url).await.expect("applying migrations");
        let pool = shared::db::connect(&url, 8).await.expect("connecting the pool");
        TestDb { name, admin_url, pool }
    }

    async fn conn(&self) -> PooledConnection<'_> {
        shared::db::conn(&self.pool).await.expect("a pooled connection")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("database {} kept for inspection", self.name);
            return;
        }
        // Drop runs on the test's runtime, which must not block on async
        // work: the DROP runs on a thread with a runtime of its own.
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async move {
                let mut admin = shared::db::establish(&url).await?;
                diesel::sql_query(format!("DROP DATABASE {name}")).execute(&mut admin).await?;
                anyhow::Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop database {}: {dropped:?}", self.name);
        }
    }
}

/// The user and video every test task belongs to.
struct Owner {
    user_id: i64,
    video_id: i64,
}

async fn owner(conn: &mut PooledConnection<'_>, username: &str) -> Owner {
    let user = shared::users::ensure_user(conn, username).await.expect("ensure_user");
    let video_id =
        shared::videos::ensure_placeholder_video(conn, user.id).await.expect("placeholder video");
    Owner { user_id: user.id, video_id }
}

/// A pending noop task of priority 5 with 3 retries; vary it with
/// `NewTask { priority: 1, ..task(&owner, "id") }`.
fn task(owner: &Owner, task_id: &str) -> NewTask {
    NewTask {
        task_id: task_id.to_string(),
        user_id: owner.user_id,
        video_id: owner.video_id,
        task_type: task_type::NOOP.to_string(),
        config: None,
        priority: 5,
        max_retries: 3,
    }
}

/// Inserts the tasks and returns their `id`s, in the order given.
async fn create(conn: &mut PooledConnection<'_>, tasks: &[NewTask]) -> Vec<i64> {
    assert_eq!(insert_tasks(conn, tasks).await.expect("insert_tasks"), tasks.len());
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(
            pt::table
                .filter(pt::task_id.eq(&t.task_id))
                .select(pt::id)
                .first(conn)
                .await
                .expect("the new task's id"),
        );
    }
    ids
}

fn ids_of(tasks: &[NewTask]) -> Vec<String> {
    tasks.iter().map(|t| t.task_id.clone()).collect()
}

/// Claims exactly the given public ids (panics if any is not won) and
/// returns the claims in the order given.
async fn claim_all(
    conn: &mut PooledConnection<'_>,
    task_ids: &[&str],
    owner: &str,
    lease_millis: u64,
) -> Vec<ClaimedTask> {
    let wanted: Vec<String> = task_ids.iter().map(|s| s.to_string()).collect();
    let mut won: HashMap<String, ClaimedTask> = claim_tasks(conn, &wanted, owner, lease_millis)
        .await
        .expect("claim_tasks")
        .into_iter()
        .map(|t| (t.task_id.clone(), t))
        .collect();
    let claimed =
        wanted.iter().map(|id| won.remove(id).unwrap_or_else(|| panic!("{id} not claimed")));
    claimed.collect()
}

/// The columns of a `processing_tasks` row the queue protocol moves.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = pt)]
#[diesel(check_for_backend(diesel::mysql::Mysql))]
struct Row {
    task_id: String,
    status: i8,
    retry_count: i8,
    attempts: i32,
    progress: i8,
    current_step: Option<String>,
    error_message: Option<String>,
    lease_owner: Option<String>,
    lease_expires_at: Option<NaiveDateTime>,
    queued_at: Option<NaiveDateTime>,
    completed_at: Option<NaiveDateTime>,
}

impl Row {
    fn status(&self) -> TaskStatus {
        TaskStatus::from_code(self.status).expect("a known status code")
    }

    fn step(&self) -> &str {
        self.current_step.as_deref().unwrap_or("")
    }
}

async fn row(conn: &mut PooledConnection<'_>, id: i64) -> Row {
    pt::table.find(id).select(Row::as_select()).first(conn).await.expect("reading a task row")
}

#[derive(QueryableByName)]
struct Truth {
    #[diesel(sql_type = Bool)]
    v: bool,
}

/// Evaluates an SQL condition on one task's row (database time and types).
async fn task_holds(conn: &mut PooledConnection<'_>, id: i64, condition: &str) -> bool {
    let query = format!("SELECT ({condition}) AS v FROM processing_tasks WHERE id = {id}");
    diesel::sql_query(&query).get_result::<Truth>(conn).await.expect(&query).v
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Runs `SELECT COUNT(*) AS n ...`.
async fn count(conn: &mut PooledConnection<'_>, query: &str) -> i64 {
    diesel::sql_query(query).get_result::<Count>(conn).await.expect(query).n
}

async fn execute(conn: &mut PooledConnection<'_>, statement: &str) -> usize {
    diesel::sql_query(statement).execute(conn).await.expect(statement)
}

/// Polls the database clock until it is past `t` (10 s deadline).
async fn wait_for_database_time(conn: &mut PooledConnection<'_>, t: NaiveDateTime) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let passed: Truth = diesel::sql_query("SELECT NOW(3) > ? AS v")
            .bind::<Timestamp, _>(t)
            .get_result(conn)
            .await
            .expect("reading the database clock");
        if passed.v {
            return;
        }
        assert!(Instant::now() < deadline, "the database clock did not pass {t} within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn used_quota(conn: &mut PooledConnection<'_>, user_id: i64) -> i64 {
    user_quotas::table
        .filter(user_quotas::user_id.eq(user_id))
        .select(user_quotas::used_quota)
        .first(conn)
        .await
        .expect("reading used_quota")
}

/// The one result row a noop task writes when it completes.
fn noop_result(task: &ClaimedTask) -> Outcome {
    Outcome::completed(vec![NewResult {
        task_id: task.id,
        user_id: task.user_id,
        video_id: task.video_id,
        result_type: "analysis".into(),
        result_data: Some(serde_json::json!({ "noop": true, "attempt": task.attempts })),
        file_path: None,
        file_size: None,
        metadata: None,
    }])
}

async fn result_rows(conn: &mut PooledConnection<'_>, id: i64) -> i64 {
    count(conn, &format!("SELECT COUNT(*) AS n FROM processing_results WHERE task_id = {id}")).await
}

// ---------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------

/// Four workers claim the same eight ids at the same moment: the guarded
/// UPDATE gives every task to exactly one of them, on its first attempt.
/// Repeated for a few rounds to give interleavings a chance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_win_each_task_exactly_once() {
    const TASKS: usize = 8;
    const CLAIMERS: usize = 4;
    const ROUNDS: usize = 5;
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let o = owner(&mut conn, "race").await;

    for round in 0..ROUNDS {
        let tasks: Vec<NewTask> =
            (0..TASKS).map(|i| task(&o, &format!("race-{round}-{i}"))).collect();
        let row_ids = create(&mut conn, &tasks).await;
        let ids = Arc::new(ids_of(&tasks));
        let barrier = Arc::new(tokio::sync::Barrier::new(CLAIMERS));
        let claimers: Vec<_> = (0..CLAIMERS)
            .map(|c| {
                let (pool, ids, barrier) = (db.pool.clone(), ids.clone(), barrier.clone());
                tokio::spawn(async move {
                    let mut conn = shared::db::conn(&pool).await?;
                    let owner = format!("racer-{c}#{round}");
                    barrier.wait().await;
                    // As the worker's fetcher does: a deadlock victim's claim
                    // rolled back and may simply run again.
                    let mut deadlocks = 0;
                    loop {
                        match claim_tasks(&mut conn, &ids, &owner, LONG_LEASE_MS).await {
                            Ok(won) => return anyhow::Ok((owner, won, deadlocks)),
                            Err(e)
                                if deadlocks < 4
                                    && database_fault(&e) == DatabaseFault::Deadlock =>
                            {
                                deadlocks += 1
                            }
                            Err(e) => return Err(e),
                        }
                    }
                })
            })
            .collect();

        let mut winner: HashMap<String, String> = HashMap::new();
        for claimer in claimers {
            let (owner, won, deadlocks) = claimer.await.expect("claimer task").expect("claim");
            if deadlocks > 0 {
                eprintln!("round {round}: {owner} was a deadlock victim {deadlocks} time(s)");
            }
            for t in won {
                assert_eq!(t.attempts, 1, "{} claimed on attempt {}", t.task_id, t.attempts);
                assert_eq!(t.lease(), Lease { id: t.id, owner: owner.clone(), token: 1 });
                if let Some(other) = winner.insert(t.task_id.clone(), owner.clone()) {
                    panic!("{} claimed by both {other} and {owner}", t.task_id);
                }
            }
        }
        let won: BTreeSet<&String> = winner.keys().collect();
        assert_eq!(won, ids.iter().collect(), "round {round}: every task claimed once");

        // The rows agree: one lease each, held by the claimer that reported it,
        // and the status history saw one 0 -> 1 change per task.
        for (t, &id) in tasks.iter().zip(&row_ids) {
            let r = row(&mut conn, id).await;
            assert_eq!(r.status(), TaskStatus::Processing);
            assert_eq!(r.attempts, 1);
            assert_eq!(r.lease_owner.as_ref(), winner.get(&t.task_id));
            assert_eq!(r.step(), step::STARTED);
        }
        let like = format!("race-{round}-%");
        let claims = count(
            &mut conn,
            &format!(
                "SELECT COUNT(*) AS n FROM task_status_history h JOIN processing_tasks t ON t.id = h.task_id \
                 WHERE t.task_id LIKE '{like}' AND h.from_status = 0 AND h.to_status = 1"
            ),
        )
        .await;
        assert_eq!(claims, TASKS as i64, "round {round}: claims in task_status_history");
    }
}

/// A worker whose lease expired and was taken over cannot commit: its
/// finish is `LeaseLost` and writes nothing; the new holder's finish commits
/// with its result row, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_is_fenced_by_the_lease() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let o = owner(&mut conn, "fencing").await;
    let id = create(&mut conn, &[task(&o, "fenced")]).await[0];

    let old = &claim_all(&mut conn, &["fenced"], "old-worker#1", LONG_LEASE_MS).await[0];
    assert_eq!(old.lease().token, 1);

    // The lease runs out (the worker stalled): even before the reaper runs,
    // the old holder can no longer commit.
    execute(
        &mut conn,
        &format!(
            "UPDATE processing_tasks SET lease_expires_at = NOW(3) - INTERVAL 1 SECOND WHERE id = {id}"
        ),
    )
    .await;
    let report =
        finish_tasks(&mut conn, vec![(old.lease(), noop_result(old))], 1000).await.unwrap();
    assert_eq!(report, [Finished::LeaseLost], "finish after the lease expired");
    assert_eq!(row(&mut conn, id).await.status(), TaskStatus::Processing, "nothing written");

    // Takeover: the reaper requeues it, another worker claims it.
    let reaped = reap_expired_leases(&mut conn).await.unwrap();
    assert_eq!(reaped.requeued, 1);
    let new = &claim_all(&mut conn, &["fenced"], "new-worker#1", LONG_LEASE_MS).await[0];
    assert_eq!(new.lease().token, 2, "the fencing token grew");

    // The old holder finishes late, with a valid-looking result: refused.
    let report =
        finish_tasks(&mut conn, vec![(old.lease(), noop_result(old))], 1000).await.unwrap();
    assert_eq!(report, [Finished::LeaseLost], "finish with the taken-over lease");
    assert_eq!(result_rows(&mut conn, id).await, 0, "the old lease wrote no result");
    let r = row(&mut conn, id).await;
    assert_eq!(r.status(), TaskStatus::Processing);
    assert_eq!(r.lease_owner.as_deref(), Some("new-worker#1"));

    // The new holder commits, and cannot commit twice.
    let report =
        finish_tasks(&mut conn, vec![(new.lease(), noop_result(new))], 1000).await.unwrap();
    assert_eq!(report, [Finished::Committed(TaskStatus::Completed)]);
    assert_eq!(result_rows(&mut conn, id).await, 1);
    let r = row(&mut conn, id).await;
    assert_eq!(r.status(), TaskStatus::Completed);
    assert_eq!((r.progress, r.step()), (100, step::COMPLETED));
    assert!(r.lease_expires_at.is_none() && r.completed_at.is_some());
    let report =
        finish_tasks(&mut conn, vec![(new.lease(), noop_result(new))], 1000).await.unwrap();
    assert_eq!(report, [Finished::LeaseLost], "a second finish of a completed task");
    assert_eq!(result_rows(&mut conn, id).await, 1, "still one result row");
}

/// One status-history row per change, written by the change's own function
/// in its transaction: creating, claiming, finishing, cancelling, retrying;
/// a finish that fails rolls its history back with everything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_history_has_one_row_per_change_in_the_changes_transaction() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let o = owner(&mut conn, "history").await;
    let ids = create(&mut conn, &[task(&o, "hist-done"), task(&o, "hist-broken")]).await;
    let claimed = claim_all(&mut conn, &["hist-done", "hist-broken"], "w#7", LONG_LEASE_MS).await;

    // A completion whose result row points at no task: the insert fails and
    // the whole finish, its history included, rolls back.
    let mut broken = noop_result(&claimed[1]);
    if let Outcome::Completed(c) = &mut broken {
        c.results[0].task_id = i64::MAX;
    }
    let error = finish_tasks(&mut conn, vec![(claimed[1].lease(), broken)], 1000).await;
    assert!(error.is_err(), "a result row for no task must fail the finish");
    assert_eq!(row(&mut conn, ids[1]).await.status(), TaskStatus::Processing, "rolled back");

    let report =
        finish_tasks(&mut conn, vec![(claimed[0].lease(), noop_result(&claimed[0]))], 1000)
            .await
            .unwrap();
    assert_eq!(report, [Finished::Committed(TaskStatus::Completed)]);
    // Cancel the running one, retry it, cancel it while pending.
    let ids_of_broken = vec!["hist-broken".to_string()];
    assert_eq!(cancel_tasks(&mut conn, &ids_of_broken).await.unwrap(), 1);
    assert_eq!(retry_tasks(&mut conn, &ids_of_broken, true).await.unwrap(), 1);
    assert_eq!(cancel_tasks(&mut conn, &ids_of_broken).await.unwrap(), 1);
    assert_eq!(cancel_tasks(&mut conn, &ids_of_broken).await.unwrap(), 0, "already cancelled");

    #[derive(QueryableByName, Debug, PartialEq)]
    struct Change {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::TinyInt>)]
        from_status: Option<i8>,
        #[diesel(sql_type = diesel::sql_types::TinyInt)]
        to_status: i8,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        attempt: i32,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        worker: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        reason: Option<String>,
    }
    let change =
        |from: Option<i8>, to: i8, attempt: i32, worker: Option<&str>, reason: &str| Change {
            from_status: from,
            to_status: to,
            attempt,
            worker: worker.map(str::to_string),
            reason: Some(reason.to_string()),
        };
    let history = |id: i64| {
        diesel::sql_query(format!(
            "SELECT from_status, to_status, attempt, worker, reason FROM task_status_history \
             WHERE task_id = {id} ORDER BY changed_at, id"
        ))
    };
    let done: Vec<Change> = history(ids[0]).load(&mut conn).await.unwrap();
    assert_eq!(
        done,
        [
            change(None, 0, 0, None, "created"),
            change(Some(0), 1, 1, Some("w#7"), step::STARTED),
            change(Some(1), 2, 1, Some("w#7"), step::COMPLETED),
        ]
    );
    let broken: Vec<Change> = history(ids[1]).load(&mut conn).await.unwrap();
    assert_eq!(
        broken,
        [
            change(None, 0, 0, None, "created"),
            change(Some(0), 1, 1, Some("w#7"), step::STARTED),
            change(Some(1), 4, 1, Some("w#7"), step::CANCELLED),
            change(Some(4), 0, 1, Some("w#7"), step::PENDING),
            change(Some(0), 4, 1, Some("w#7"), step::CANCELLED),
        ],
        "no row from the rolled-back finish, none from the cancel that changed nothing"
    );
}

/// The reaper: an expired lease goes back to pending with a retry counted,
/// one with no retries left fails (and so does its video), and a lease its
/// worker renewed in time is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaper_requeues_expired_fails_spent_and_keeps_renewed() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let o = owner(&mut conn, "reaper").await;
    let ids = create(
        &mut conn,
        &[
            task(&o, "reap-requeued"),
            NewTask {
                max_retries: 2,
                task_type: task_type::VIDEO_CLIP.into(),
                ..task(&o, "reap-spent")
            },
            task(&o, "reap-renewed"),
        ],
    )
    .await;
    let (requeued, spent, renewed) = (ids[0], ids[1], ids[2]);
    execute(&mut conn, &format!("UPDATE processing_tasks SET retry_count = 2 WHERE id = {spent}"))
        .await;

    // All three claimed with a 300 ms lease; only one is renewed.
    let claimed =
        claim_all(&mut conn, &["reap-requeued", "reap-spent", "reap-renewed"], "reaper-w#1", 300)
            .await;
    let first_expiry = row(&mut conn, renewed).await.lease_expires_at.expect("a lease");
    let held = renew_leases(&mut conn, &[renewed], "reaper-w", LONG_LEASE_MS).await.unwrap();
    assert_eq!(held, [renewed]);
    assert!(task_holds(&mut conn, renewed, "lease_expires_at > NOW(3) + INTERVAL 50 SECOND").await);

    // Wait (polling the database clock) until the 300 ms leases have ended.
    let mut latest = first_expiry;
    for id in [requeued, spent] {
        latest = latest.max(row(&mut conn, id).await.lease_expires_at.expect("a lease"));
    }
    wait_for_database_time(&mut conn, latest).await;

    let reaped = reap_expired_leases(&mut conn).await.unwrap();
    assert_eq!((reaped.requeued, reaped.failed), (1, 1));
    let mut changed = reaped.changed.clone();
    changed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        changed,
        [
            ("reap-requeued".to_string(), TaskStatus::Pending, step::LEASE_EXPIRED.to_string()),
            ("reap-spent".to_string(), TaskStatus::Failed, step::FAILED.to_string()),
        ]
    );

    let r = row(&mut conn, requeued).await;
    assert_eq!(
        (r.status(), r.retry_count, r.step()),
        (TaskStatus::Pending, 1, step::LEASE_EXPIRED)
    );
    assert!(r.queued_at.is_none() && r.lease_expires_at.is_none());
    assert!(r.error_message.as_deref().unwrap_or("").contains("reaper-w#1"), "{r:?}");

    let r = row(&mut conn, spent).await;
    assert_eq!((r.status(), r.retry_count), (TaskStatus::Failed, 2));
    assert!(r.completed_at.is_some() && r.lease_expires_at.is_none());
    assert!(r.error_message.as_deref().unwrap_or("").contains("stopped responding"), "{r:?}");
    let video_status: i8 =
        videos::table.find(o.video_id).select(videos::status).first(&mut conn).await.unwrap();
    assert_eq!(video_status, shared::videos::status::FAILED, "the failed video_clip task's video");

    let r = row(&mut conn, renewed).await;
    assert_eq!(r.status(), TaskStatus::Processing);
    assert_eq!(r.lease_owner.as_deref(), Some("reaper-w#1"));
    // The reaper's changes are in the history, once each, with its reasons.
    for (id, to, reason) in
        [(requeued, 0, "lease of reaper-w#1 expired"), (spent, 3, "stopped responding")]
    {
        let query = format!(
            "SELECT COUNT(*) AS n FROM task_status_history WHERE task_id = {id} \
             AND from_status = 1 AND to_status = {to} AND reason LIKE '%{reason}%'"
        );
        assert_eq!(count(&mut conn, &query).await, 1, "{query}");
    }
    let query = format!("SELECT COUNT(*) AS n FROM task_status_history WHERE task_id = {renewed}");
    assert_eq!(count(&mut conn, &query).await, 2, "created and claimed only");

    // The worker learns which leases it lost at its next heartbeat; the
    // requeued task is claimable again at once, with a new token.
    let held = renew_leases(&mut conn, &[requeued, spent, renewed], "reaper-w", LONG_LEASE_MS)
        .await
        .unwrap();
    assert_eq!(held, [renewed]);
    let again = &claim_all(&mut conn, &["reap-requeued"], "reaper-w#2", LONG_LEASE_MS).await[0];
    assert_eq!(again.attempts, claimed[0].attempts + 1);

    // Nothing left to reap.
    let reaped = reap_expired_leases(&mut conn).await.unwrap();
    assert!(reaped.changed.is_empty() && reaped.requeued == 0 && reaped.failed == 0);
}

/// Failures: a retryable one waits out a backoff in pending, a permanent
/// one fails with its reason, and a retryable one with no retries left
/// fails saying it gave up. One batch, reported in input order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_retry_with_backoff_or_fail() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let o = owner(&mut conn, "failures").await;
    let ids = create(
        &mut conn,
        &[
            task(&o, "transient"),
            task(&o, "permanent"),
            NewTask { max_retries: 2, ..task(&o, "spent") },
        ],
    )
    .await;
    let (transient, permanent, spent) = (ids[0], ids[1], ids[2]);
    execute(&mut conn, &format!("UPDATE processing_tasks SET retry_count = 2 WHERE id = {spent}"))
        .await;
    let claimed =
        claim_all(&mut conn, &["transient", "permanent", "spent"], "fail-w#1", LONG_LEASE_MS).await;

    let failed = |reason: &str, retryable| Outcome::Failed { reason: reason.into(), retryable };
    let batch = vec![
        (claimed[0].lease(), failed("network blip", true)),
        (claimed[1].lease(), failed("bad config", false)),
        (claimed[2].lease(), failed("network blip again", true)),
    ];
    // First retry's backoff from a 60 s base: between 30 and 60 s.
    let report = finish_tasks(&mut conn, batch, 60_000).await.unwrap();
    assert_eq!(
        report,
        [
            Finished::Requeued,
            Finished::Committed(TaskStatus::Failed),
            Finished::Committed(TaskStatus::Failed)
        ]
    );

    let r = row(&mut conn, transient).await;
    assert_eq!(
        (r.status(), r.retry_count, r.step()),
        (TaskStatus::Pending, 1, step::WAITING_TO_RETRY)
    );
    assert_eq!(r.error_message.as_deref(), Some("network blip"));
    assert!(r.queued_at.is_none() && r.lease_expires_at.is_none());
    assert!(
        task_holds(
            &mut conn,
            transient,
            "next_attempt_at > NOW(3) + INTERVAL 20 SECOND AND next_attempt_at <= NOW(3) + INTERVAL 60 SECOND"
        )
        .await,
        "next_attempt_at 30..60 s after the failure"
    );
    let early = claim_tasks(&mut conn, &["transient".into()], "fail-w#2", LONG_LEASE_MS).await;
    assert!(early.unwrap().is_empty(), "not claimable during its backoff");

    let r = row(&mut conn, permanent).await;
    assert_eq!((r.status(), r.retry_count, r.step()), (TaskStatus::Failed, 0, step::FAILED));
    assert_eq!(r.error_message.as_deref(), Some("bad config"));
    assert!(r.completed_at.is_some() && r.lease_expires_at.is_none());

    let r = row(&mut conn, spent).await;
    assert_eq!((r.status(), r.retry_count), (TaskStatus::Failed, 2));
    assert_eq!(r.error_message.as_deref(), Some("network blip again (gave up after 2 retries)"));
}

/// `backoff_millis`: exponential from the base, capped at an hour, jittered
/// within the upper half.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_is_exponential_capped_and_jittered() {
    const HOUR: u64 = 3_600_000;
    for retry in 1..=30u32 {
        let exp = (1000u64 << (retry - 1).min(20)).min(HOUR);
        for _ in 0..5 {
            let b = backoff_millis(retry, 1000);
            assert!(exp / 2 <= b && b <= exp, "retry {retry}: {b} not in [{}, {exp}]", exp / 2);
        }
        if retry <= 10 {
            assert_eq!(exp, 1000 << (retry - 1), "retries 1..10 are below the cap");
        }
    }
    assert!(backoff_millis(64, 1000) <= HOUR);
    assert!(backoff_millis(3, u64::MAX) <= HOUR, "no overflow with a huge base");

    let draws: BTreeSet<u64> = (0..20).map(|_| backoff_millis(3, 1000)).collect();
    assert!(draws.len() > 1, "20 draws all equal: no jitter ({draws:?})");
}

/// The scheduler's selection: due pending tasks by priority then age; once
/// marked queued they are not selected again, until `forget_queued`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_tasks_by_priority_until_queued() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let o = owner(&mut conn, "scheduler").await;
    let p = |priority, id: &str| NewTask { priority, ..task(&o, id) };
    let ids = create(
        &mut conn,
        &[
            p(9, "p9-a"),
            p(5, "p5-a"),
            p(1, "p1-a"),
            p(5, "p5-b"),
            p(1, "p1-b"),
            p(9, "p9-b"),
            p(1, "later"),
        ],
    )
    .await;
    // Not due: waiting out a backoff.
    execute(
        &mut conn,
        &format!(
            "UPDATE processing_tasks SET next_attempt_at = NOW(3) + INTERVAL 1 HOUR WHERE id = {}",
            ids[6]
        ),
    )
    .await;

    // As scheduler/src/fill.rs does: lock, (push to Redis), mark, in one transaction.
    async fn queue_due(conn: &mut PooledConnection<'_>, limit: usize) -> Vec<String> {
        conn.transaction(async move |conn| -> anyhow::Result<Vec<String>> {
            let due = lock_due_tasks(conn, DueSelection::ByPriority, limit).await?;
            mark_queued(conn, &due.iter().map(|t| t.id).collect::<Vec<_>>()).await?;
            Ok(due.into_iter().map(|t| t.task_id).collect())
        })
        .await
        .expect("queueing due tasks")
    }
    async fn selectable(conn: &mut PooledConnection<'_>) -> Vec<String> {
        let due = lock_due_tasks(conn, DueSelection::ByPriority, 100).await.unwrap();
        due.into_iter().map(|t| t.task_id).collect()
    }

    assert_eq!(selectable(&mut conn).await, ["p1-a", "p1-b", "p5-a", "p5-b", "p9-a", "p9-b"]);
    assert_eq!(queue_due(&mut conn, 2).await, ["p1-a", "p1-b"]);
    assert!(row(&mut conn, ids[2]).await.queued_at.is_some(), "p1-a marked queued");
    assert_eq!(queue_due(&mut conn, 100).await, ["p5-a", "p5-b", "p9-a", "p9-b"]);
    assert!(selectable(&mut conn).await.is_empty(), "every due task is queued");
    assert!(queue_due(&mut conn, 100).await.is_empty());

    // Redis lost its lists: forget, and the same tasks are selected again.
    assert_eq!(forget_queued(&mut conn).await.unwrap(), 6);
    assert_eq!(selectable(&mut conn).await, ["p1-a", "p1-b", "p5-a", "p5-b", "p9-a", "p9-b"]);
    assert!(row(&mut conn, ids[0]).await.queued_at.is_none());
}

/// The `monthly_videos` quota: refusal names the quota when completed + in
/// flight + new would exceed it; the first check in a new calendar period
/// resets the count, and records the period's start (no drift).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_refuses_over_the_limit_and_resets_after_the_period() {
    use shared::quotas::{check_monthly_videos, set_monthly_videos};
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let o = owner(&mut conn, "quota-user").await;

    // No quota row: no limit.
    check_monthly_videos(&mut conn, o.user_id, "quota-user", 1000)
        .await
        .expect("no quota, no limit");

    let err = set_monthly_videos(&mut conn, o.user_id, 3, "yearly").await.unwrap_err();
    assert!(shared::bad_input_reason(&err).is_some(), "{err:#}");
    set_monthly_videos(&mut conn, o.user_id, 3, "monthly").await.unwrap();

    // Two video tasks in flight (noop tasks do not count).
    let video = |id: &str| NewTask { task_type: task_type::VIDEO_CLIP.into(), ..task(&o, id) };
    create(&mut conn, &[video("v1"), video("v2"), task(&o, "not-a-video")]).await;
    check_monthly_videos(&mut conn, o.user_id, "quota-user", 1).await.expect("0 + 2 + 1 <= 3");
    let err = check_monthly_videos(&mut conn, o.user_id, "quota-user", 2).await.unwrap_err();
    let reason = shared::bad_input_reason(&err).expect("a refusal is bad input").0.clone();
    assert!(reason.contains("quota monthly_videos"), "{reason}");
    assert!(reason.contains("0 used + 2 in progress + 2 new > 3"), "{reason}");

    // Completed videos this period count too.
    execute(&mut conn, "UPDATE user_quotas SET used_quota = 1").await;
    let err = check_monthly_videos(&mut conn, o.user_id, "quota-user", 1).await.unwrap_err();
    assert!(shared::bad_input_reason(&err).is_some_and(|r| r.0.contains("1 used")), "{err:#}");
    assert_eq!(used_quota(&mut conn, o.user_id).await, 1, "no reset within the period");

    // Reset in the last second of last month: this month is a new period.
    let last_month = "CAST(CURDATE() - INTERVAL (DAYOFMONTH(CURDATE()) - 1) DAY AS DATETIME)";
    execute(
        &mut conn,
        &format!(
            "UPDATE user_quotas SET last_reset_at = {last_month} - INTERVAL 1 SECOND, used_quota = 5"
        ),
    )
    .await;
    check_monthly_videos(&mut conn, o.user_id, "quota-user", 1)
        .await
        .expect("reset: 0 + 2 + 1 <= 3");
    assert_eq!(used_quota(&mut conn, o.user_id).await, 0, "used_quota reset");
    let at_start =
        format!("SELECT COUNT(*) AS n FROM user_quotas WHERE last_reset_at = {last_month}");
    assert_eq!(count(&mut conn, &at_start).await, 1, "last_reset_at is the month's first second");

    // Used again within the month: no reset, even though the last one was
    // (possibly) more than a day ago.
    execute(&mut conn, "UPDATE user_quotas SET used_quota = 1").await;
    check_monthly_videos(&mut conn, o.user_id, "quota-user", 1).await.unwrap_err();
    assert_eq!(used_quota(&mut conn, o.user_id).await, 1, "same period, no reset");

    // Daily and weekly periods start at midnight and on Monday.
    for (period, start) in [
        ("daily", "CAST(CURDATE() AS DATETIME)"),
        ("weekly", "CAST(CURDATE() - INTERVAL WEEKDAY(CURDATE()) DAY AS DATETIME)"),
    ] {
        set_monthly_videos(&mut conn, o.user_id, 3, period).await.unwrap();
        execute(
            &mut conn,
            &format!("UPDATE user_quotas SET last_reset_at = {start} - INTERVAL 1 SECOND"),
        )
        .await;
        check_monthly_videos(&mut conn, o.user_id, "quota-user", 1).await.expect(period);
        let sql = format!("SELECT COUNT(*) AS n FROM user_quotas WHERE last_reset_at = {start}");
        assert_eq!(count(&mut conn, &sql).await, 1, "{period}: reset to the period's start");
    }
}

/// Operators: cancel takes a pending and a running task out (the running
/// one's lease is gone: its heartbeat and its finish say so); retry makes
/// them pending again with a fresh retry budget, and the token keeps growing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_retry() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let o = owner(&mut conn, "operator").await;
    let ids = create(&mut conn, &[task(&o, "op-pending"), task(&o, "op-running")]).await;
    let (pending, running) = (ids[0], ids[1]);
    let claimed = &claim_all(&mut conn, &["op-running"], "op-w#1", LONG_LEASE_MS).await[0];
    execute(
        &mut conn,
        &format!("UPDATE processing_tasks SET retry_count = 2 WHERE id = {running}"),
    )
    .await;

    let both: Vec<String> = vec!["op-pending".into(), "op-running".into()];
    let mut with_unknown = both.clone();
    with_unknown.push("no-such-task".into());
    assert_eq!(cancel_tasks(&mut conn, &with_unknown).await.unwrap(), 2);
    for id in [pending, running] {
        let r = row(&mut conn, id).await;
        assert_eq!(
            (r.status(), r.step()),
            (TaskStatus::Cancelled, step::CANCELLED),
            "{}",
            r.task_id
        );
        assert!(r.lease_expires_at.is_none() && r.completed_at.is_some());
    }
    let held = renew_leases(&mut conn, &[running], "op-w", LONG_LEASE_MS).await.unwrap();
    assert!(held.is_empty(), "a cancelled task's lease is not renewed: {held:?}");
    let report =
        finish_tasks(&mut conn, vec![(claimed.lease(), noop_result(claimed))], 1000).await.unwrap();
    assert_eq!(report, [Finished::LeaseLost]);
    assert_eq!(result_rows(&mut conn, running).await, 0);
    assert!(claim_tasks(&mut conn, &both, "op-w#2", LONG_LEASE_MS).await.unwrap().is_empty());
    assert_eq!(cancel_tasks(&mut conn, &both).await.unwrap(), 0, "already cancelled");

    assert_eq!(retry_tasks(&mut conn, &both, false).await.unwrap(), 2);
    for id in [pending, running] {
        let r = row(&mut conn, id).await;
        assert_eq!((r.status(), r.retry_count, r.step()), (TaskStatus::Pending, 0, step::PENDING));
        assert!(r.error_message.is_none() && r.completed_at.is_none() && r.queued_at.is_none());
    }
    assert_eq!(
        retry_tasks(&mut conn, &both, false).await.unwrap(),
        0,
        "pending tasks are not retried"
    );

    let again = claim_all(&mut conn, &["op-pending", "op-running"], "op-w#3", LONG_LEASE_MS).await;
    assert_eq!((again[0].attempts, again[1].attempts), (1, 2), "tokens keep growing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_video_task_puts_its_video_back_to_uploaded() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let o = owner(&mut conn, "shop-cancel").await;
    let running = NewTask { task_type: task_type::VIDEO_CLIP.into(), ..task(&o, "vid-running") };
    create(&mut conn, &[running]).await;
    claim_all(&mut conn, &["vid-running"], "vid-w#1", LONG_LEASE_MS).await;
    shared::videos::mark_processing(&mut conn, o.video_id).await.unwrap();
    assert_eq!(cancel_tasks(&mut conn, &["vid-running".to_string()]).await.unwrap(), 1);
    let video_status: i8 =
        videos::table.find(o.video_id).select(videos::status).first(&mut conn).await.unwrap();
    assert_eq!(video_status, shared::videos::status::UPLOADED, "a cancelled task's video");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_renew_only_unexpired_leases_of_exactly_this_worker() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let o = owner(&mut conn, "renewals").await;
    let ids =
        create(&mut conn, &[task(&o, "r-mine"), task(&o, "r-expired"), task(&o, "r-other")]).await;
    claim_all(&mut conn, &["r-mine", "r-expired"], "host_a:1:ab#1", LONG_LEASE_MS).await;
    // Another worker whose id matches `host_a` only if `_` were a wildcard.
    claim_all(&mut conn, &["r-other"], "hostXa:1:ab#1", LONG_LEASE_MS).await;
    execute(
        &mut conn,
        &format!(
            "UPDATE processing_tasks SET lease_expires_at = NOW(3) - INTERVAL 1 SECOND WHERE id = {}",
            ids[1]
        ),
    )
    .await;
    let held = renew_leases(&mut conn, &ids, "host_a:1:ab", LONG_LEASE_MS).await.unwrap();
    assert_eq!(held, vec![ids[0]], "only the unexpired lease of this very worker is renewed");
}

/// A retried video task is in flight again: it must fit the user's quota
/// (nothing is retried when it does not), unless forced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_respects_the_quota_unless_forced() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let o = owner(&mut conn, "shop-retry").await;
    let video = |id: &str| NewTask { task_type: task_type::VIDEO_CLIP.into(), ..task(&o, id) };
    create(&mut conn, &[video("rq-1"), video("rq-2")]).await;
    let both = ["rq-1".to_string(), "rq-2".to_string()];
    assert_eq!(cancel_tasks(&mut conn, &both).await.unwrap(), 2);
    shared::quotas::set_monthly_videos(&mut conn, o.user_id, 1, "monthly").await.unwrap();

    let err = retry_tasks(&mut conn, &both, false).await.unwrap_err();
    let reason = shared::bad_input_reason(&err).expect("bad input").0.clone();
    assert!(reason.contains("quota monthly_videos") && reason.contains("2 new > 1"), "{reason}");
    for id in ["rq-1", "rq-2"] {
        let status: i8 =
            pt::table.filter(pt::task_id.eq(id)).select(pt::status).first(&mut conn).await.unwrap();
        assert_eq!(status, TaskStatus::Cancelled.code(), "{id}: nothing retried");
    }
    assert_eq!(retry_tasks(&mut conn, &both[..1], false).await.unwrap(), 1, "one fits");
    assert_eq!(retry_tasks(&mut conn, &both[1..], true).await.unwrap(), 1, "forced");
}

/// A backfill's quota check across batches ([`shared::quotas::InFlightTally`]):
/// each batch counts its own earlier tasks and those others created in
/// between, and a failed task retried during the run (which keeps its old
/// id, so the incremental count misses it) is caught by the full recount a
/// batch makes before the quota would cut it. The quota ends exactly full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_batches_share_one_quota_tally() {
    use shared::quotas::{set_monthly_videos, InFlightTally};
    use shared::tasks::insert_tasks_for_idle_videos;
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let o = owner(&mut conn, "tally-user").await;
    let user = o.user_id;
    execute(
        &mut conn,
        &format!(
            "INSERT INTO videos (user_id, filename, original_filename, file_path, file_size, status) \
             SELECT {user}, CONCAT('t', seq, '.mp4'), 't.mp4', CONCAT('uploads/t', seq, '.mp4'), 1, 1 \
             FROM seq_1_to_10"
        ),
    )
    .await;
    let video_ids: Vec<i64> = videos::table
        .filter(videos::user_id.eq(user))
        .filter(videos::id.ne(o.video_id))
        .order(videos::id)
        .select(videos::id)
        .load(&mut conn)
        .await
        .unwrap();
    let video_task = |n: usize| NewTask {
        task_id: format!("tally-{n}"),
        video_id: video_ids[n],
        task_type: task_type::VIDEO_CLIP.to_string(),
        ..task(&o, "unused")
    };
    // A failed task from before the run, for video 9.
    create(&mut conn, &[video_task(9)]).await;
    execute(&mut conn, "UPDATE processing_tasks SET status = 3 WHERE task_id = 'tally-9'").await;
    set_monthly_videos(&mut conn, user, 6, "monthly").await.unwrap();

    let mut tally = InFlightTally::default();
    let batch =
        async |conn: &mut PooledConnection<'_>, tally: &mut InFlightTally, n: [usize; 2]| {
            let candidates = n.iter().map(|&i| video_task(i)).collect();
            insert_tasks_for_idle_videos(conn, candidates, false, usize::MAX, true, true, tally)
                .await
                .expect("backfill batch")
        };
    // Batch 1: nothing in flight, both fit (2 in flight).
    assert_eq!(batch(&mut conn, &mut tally, [0, 1]).await.created.len(), 2);
    // Between batches: another program's task (3), and the retry (4).
    create(&mut conn, &[video_task(8)]).await;
    assert_eq!(retry_tasks(&mut conn, &["tally-9".to_string()], false).await.unwrap(), 1);
    // Batch 2: the tally sees the other program's task but not the retried
    // one (room 3 by its count, 2 in truth): both fit either way.
    let second = batch(&mut conn, &mut tally, [2, 3]).await;
    assert_eq!((second.created.len(), second.skipped_quota), (2, 0));
    // Batch 3: the quota is full; without the retried task counted, one
    // more would have fit.
    let third = batch(&mut conn, &mut tally, [4, 5]).await;
    assert_eq!((third.created.len(), third.skipped_quota), (0, 2), "{third:?}");
    let in_flight = count(
        &mut conn,
        &format!(
            "SELECT COUNT(*) AS n FROM processing_tasks WHERE user_id = {user} AND status <= 1"
        ),
    )
    .await;
    assert_eq!(in_flight, 6, "the quota is exactly full");
}

/// On an idle system (one pending row, when MariaDB's optimizer would pick
/// any index) a worker's claim that arrives while the scheduler's queueing
/// transaction holds the row waits for it instead of deadlocking with it:
/// both lock the row before any secondary index entry. The deadlock's
/// victim was the scheduler, whose retry paused dispatch for 110-190 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_racing_the_schedulers_queueing_waits_instead_of_deadlocking() {
    let db = TestDb::new().await;
    let mut scheduler = db.conn().await;
    let mut worker = db.conn().await;
    let mut observer = db.conn().await;
    let o = owner(&mut scheduler, "race-user").await;
    let ids = create(&mut scheduler, &[task(&o, "race-1")]).await;

    // The scheduler's queueing transaction (scheduler/src/fill.rs), by hand
    // so that the claim can wait on it.
    execute(&mut scheduler, "BEGIN").await;
    let due = lock_due_tasks(&mut scheduler, DueSelection::ByPriority, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    // The worker popped the id (pushed inside that transaction) and claims.
    let popped = ["race-1".to_string()];
    let claim = claim_tasks(&mut worker, &popped, "race-w#1", LONG_LEASE_MS);
    tokio::pin!(claim);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::select! {
            done = &mut claim => panic!("the claim did not wait for the row: {done:?}"),
            _ = tokio::time::sleep(Duration::from_millis(2)) => {}
        }
        let waiting = count(
            &mut observer,
            "SELECT COUNT(*) AS n FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'",
        )
        .await;
        if waiting > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the claim never waited on the row");
    }
    mark_queued(&mut scheduler, &ids).await.expect("the scheduler is not a deadlock victim");
    execute(&mut scheduler, "COMMIT").await;
    let claimed = claim.await.expect("the claim is not a deadlock victim");
    assert_eq!(claimed.len(), 1, "the claim won the row after the commit");
    let r = row(&mut observer, ids[0]).await;
    assert_eq!(r.status(), TaskStatus::Processing);
    assert!(r.queued_at.is_some(), "queued_at kept: the scheduler's commit came first");
}
