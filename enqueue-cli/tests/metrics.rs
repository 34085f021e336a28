//! The metrics endpoints of the worker and the scheduler, scraped after a
//! noop run and parsed.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;
use support::{free_port, TestEnv};

/// GETs `path` from `port` and returns the body.
fn get(port: u16, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // One request per connection: the server closes it after answering.
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}

/// Prometheus text format: `name{labels} value` lines into a map.
fn parse(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

#[test]
fn metrics_are_served_and_count_a_noop_run() {
    let env = TestEnv::new();
    let out = env.enqueue(&["noop", "--count", "40", "--fail-rate", "0"]);
    assert!(out.status.success());
    let (worker_port, scheduler_port) = (free_port(), free_port());
    let mut scheduler = env.spawn(
        "scheduler",
        &["--metrics-addr", &format!("127.0.0.1:{scheduler_port}")],
        "scheduler",
    );
    let mut worker =
        env.spawn("worker", &["--metrics-addr", &format!("127.0.0.1:{worker_port}")], "worker");
    env.wait_until(Duration::from_secs(30), "all tasks completed", || {
        env.count("SELECT COUNT(*) FROM processing_tasks WHERE status = 2") == 40
    });
    // Wait for what the assertions read to be published: the finished
    // count and a heartbeat after it (held tasks back to 0), and a
    // scheduler tick that saw the lists empty.
    let settled = |worker: &HashMap<String, f64>, scheduler: &HashMap<String, f64>| {
        // Rates need two samples of the database's status, 5 s apart.
        let rates = scheduler.contains_key("videoclip_db_queries_per_second");
        let finished = r#"videoclip_tasks_finished_total{task_type="noop",outcome="completed"}"#;
        let depth = r#"videoclip_queue_depth{queue="queue:high_priority"}"#;
        worker.get(finished) == Some(&40.0)
            && worker.get("videoclip_held_tasks") == Some(&0.0)
            && worker.get("videoclip_heartbeats_total").is_some_and(|n| *n >= 1.0)
            && scheduler.get(depth) == Some(&0.0)
            && rates
    };
    let (mut worker_metrics, mut scheduler_metrics) = (HashMap::new(), HashMap::new());
    env.wait_until(Duration::from_secs(30), "metrics to settle", || {
        worker_metrics = parse(&get(worker_port, "/metrics"));
        scheduler_metrics = parse(&get(scheduler_port, "/metrics"));
        settled(&worker_metrics, &scheduler_metrics)
    });
    for child in [&mut worker, &mut scheduler] {
        let _ = child.kill();
        let _ = child.wait();
    }
    let value = |m: &HashMap<String, f64>, k: &str| {
        *m.get(k).unwrap_or_else(|| panic!("{k} missing in {m:?}"))
    };
    assert_eq!(value(&worker_metrics, r#"videoclip_tasks_claimed_total{task_type="noop"}"#), 40.0);
    assert_eq!(
        value(
            &worker_metrics,
            r#"videoclip_tasks_finished_total{task_type="noop",outcome="completed"}"#
        ),
        40.0
    );
    assert_eq!(value(&worker_metrics, r#"videoclip_task_seconds_count{task_type="noop"}"#), 40.0);
    assert!(
        worker_metrics.contains_key(r#"videoclip_task_seconds_bucket{task_type="noop",le="0.1"}"#)
    );
    assert!(value(&worker_metrics, "videoclip_heartbeats_total") >= 1.0);
    assert_eq!(value(&worker_metrics, "videoclip_held_tasks"), 0.0);
    assert_eq!(value(&scheduler_metrics, "videoclip_tasks_queued_total"), 40.0);
    assert_eq!(
        value(&scheduler_metrics, r#"videoclip_queue_depth{queue="queue:high_priority"}"#),
        0.0
    );
    assert_eq!(
        value(&scheduler_metrics, r#"videoclip_queue_depth{queue="queue:video_processing"}"#),
        0.0
    );
    // The database's own health (seed section 8.3), from the primary.
    let max = env.count("SELECT @@max_connections") as f64;
    assert_eq!(value(&scheduler_metrics, "videoclip_db_max_connections"), max);
    let connections = value(&scheduler_metrics, "videoclip_db_connections");
    assert!(connections >= 1.0 && connections <= max, "{connections}");
    let ratio = value(&scheduler_metrics, "videoclip_db_connection_usage_ratio");
    assert!((ratio - connections / max).abs() < 1e-9, "{ratio}");
    assert!(value(&scheduler_metrics, "videoclip_db_queries_total") > 0.0);
    assert!(value(&scheduler_metrics, "videoclip_db_transactions_total") > 0.0);
    assert!(value(&scheduler_metrics, "videoclip_db_queries_per_second") > 0.0);
    for name in ["videoclip_db_slow_queries_total", "videoclip_db_row_lock_waits_total"] {
        assert!(value(&scheduler_metrics, name) >= 0.0);
    }
    assert!(!scheduler_metrics.contains_key("videoclip_db_replica_up"), "no replica configured");
}
