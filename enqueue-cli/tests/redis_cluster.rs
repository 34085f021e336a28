//! Redis Cluster (`REDIS_URL=redis-cluster://...`): the queue path, strict
//! priority and the loss of one node's data, on three masters. The lists and
//! the epoch live behind the hash tag `{vc}` (one slot, one master); the
//! `task:status:*` keys spread over the nodes.

mod support;

use std::time::Duration;
use support::cluster::ClusterRedis;
use support::TestEnv;

const HIGH: &str = "{vc}queue:high_priority";
const NORMAL: &str = "{vc}queue:video_processing";

/// A cluster in the test's own directory, and a test environment on it.
fn cluster_env(name: &str) -> (ClusterRedis, TestEnv, std::path::PathBuf) {
    let dir =
        support::project_root().join(format!(".local/tests/cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cluster = ClusterRedis::start(&dir);
    let queue_node = cluster.node_for(HIGH);
    let env = TestEnv::with_redis(&cluster.url(), queue_node);
    (cluster, env, dir)
}

fn assert_exactly_once(env: &TestEnv, total: i64) {
    let completed = env.count("SELECT COUNT(*) FROM processing_tasks WHERE status = 2");
    assert_eq!(completed, total, "completed");
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_results"), total, "result rows");
    assert_eq!(
        env.count("SELECT COUNT(DISTINCT task_id) FROM processing_results"),
        total,
        "one result per task"
    );
}

#[test]
fn noop_tasks_run_once_and_status_keys_spread_over_the_nodes() {
    let (cluster, env, dir) = cluster_env("path");
    env.noop(300, &[]);
    let mut scheduler = env.spawn("scheduler", &["--exit-when-idle"], "scheduler");
    let mut workers: Vec<_> =
        (0..2).map(|i| env.spawn("worker", &["--exit-when-idle"], &format!("worker{i}"))).collect();
    assert!(env.wait_exit(&mut scheduler, Duration::from_secs(60), "scheduler").success());
    for worker in &mut workers {
        assert!(env.wait_exit(worker, Duration::from_secs(60), "worker").success());
    }
    assert_exactly_once(&env, 300);
    let per_node: Vec<usize> =
        cluster.ports.iter().map(|p| cluster.count_keys(*p, "task:status:*")).collect();
    assert_eq!(per_node.iter().sum::<usize>(), 300, "one status key per task: {per_node:?}");
    assert!(per_node.iter().all(|n| *n > 0), "status keys on every node: {per_node:?}");
    // The epoch is on the queue's master, under its hash tag; no key of the
    // seed's untagged names exists anywhere.
    let queue_node = cluster.node_for(HIGH);
    assert_eq!(cluster.cli(queue_node, &["EXISTS", "{vc}queue:epoch"]).trim(), "1");
    for port in &cluster.ports {
        assert_eq!(cluster.count_keys(*port, "queue:*"), 0, "untagged queue key on {port}");
    }
    drop(env);
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn high_priority_tasks_all_start_first_on_a_cluster() {
    let (cluster, env, dir) = cluster_env("priority");
    let queue_node = cluster.node_for(HIGH);
    let normal = env.noop(30, &["--priority", "7"]);
    let high = env.noop(30, &["--priority", "2"]);
    let mut scheduler = env.spawn("scheduler", &[], "scheduler");
    env.wait_until(Duration::from_secs(20), "both lists filled", || {
        cluster.cli(queue_node, &["LLEN", HIGH]).trim() == "30"
            && cluster.cli(queue_node, &["LLEN", NORMAL]).trim() == "30"
    });
    scheduler.kill().unwrap();
    scheduler.wait().unwrap();
    let mut worker = env.spawn("worker", &["--exit-when-idle", "--concurrency", "1"], "worker");
    assert!(env.wait_exit(&mut worker, Duration::from_secs(60), "worker").success());
    let order: Vec<String> = env
        .sql("SELECT t.task_id FROM processing_results r JOIN processing_tasks t ON t.id = r.task_id ORDER BY r.id")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    let expected: Vec<String> = high.iter().chain(normal.iter()).cloned().collect();
    assert_eq!(order, expected, "high priority first, FIFO within each list");
    drop(env);
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flushall_on_each_node_mid_run_loses_no_task() {
    let (cluster, env, dir) = cluster_env("flush");
    let queue_node = cluster.node_for(HIGH);
    env.noop(600, &["--sleep-ms", "20"]);
    let mut scheduler =
        env.spawn("scheduler", &["--exit-when-idle", "--min-queued", "100"], "scheduler");
    let mut worker = env.spawn("worker", &["--exit-when-idle", "--concurrency", "4"], "worker");
    let completed = || env.count("SELECT COUNT(*) FROM processing_tasks WHERE status = 2");
    // The queue's master first (lists and epoch gone), then the others
    // (status keys gone), each after more progress.
    let mut order = vec![queue_node];
    order.extend(cluster.ports.iter().copied().filter(|p| *p != queue_node));
    for (i, port) in order.iter().enumerate() {
        let progress = 100 * (i as i64 + 1);
        env.wait_until(Duration::from_secs(60), "more progress", || completed() >= progress);
        assert_eq!(cluster.cli(*port, &["FLUSHALL"]).trim(), "OK");
    }
    assert!(env.wait_exit(&mut scheduler, Duration::from_secs(120), "scheduler").success());
    assert!(env.wait_exit(&mut worker, Duration::from_secs(120), "worker").success());
    assert_exactly_once(&env, 600);
    let log = std::fs::read_to_string(env.dir.join("scheduler.log")).unwrap();
    assert!(log.contains("pushing every pending task again"), "no rebuild:\n{log}");
    drop(env);
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
