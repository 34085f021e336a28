//! `enqueue watch`: follows tasks through Redis and the database with the
//! real scheduler and workers, and exits 0 only when every task completed.

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::TestEnv;

/// Scheduler flags. A worker whose claim loses a deadlock against the
/// scheduler's queueing transaction used to strand the ids it popped until
/// aging pushed them again (the worker now retries and pushes them back); a
/// short maximum wait keeps these tests about the watcher either way.
const SCHEDULER: &[&str] = &["--exit-when-idle", "--max-wait-seconds", "3"];

/// A running `enqueue watch` whose stdout lines and stderr are collected as
/// they come.
struct Watch {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stdout: JoinHandle<()>,
    stderr: JoinHandle<String>,
}

impl Watch {
    fn start(env: &TestEnv, ids: &[String], extra: &[&str]) -> Watch {
        let mut child = env
            .command("enqueue")
            .arg("watch")
            .args(ids)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning enqueue watch");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = lines.clone();
        let stdout = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Watch { child, lines, stdout, stderr }
    }

    /// The stdout lines so far, parsed (every one must be JSON).
    fn values(&self) -> Vec<Value> {
        Watch::parse(&self.lines.lock().unwrap())
    }

    fn parse(lines: &[String]) -> Vec<Value> {
        lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
            .collect()
    }

    fn wait_for_output(&self, limit: Duration, what: &str, cond: impl Fn(&[Value]) -> bool) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if cond(&self.values()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for {what}; output so far: {:?}", self.lines.lock().unwrap());
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the exit; returns the status, the stdout lines parsed and stderr.
    fn finish(mut self, env: &TestEnv, limit: Duration) -> (ExitStatus, Vec<Value>, String) {
        let status = env.wait_exit(&mut self.child, limit, "enqueue watch");
        let Watch { lines, stdout, stderr, .. } = self;
        stdout.join().unwrap();
        let stderr = stderr.join().unwrap();
        let values = Watch::parse(&lines.lock().unwrap());
        (status, values, stderr)
    }
}

/// Status names by database code.
fn status_name(code: &str) -> &'static str {
    match code {
        "0" => "pending",
        "1" => "processing",
        "2" => "completed",
        "3" => "failed",
        "4" => "cancelled",
        other => panic!("unknown status code {other}"),
    }
}

/// The database's status name of a task.
fn db_status(env: &TestEnv, id: &str) -> &'static str {
    status_name(
        &env.sql(&format!("SELECT status FROM processing_tasks WHERE task_id = '{id}'"))[0][0],
    )
}

/// The lines about `id`, in order.
fn lines_of<'a>(values: &'a [Value], id: &str) -> Vec<&'a Value> {
    values.iter().filter(|v| v["task_id"] == id).collect()
}

/// Checks what every watch prints: each change line has the four fields,
/// each task ends with one final line that is its database summary.
fn check_lines(env: &TestEnv, values: &[Value], ids: &[String]) {
    for value in values {
        for field in ["task_id", "status", "progress", "current_step"] {
            assert!(value.get(field).is_some(), "{field} missing in {value}");
        }
    }
    for id in ids {
        let lines = lines_of(values, id);
        assert!(lines.len() >= 2, "{id}: a first look and a final line, got {lines:?}");
        let last = lines.last().unwrap();
        assert_eq!(last["final"], true, "{id}: the last line is the final one");
        assert_eq!(lines.iter().filter(|v| v["final"] == true).count(), 1, "{id}: one final line");
        let row = &env.sql(&format!(
            "SELECT status, progress, IFNULL(current_step, ''), IFNULL(error_message, ''), retry_count FROM processing_tasks WHERE task_id = '{id}'"
        ))[0];
        assert_eq!(last["status"], status_name(&row[0]), "{id}: last status is the database's");
        assert_eq!(last["progress"].to_string(), row[1], "{id}: progress");
        assert_eq!(last["current_step"].as_str().unwrap_or(""), row[2], "{id}: step");
        assert_eq!(last["error_message"].as_str().unwrap_or(""), row[3], "{id}: error_message");
        assert_eq!(last["retry_count"].to_string(), row[4], "{id}: retry_count");
        // The change line before it already shows the final status (no jump).
        let before = lines[lines.len() - 2];
        assert_eq!(before["status"], last["status"], "{id}: change line before the final one");
    }
}

