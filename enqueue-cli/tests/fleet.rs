//! A fleet on several "machines": 2 schedulers and 6 workers as separate
//! processes, each with its own scratch directory, on S3 storage (moto),
//! Redis behind Sentinel and a MariaDB primary with a replica. 10,000 no-op
//! and 8 video tasks; one of each kind of component is killed at set points
//! (a worker, a scheduler, the Redis master, the replica). Every task must
//! complete exactly once; the time each recovery took is printed.
//! The slowest test group (whisper on 8 videos beside 10,000 tasks).

mod support;

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use support::moto::Moto;
use support::replica::ReplicatedMariaDb;
use support::sentinel::SentinelRedis;
use support::TestEnv;

const NOOP: i64 = 10_000;
const VIDEOS: &[&str] = &[
    "en-desk-lamp",
    "en-jfk",
    "en-water-bottle",
    "zh-airfryer",
    "zh-earbuds",
    "zh-en-real",
    "zh-shampoo",
    "zh-sneakers",
];
const WORKERS: usize = 6;
const CONCURRENCY: usize = 3;
const LEASE: &str = "5";

/// Starts `bin` as one "machine": its own scratch directory as working
/// directory and TMPDIR, its log in there.
fn spawn_machine(env: &TestEnv, bin: &str, name: &str, args: &[&str]) -> Child {
    let scratch: PathBuf = env.dir.join("machines").join(name);
    std::fs::create_dir_all(&scratch).unwrap();
    let log = std::fs::File::create(scratch.join(format!("{bin}.log"))).unwrap();
    env.command(bin)
        .args(args)
        .current_dir(&scratch)
        .env("TMPDIR", &scratch)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawning")
}

/// The database's clock now, for comparing with its timestamps.
fn db_now(env: &TestEnv) -> String {
    env.sql("SELECT NOW(3)")[0][0].clone()
}

