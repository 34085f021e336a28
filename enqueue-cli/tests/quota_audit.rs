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
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_tasks"), 2, "the refused command wrote a task");
    // Operators may force it.
    assert!(env.enqueue(&["video", &video, "--user", "shop", "--force"]).status.success());

    // Completed video tasks are counted.
    let mut scheduler = env.spawn("scheduler", &["--exit-when-idle"], "scheduler");
    let mut worker = env.spawn("worker", &["--exit-when-idle"], "worker");
    assert!(env.wait_exit(&mut worker, Duration::from_secs(120), "worker").success());
    assert!(env.wait_exit(&mut scheduler, Duration::from_secs(30), "scheduler").success());
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_tasks WHERE status = 2"), 3);
    assert_eq!(env.count("SELECT used_quota FROM user_quotas WHERE quota_type = 'monthly_videos'"), 3);
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
    assert_eq!(env.enqueue(&["video", "/nonexistent.mp4", "--user", "shop"]).status.code(), Some(2));
    let out = env.enqueue(&["noop", "--count", "2", "--json"]);
    let id = String::from_utf8_lossy(&out.stdout).lines().next().unwrap().split('"').nth(3).unwrap().to_string();
    assert!(env.enqueue(&["cancel", &id]).status.success());
    assert!(env.enqueue(&["status", &id]).status.success()); // read-only: not audited

    let rows = env.sql(
        "SELECT operation, resource_type, COALESCE(resource_id, ''), status, COALESCE(error_message, ''), user_id IS NOT NULL, \
         JSON_VALUE(request_data, '$.argv[1]'), execution_time >= 0 FROM operation_logs ORDER BY id",
    );
    let summary: Vec<(String, String)> = rows.iter().map(|r| (r[0].clone(), r[3].clone())).collect();
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