#[test]
fn watch_exits_0_once_noop_tasks_complete() {
    let env = TestEnv::new();
    let ids = env.noop(6, &["--sleep-ms", "400"]);
    let watch = Watch::start(&env, &ids, &["--json", "--interval-ms", "100"]);
    // The first look: every task pending, before anything runs.
    watch.wait_for_output(Duration::from_secs(20), "first look", |values| {
        ids.iter().all(|id| {
            values.iter().any(|v| v["task_id"] == id.as_str() && v["status"] == "pending")
        })
    });
    let mut scheduler = env.spawn("scheduler", SCHEDULER, "scheduler");
    let mut worker = env.spawn("worker", &["--exit-when-idle", "--concurrency", "3"], "worker");
    let (status, values, stderr) = watch.finish(&env, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "watch: {stderr}");
    assert!(env.wait_exit(&mut scheduler, Duration::from_secs(30), "scheduler").success());
    assert!(env.wait_exit(&mut worker, Duration::from_secs(30), "worker").success());
    check_lines(&env, &values, &ids);
    for id in &ids {
        let lines = lines_of(&values, id);
        assert_eq!(lines[0]["status"], "pending", "{id}: first look");
        assert!(
            lines.iter().any(|v| v["status"] == "processing"),
            "{id}: seen running (400 ms at 100 ms ticks): {lines:?}"
        );
        assert_eq!(lines.last().unwrap()["status"], "completed");
    }
}

#[test]
fn watch_exits_1_with_the_reason_when_a_task_fails() {
    let env = TestEnv::new();
    let ok = env.noop(1, &[]);
    let bad = env.noop(1, &["--fail-rate", "1", "--max-retries", "0"]);
    let ids = [ok[0].clone(), bad[0].clone()];
    // No --json: stderr is not a terminal, so JSON lines all the same.
    let watch = Watch::start(&env, &ids, &[]);
    let mut scheduler = env.spawn("scheduler", SCHEDULER, "scheduler");
    let mut worker = env.spawn("worker", &["--exit-when-idle"], "worker");
    let (status, values, stderr) = watch.finish(&env, Duration::from_secs(60));
    assert!(env.wait_exit(&mut scheduler, Duration::from_secs(30), "scheduler").success());
    assert!(env.wait_exit(&mut worker, Duration::from_secs(30), "worker").success());
    assert_eq!(status.code(), Some(1), "one task failed: {stderr}");
    assert_eq!(db_status(&env, &bad[0]), "failed");
    assert_eq!(db_status(&env, &ok[0]), "completed");
    let reason = stderr
        .lines()
        .find(|l| l.contains(&bad[0]))
        .unwrap_or_else(|| panic!("no line about the failed task: {stderr}"));
    assert!(reason.contains("failed") && reason.contains("failed on purpose"), "{reason}");
    assert!(!stderr.contains(&ok[0]), "the completed task needs no explanation: {stderr}");
    check_lines(&env, &values, &ids);
    assert!(lines_of(&values, &bad[0]).last().unwrap()["error_message"]
        .as_str()
        .unwrap()
        .contains("failed on purpose"));
}

