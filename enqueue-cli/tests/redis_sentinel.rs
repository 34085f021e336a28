//! Redis Sentinel (`REDIS_URL=redis-sentinel://...`): the scheduler and the
//! workers follow a failover without a restart, and the database being the
//! truth covers what the dead master acknowledged but never replicated.
//! A test group of its own (slow: a failover takes seconds).

mod support;

use std::process::Child;
use std::time::Duration;
use support::sentinel::SentinelRedis;
use support::TestEnv;

const TOTAL: i64 = 3000;
const WORKERS: usize = 2;
const CONCURRENCY: usize = 4;

#[test]
fn a_master_killed_mid_run_loses_no_task_and_repeats_none() {
    let dir = support::project_root().join(format!(".local/tests/sentinel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut redis = SentinelRedis::start(&dir);
    let env = TestEnv::with_redis(&redis.url(), redis.master_port);
    env.noop(TOTAL as u32, &["--sleep-ms", "20"]);
    let mut scheduler = env.spawn("scheduler", &["--exit-when-idle"], "scheduler");
    let concurrency = CONCURRENCY.to_string();
    let mut workers: Vec<Child> = (0..WORKERS)
        .map(|i| {
            env.spawn(
                "worker",
                &["--exit-when-idle", "--concurrency", &concurrency],
                &format!("worker{i}"),
            )
        })
        .collect();
    let completed = || env.count("SELECT COUNT(*) FROM processing_tasks WHERE status = 2");
    env.wait_until(Duration::from_secs(60), "some progress", || completed() >= 600);

    // The database's clock and the tasks in the workers' hands at the kill.
    let row = env.sql("SELECT NOW(3), (SELECT COUNT(*) FROM processing_tasks WHERE status = 1)");
    let killed_at = row[0][0].clone();
    let running: i64 = row[0][1].parse().unwrap();
    redis.kill_master();
    env.wait_until(Duration::from_secs(60), "the sentinels to promote the replica", || {
        redis.current_master_port() == Some(redis.replica_port)
    });

    assert!(env.wait_exit(&mut scheduler, Duration::from_secs(180), "scheduler").success());
    for (i, worker) in workers.iter_mut().enumerate() {
        assert!(env.wait_exit(worker, Duration::from_secs(180), &format!("worker{i}")).success());
    }
    assert_eq!(completed(), TOTAL, "completed");
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_results"), TOTAL, "result rows");
    assert_eq!(
        env.count("SELECT COUNT(DISTINCT task_id) FROM processing_results"),
        TOTAL,
        "one result per task"
    );

    // The first completion that needed the new master: past every task that
    // was running, or popped and about to be claimed, when the master died.
    let in_hand = running + (WORKERS * CONCURRENCY) as i64;
    let recovery_ms = env.count(&format!(
        "SELECT TIMESTAMPDIFF(MICROSECOND, '{killed_at}', changed_at) DIV 1000 \
         FROM task_status_history WHERE to_status = 2 AND changed_at > '{killed_at}' \
         ORDER BY changed_at, id LIMIT 1 OFFSET {in_hand}"
    ));
    eprintln!(
        "sentinel failover: kill -9 of the master -> first task completed through the promoted replica: {recovery_ms} ms"
    );
    assert!(recovery_ms < 30_000, "recovery took {recovery_ms} ms");

    // The promoted replica has another replication history: the scheduler
    // pushed every pending task again rather than trust its lists.
    let log = std::fs::read_to_string(env.dir.join("scheduler.log")).unwrap();
    assert!(log.contains("a replica took over"), "no rebuild after the failover:\n{log}");
    drop(env);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flushall_on_the_master_behind_sentinel_loses_no_task() {
    let dir =
        support::project_root().join(format!(".local/tests/sentinel-flush-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let redis = SentinelRedis::start(&dir);
    let env = TestEnv::with_redis(&redis.url(), redis.master_port);
    env.noop(400, &["--sleep-ms", "20"]);
    let mut scheduler =
        env.spawn("scheduler", &["--exit-when-idle", "--min-queued", "100"], "scheduler");
    let mut worker = env.spawn("worker", &["--exit-when-idle", "--concurrency", "4"], "worker");
    env.wait_until(Duration::from_secs(60), "some progress", || {
        env.count("SELECT COUNT(*) FROM processing_tasks WHERE status = 2") >= 100
    });
    assert_eq!(env.redis(&["FLUSHALL"]).trim(), "OK");
    assert!(env.wait_exit(&mut scheduler, Duration::from_secs(120), "scheduler").success());
    assert!(env.wait_exit(&mut worker, Duration::from_secs(120), "worker").success());
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_tasks WHERE status = 2"), 400);
    assert_eq!(env.count("SELECT COUNT(DISTINCT task_id) FROM processing_results"), 400);
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_results"), 400);
    drop(env);
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}
