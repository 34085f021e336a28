//! The seed's caches and configuration: `user_configs` through
//! `enqueue config` and the `user:config:{user_id}` cache the worker reads,
//! `video:meta:{video_id}` read through and invalidated when the row
//! changes, and `system_configs` under the scheduler's and worker's flags.
//!
//! (Long on purpose: one scenario per test function, all on one harness.)

mod support;

use serde_json::{json, Value};
use std::process::{Child, Output, Stdio};
use std::time::Duration;
use support::{project_root, TestEnv};

fn assert_refused(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "exit code; stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line expected: {stderr:?}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {:?}", String::from_utf8_lossy(&out.stdout));
}

fn ok_json(out: &Output) -> Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

fn json_lines(out: &Output) -> Vec<Value> {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn add_user(env: &TestEnv, name: &str) -> i64 {
    let out =
        env.enqueue(&["user", "add", name, "--email", &format!("{name}@example.com"), "--json"]);
    ok_json(&out)["user_id"].as_i64().unwrap()
}

/// The cached JSON at `key`, if the key exists.
fn cached(env: &TestEnv, key: &str) -> Option<Value> {
    let text = env.redis(&["GET", key]);
    let text = text.trim();
    (!text.is_empty())
        .then(|| serde_json::from_str(text).unwrap_or_else(|_| panic!("{key}: {text}")))
}

fn ttl(env: &TestEnv, key: &str) -> i64 {
    env.redis(&["TTL", key]).trim().parse().unwrap()
}

/// Starts `bin` with info logs (the start-up lines) into `NAME.log`.
fn spawn_logged(
    env: &TestEnv,
    bin: &str,
    args: &[&str],
    extra_env: &[(&str, &str)],
    name: &str,
) -> Child {
    let log = std::fs::File::create(env.dir.join(format!("{name}.log"))).unwrap();
    let mut cmd = env.command(bin);
    cmd.env("RUST_LOG", "info");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.args(args).stdout(Stdio::null()).stderr(log).spawn().expect("spawning")
}

fn log_of(env: &TestEnv, name: &str) -> String {
    std::fs::read_to_string(env.dir.join(format!("{name}.log"))).unwrap_or_default()
}

/// The start-up line naming where each tunable setting came from.
fn settings_line(env: &TestEnv, name: &str) -> String {
    let mut line = String::new();
    env.wait_until(Duration::from_secs(20), "the settings line", || {
        line = log_of(env, name)
            .lines()
            .find(|l| l.contains("where each came from"))
            .unwrap_or_default()
            .to_string();
        !line.is_empty()
    });
    line
}

/// A worker run: name, flags, environment, expected lease, expected source.
type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)], f64, &'a str);

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn user_configs_are_checked_written_audited_and_invalidate_the_cache() {
    let env = TestEnv::new();
    let alice = add_user(&env, "alice");

    // Bad values are refused at once, with the reason, and write nothing.
    assert_refused(
        &env.enqueue(&[
            "config",
            "set",
            "alice",
            "selling_points",
            r#"{"thresholds": {"hook": 2}}"#,
        ]),
        "invalid selling_points: selling_points.thresholds.hook must be in [0, 1], got 2",
    );
    assert_refused(
        &env.enqueue(&[
            "config",
            "set",
            "alice",
            "selling_points",
            r#"{"thresholds": {"hooks": 0.5}}"#,
        ]),
        "unknown config key `selling_points.thresholds.hooks`",
    );
    assert_refused(
        &env.enqueue(&["config", "set", "alice", "selling_points", r#"{"min_clip_seconds": 40}"#]),
        "must not exceed max_clip_seconds",
    );
    assert_refused(
        &env.enqueue(&["config", "set", "alice", "default_templates", r#"{"banner": "tpl-1"}"#]),
        "invalid default_templates: unknown field `banner`, expected one of `intro`, `outro`, `watermark`, `captions`",
    );
    assert_refused(
        &env.enqueue(&["config", "set", "alice", "default_templates", r#"{"intro": true}"#]),
        "a template_id string or a positive numeric id",
    );
    assert_refused(
        &env.enqueue(&["config", "set", "alice", "colour", r#""red""#]),
        "unknown config key \"colour\" (one of: selling_points, default_templates, language)",
    );
    assert_refused(&env.enqueue(&["config", "set", "alice", "language", "zh"]), "is not JSON");
    assert_refused(
        &env.enqueue(&["config", "set", "alice", "language", r#""Chinese""#]),
        "two- or three-letter code",
    );
    assert_refused(&env.enqueue(&["config", "get", "alice", "colour"]), "unknown config key");
    assert_refused(
        &env.enqueue(&["config", "set", "bob", "language", r#""zh""#]),
        "unknown user \"bob\"",
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM user_configs"), 0);

    // A cached copy exists (as a worker left it): a write deletes it.
    let key = format!("user:config:{alice}");
    let stale = json!({"default_config": {"language": "zh"}, "watermark_templates": [], "updated_at": null});
    env.redis(&["SET", &key, &stale.to_string(), "EX", "43200"]);
    let templates = r#"{"intro": "tpl-intro", "watermark": 7}"#;
    let set = ok_json(&env.enqueue(&[
        "config",
        "set",
        "alice",
        "default_templates",
        templates,
        "--json",
    ]));
    assert_eq!(set["config_key"], "default_templates");
    assert_eq!(set["config_value"], json!({"intro": "tpl-intro", "watermark": 7}));
    assert!(set["updated_at"].as_str().unwrap().ends_with('Z'), "{set}");
    assert!(cached(&env, &key).is_none(), "user:config not deleted after the write");

    let points = r#"{"thresholds": {"promotion": 0.6}, "max_clip_seconds": 20}"#;
    assert!(env.enqueue(&["config", "set", "alice", "selling_points", points]).status.success());
    assert!(env.enqueue(&["config", "set", "alice", "language", r#""en""#]).status.success());
    // Setting again replaces the value in place.
    env.redis(&["SET", &key, &stale.to_string(), "EX", "43200"]);
    assert!(env.enqueue(&["config", "set", "alice", "language", r#""zh""#]).status.success());
    assert!(cached(&env, &key).is_none());

    let got = ok_json(&env.enqueue(&["config", "get", "alice", "language", "--json"]));
    assert_eq!(
        (got["config_key"].as_str(), got["config_value"].as_str()),
        (Some("language"), Some("zh"))
    );
    let listed = json_lines(&env.enqueue(&["config", "list", "alice", "--json"]));
    let keys: Vec<&str> = listed.iter().map(|v| v["config_key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["default_templates", "language", "selling_points"]);
    assert!(listed.iter().all(|v| v["updated_at"].is_string() && v["config_value"].is_object()
        || v["config_key"] == "language"));
    assert_eq!(env.count(&format!("SELECT COUNT(*) FROM user_configs WHERE user_id = {alice}")), 3);
    let text =
        String::from_utf8_lossy(&env.enqueue(&["config", "get", "alice", "selling_points"]).stdout)
            .to_string();
    assert!(text.contains("\"max_clip_seconds\":20"), "{text}");

    // Unset removes the row (and the cached copy).
    env.redis(&["SET", &key, &stale.to_string(), "EX", "43200"]);
    assert!(env.enqueue(&["config", "unset", "alice", "language"]).status.success());
    assert!(cached(&env, &key).is_none());
    let got = ok_json(&env.enqueue(&["config", "get", "alice", "language", "--json"]));
    assert!(got["config_value"].is_null());

    // Each write left an audit row naming the user and the key.
    let rows = env.sql(
        "SELECT operation, resource_type, resource_id, status, user_id FROM operation_logs \
         WHERE operation LIKE 'enqueue config%' ORDER BY id",
    );
    let ops: Vec<(&str, &str, &str)> =
        rows.iter().map(|r| (r[0].as_str(), r[2].as_str(), r[3].as_str())).collect();
    // The refused writes are audited as failures too (status 0).
    assert!(ops.contains(&("enqueue config set", "default_templates", "0")), "{ops:?}");
    assert!(ops.contains(&("enqueue config set", "default_templates", "1")), "{ops:?}");
    assert!(ops.contains(&("enqueue config unset", "language", "1")), "{ops:?}");
    assert!(rows
        .iter()
        .filter(|r| r[3] == "1")
        .all(|r| r[1] == "user_config" && r[4] == alice.to_string()));
}

#[test]
fn video_meta_is_read_through_the_cache_and_deleted_when_the_row_changes() {
    let env = TestEnv::new();
    add_user(&env, "shop");
    let file = project_root().join("fixtures/videos/silent.mp4");
    let out = ok_json(&env.enqueue(&["video", file.to_str().unwrap(), "--user", "shop", "--json"]));
    let (video_id, task_id) =
        (out["video_id"].as_i64().unwrap(), out["task_id"].as_str().unwrap().to_string());
    let key = format!("video:meta:{video_id}");
    assert!(cached(&env, &key).is_none());

    // Miss: read from the database, stored with the 1-day TTL and the seed's fields.
    let shown = ok_json(&env.enqueue(&["video-info", &video_id.to_string(), "--json"]));
    let row = &env
        .sql(&format!("SELECT filename, duration, file_size FROM videos WHERE id = {video_id}"))[0];
    let meta = cached(&env, &key).expect("video:meta filled on a miss");
    let mut fields: Vec<&str> = meta.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["duration", "file_size", "filename", "thumbnail_url"]);
    assert_eq!(meta["filename"], row[0].as_str());
    assert_eq!(meta["duration"].as_f64().unwrap(), row[1].parse::<f64>().unwrap());
    assert_eq!(meta["file_size"].as_i64().unwrap(), row[2].parse::<i64>().unwrap());
    assert!(meta["thumbnail_url"].is_null());
    assert_eq!(shown["filename"], meta["filename"]);
    assert_eq!(shown["video_id"], video_id);
    let left = ttl(&env, &key);
    assert!((86_340..=86_400).contains(&left), "TTL {left}");

    // Hit: what Redis holds is what is shown (the database is not read).
    let mut marked = meta.clone();
    marked["filename"] = json!("from-the-cache.mp4");
    env.redis(&["SET", &key, &marked.to_string(), "KEEPTTL"]);
    let shown = ok_json(&env.enqueue(&["video-info", &video_id.to_string(), "--json"]));
    assert_eq!(shown["filename"], "from-the-cache.mp4");

    // A change of the row (cancelling its task) deletes the key; the next
    // read fills it from the database again.
    assert!(env.enqueue(&["cancel", &task_id]).status.success());
    assert!(cached(&env, &key).is_none(), "video:meta not deleted after the cancel");
    let shown = ok_json(&env.enqueue(&["video-info", &video_id.to_string(), "--json"]));
    assert_eq!(shown["filename"], row[0].as_str());

    // An unknown id is bad input and caches nothing.
    assert_refused(&env.enqueue(&["video-info", "999999"]), "no video with id 999999");
    assert!(cached(&env, "video:meta:999999").is_none());
}

#[test]
fn the_worker_reads_user_config_through_the_cache() {
    let env = TestEnv::new();
    let shop = add_user(&env, "shop");
    let file = project_root().join("fixtures/videos/en-water-bottle.mp4");
    let enqueue = || {
        let out =
            ok_json(&env.enqueue(&["video", file.to_str().unwrap(), "--user", "shop", "--json"]));
        (out["video_id"].as_i64().unwrap(), out["task_id"].as_str().unwrap().to_string())
    };
    let run = |name: &str| {
        let mut scheduler =
            env.spawn("scheduler", &["--exit-when-idle"], &format!("scheduler-{name}"));
        let mut worker = env.spawn("worker", &["--exit-when-idle"], &format!("worker-{name}"));
        assert!(env.wait_exit(&mut worker, Duration::from_secs(240), "worker").success());
        assert!(env.wait_exit(&mut scheduler, Duration::from_secs(30), "scheduler").success());
    };
    let segments = |task_id: &str| {
        let row = &env.sql(&format!("SELECT id, status, COALESCE(error_message, '') FROM processing_tasks WHERE task_id = '{task_id}'"))[0];
        assert_eq!(row[1], "2", "task not completed: {}", row[2]);
        env.count(&format!("SELECT COUNT(*) FROM video_segments WHERE task_id = {}", row[0]))
    };
    let key = format!("user:config:{shop}");

    // The database has no configuration for the user; the cache says no
    // sentence can reach its type's threshold. The worker uses the cache.
    let (video_id, first) = enqueue();
    let unreachable = json!({"hook": 1.0, "material": 1.0, "effect": 1.0, "promotion": 1.0});
    let planted = json!({"default_config": {"selling_points": {"thresholds": unreachable}}, "watermark_templates": [], "updated_at": null});
    env.redis(&["SET", &key, &planted.to_string(), "EX", "600"]);
    // video:meta filled before the run; the worker's changes to the row delete it.
    assert!(env.enqueue(&["video-info", &video_id.to_string()]).status.success());
    assert!(cached(&env, &format!("video:meta:{video_id}")).is_some());
    run("cached");
    assert_eq!(segments(&first), 0, "the worker did not use the cached user config");
    assert!(
        cached(&env, &format!("video:meta:{video_id}")).is_none(),
        "video:meta not deleted after the worker's commit"
    );
    let shown = ok_json(&env.enqueue(&["video-info", &video_id.to_string(), "--json"]));
    assert!(shown["thumbnail_url"].as_str().is_some_and(|t| t.ends_with("video.jpg")), "{shown}");

    // A configuration write deletes the cached copy; the next task misses,
    // reads the database (language only: default thresholds) and fills the
    // key with the seed's fields and the 12-hour TTL.
    assert!(env.enqueue(&["config", "set", "shop", "language", r#""en""#]).status.success());
    assert!(cached(&env, &key).is_none());
    let (_, second) = enqueue();
    run("database");
    assert!(segments(&second) > 0, "default thresholds found no selling point");
    let filled = cached(&env, &key).expect("user:config filled by the worker");
    assert_eq!(filled["default_config"], json!({"language": "en"}));
    assert_eq!(filled["watermark_templates"], json!([]));
    assert!(filled["updated_at"].as_str().unwrap().ends_with('Z'), "{filled}");
    let left = ttl(&env, &key);
    assert!((43_000..=43_200).contains(&left), "TTL {left}");
    // The user's language reached whisper (the task's config named none).
    let language = env.sql(&format!(
        "SELECT JSON_VALUE(r.result_data, '$.language') FROM processing_results r JOIN processing_tasks t ON t.id = r.task_id \
         WHERE t.task_id = '{second}' AND r.result_type = 'transcript'"
    ));
    assert_eq!(language[0][0], "en");

    // A bad value written behind the CLI's back fails the task as bad input
    // (no retries), naming the user config.
    env.redis(&["DEL", &key]);
    env.sql(&format!(
        "INSERT INTO user_configs (user_id, config_key, config_value) VALUES ({shop}, 'selling_points', '{{\"thresholds\": {{\"hook\": 5}}}}')"
    ));
    let (_, third) = enqueue();
    run("bad");
    let row = &env.sql(&format!(
        "SELECT status, retry_count, error_message FROM processing_tasks WHERE task_id = '{third}'"
    ))[0];
    assert_eq!((row[0].as_str(), row[1].as_str()), ("3", "0"), "{row:?}");
    assert!(row[2].contains("user config selling_points"), "{row:?}");
}

#[test]
fn system_configs_are_checked_and_apply_under_flags_and_environment() {
    let env = TestEnv::new();

    // Checked before writing.
    assert_refused(
        &env.enqueue(&["system-config", "set", "lease_seconds", "0"]),
        "invalid lease_seconds: must be a whole number from 1 to 86400, not 0",
    );
    assert_refused(
        &env.enqueue(&["system-config", "set", "lease", "30"]),
        "unknown system config key \"lease\"",
    );
    assert_refused(
        &env.enqueue(&["system-config", "set", "max_clip_seconds", "1"]),
        "must not exceed max_clip_seconds",
    );
    assert_refused(
        &env.enqueue(&["system-config", "set", "caption_style", r##"{"color": "#FFFFFF"}"##]),
        "unknown field `color`",
    );
    assert_refused(
        &env.enqueue(&["system-config", "set", "caption_style", r#"{"colour": "white"}"#]),
        "colour must be #RRGGBB or #RRGGBBAA",
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM system_configs"), 0);

    for (key, value) in [
        ("lease_seconds", "45"),
        ("retry_base_ms", "250"),
        ("high_priority_threshold", "6"),
        ("max_wait_seconds", "120"),
        ("max_clip_seconds", "20"),
        (
            "caption_style",
            r##"{"font": "Noto Sans CJK SC", "size": 40, "colour": "#FFCC00", "outline": 3, "position": "bottom", "max_chars_per_line": 16}"##,
        ),
    ] {
        let set = ok_json(&env.enqueue(&["system-config", "set", key, value, "--json"]));
        assert_eq!(set["config_key"], key);
        assert_eq!(set["config_value"], serde_json::from_str::<Value>(value).unwrap());
    }
    let got = ok_json(&env.enqueue(&["system-config", "get", "lease_seconds", "--json"]));
    assert_eq!((got["config_value"].as_i64(), got["default"].as_i64()), (Some(45), Some(30)));
    assert_eq!(got["overridden_by"], json!({"flag": "--lease-seconds", "env": "LEASE_SECONDS"}));
    let listed = json_lines(&env.enqueue(&["system-config", "list", "--json"]));
    let unset = listed.iter().find(|v| v["config_key"] == "step_timeout_factor").unwrap();
    assert!(unset["config_value"].is_null() && unset["default"] == 5.0);
    assert_eq!(
        env.sql("SELECT is_public, description IS NOT NULL FROM system_configs WHERE config_key = 'caption_style'")[0],
        ["1", "1"]
    );
    assert!(env.count("SELECT COUNT(*) FROM operation_logs WHERE operation = 'enqueue system-config set' AND status = 1") == 6);
    // Clip limits are checked together with what is stored.
    assert_refused(
        &env.enqueue(&["system-config", "set", "min_clip_seconds", "25"]),
        "must not exceed max_clip_seconds (20)",
    );

    // The worker: system_configs where no flag is given; a flag or a
    // variable wins; the start-up line names each source.
    let lease_left = |env: &TestEnv| -> f64 {
        let mut left = 0.0;
        env.wait_until(Duration::from_secs(20), "a running task", || {
            let rows = env.sql("SELECT TIMESTAMPDIFF(MICROSECOND, NOW(3), lease_expires_at) / 1e6 FROM processing_tasks WHERE status = 1");
            left = rows.first().and_then(|r| r[0].parse().ok()).unwrap_or(0.0);
            left > 0.0
        });
        left
    };
    let cases: [Case; 3] = [
        ("stored", &[], &[], 45.0, "lease_seconds=45 (system_configs)"),
        (
            "flag",
            &["--lease-seconds", "20"],
            &[("LEASE_SECONDS", "25")],
            20.0,
            "lease_seconds=20 (flag)",
        ),
        ("env", &[], &[("LEASE_SECONDS", "25")], 25.0, "lease_seconds=25 (env)"),
    ];
    for (name, flags, vars, lease, expected) in cases {
        env.noop(1, &["--sleep-ms", "4000"]);
        let mut scheduler =
            env.spawn("scheduler", &["--exit-when-idle"], &format!("scheduler-{name}"));
        let mut args = vec!["--exit-when-idle"];
        args.extend_from_slice(flags);
        let mut worker = spawn_logged(&env, "worker", &args, vars, &format!("worker-{name}"));
        let left = lease_left(&env);
        assert!(
            left > lease - 2.5 && left <= lease + 0.5,
            "{name}: lease {left} s left, expected about {lease}"
        );
        let line = settings_line(&env, &format!("worker-{name}"));
        assert!(line.contains(expected), "{name}: {line}");
        assert!(line.contains("retry_base_ms=250 (system_configs)"), "{line}");
        assert!(line.contains("step_timeout_factor=5 (default)"), "{line}");
        assert!(line.contains("max_clip_seconds=20 (system_configs)"), "{line}");
        assert!(line.contains("min_clip_seconds=1.5 (default)"), "{line}");
        assert!(env.wait_exit(&mut worker, Duration::from_secs(60), "worker").success());
        assert!(env.wait_exit(&mut scheduler, Duration::from_secs(30), "scheduler").success());
    }

    // The scheduler: priority 5 is high with the stored threshold 6, and
    // normal again with the flag.
    let stored = env.noop(1, &["--priority", "5"]);
    let mut scheduler = spawn_logged(&env, "scheduler", &[], &[], "scheduler-stored");
    env.wait_until(Duration::from_secs(20), "the task in queue:high_priority", || {
        env.redis(&["LRANGE", "queue:high_priority", "0", "-1"]).contains(&stored[0])
    });
    let line = settings_line(&env, "scheduler-stored");
    assert!(line.contains("high_priority_threshold=6 (system_configs)"), "{line}");
    assert!(line.contains("max_wait_seconds=120 (system_configs)"), "{line}");
    stop(&mut scheduler);
    let flagged = env.noop(1, &["--priority", "5"]);
    let mut scheduler =
        spawn_logged(&env, "scheduler", &["--high-priority-threshold", "3"], &[], "scheduler-flag");
    env.wait_until(Duration::from_secs(20), "the task in queue:video_processing", || {
        env.redis(&["LRANGE", "queue:video_processing", "0", "-1"]).contains(&flagged[0])
    });
    let line = settings_line(&env, "scheduler-flag");
    assert!(line.contains("high_priority_threshold=3 (flag)"), "{line}");
    assert!(line.contains("max_wait_seconds=120 (system_configs)"), "{line}");
    stop(&mut scheduler);

    // Unset: the default applies again.
    assert!(env.enqueue(&["system-config", "unset", "high_priority_threshold"]).status.success());
    let got = ok_json(&env.enqueue(&["system-config", "get", "high_priority_threshold", "--json"]));
    assert!(got["config_value"].is_null());
}