#[test]
fn watch_refuses_an_unknown_task_id_with_exit_2_before_watching() {
    let env = TestEnv::new();
    let ids = env.noop(1, &[]);
    let started = Instant::now();
    let out = env.enqueue(&["watch", ids[0].as_str(), "no-such-task", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(started.elapsed() < Duration::from_secs(10), "answered at once");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("no-such-task"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing watched: {}", String::from_utf8_lossy(&out.stdout));
    // Bad usage too.
    let out = env.enqueue(&["watch", ids[0].as_str(), "--interval-ms", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.enqueue(&["watch"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn json_lines_parse_and_each_task_ends_with_its_database_status() {
    let env = TestEnv::new();
    let good = env.noop(4, &["--sleep-ms", "200"]);
    let bad = env.noop(2, &["--fail-rate", "1", "--max-retries", "1"]);
    let cancelled = env.noop(1, &[]);
    let out = env.enqueue(&["cancel", cancelled[0].as_str()]);
    assert!(out.status.success());
    let ids: Vec<String> = good.iter().chain(&bad).chain(&cancelled).cloned().collect();
    // The same id twice is watched once.
    let mut args = ids.clone();
    args.push(good[0].clone());
    let watch = Watch::start(&env, &args, &["--json"]);
    let mut scheduler = env.spawn("scheduler", SCHEDULER, "scheduler");
    let mut worker = env.spawn("worker", &["--exit-when-idle", "--retry-base-ms", "50"], "worker");
    let (status, values, stderr) = watch.finish(&env, Duration::from_secs(60));
    assert!(env.wait_exit(&mut scheduler, Duration::from_secs(30), "scheduler").success());
    assert!(env.wait_exit(&mut worker, Duration::from_secs(30), "worker").success());
    assert_eq!(status.code(), Some(1), "{stderr}");
    check_lines(&env, &values, &ids);
    assert_eq!(
        values.iter().filter(|v| v["final"] == true).count(),
        ids.len(),
        "one final line per task"
    );
    for id in &good {
        assert_eq!(lines_of(&values, id).last().unwrap()["status"], "completed");
    }
    for id in &bad {
        assert_eq!(lines_of(&values, id).last().unwrap()["status"], "failed");
        assert!(stderr.contains(id.as_str()), "{stderr}");
    }
    // Already final when the watch began: reported at once, from the database.
    let lines = lines_of(&values, &cancelled[0]);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1]["status"], "cancelled");
    assert!(stderr.contains(&format!("task {} cancelled", cancelled[0])), "{stderr}");
}

#[test]
fn without_redis_keys_the_database_still_shows_completion() {
    let env = TestEnv::new();
    let ids = env.noop(3, &["--sleep-ms", "1500"]);
    let watch = Watch::start(&env, &ids, &["--json", "--interval-ms", "100"]);
    let mut scheduler = env.spawn("scheduler", SCHEDULER, "scheduler");
    let mut worker = env.spawn("worker", &["--exit-when-idle", "--concurrency", "3"], "worker");
    watch.wait_for_output(Duration::from_secs(30), "all three running", |values| {
        ids.iter().all(|id| {
            values.iter().any(|v| v["task_id"] == id.as_str() && v["status"] == "processing")
        })
    });
    // Redis loses the status keys mid-watch, and keeps losing them until the
    // worker is gone, so the final statuses come from the database.
    let delete_all = || {
        env.redis(&["EVAL", "for _, k in ipairs(redis.call('KEYS', 'task:status:*')) do redis.call('DEL', k) end return 0", "0"])
    };
    while worker.try_wait().unwrap().is_none() {
        delete_all();
        std::thread::sleep(Duration::from_millis(10));
    }
    delete_all();
    assert_eq!(env.redis(&["KEYS", "task:status:*"]).trim(), "", "keys deleted");
    let (status, values, stderr) = watch.finish(&env, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(env.wait_exit(&mut scheduler, Duration::from_secs(30), "scheduler").success());
    check_lines(&env, &values, &ids);
    for id in &ids {
        assert_eq!(lines_of(&values, id).last().unwrap()["status"], "completed");
    }
}

#[test]
fn a_final_status_seen_only_in_redis_is_not_reported_until_the_database_has_it() {
    let env = TestEnv::new();
    let ids = env.noop(1, &[]);
    let id = &ids[0];
    let mut watch = Watch::start(&env, &ids, &["--json", "--interval-ms", "100"]);
    watch.wait_for_output(Duration::from_secs(20), "first look", |values| !values.is_empty());
    // The cache claims completion; the row (no worker runs) says pending.
    let key = format!("task:status:{id}");
    let fake = r#"{"status":2,"progress":100,"current_step":"done","updated_at":"2030-01-01T00:00:00.000Z"}"#;
    env.redis(&["SET", &key, fake, "EX", "3600"]);
    // Long enough for several ticks and at least one database read.
    std::thread::sleep(Duration::from_millis(2600));
    assert!(watch.is_running(), "exited on a status only Redis had");
    assert!(
        watch.values().iter().all(|v| v["status"] == "pending"),
        "reported a status the database does not have: {:?}",
        watch.values()
    );
    // The key disappears and the row completes (as if the worker's cache
    // write was lost): the database read finds it.
    env.redis(&["DEL", &key]);
    env.sql(&format!(
        "UPDATE processing_tasks SET status = 2, progress = 100, current_step = 'completed', started_at = NOW(), completed_at = NOW() WHERE task_id = '{id}'"
    ));
    let (status, values, stderr) = watch.finish(&env, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{stderr}");
    check_lines(&env, &values, &ids);
}

#[test]
fn ctrl_c_stops_watching_with_exit_1_and_leaves_the_tasks_running() {
    let env = TestEnv::new();
    let ids = env.noop(2, &[]);
    let watch = Watch::start(&env, &ids, &["--json"]);
    watch.wait_for_output(Duration::from_secs(20), "first look", |values| values.len() >= 2);
    let pid = watch.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let started = Instant::now();
    let (status, _values, stderr) = watch.finish(&env, Duration::from_secs(10));
    assert!(started.elapsed() < Duration::from_secs(3), "Ctrl-C took {:?}", started.elapsed());
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("keep running"), "{stderr}");
    for id in &ids {
        assert_eq!(db_status(&env, id), "pending", "watching changed nothing");
    }
}