#[test]
fn a_fleet_survives_losing_a_worker_a_scheduler_the_redis_master_and_the_replica() {
    let dir = support::project_root().join(format!(".local/tests/fleet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let moto = Moto::start();
    let (storage_url, _) = moto.new_bucket("fleet");
    let mut redis = SentinelRedis::start(&dir);
    let mut db = ReplicatedMariaDb::start(&dir);
    let mut env =
        TestEnv::on_server_with_redis(&db.primary.server_url(), &redis.url(), redis.master_port);
    db.wait_until_caught_up();
    env.set_env("DATABASE_REPLICA_URL", &format!("{}/{}", db.replica.server_url(), env.database));
    env.set_env("STORAGE_URL", &storage_url);
    for (name, value) in moto.settings() {
        env.set_env(name, &value);
    }

    assert!(env.enqueue(&["user", "add", "shop", "--email", "shop@example.com"]).status.success());
    for video in VIDEOS {
        let file = support::project_root().join(format!("fixtures/videos/{video}.mp4"));
        let out = env.enqueue(&["video", file.to_str().unwrap(), "--user", "shop"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    env.noop(NOOP as u32, &["--sleep-ms", "20"]);
    let total = NOOP + VIDEOS.len() as i64;

    let scheduler_args = ["--exit-when-idle", "--lease-seconds", LEASE];
    let concurrency = CONCURRENCY.to_string();
    let worker_args = [
        "--exit-when-idle",
        "--lease-seconds",
        LEASE,
        "--concurrency",
        &concurrency,
        "--whisper-threads",
        "1",
    ];
    let mut schedulers: Vec<Child> = (0..2)
        .map(|i| spawn_machine(&env, "scheduler", &format!("scheduler-{i}"), &scheduler_args))
        .collect();
    let mut workers: Vec<Child> = (0..WORKERS)
        .map(|i| spawn_machine(&env, "worker", &format!("worker-{i}"), &worker_args))
        .collect();
    let started = Instant::now();
    let completed = || env.count("SELECT COUNT(*) FROM processing_tasks WHERE status = 2");
    let wait_for_completed = |n: i64| {
        env.wait_until(Duration::from_secs(300), &format!("{n} completed"), || completed() >= n)
    };
    let mut report = Vec::new();

    // 1. A worker, SIGKILLed: its tasks are taken over after the lease.
    wait_for_completed(1000);
    let pid = workers[0].id();
    let _ = workers[0].kill();
    let _ = workers[0].wait();
    let killed = Instant::now();
    let orphaned = format!(
        "SELECT COUNT(*) FROM processing_tasks WHERE status = 1 AND lease_owner LIKE '%:{pid}:%'"
    );
    env.wait_until(Duration::from_secs(60), "the dead worker's tasks taken over", || {
        env.count(&orphaned) == 0
    });
    report.push(format!("worker kill -9 -> its tasks running elsewhere: {:.1?}", killed.elapsed()));

    // 2. A scheduler, SIGKILLed: the other one keeps filling the queues.
    wait_for_completed(3000);
    let at = db_now(&env);
    let _ = schedulers[0].kill();
    let _ = schedulers[0].wait();
    let killed = Instant::now();
    env.wait_until(Duration::from_secs(60), "a task queued by the other scheduler", || {
        env.count(&format!("SELECT COUNT(*) FROM processing_tasks WHERE queued_at > '{at}'")) > 0
    });
    report.push(format!("scheduler kill -9 -> next task queued: {:.1?}", killed.elapsed()));

    // 3. The Redis master, SIGKILLed: a sentinel promotes the replica.
    wait_for_completed(5000);
    let row = env.sql("SELECT NOW(3), (SELECT COUNT(*) FROM processing_tasks WHERE status = 1)");
    let (redis_killed_at, running) = (row[0][0].clone(), row[0][1].parse::<i64>().unwrap());
    redis.kill_master();
    env.wait_until(Duration::from_secs(60), "the replica promoted", || {
        redis.current_master_port() == Some(redis.replica_port)
    });

    // 4. The database replica, stopped: listings fall back to the primary.
    wait_for_completed(7000);
    db.replica.stop();
    let killed = Instant::now();
    let out = env.enqueue(&["tasks", "--limit", "1", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    report.push(format!(
        "replica stopped -> a listing answered by the primary: {:.1?}",
        killed.elapsed()
    ));

    for (i, child) in schedulers.iter_mut().chain(workers.iter_mut()).enumerate().skip(1) {
        if i == 2 {
            continue; // worker 0, killed above
        }
        let status = env.wait_exit(child, Duration::from_secs(600), "a fleet process");
        assert!(status.success(), "process {i} exited with {status}");
    }
    let in_hand = running + ((WORKERS - 1) * CONCURRENCY) as i64;
    let redis_recovery_ms = env.count(&format!(
        "SELECT TIMESTAMPDIFF(MICROSECOND, '{redis_killed_at}', changed_at) DIV 1000 \
         FROM task_status_history WHERE to_status = 2 AND changed_at > '{redis_killed_at}' \
         ORDER BY changed_at, id LIMIT 1 OFFSET {in_hand}"
    ));
    report.push(format!(
        "Redis master kill -9 -> first task completed through the promoted replica: {redis_recovery_ms} ms"
    ));

    // Exactly once, everything.
    assert_eq!(completed(), total, "completed");
    assert_eq!(
        env.count("SELECT COUNT(*) FROM processing_tasks WHERE task_type = 'noop' AND status = 2"),
        NOOP
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM processing_results r JOIN processing_tasks t ON t.id = r.task_id WHERE t.task_type = 'noop'"),
        NOOP,
        "one result per no-op task"
    );
    for row in env.sql("SELECT id FROM processing_tasks WHERE task_type = 'video_clip'") {
        let id = &row[0];
        for kind in ["transcript", "analysis"] {
            assert_eq!(env.count(&format!("SELECT COUNT(*) FROM processing_results WHERE task_id = {id} AND result_type = '{kind}'")), 1, "task {id}: {kind}");
        }
        let segments =
            env.count(&format!("SELECT COUNT(*) FROM video_segments WHERE task_id = {id}"));
        assert_eq!(env.count(&format!("SELECT COUNT(*) FROM processing_results WHERE task_id = {id} AND result_type = 'segment'")), segments);
        assert_eq!(env.count(&format!("SELECT COUNT(DISTINCT selling_point_type, start_time) FROM video_segments WHERE task_id = {id}")), segments, "duplicate segments");
    }
    // en-jfk sells nothing; the product videos do.
    let with_segments = env.count("SELECT COUNT(DISTINCT task_id) FROM video_segments");
    assert!(with_segments >= 6, "only {with_segments} videos got segments");
    // Every clip the rows name is in S3.
    let clips = moto.storage(&storage_url);
    for row in env.sql("SELECT file_path FROM video_segments") {
        let found = support::moto::block_on(clips.exists(&row[0])).unwrap();
        assert!(found, "{} is not in S3", row[0]);
    }
    eprintln!("fleet: {total} tasks, all completed once, in {:.1?}", started.elapsed());
    for line in &report {
        eprintln!("fleet: {line}");
    }
    drop(env);
    drop(db);
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}
