//! Bad input to the CLI: exit 2, one line on stderr, nothing written.
//! And the good path of `enqueue video`: probe, hash, copy, rows.

mod support;

use support::{make_video, TestEnv};

/// Rows that any enqueue command could have written.
fn rows(env: &TestEnv) -> (i64, i64) {
    (env.count("SELECT COUNT(*) FROM videos"), env.count("SELECT COUNT(*) FROM processing_tasks"))
}

/// Asserts exit 2 with exactly one line on stderr containing `needle`.
fn assert_refused(out: &std::process::Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "exit code; stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line expected: {stderr:?}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {:?}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn bad_input_exits_2_with_one_line_and_writes_nothing() {
    let env = TestEnv::new();
    assert!(env
        .enqueue(&["user", "add", "shop1", "--email", "shop1@example.com"])
        .status
        .success());
    let video = env.dir.join("ok.mp4");
    make_video(&video, 2, true);
    let video = video.to_str().unwrap();
    let text = env.dir.join("notes.mp4");
    std::fs::write(&text, "this is not a video").unwrap();
    let empty = env.dir.join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let silent = env.dir.join("noaudio.mp4");
    make_video(&silent, 2, false);
    let before = rows(&env);

    assert_refused(
        &env.enqueue(&["video", "/nonexistent/clip.mp4", "--user", "shop1"]),
        "/nonexistent/clip.mp4",
    );
    assert_refused(&env.enqueue(&["video", video, "--user", "nobody"]), "unknown user");
    assert_refused(
        &env.enqueue(&["video", video, "--user", "shop1", "--priority", "0"]),
        "priority",
    );
    assert_refused(
        &env.enqueue(&["video", video, "--user", "shop1", "--priority", "11"]),
        "priority",
    );
    assert_refused(&env.enqueue(&["noop", "--count", "3", "--priority", "11"]), "priority");
    assert_refused(
        &env.enqueue(&["video", video, "--user", "shop1", "--config", "{not json"]),
        "--config",
    );
    assert_refused(
        &env.enqueue(&["video", video, "--user", "shop1", "--config", "[1,2]"]),
        "JSON object",
    );
    // A typo in a config key is refused at enqueue, naming the key.
    assert_refused(
        &env.enqueue(&["video", video, "--user", "shop1", "--config", r#"{"langauge":"zh"}"#]),
        "unknown field `langauge`",
    );
    assert_refused(
        &env.enqueue(&["noop", "--count", "1", "--config", r#"{"sleep_ms":-1}"#]),
        "invalid noop config",
    );
    assert_refused(
        &env.enqueue(&["video", text.to_str().unwrap(), "--user", "shop1"]),
        "not a readable media file",
    );
    assert_refused(&env.enqueue(&["video", empty.to_str().unwrap(), "--user", "shop1"]), "empty");
    assert_refused(
        &env.enqueue(&["video", silent.to_str().unwrap(), "--user", "shop1"]),
        "no audio",
    );
    // One bad file among good ones: nothing is registered.
    assert_refused(
        &env.enqueue(&["video", video, "/nonexistent/b.mp4", "--user", "shop1"]),
        "/nonexistent/b.mp4",
    );
    assert_refused(&env.enqueue(&["task", "999999"]), "no video");
    assert_refused(&env.enqueue(&["status", "no-such-task"]), "no task");
    assert_refused(
        &env.enqueue(&["user", "add", "shop1", "--email", "other@example.com"]),
        "already exists",
    );
    assert_eq!(rows(&env), before, "refused commands wrote rows");

    // Unreachable database, with a password that must not be printed.
    let out = env
        .command("enqueue")
        .env("DATABASE_URL", format!("mysql://root:sekret@127.0.0.1:{}/x", support::free_port()))
        .args(["noop", "--count", "1"])
        .output()
        .unwrap();
    assert_refused(&out, "cannot connect to the database");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("sekret"), "password leaked");
    assert_eq!(rows(&env), before);
}

#[test]
fn video_registers_file_metadata_and_a_pending_task() {
    let env = TestEnv::new();
    assert!(env
        .enqueue(&["user", "add", "shop2", "--email", "shop2@example.com"])
        .status
        .success());
    let path = env.dir.join("pitch.mp4");
    make_video(&path, 3, true);
    let out = env.enqueue(&[
        "video",
        path.to_str().unwrap(),
        "--user",
        "shop2",
        "--priority",
        "2",
        "--config",
        r#"{"language":"zh"}"#,
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let video_id = created["video_id"].as_i64().unwrap();
    let task_id = created["task_id"].as_str().unwrap();

    let row = &env.sql(&format!(
        "SELECT file_path, file_size, file_hash, mime_type, duration, width, height, frame_rate, original_filename FROM videos WHERE id = {video_id}"
    ))[0];
    let bytes = std::fs::read(&path).unwrap();
    let sha = {
        let out = std::process::Command::new("sha256sum").arg(&path).output().unwrap();
        String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
    };
    assert_eq!(row[2], sha, "file_hash is the SHA-256");
    assert_eq!(row[1], bytes.len().to_string());
    assert_eq!(row[3], "video/mp4");
    let duration: f64 = row[4].parse().unwrap();
    assert!((duration - 3.0).abs() < 0.1, "duration {duration}");
    assert_eq!((row[5].as_str(), row[6].as_str()), ("320", "240"));
    assert_eq!(row[7], "25.00");
    assert_eq!(row[8], "pitch.mp4");
    let stored = env.storage.join(&row[0]);
    assert_eq!(std::fs::read(&stored).unwrap(), bytes, "stored copy differs");

    let task = &env.sql(&format!("SELECT status, priority, task_type, JSON_VALUE(config, '$.language') FROM processing_tasks WHERE task_id = '{task_id}'"))[0];
    assert_eq!(task, &vec!["0".to_string(), "2".into(), "video_clip".into(), "zh".into()]);
    let cached = env.redis(&["GET", &format!("task:status:{task_id}")]);
    let cached: serde_json::Value = serde_json::from_str(cached.trim()).unwrap();
    assert_eq!(cached["status"], 0);
    let ttl: i64 = env.redis(&["TTL", &format!("task:status:{task_id}")]).trim().parse().unwrap();
    assert!(ttl > 3500 && ttl <= 3600, "ttl {ttl}");

    let status = env.enqueue(&["status", task_id, "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["status"], "pending");
    assert_eq!(status["task_id"], task_id);
}
