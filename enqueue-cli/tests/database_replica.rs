//! A MariaDB replica (`DATABASE_REPLICA_URL`): listings read it, queue
//! decisions never do, and a replica that stops replicating or goes away
//! never fails a task. A test group of its own (two private servers).

mod support;

use std::time::Duration;
use support::replica::ReplicatedMariaDb;
use support::TestEnv;

/// How many tasks `enqueue tasks --status STATUS` lists (up to 1000).
fn listed(env: &TestEnv, status: &str) -> (usize, String) {
    let out = env.enqueue(&["tasks", "--status", status, "--limit", "1000", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let n = stdout.lines().filter(|l| l.contains("\"task_id\"")).count();
    (n, String::from_utf8_lossy(&out.stderr).to_string())
}

/// Runs a scheduler and a worker until no task is left.
fn drain(env: &TestEnv, name: &str) {
    let mut scheduler = env.spawn("scheduler", &["--exit-when-idle"], &format!("scheduler-{name}"));
    let mut worker = env.spawn("worker", &["--exit-when-idle"], &format!("worker-{name}"));
    assert!(env.wait_exit(&mut scheduler, Duration::from_secs(60), "scheduler").success());
    assert!(env.wait_exit(&mut worker, Duration::from_secs(60), "worker").success());
}

/// The scheduler's metrics text at `port` (empty until it listens).
fn scrape(port: u16) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = write!(stream, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

fn queues_json(env: &TestEnv) -> serde_json::Value {
    let out = env.enqueue(&["queues", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn listings_read_the_replica_and_queue_decisions_stay_on_the_primary() {
    let dir = support::project_root().join(format!(".local/tests/replica-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut db = ReplicatedMariaDb::start(&dir);
    let mut env = TestEnv::on_server(&db.primary.server_url());
    db.wait_until_caught_up();
    env.set_env("DATABASE_REPLICA_URL", &format!("{}/{}", db.replica.server_url(), env.database));

    env.noop(20, &[]);
    drain(&env, "first");
    db.wait_until_caught_up();
    assert_eq!(listed(&env, "completed").0, 20);
    let replica = &queues_json(&env)["replica"];
    assert_eq!(replica["running"], true, "{replica}");
    assert_eq!(replica["lag_seconds"], 0, "{replica}");

    // Replication paused: the listing is stale, the queue is not.
    db.on_replica("STOP SLAVE");
    env.noop(10, &[]);
    assert_eq!(listed(&env, "pending").0, 0, "the listing reads the (stale) replica");
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_tasks WHERE status = 0"), 10);
    assert_eq!(queues_json(&env)["replica"]["running"], false);
    let out = env.enqueue(&["queues"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("replication stopped"));
    drain(&env, "paused");
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_tasks WHERE status = 2"), 30);
    assert_eq!(env.count("SELECT COUNT(DISTINCT task_id) FROM processing_results"), 30);
    assert_eq!(listed(&env, "completed").0, 20, "still stale");
    db.on_replica("START SLAVE");
    db.wait_until_running();
    db.wait_until_caught_up();
    assert_eq!(listed(&env, "completed").0, 30);

    // The scheduler exports the replica's state and lag.
    let port = support::free_port();
    let mut scheduler =
        env.spawn("scheduler", &["--metrics-addr", &format!("127.0.0.1:{port}")], "sched-metrics");
    env.wait_until(Duration::from_secs(20), "replica metrics", || {
        let body = scrape(port);
        body.lines().any(|l| l == "videoclip_db_replica_running 1")
            && body.lines().any(|l| l == "videoclip_db_replica_lag_seconds 0")
    });
    let _ = scheduler.kill();
    let _ = scheduler.wait();

    // The replica gone: reads fall back to the primary with a warning, tasks
    // still run.
    db.replica.stop();
    env.noop(5, &[]);
    let (pending, stderr) = listed(&env, "pending");
    assert_eq!(pending, 5, "the primary answers the listing");
    assert!(stderr.contains("reading from the primary"), "no warning: {stderr}");
    assert!(queues_json(&env)["replica"]["error"].is_string());
    drain(&env, "replica-down");
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_tasks WHERE status = 2"), 35);

    // Back after a restart: replication resumes, the listing reads it again.
    db.replica.restart();
    db.wait_until_running();
    db.wait_until_caught_up();
    let (completed, stderr) = listed(&env, "completed");
    assert_eq!(completed, 35);
    assert!(!stderr.contains("reading from the primary"), "{stderr}");
    drop(env);
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}
