//! Operator commands against real servers: `enqueue backfill` (counts,
//! idempotence, dry run, `--missing`, `--limit`/`--after-id` resume, rate,
//! Ctrl-C, bad filters) and `enqueue tasks` (filters, cursor paging, JSON
//! equal to the rows).
//!
//! (Long on purpose: one scenario per test function, all on one harness.)

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::time::{Duration, Instant};
use support::TestEnv;

/// Creates a user through the CLI and returns its id.
fn add_user(env: &TestEnv, name: &str) -> i64 {
    let out = env.enqueue(&["user", "add", name, "--email", &format!("{name}@example.com")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Inserts `n` `videos` rows for `user` created at `created_at` (UTC) with
/// `status`, and returns their ids in ascending order.
fn insert_videos(env: &TestEnv, user: &str, n: u32, created_at: &str, status: i8) -> Vec<i64> {
    let before = env.count("SELECT COALESCE(MAX(id), 0) FROM videos");
    env.sql(&format!(
        "SET time_zone = '+00:00'; \
         INSERT INTO videos (user_id, filename, original_filename, file_path, file_size, created_at, status) \
         SELECT (SELECT id FROM users WHERE username = '{user}'), CONCAT('v', seq, '.mp4'), CONCAT('v', seq, '.mp4'), \
                CONCAT('videos/{user}/', seq, '.mp4'), 1000 + seq, '{created_at}', {status} \
         FROM seq_1_to_{n} ORDER BY seq"
    ));
    env.sql(&format!("SELECT id FROM videos WHERE id > {before} ORDER BY id"))
        .iter()
        .map(|r| r[0].parse().unwrap())
        .collect()
}

/// Runs `enqueue ARGS... --json`, asserts the exit code, and returns the
/// last stdout line as JSON (the summary) with the whole output.
fn run_json(env: &TestEnv, args: &[&str], code: i32) -> (Value, Output) {
    let mut all = args.to_vec();
    all.push("--json");
    let out = env.enqueue(&all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "enqueue {args:?}: stderr {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last =
        stdout.lines().last().unwrap_or_else(|| panic!("no output from {args:?}; stderr {stderr}"));
    (serde_json::from_str(last).unwrap(), out)
}

/// `backfill ARGS... --json`, expecting success: the summary.
fn backfill(env: &TestEnv, args: &[&str]) -> Value {
    let mut all = vec!["backfill"];
    all.extend_from_slice(args);
    run_json(env, &all, 0).0
}

/// The `users` object of a summary as a map.
fn users(summary: &Value) -> BTreeMap<String, i64> {
    summary["users"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
        .collect()
}

/// Number of tasks of `task_type` per video id.
fn tasks_per_video(env: &TestEnv, task_type: &str) -> BTreeMap<i64, i64> {
    env.sql(&format!("SELECT video_id, COUNT(*) FROM processing_tasks WHERE task_type = '{task_type}' GROUP BY video_id"))
        .iter()
        .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap()))
        .collect()
}

/// Asserts exit 2 with exactly one line on stderr containing `needle`
/// (case-insensitive) and nothing on stdout.
fn assert_refused(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "exit code; stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line expected: {stderr:?}");
    assert!(stderr.to_lowercase().contains(&needle.to_lowercase()), "{needle:?} not in {stderr:?}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {:?}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn backfill_creates_one_task_per_video_and_a_second_run_creates_nothing() {
    let env = TestEnv::new();
    add_user(&env, "shop1");
    add_user(&env, "shop2");
    let shop1 = insert_videos(&env, "shop1", 3, "2026-01-05 10:00:00", 1);
    let shop2 = insert_videos(&env, "shop2", 2, "2026-01-06 10:00:00", 3);
    // No-op tasks own a placeholder `videos` row: not a video to backfill.
    assert!(env.enqueue(&["noop", "--count", "2"]).status.success());
    let placeholder = env.count("SELECT id FROM videos WHERE file_path LIKE 'noop://%'");

    let summary = backfill(&env, &["--priority", "7", "--config", r#"{"language":"zh"}"#]);
    assert_eq!(summary["created"], 5);
    assert_eq!(summary["skipped_active"], 0);
    assert_eq!(summary["dry_run"], false);
    assert_eq!(summary["last_video_id"], *shop2.last().unwrap());
    assert_eq!(users(&summary), BTreeMap::from([("shop1".into(), 3), ("shop2".into(), 2)]));
    let per_video = tasks_per_video(&env, "video_clip");
    let expected: BTreeMap<i64, i64> = shop1.iter().chain(&shop2).map(|id| (*id, 1)).collect();
    assert_eq!(
        per_video, expected,
        "one video_clip task per video, none for the placeholder {placeholder}"
    );
    let rows = env.sql(
        "SELECT DISTINCT t.status, t.priority, JSON_VALUE(t.config, '$.language'), t.user_id = v.user_id \
         FROM processing_tasks t JOIN videos v ON v.id = t.video_id WHERE t.task_type = 'video_clip'",
    );
    assert_eq!(rows, vec![vec!["0".to_string(), "7".into(), "zh".into(), "1".into()]]);
    // Each new task has its task:status, as tasks made by `enqueue video` do.
    let task_ids = env.sql("SELECT task_id FROM processing_tasks WHERE task_type = 'video_clip'");
    for row in &task_ids {
        let cached: Value =
            serde_json::from_str(env.redis(&["GET", &format!("task:status:{}", row[0])]).trim())
                .unwrap();
        assert_eq!(cached["status"], 0);
    }

    // Again while those tasks are pending (one of them running): nothing new.
    env.sql(&format!(
        "UPDATE processing_tasks SET status = 1 WHERE video_id = {} AND task_type = 'video_clip'",
        shop1[0]
    ));
    let again = backfill(&env, &[]);
    assert_eq!((again["created"].as_i64(), again["skipped_active"].as_i64()), (Some(0), Some(5)));
    assert!(users(&again).is_empty());
    assert_eq!(tasks_per_video(&env, "video_clip"), expected);

    // A finished task is not active: the video gets a new one.
    env.sql(&format!(
        "UPDATE processing_tasks SET status = 3 WHERE video_id = {} AND task_type = 'video_clip'",
        shop2[0]
    ));
    let after_failure = backfill(&env, &[]);
    assert_eq!(
        (after_failure["created"].as_i64(), after_failure["skipped_active"].as_i64()),
        (Some(1), Some(4))
    );
    assert_eq!(tasks_per_video(&env, "video_clip")[&shop2[0]], 2);

    // Another task type is counted on its own.
    let noop = backfill(&env, &["--task-type", "noop", "--user", "shop1"]);
    assert_eq!(noop["created"], 3);
    assert_eq!(tasks_per_video(&env, "noop").len(), 4, "three backfilled + the placeholder's");

    // The text summary names the users.
    let out = env.enqueue(&["backfill", "--dry-run", "--task-type", "noop"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("would create 2 noop task(s)") && text.contains("shop2"), "{text}");
}

#[test]
fn dry_run_writes_nothing_and_reports_the_count_per_user() {
    let env = TestEnv::new();
    add_user(&env, "shop1");
    add_user(&env, "shop2");
    add_user(&env, "shop3");
    insert_videos(&env, "shop1", 4, "2026-01-05 10:00:00", 1);
    let shop2 = insert_videos(&env, "shop2", 3, "2026-01-05 11:00:00", 1);
    insert_videos(&env, "shop3", 2, "2026-01-05 12:00:00", 1);
    // One of shop2's videos already has a pending task.
    assert!(env.enqueue(&["task", &shop2[1].to_string()]).status.success());
    let keys_before = env.redis(&["DBSIZE"]);

    let summary = backfill(&env, &["--dry-run", "--batch-size", "2"]);
    assert_eq!(summary["dry_run"], true);
    assert_eq!(summary["created"], 8);
    assert_eq!(summary["skipped_active"], 1);
    assert_eq!(
        users(&summary),
        BTreeMap::from([("shop1".into(), 4), ("shop2".into(), 2), ("shop3".into(), 2)])
    );
    let one_user = backfill(&env, &["--dry-run", "--user", "shop3"]);
    assert_eq!(users(&one_user), BTreeMap::from([("shop3".into(), 2)]));
    let limited = backfill(&env, &["--dry-run", "--limit", "5", "--batch-size", "3"]);
    assert_eq!(limited["created"], 5);

    assert_eq!(env.count("SELECT COUNT(*) FROM processing_tasks"), 1, "dry run wrote tasks");
    assert_eq!(env.redis(&["DBSIZE"]), keys_before, "dry run wrote to Redis");
    // And the real run creates exactly what the dry run announced.
    let real = backfill(&env, &["--batch-size", "2"]);
    assert_eq!(
        (real["created"].clone(), real["users"].clone()),
        (summary["created"].clone(), summary["users"].clone())
    );
}

#[test]
fn missing_skips_videos_with_a_completed_task_of_that_type() {
    let env = TestEnv::new();
    add_user(&env, "shop1");
    // One video registered for real, through `enqueue video`.
    let fixture = support::project_root().join("fixtures/videos/en-jfk.mp4");
    let (created, _) = run_json(&env, &["video", fixture.to_str().unwrap(), "--user", "shop1"], 0);
    let real_video = created["video_id"].as_i64().unwrap();
    let others = insert_videos(&env, "shop1", 3, "2026-01-05 10:00:00", 3);
    // real video: completed; others[0]: failed; others[1]: a completed noop task only; others[2]: nothing.
    env.sql(&format!("UPDATE processing_tasks SET status = 2 WHERE video_id = {real_video}"));
    let task = run_json(&env, &["task", &others[0].to_string()], 0).0;
    env.sql(&format!(
        "UPDATE processing_tasks SET status = 3 WHERE task_id = '{}'",
        task["task_id"].as_str().unwrap()
    ));
    let user_id = env.count("SELECT id FROM users WHERE username = 'shop1'");
    env.sql(&format!(
        "INSERT INTO processing_tasks (task_id, user_id, video_id, task_type, status) VALUES ('noop-done', {user_id}, {}, 'noop', 2)",
        others[1]
    ));

    let summary = backfill(&env, &["--missing"]);
    assert_eq!(summary["created"], 3, "{summary}");
    assert_eq!(summary["skipped_completed"], 1);
    assert_eq!(summary["skipped_active"], 0);
    let per_video = tasks_per_video(&env, "video_clip");
    assert_eq!(
        per_video,
        BTreeMap::from([(real_video, 1), (others[0], 2), (others[1], 1), (others[2], 1)])
    );

    // Without --missing a completed video is reprocessed too (once the new
    // tasks are no longer active).
    env.sql("UPDATE processing_tasks SET status = 4 WHERE status = 0");
    let summary = backfill(&env, &[]);
    assert_eq!(summary["created"], 4);
    assert_eq!(tasks_per_video(&env, "video_clip")[&real_video], 2);
}

#[test]
fn limit_and_after_id_resume_without_duplicates() {
    let env = TestEnv::new();
    add_user(&env, "shop1");
    add_user(&env, "shop2");
    let mut ids = insert_videos(&env, "shop1", 13, "2026-01-05 10:00:00", 1);
    ids.extend(insert_videos(&env, "shop2", 12, "2026-01-05 10:00:00", 1));
    // Two videos already have an active task: skipped, and not counted against --limit.
    for id in [ids[2], ids[7]] {
        assert!(env.enqueue(&["task", &id.to_string()]).status.success());
    }

    let first = backfill(&env, &["--limit", "10", "--batch-size", "4"]);
    assert_eq!(first["created"], 10);
    assert_eq!(first["skipped_active"], 2);
    // The tenth new task is for the twelfth video (two were skipped).
    assert_eq!(first["last_video_id"], ids[11]);
    let out = env.enqueue(&[
        "backfill",
        "--limit",
        "10",
        "--batch-size",
        "4",
        "--after-id",
        &ids[11].to_string(),
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("resume with --after-id {}", ids[21])), "{stderr}");
    let third = backfill(&env, &["--limit", "10", "--after-id", &ids[21].to_string()]);
    assert_eq!(third["created"], 3);
    assert_eq!(third["last_video_id"], ids[24]);

    let per_video = tasks_per_video(&env, "video_clip");
    assert_eq!(per_video.len(), 25);
    assert!(per_video.values().all(|n| *n == 1), "duplicates: {per_video:?}");
    // Starting past the end finds nothing and says where it is.
    let past = backfill(&env, &["--after-id", &ids[24].to_string()]);
    assert_eq!(
        (past["created"].as_i64(), past["last_video_id"].as_i64()),
        (Some(0), Some(ids[24]))
    );
}

#[test]
fn filters_select_by_user_creation_time_and_video_status() {
    let env = TestEnv::new();
    add_user(&env, "shop1");
    add_user(&env, "shop2");
    let early = insert_videos(&env, "shop1", 2, "2026-01-01 23:59:59", 1);
    let jan10 = insert_videos(&env, "shop1", 3, "2026-01-10 00:00:00", 3);
    let jan15 = insert_videos(&env, "shop2", 4, "2026-01-15 08:00:00", 3);
    let late = insert_videos(&env, "shop2", 5, "2026-01-20 00:00:00", 4);
    let dry = |args: &[&str]| -> i64 {
        let mut all = vec!["--dry-run"];
        all.extend_from_slice(args);
        backfill(&env, &all)["created"].as_i64().unwrap()
    };
    assert_eq!(dry(&[]), 14);
    assert_eq!(dry(&["--user", "shop1"]), (early.len() + jan10.len()) as i64);
    // --since is inclusive, --until exclusive; a date is 00:00 UTC.
    assert_eq!(
        dry(&["--since", "2026-01-10", "--until", "2026-01-20"]),
        (jan10.len() + jan15.len()) as i64
    );
    assert_eq!(dry(&["--since", "2026-01-15T08:00:01Z"]), late.len() as i64);
    // 09:00 at UTC+1 is 08:00 UTC: the Jan 15 videos are at the (excluded) bound.
    assert_eq!(dry(&["--until", "2026-01-15T09:00:00+01:00"]), (early.len() + jan10.len()) as i64);
    assert_eq!(
        dry(&["--until", "2026-01-15T09:00:01+01:00"]),
        (early.len() + jan10.len() + jan15.len()) as i64
    );
    assert_eq!(dry(&["--video-status", "3"]), (jan10.len() + jan15.len()) as i64);
    assert_eq!(
        dry(&["--video-status", "3", "--user", "shop2", "--since", "2026-01-11"]),
        jan15.len() as i64
    );

    let summary = backfill(&env, &["--video-status", "4", "--batch-size", "2"]);
    assert_eq!(summary["created"], 5);
    let made: BTreeSet<i64> = tasks_per_video(&env, "video_clip").into_keys().collect();
    assert_eq!(made, late.iter().copied().collect());
}

#[test]
fn two_backfills_at_once_create_one_task_per_video() {
    let env = TestEnv::new();
    add_user(&env, "shop1");
    insert_videos(&env, "shop1", 300, "2026-01-05 10:00:00", 1);
    let spawn = |batch: &str| {
        env.command("enqueue")
            .args(["backfill", "--batch-size", batch, "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("7"), spawn("11"));
    let mut created = 0;
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let summary: Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap())
                .unwrap();
        created += summary["created"].as_i64().unwrap();
    }
    assert_eq!(created, 300);
    let per_video = tasks_per_video(&env, "video_clip");
    assert_eq!(per_video.len(), 300);
    assert!(per_video.values().all(|n| *n == 1), "a video got two tasks");
}

#[test]
fn rate_paces_the_backfill() {
    let env = TestEnv::new();
    add_user(&env, "shop1");
    insert_videos(&env, "shop1", 100, "2026-01-05 10:00:00", 1);
    let started = Instant::now();
    let summary = backfill(&env, &["--rate", "50"]);
    let elapsed = started.elapsed();
    assert_eq!(summary["created"], 100);
    // 100 tasks at 50/s cannot take less than 2 s; allow for rounding.
    assert!(elapsed >= Duration::from_millis(1500), "100 tasks at --rate 50 took only {elapsed:?}");
    assert_eq!(env.count("SELECT COUNT(DISTINCT video_id) FROM processing_tasks"), 100);
}

#[test]
fn ctrl_c_stops_after_the_current_batch_and_prints_where_to_resume() {
    let env = TestEnv::new();
    add_user(&env, "shop1");
    let ids = insert_videos(&env, "shop1", 100, "2026-01-05 10:00:00", 1);
    // 10 per second: about 10 s in all, so the interrupt lands midway.
    let child = env
        .command("enqueue")
        .args(["backfill", "--rate", "10", "--batch-size", "5", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    env.wait_until(Duration::from_secs(20), "the first batches", || {
        env.count("SELECT COUNT(*) FROM processing_tasks") >= 10
    });
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "Ctrl-C took {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(1), "interrupted: not done");
    let summary: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(summary["interrupted"], true);
    let last = summary["last_video_id"].as_i64().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("resume with --after-id {last}")), "{stderr}");
    // Every video up to the last one reported, and none after it, has its task.
    let done = ids.iter().filter(|id| **id <= last).count() as i64;
    assert!(done < 100, "finished before the interrupt");
    assert_eq!(summary["created"], done);
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_tasks"), done);
    assert_eq!(
        env.count(&format!("SELECT COUNT(*) FROM processing_tasks WHERE video_id > {last}")),
        0
    );

    let rest = backfill(&env, &["--after-id", &last.to_string()]);
    assert_eq!(rest["created"], 100 - done);
    let per_video = tasks_per_video(&env, "video_clip");
    assert_eq!(per_video.len(), 100);
    assert!(per_video.values().all(|n| *n == 1));
}

#[test]
fn bad_backfill_filters_exit_2_with_one_line_and_write_nothing() {
    let env = TestEnv::new();
    add_user(&env, "shop1");
    insert_videos(&env, "shop1", 3, "2026-01-05 10:00:00", 1);
    for (args, needle) in [
        (vec!["--since", "yesterday"], "--since"),
        (vec!["--until", "2026-13-01"], "--until"),
        (vec!["--since", "2026-02-01", "--until", "2026-01-01"], "earlier than --until"),
        (vec!["--video-status", "9"], "--video-status"),
        (vec!["--priority", "0"], "--priority"),
        (vec!["--priority", "11"], "--priority"),
        (vec!["--config", "{oops"], "--config"),
        (vec!["--config", "[1]"], "JSON object"),
        (vec!["--task-type", "transcode"], "--task-type"),
        (vec!["--user", "nobody"], "unknown user"),
        (vec!["--batch-size", "0"], "--batch-size"),
        (vec!["--batch-size", "5000"], "--batch-size"),
        (vec!["--rate", "0"], "--rate"),
        (vec!["--rate", "fast"], "--rate"),
        (vec!["--limit", "0"], "--limit"),
        (vec!["--after-id", "-5"], "--after-id"),
    ] {
        let mut all = vec!["backfill"];
        all.extend_from_slice(&args);
        assert_refused(&env.enqueue(&all), needle);
    }
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_tasks"), 0);
}

/// Every task as the database has it, as the JSON `enqueue tasks` prints.
fn db_tasks(env: &TestEnv) -> BTreeMap<i64, Value> {
    env.sql(
        "SET time_zone = '+00:00'; \
         SELECT t.id, t.task_id, u.username, t.user_id, t.video_id, t.task_type, t.status, t.priority, t.progress, \
                COALESCE(t.current_step, 'NULL'), t.retry_count, t.max_retries, COALESCE(t.error_message, 'NULL'), \
                DATE_FORMAT(t.created_at, '%Y-%m-%dT%H:%i:%s'), COALESCE(DATE_FORMAT(t.completed_at, '%Y-%m-%dT%H:%i:%s'), 'NULL') \
         FROM processing_tasks t JOIN users u ON u.id = t.user_id",
    )
    .into_iter()
    .map(|r| {
        let num = |i: usize| r[i].parse::<i64>().unwrap();
        let text = |i: usize| if r[i] == "NULL" { Value::Null } else { Value::from(r[i].clone()) };
        let status = ["pending", "processing", "completed", "failed", "cancelled"][num(6) as usize];
        let value = serde_json::json!({
            "id": num(0), "task_id": r[1], "user": r[2], "user_id": num(3), "video_id": num(4),
            "task_type": r[5], "status": status, "priority": num(7), "progress": num(8),
            "current_step": text(9), "retry_count": num(10), "max_retries": num(11),
            "error_message": text(12), "created_at": r[13], "completed_at": text(14),
        });
        (num(0), value)
    })
    .collect()
}

/// Pages through `enqueue tasks ARGS... --limit N --json` with the cursor;
/// returns every task printed, in order, and the number of pages.
fn page_all(env: &TestEnv, args: &[&str], limit: u32) -> (Vec<Value>, usize) {
    let mut seen = Vec::new();
    let mut cursor: Option<i64> = None;
    let mut pages = 0;
    loop {
        let limit = limit.to_string();
        let after = cursor.map(|c| c.to_string());
        let mut all = vec!["tasks", "--limit", limit.as_str()];
        all.extend_from_slice(args);
        if let Some(after) = &after {
            all.extend(["--after", after.as_str()]);
        }
        let (last, out) = run_json(env, &all, 0);
        pages += 1;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.last(), Some(&last));
        assert!(
            last.as_object().unwrap().keys().eq(["next_cursor"]),
            "last line is the cursor: {last}"
        );
        let page = &lines[..lines.len() - 1];
        assert!(page.len() <= limit.parse().unwrap());
        seen.extend(page.iter().cloned());
        match last["next_cursor"].as_i64() {
            Some(next) => {
                assert_eq!(page.last().unwrap()["id"], next, "cursor is the last id shown");
                cursor = Some(next);
            }
            None => return (seen, pages),
        }
        assert!(pages < 100, "paging does not end");
    }
}

#[test]
fn tasks_filters_and_cursor_pages_show_each_task_once_as_stored() {
    let env = TestEnv::new();
    add_user(&env, "shop1");
    add_user(&env, "shop2");
    insert_videos(&env, "shop1", 12, "2026-01-05 10:00:00", 1);
    insert_videos(&env, "shop2", 9, "2026-01-05 10:00:00", 1);
    backfill(&env, &[]);
    assert!(env.enqueue(&["noop", "--count", "6"]).status.success());
    // A spread of states, steps, errors and ages.
    let ids: Vec<i64> = env
        .sql("SELECT id FROM processing_tasks ORDER BY id")
        .iter()
        .map(|r| r[0].parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 27);
    env.sql(&format!(
        "UPDATE processing_tasks SET status = 3, error_message = 'ffmpeg: bad input', current_step = 'failed', retry_count = 3, completed_at = NOW() WHERE id IN ({}, {}, {})",
        ids[1], ids[5], ids[22]
    ));
    env.sql(&format!("UPDATE processing_tasks SET status = 2, progress = 100, current_step = 'completed', completed_at = NOW() WHERE id IN ({}, {})", ids[3], ids[24]));
    env.sql(&format!("UPDATE processing_tasks SET status = 1, progress = 40, current_step = 'transcribing' WHERE id = {}", ids[4]));
    env.sql(&format!("UPDATE processing_tasks SET status = 4 WHERE id = {}", ids[6]));
    env.sql(&format!("SET time_zone = '+00:00'; UPDATE processing_tasks SET created_at = '2025-12-01 00:00:00' WHERE id <= {}", ids[7]));
    let db = db_tasks(&env);

    // Newest first, 5 per page: every task once, in id order descending,
    // each equal to its row.
    let (seen, pages) = page_all(&env, &[], 5);
    assert_eq!(pages, 6);
    let seen_ids: Vec<i64> = seen.iter().map(|t| t["id"].as_i64().unwrap()).collect();
    let mut expected: Vec<i64> = ids.clone();
    expected.reverse();
    assert_eq!(seen_ids, expected);
    for task in &seen {
        let row = &db[&task["id"].as_i64().unwrap()];
        for (key, value) in row.as_object().unwrap() {
            assert_eq!(&task[key], value, "{key} of task {}", task["id"]);
        }
        assert!(task.get("started_at").is_some());
    }
    // Oldest first, and a page size that divides evenly.
    let (seen, _) = page_all(&env, &["--oldest-first"], 9);
    assert_eq!(seen.iter().map(|t| t["id"].as_i64().unwrap()).collect::<Vec<_>>(), ids);

    // Filters, alone and together, each paged: exactly the matching rows.
    let matching = |pred: &dyn Fn(&Value) -> bool| -> Vec<i64> {
        db.iter().filter(|(_, t)| pred(t)).map(|(id, _)| *id).rev().collect()
    };
    let listed = |args: &[&str]| -> Vec<i64> {
        page_all(&env, args, 4).0.iter().map(|t| t["id"].as_i64().unwrap()).collect()
    };
    assert_eq!(listed(&["--status", "failed"]), matching(&|t| t["status"] == "failed"));
    assert_eq!(
        listed(&["--status", "failed", "--status", "completed"]),
        matching(&|t| t["status"] == "failed" || t["status"] == "completed")
    );
    assert_eq!(listed(&["--user", "shop2"]), matching(&|t| t["user"] == "shop2"));
    assert_eq!(listed(&["--type", "noop"]), matching(&|t| t["task_type"] == "noop"));
    assert_eq!(
        listed(&["--since", "2026-01-01"]),
        matching(&|t| t["created_at"].as_str().unwrap() >= "2026-01-01")
    );
    assert_eq!(
        listed(&[
            "--user",
            "shop1",
            "--status",
            "pending",
            "--type",
            "video_clip",
            "--since",
            "2025-12-01T00:00:01Z"
        ]),
        matching(&|t| t["user"] == "shop1"
            && t["status"] == "pending"
            && t["task_type"] == "video_clip"
            && t["created_at"].as_str().unwrap() > "2025-12-01T00:00:00")
    );
    assert!(listed(&["--status", "processing", "--type", "noop"]).is_empty());

    // The default page is 50, newest first; the table has a header and a row per task.
    let out = env.enqueue(&["tasks", "--status", "failed"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header[..5], ["ID", "TASK", "USER", "TYPE", "STATUS"], "{text}");
    assert_eq!(text.lines().count(), 4, "a header and three rows: {text}");
    assert_eq!(text.lines().filter(|l| l.contains("ffmpeg: bad input")).count(), 3, "{text}");
    let out = env.enqueue(&["tasks", "--limit", "2"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("--after {}", ids[25])));
}

#[test]
fn bad_tasks_filters_exit_2_with_one_line() {
    let env = TestEnv::new();
    for (args, needle) in [
        (vec!["--status", "done"], "--status"),
        (vec!["--user", "nobody"], "unknown user"),
        (vec!["--since", "last week"], "--since"),
        (vec!["--limit", "0"], "--limit"),
        (vec!["--after", "x"], "--after"),
        (vec!["--after", "-1"], "--after"),
    ] {
        let mut all = vec!["tasks"];
        all.extend_from_slice(&args);
        assert_refused(&env.enqueue(&all), needle);
    }
}
