//! Quotas (`user_quotas.monthly_videos`) and the audit trail
//! (`operation_logs`) of state-changing commands.

mod support;

use std::time::Duration;
use support::{project_root, TestEnv};

fn silent_video() -> String {
    project_root().join("fixtures/videos/silent.mp4").to_str().unwrap().to_string()
}

#[test]
fn monthly_video_quota_is_checked_counted_and_reset() {
    let env = TestEnv::new();
    assert!(env.enqueue(&["user", "add", "shop", "--email", "shop@example.com"]).status.success());
    let out = env.enqueue(&["quota", "set", "shop", "--monthly-videos", "2", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let video = silent_video();

    // One in flight + one new fit; a third does not, and the error names the quota.
    assert!(env.enqueue(&["video", &video, "--user", "shop"]).status.success());
    assert!(env.enqueue(&["video", &video, "--user", "shop"]).status.success());
    let refused = env.enqueue(&["video", &video, "--user", "shop"]);
    assert_eq!(refused.status.code(), Some(2));
    let reason = String::from_utf8_lossy(&refused.stderr);
    assert!(reason.contains("quota monthly_videos") && reason.contains("\"shop\""), "{reason}");
    assert_eq!(reason.trim().lines().count(), 1);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM processing_tasks"),
        2,
        "the refused command wrote a task"
    );
    // Operators may force it.
    assert!(env.enqueue(&["video", &video, "--user", "shop", "--force"]).status.success());

    // Completed video tasks are counted.
    let mut scheduler = env.spawn("scheduler", &["--exit-when-idle"], "scheduler");
    let mut worker = env.spawn("worker", &["--exit-when-idle"], "worker");
    assert!(env.wait_exit(&mut worker, Duration::from_secs(120), "worker").success());
    assert!(env.wait_exit(&mut scheduler, Duration::from_secs(30), "scheduler").success());
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_tasks WHERE status = 2"), 3);
    assert_eq!(
        env.count("SELECT used_quota FROM user_quotas WHERE quota_type = 'monthly_videos'"),
        3
    );
    assert_eq!(env.enqueue(&["video", &video, "--user", "shop"]).status.code(), Some(2));

    // A new period starts with nothing used.
    env.sql("UPDATE user_quotas SET last_reset_at = NOW() - INTERVAL 40 DAY");
    assert!(env.enqueue(&["video", &video, "--user", "shop"]).status.success());
    assert_eq!(env.count("SELECT used_quota FROM user_quotas"), 0);
}

#[test]
fn state_changing_commands_are_audited() {
    let env = TestEnv::new();
    assert!(env.enqueue(&["user", "add", "shop", "--email", "shop@example.com"]).status.success());
    assert!(env.enqueue(&["video", &silent_video(), "--user", "shop"]).status.success());
    assert_eq!(
        env.enqueue(&["video", "/nonexistent.mp4", "--user", "shop"]).status.code(),
        Some(2)
    );
    let out = env.enqueue(&["noop", "--count", "2", "--json"]);
    let id = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap()
        .split('"')
        .nth(3)
        .unwrap()
        .to_string();
    assert!(env.enqueue(&["cancel", &id]).status.success());
    assert!(env.enqueue(&["status", &id]).status.success()); // read-only: not audited

    let rows = env.sql(
        "SELECT operation, resource_type, COALESCE(resource_id, ''), status, COALESCE(error_message, ''), user_id IS NOT NULL, \
         JSON_VALUE(request_data, '$.argv[1]'), execution_time >= 0 FROM operation_logs ORDER BY id",
    );
    let summary: Vec<(String, String)> =
        rows.iter().map(|r| (r[0].clone(), r[3].clone())).collect();
    assert_eq!(
        summary,
        vec![
            ("enqueue migrate".to_string(), "1".to_string()), // by the test set-up
            ("enqueue user add".into(), "1".into()),
            ("enqueue video".into(), "1".into()),
            ("enqueue video".into(), "0".into()),
            ("enqueue noop".into(), "1".into()),
            ("enqueue cancel".into(), "1".into()),
        ]
    );
    assert_eq!(rows[2][5], "1", "the video's owner is recorded");
    assert!(rows[3][4].contains("/nonexistent.mp4"), "the failure's reason: {:?}", rows[3][4]);
    assert_eq!(rows[5][2], id, "cancel names its task");
    assert_eq!(rows[2][6], "video");
    assert!(rows.iter().all(|r| r[7] == "1"));
}

#[test]
fn parallel_enqueues_for_the_last_video_of_a_quota_give_exactly_one_task() {
    let env = TestEnv::new();
    assert!(env.enqueue(&["user", "add", "shop", "--email", "shop@example.com"]).status.success());
    assert!(env.enqueue(&["quota", "set", "shop", "--monthly-videos", "1"]).status.success());
    // Mid-period (no lazy reset due, whose UPDATE would lock the row anyway).
    env.sql("UPDATE user_quotas SET last_reset_at = NOW()");
    // Both start at once. (Their windows rarely overlap by chance here;
    // the test below makes the overlap certain.)
    let files = [(); 2].map(|_| project_root().join("fixtures/videos/en-jfk.mp4"));
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            env.command("enqueue")
                .args(["video", f.to_str().unwrap(), "--user", "shop", "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let codes: Vec<Option<i32>> = outputs.iter().map(|o| o.status.code()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == Some(0)).count(),
        1,
        "exactly one succeeds: {codes:?}"
    );
    for refused in outputs.iter().filter(|o| o.status.code() != Some(0)) {
        assert_eq!(refused.status.code(), Some(2));
        let reason = String::from_utf8_lossy(&refused.stderr);
        assert!(reason.contains("quota monthly_videos"), "{reason}");
        assert_eq!(reason.trim().lines().count(), 1, "{reason}");
    }
    // No orphan rows or files: one video, one task, one stored object.
    assert_eq!(env.count("SELECT COUNT(*) FROM videos"), 1);
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_tasks"), 1);
    let stored = env.stored_files();
    let path = &env.sql("SELECT file_path FROM videos")[0][0];
    assert_eq!(stored, vec![path.clone()], "stored objects");
}

#[test]
fn backfill_respects_quotas_unless_forced() {
    let env = TestEnv::new();
    assert!(env.enqueue(&["user", "add", "shop", "--email", "shop@example.com"]).status.success());
    let video = silent_video();
    for _ in 0..3 {
        assert!(env.enqueue(&["video", &video, "--user", "shop"]).status.success());
    }
    // The uploads' own tasks are cancelled: none in flight, none completed.
    let ids: Vec<String> =
        env.sql("SELECT task_id FROM processing_tasks").into_iter().map(|r| r[0].clone()).collect();
    let mut args = vec!["cancel"];
    args.extend(ids.iter().map(String::as_str));
    assert!(env.enqueue(&args).status.success());
    assert!(env.enqueue(&["quota", "set", "shop", "--monthly-videos", "1"]).status.success());

    let out = env.enqueue(&["backfill", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["created"], 1, "{summary}");
    assert_eq!(summary["skipped_quota"], 2, "{summary}");
    assert_eq!(summary["over_quota_users"][0], "shop", "{summary}");
    let forced = env.enqueue(&["backfill", "--force", "--json"]);
    let summary: serde_json::Value = serde_json::from_slice(&forced.stdout).unwrap();
    assert_eq!(summary["created"], 2, "{summary}");
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_tasks WHERE status = 0"), 3);
}

#[test]
fn an_enqueue_waits_for_a_concurrent_one_holding_the_quota_and_then_sees_its_task() {
    use std::io::{BufRead, BufReader, Write};
    let env = TestEnv::new();
    assert!(env.enqueue(&["user", "add", "shop", "--email", "shop@example.com"]).status.success());
    assert!(env.enqueue(&["quota", "set", "shop", "--monthly-videos", "1"]).status.success());
    env.sql("UPDATE user_quotas SET last_reset_at = NOW()");
    // Another enqueue in the middle of its transaction: the quota row
    // locked, the last video's task written, not yet committed.
    let mut other = env
        .sql_client()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = other.stdin.take().unwrap();
    let mut stdout = BufReader::new(other.stdout.take().unwrap());
    writeln!(
        stdin,
        "BEGIN; SELECT id FROM users WHERE username = 'shop' FOR UPDATE; \
         SELECT total_quota FROM user_quotas FOR UPDATE; \
         INSERT INTO videos (user_id, filename, original_filename, file_path, file_size) SELECT id, 'x', 'x', 'videos/x.mp4', 1 FROM users; \
         INSERT INTO processing_tasks (task_id, user_id, video_id, task_type) SELECT 'other', user_id, id, 'video_clip' FROM videos; \
         SELECT 'held';"
    )
    .unwrap();
    let mut line = String::new();
    while line.trim() != "held" {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "the other session ended");
    }
    let video = project_root().join("fixtures/videos/en-jfk.mp4");
    let mut enqueue = env
        .command("enqueue")
        .args(["video", video.to_str().unwrap(), "--user", "shop"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It must wait for the lock, not decide on what it can see: its
    // locking read shows in the process list while it waits.
    let waiting = "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                   WHERE DB = DATABASE() AND COMMAND = 'Execute' AND INFO LIKE '%FOR UPDATE'";
    env.wait_until(Duration::from_secs(30), "the enqueue to wait for the lock (or exit)", || {
        env.count(waiting) > 0 || enqueue.try_wait().unwrap().is_some()
    });
    assert!(
        enqueue.try_wait().unwrap().is_none(),
        "the enqueue decided without waiting for the other transaction"
    );
    writeln!(stdin, "COMMIT;").unwrap();
    drop(stdin);
    let out = enqueue.wait_with_output().unwrap();
    let reason = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{reason}");
    assert!(
        reason.contains("quota monthly_videos") && reason.contains("1 in progress"),
        "{reason}"
    );
    let _ = other.wait();
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_tasks"), 1);
    assert_eq!(env.count("SELECT COUNT(*) FROM videos"), 1);
    assert!(
        env.stored_files().is_empty(),
        "the refused enqueue left files: {:?}",
        env.stored_files()
    );
}
