//! Step deadlines: a step that hangs is stopped at its limit and the attempt
//! fails as retryable, naming the step and the limit; the lease is not held
//! forever by a live worker whose heartbeat keeps renewing it.

mod support;

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;
use support::TestEnv;

/// A TCP server that accepts connections and never answers (a storage
/// server hung mid-request). Returns its port; it lives until the test ends.
fn black_hole() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.set_read_timeout(Some(Duration::from_millis(10)));
            let _ = stream.read(&mut buf);
            held.push(stream);
        }
    });
    port
}

#[test]
fn a_fetch_from_a_storage_server_that_never_answers_fails_at_its_limit_and_is_retried() {
    let env = TestEnv::new();
    assert!(env.enqueue(&["user", "add", "shop", "--email", "shop@example.com"]).status.success());
    let video = support::project_root().join("fixtures/videos/en-desk-lamp.mp4");
    let out = env.enqueue(&[
        "video",
        video.to_str().unwrap(),
        "--user",
        "shop",
        "--max-retries",
        "1",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let task: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let task_id = task["task_id"].as_str().unwrap().to_string();

    // The worker reads the same keys from an S3 endpoint that hangs.
    let port = black_hole();
    let mut scheduler = env.spawn("scheduler", &[], "scheduler");
    let log = std::fs::File::create(env.dir.join("worker.log")).unwrap();
    let mut worker = env
        .command("worker")
        .args(["--concurrency", "1", "--retry-base-ms", "100"])
        .args(["--step-timeout-base-seconds", "2", "--step-timeout-factor", "0"])
        .env("STORAGE_URL", "s3://clips/x")
        .env("S3_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .stderr(log)
        .spawn()
        .unwrap();
    let failed =
        format!("SELECT COUNT(*) FROM processing_tasks WHERE task_id = '{task_id}' AND status = 3");
    env.wait_until(Duration::from_secs(60), "the task to fail after its retry", || {
        env.count(&failed) == 1
    });
    for child in [&mut worker, &mut scheduler] {
        let _ = child.kill();
        let _ = child.wait();
    }
    let row = &env.sql(&format!(
        "SELECT retry_count, error_message FROM processing_tasks WHERE task_id = '{task_id}'"
    ))[0];
    assert_eq!(row[0], "1", "the timed-out attempt was retried once: {row:?}");
    assert!(
        row[1].contains("step fetch exceeded its time limit of 2 s"),
        "error_message: {}",
        row[1]
    );
    assert!(row[1].contains("gave up after 1 retries"), "error_message: {}", row[1]);
}
