//! The queue path end to end with the real scheduler and workers.

mod support;

use std::time::Duration;
use support::TestEnv;

#[test]
fn two_hundred_noop_tasks_one_scheduler_two_workers() {
    let env = TestEnv::new();
    let ids = env.noop(200, &["--sleep-ms", "5"]);
    assert_eq!(ids.len(), 200);
    let mut scheduler = env.spawn("scheduler", &["--exit-when-idle"], "scheduler");
    let mut w1 = env.spawn("worker", &["--exit-when-idle", "--concurrency", "8"], "worker1");
    let mut w2 = env.spawn("worker", &["--exit-when-idle", "--concurrency", "8"], "worker2");
    for (child, name) in
        [(&mut scheduler, "scheduler"), (&mut w1, "worker 1"), (&mut w2, "worker 2")]
    {
        let status = env.wait_exit(child, Duration::from_secs(60), name);
        assert!(status.success(), "{name} exited with {status}");
    }
    assert_eq!(
        env.count("SELECT COUNT(*) FROM processing_tasks WHERE status = 2"),
        200,
        "completed"
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_results"), 200, "result rows");
    assert_eq!(
        env.count("SELECT COUNT(DISTINCT task_id) FROM processing_results"),
        200,
        "one result per task"
    );
    assert_eq!(
        env.count(
            "SELECT COUNT(*) FROM processing_tasks WHERE queued_at IS NOT NULL AND status = 0"
        ),
        0,
        "left queued"
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM processing_tasks WHERE attempts <> 1"),
        0,
        "every task ran once"
    );
    for list in ["queue:high_priority", "queue:video_processing"] {
        assert_eq!(env.redis(&["LLEN", list]).trim(), "0", "{list} not empty");
    }
    // Both workers took part.
    let owners = env
        .count("SELECT COUNT(DISTINCT SUBSTRING_INDEX(lease_owner, '#', 1)) FROM processing_tasks");
    assert_eq!(owners, 2, "tasks spread over both workers");
    for id in ids.iter().step_by(20) {
        let key = format!("task:status:{id}");
        let cached: serde_json::Value =
            serde_json::from_str(env.redis(&["GET", &key]).trim()).unwrap();
        assert_eq!(cached["status"], 2, "{key}");
        assert_eq!(cached["progress"], 100, "{key}");
        let ttl: i64 = env.redis(&["TTL", &key]).trim().parse().unwrap();
        assert!(ttl > 3500 && ttl <= 3600, "{key} ttl {ttl}");
    }
}

#[test]
fn high_priority_tasks_all_start_first_and_each_list_is_fifo() {
    let env = TestEnv::new();
    // Normal-priority tasks first, so they are older than the high ones.
    let normal = env.noop(30, &["--priority", "7"]);
    let high = env.noop(30, &["--priority", "2"]);
    // Let the scheduler fill both lists, then stop it.
    let mut scheduler = env.spawn("scheduler", &[], "scheduler");
    env.wait_until(Duration::from_secs(20), "both lists filled", || {
        env.redis(&["LLEN", "queue:high_priority"]).trim() == "30"
            && env.redis(&["LLEN", "queue:video_processing"]).trim() == "30"
    });
    scheduler.kill().unwrap();
    scheduler.wait().unwrap();
    // One worker, one task at a time: completion order is start order.
    let mut worker = env.spawn("worker", &["--exit-when-idle", "--concurrency", "1"], "worker");
    assert!(env.wait_exit(&mut worker, Duration::from_secs(60), "worker").success());
    let order: Vec<String> = env
        .sql("SELECT t.task_id FROM processing_results r JOIN processing_tasks t ON t.id = r.task_id ORDER BY r.id")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    let expected: Vec<String> = high.iter().chain(normal.iter()).cloned().collect();
    assert_eq!(order, expected, "high priority first, FIFO within each list");
}

#[test]
fn a_backlog_filled_two_batches_at_a_time_reaches_redis_in_database_order() {
    let env = TestEnv::new();
    // More than two of the scheduler's 1,000-row batches, all of one
    // priority: each tick locks a batch, then a second one on another
    // connection while the first is pushed.
    let ids = env.noop(4500, &["--priority", "7"]);
    let mut scheduler = env.spawn("scheduler", &["--min-queued", "10000"], "scheduler");
    env.wait_until(Duration::from_secs(30), "every task queued", || {
        env.count("SELECT COUNT(*) FROM processing_tasks WHERE queued_at IS NOT NULL") == 4500
    });
    scheduler.kill().unwrap();
    scheduler.wait().unwrap();
    let listed: Vec<String> = env
        .redis(&["LRANGE", "queue:video_processing", "0", "-1"])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(listed.len(), 4500, "each task pushed once");
    assert!(listed == ids, "the list is not in creation order");
}

#[test]
fn duplicate_entries_for_running_or_finished_tasks_are_dropped() {
    let env = TestEnv::new();
    let ids = env.noop(5, &[]);
    let mut scheduler = env.spawn("scheduler", &["--exit-when-idle"], "scheduler");
    let mut worker = env.spawn("worker", &["--exit-when-idle"], "worker");
    assert!(env.wait_exit(&mut scheduler, Duration::from_secs(30), "scheduler").success());
    assert!(env.wait_exit(&mut worker, Duration::from_secs(30), "worker").success());
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_results"), 5);

    // A task "running" on another worker, with a valid lease.
    let running = env.noop(1, &[]).remove(0);
    env.sql(&format!(
        "UPDATE processing_tasks SET status = 1, lease_owner = 'elsewhere#0', attempts = 1, \
         lease_expires_at = NOW(3) + INTERVAL 1 HOUR, queued_at = NOW(3) WHERE task_id = '{running}'"
    ));
    let before = env.sql("SELECT task_id, status, attempts, lease_owner, updated_at FROM processing_tasks ORDER BY id");
    // Push duplicates of finished tasks and of the running one.
    let mut push = vec!["RPUSH", "queue:high_priority"];
    push.extend(ids.iter().map(String::as_str));
    push.push(running.as_str());
    env.redis(&push);
    env.redis(&["RPUSH", "queue:video_processing", ids[0].as_str(), running.as_str()]);
    // A real task behind the duplicates: once it is done, the worker has
    // popped and judged every entry before it (one worker, FIFO lists).
    let sentinel = env.noop(1, &[]).remove(0);
    env.redis(&["RPUSH", "queue:video_processing", sentinel.as_str()]);

    let mut worker = env.spawn("worker", &[], "worker2");
    env.wait_until(Duration::from_secs(20), "the task behind the duplicates done", || {
        env.count(&format!(
            "SELECT COUNT(*) FROM processing_tasks WHERE task_id = '{sentinel}' AND status = 2"
        )) == 1
    });
    worker.kill().unwrap();
    worker.wait().unwrap();
    let after = env.sql(&format!("SELECT task_id, status, attempts, lease_owner, updated_at FROM processing_tasks WHERE task_id != '{sentinel}' ORDER BY id"));
    assert_eq!(before, after, "duplicate entries changed task rows");
    assert_eq!(
        env.count("SELECT COUNT(*) FROM processing_results"),
        6,
        "duplicate entries wrote results (5 before, and the task behind them)"
    );
}

#[test]
fn failing_tasks_retry_with_backoff_then_fail_with_a_reason() {
    let env = TestEnv::new();
    // fail_rate 1: every attempt fails (transiently); 2 retries allowed.
    let ids = env.noop(3, &["--fail-rate", "1", "--max-retries", "2"]);
    let mut scheduler = env.spawn("scheduler", &["--exit-when-idle"], "scheduler");
    let mut worker = env.spawn("worker", &["--exit-when-idle", "--retry-base-ms", "50"], "worker");
    assert!(env.wait_exit(&mut scheduler, Duration::from_secs(60), "scheduler").success());
    assert!(env.wait_exit(&mut worker, Duration::from_secs(60), "worker").success());
    for id in &ids {
        let row = &env.sql(&format!("SELECT status, retry_count, attempts, error_message FROM processing_tasks WHERE task_id = '{id}'"))[0];
        assert_eq!(row[0], "3", "failed");
        assert_eq!(row[1], "2", "retries used");
        assert_eq!(row[2], "3", "attempts = 1 + retries");
        assert!(
            row[3].contains("failed on purpose") && row[3].contains("gave up after 2 retries"),
            "{}",
            row[3]
        );
    }
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_results"), 0);
    // The history tells the story: created, then (started, back to pending) x2, started, failed.
    let out = env.enqueue(&["status", ids[0].as_str(), "--history", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let moves: Vec<(i64, i64)> = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["from_status"].as_i64().unwrap_or(-1), c["to_status"].as_i64().unwrap()))
        .collect();
    assert_eq!(moves, vec![(-1, 0), (0, 1), (1, 0), (0, 1), (1, 0), (0, 1), (1, 3)]);
    let last = status["history"].as_array().unwrap().last().unwrap();
    assert!(last["reason"].as_str().unwrap().contains("failed on purpose"));
    assert!(last["worker"].as_str().unwrap().contains('#'), "the worker is named");
    // `retry` makes them pending again with a fresh budget: one by id, the
    // rest with --all-failed --since.
    assert!(env.enqueue(&["retry", ids[0].as_str(), "--json"]).status.success());
    assert_eq!(
        env.count("SELECT COUNT(*) FROM processing_tasks WHERE status = 0 AND retry_count = 0"),
        1
    );
    let future = env.enqueue(&["retry", "--all-failed", "--since", "2999-01-01"]);
    assert!(future.status.success());
    assert_eq!(
        env.count("SELECT COUNT(*) FROM processing_tasks WHERE status = 3"),
        2,
        "--since in the future retries nothing"
    );
    assert_eq!(
        env.enqueue(&["retry", "--all-failed", "--since", "yesterday"]).status.code(),
        Some(2)
    );
    assert!(env.enqueue(&["retry", "--all-failed", "--since", "2000-01-01"]).status.success());
    assert_eq!(
        env.count("SELECT COUNT(*) FROM processing_tasks WHERE status = 0 AND retry_count = 0"),
        3
    );
}

#[test]
fn cancelled_pending_tasks_never_run() {
    let env = TestEnv::new();
    let ids = env.noop(4, &[]);
    let out = env.enqueue(&["cancel", ids[0].as_str(), ids[1].as_str(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut scheduler = env.spawn("scheduler", &["--exit-when-idle"], "scheduler");
    let mut worker = env.spawn("worker", &["--exit-when-idle"], "worker");
    assert!(env.wait_exit(&mut scheduler, Duration::from_secs(30), "scheduler").success());
    assert!(env.wait_exit(&mut worker, Duration::from_secs(30), "worker").success());
    assert_eq!(
        env.count("SELECT COUNT(*) FROM processing_tasks WHERE status = 4 AND attempts = 0"),
        2
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_results"), 2);
}

#[test]
fn queues_shows_depths_waiting_age_and_live_workers() {
    let env = TestEnv::new();
    env.noop(5, &["--sleep-ms", "3000"]);
    env.noop(2, &["--priority", "9"]);
    let mut scheduler = env.spawn("scheduler", &[], "scheduler");
    let mut worker = env.spawn("worker", &["--concurrency", "5"], "worker");
    env.wait_until(Duration::from_secs(20), "five tasks running", || {
        env.count("SELECT COUNT(*) FROM processing_tasks WHERE status = 1") == 5
    });
    env.wait_until(Duration::from_secs(10), "the worker's heartbeat in workers:alive", || {
        env.redis(&["ZCARD", "workers:alive"]).trim() == "1"
    });
    let out = env.enqueue(&["queues", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for child in [&mut worker, &mut scheduler] {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(value["tasks"]["processing"], 5);
    assert_eq!(value["tasks"]["pending"], 2);
    let workers = value["workers_alive"].as_array().unwrap();
    assert_eq!(workers.len(), 1, "{value}");
    let worker_id = workers[0].as_str().unwrap();
    assert_eq!(value["running_per_worker"][worker_id], 5, "{value}");
    assert!(value["oldest_wait_seconds"].as_i64().unwrap() >= 0, "{value}");
    let depth = value["queues"]["queue:video_processing"].as_u64().unwrap()
        + value["queues"]["queue:high_priority"].as_u64().unwrap();
    assert_eq!(depth, 2, "the two waiting tasks are queued: {value}");
}

#[test]
fn a_new_task_is_announced_and_does_not_wait_for_the_tick() {
    let env = TestEnv::new();
    // A tick interval far longer than the test: only the announcement on
    // queue:new_tasks can make the scheduler push the task.
    let mut scheduler = env.spawn("scheduler", &["--tick-ms", "600000"], "scheduler");
    let mut worker = env.spawn("worker", &[], "worker");
    env.wait_until(Duration::from_secs(20), "the scheduler's first tick", || {
        env.redis(&["EXISTS", "queue:epoch"]).trim() == "1"
    });
    env.wait_until(Duration::from_secs(20), "the scheduler's subscription", || {
        env.redis(&["PUBSUB", "NUMSUB", "queue:new_tasks"]).lines().nth(1) == Some("1")
    });
    for round in 0..3 {
        let id = env.noop(1, &[]).remove(0);
        env.wait_until(Duration::from_secs(20), &format!("task {round} completed"), || {
            env.count(&format!(
                "SELECT COUNT(*) FROM processing_tasks WHERE task_id = '{id}' AND status = 2"
            )) == 1
        });
    }
    for child in [&mut scheduler, &mut worker] {
        let _ = child.kill();
        let _ = child.wait();
    }
}
