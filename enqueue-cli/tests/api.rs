//! The HTTP API against the real server, MariaDB, Redis, ffmpeg and
//! whisper: scoping across two users and an operator, every error status,
//! uploads (bad media, oversize, 50 MB with bounded memory), rate limits
//! counted in Redis, live progress over SSE in order, clips served with
//! `Range`, download packages through signed links, and the dashboard's
//! login, session cookie and CSRF checks.
//!
//! (Long on purpose: one scenario per function, each against its own
//! server, database and Redis.)

mod support;

use serde_json::{json, Value};
use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};
use support::api::{user_with_token, Api};
use support::{project_root, TestEnv};

fn fixture(name: &str) -> std::path::PathBuf {
    project_root().join("fixtures/videos").join(name)
}

/// An error answer: `status` and a one-line `{"error": ...}` containing `want`.
fn assert_error(got: &(u16, Value), status: u16, want: &str) {
    assert_eq!(got.0, status, "{:?}", got.1);
    let message = got.1["error"].as_str().unwrap_or_else(|| panic!("no error field: {:?}", got.1));
    assert!(message.contains(want), "{want:?} not in {message:?}");
    assert!(!message.contains('\n'), "one line: {message:?}");
}

#[test]
fn every_call_is_scoped_and_errors_are_json() {
    let env = TestEnv::new();
    let api = Api::start(&env, &[]);
    let (alice_id, alice) = user_with_token(&env, "alice", false);
    let (_, bob) = user_with_token(&env, "bob", false);
    let (_, ops) = user_with_token(&env, "ops", true);

    // No token, a wrong one: 401.
    let r = api.http.get(api.url("/api/v1/tasks")).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_error(&api.get("vc_not-a-real-token", "/api/v1/tasks"), 401, "token");

    // Alice uploads; only she and the operator see the task.
    let (status, created) = api.upload(&alice, &fixture("en-jfk.mp4"));
    assert_eq!(status, 201, "{created:?}");
    let task_id = created["task_id"].as_str().unwrap().to_string();
    let video_id = created["video_id"].as_i64().unwrap();
    let path = format!("/api/v1/tasks/{task_id}");
    let (status, task) = api.get(&alice, &path);
    assert_eq!((status, task["status"].as_str()), (200, Some("pending")), "{task:?}");
    assert_eq!(task["user_id"].as_i64(), Some(alice_id));
    assert_error(&api.get(&bob, &path), 404, "not found");
    assert_eq!(api.get(&ops, &path).0, 200);
    assert_error(&api.get(&bob, &format!("/api/v1/videos/{video_id}")), 404, "not found");
    assert_eq!(
        api.get(&alice, &format!("/api/v1/videos/{video_id}")).1["original_filename"],
        "en-jfk.mp4"
    );

    // Lists are scoped too.
    let count = |token: &str| api.get(token, "/api/v1/tasks").1["tasks"].as_array().unwrap().len();
    assert_eq!(count(&alice), 1);
    assert_eq!(count(&bob), 0);
    assert_eq!(count(&ops), 1);
    let (_, found) = api.get(&alice, "/api/v1/tasks?q=jfk");
    assert_eq!(found["tasks"][0]["task_id"], task_id.as_str());
    let (_, found) = api.get(&bob, &format!("/api/v1/tasks?q={task_id}"));
    assert_eq!(found["tasks"].as_array().unwrap().len(), 0, "search leaks nothing");
    assert_error(&api.get(&alice, "/api/v1/tasks?status=bogus"), 400, "unknown status");
    assert_error(&api.get(&alice, "/api/v1/tasks?limit=0"), 400, "limit");
    assert_error(&api.get(&alice, "/api/v1/tasks?colour=red"), 400, "colour");
    assert_error(&api.get(&bob, "/api/v1/tasks?user=alice"), 400, "only operators");

    // Creating tasks: bad JSON, unknown fields, another user's video.
    let r = api
        .http
        .post(api.url("/api/v1/tasks"))
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .unwrap();
    let bad = (r.status().as_u16(), r.json::<Value>().unwrap());
    assert_error(&bad, 400, "");
    assert_error(
        &api.post(&alice, "/api/v1/tasks", &json!({ "video_id": video_id, "colour": 1 })),
        400,
        "colour",
    );
    assert_error(
        &api.post(&alice, "/api/v1/tasks", &json!({ "video_id": video_id, "priority": 11 })),
        400,
        "priority",
    );
    assert_error(
        &api.post(&bob, "/api/v1/tasks", &json!({ "video_id": video_id })),
        404,
        "not found",
    );
    let (status, one) =
        api.post(&alice, "/api/v1/tasks", &json!({ "video_id": video_id, "priority": 2 }));
    assert_eq!(status, 201, "{one:?}");
    let batch = json!({ "tasks": [{ "video_id": video_id }, { "video_id": video_id, "config": { "language": "en" } }] });
    let (status, many) = api.post(&alice, "/api/v1/tasks/batch", &batch);
    assert_eq!((status, many["tasks"].as_array().map(Vec::len)), (201, Some(2)), "{many:?}");
    let all_or_none =
        json!({ "tasks": [{ "video_id": video_id }, { "video_id": video_id + 1000 }] });
    let before = env.count("SELECT COUNT(*) FROM processing_tasks");
    assert_error(&api.post(&alice, "/api/v1/tasks/batch", &all_or_none), 404, "not found");
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_tasks"), before, "nothing half-written");

    // Unusable media: 422 with the probe's reason; no row, no stored object.
    let junk = env.dir.join("notes.mp4");
    std::fs::write(&junk, "this is not a video\n".repeat(100)).unwrap();
    let (videos, objects) = (env.count("SELECT COUNT(*) FROM videos"), env.stored_files());
    let got = api.upload(&alice, &junk);
    assert_error(&got, 422, "notes.mp4");
    assert!(
        !got.1["error"].as_str().unwrap().contains(env.dir.to_str().unwrap()),
        "no server paths"
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM videos"), videos);
    assert_eq!(env.stored_files(), objects);
    let r = api.http.post(api.url("/api/v1/videos")).bearer_auth(&alice).body("x").send().unwrap();
    assert_eq!(r.status().as_u16(), 400, "not multipart");

    // Cancel and retry, scoped.
    assert_error(&api.post(&bob, &format!("{path}/cancel"), &json!({})), 404, "not found");
    let (status, cancelled) = api.post(&alice, &format!("{path}/cancel"), &json!({}));
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("cancelled")), "{cancelled:?}");
    let cached = env.redis(&["GET", &format!("task:status:{task_id}")]);
    assert!(cached.contains("\"status\":4"), "{cached}");
    assert_error(
        &api.post(&alice, &format!("{path}/retry?force=true"), &json!({})),
        403,
        "operator",
    );
    let (status, retried) = api.post(&alice, &format!("{path}/retry"), &json!({}));
    assert_eq!((status, retried["status"].as_str()), (200, Some("pending")), "{retried:?}");
    let (status, bulk) =
        api.post(&alice, "/api/v1/tasks/cancel", &json!({ "task_ids": [task_id] }));
    assert_eq!((status, bulk["changed"].as_i64()), (200, Some(1)), "{bulk:?}");
    assert_error(
        &api.post(&alice, "/api/v1/tasks/retry", &json!({ "failed_since": "2026-01-01" })),
        403,
        "operator",
    );
    let history = api.get(&alice, &format!("{path}/history")).1;
    let to: Vec<&str> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to_status"].as_str().unwrap())
        .collect();
    assert_eq!(to, ["pending", "cancelled", "pending", "cancelled"], "{history:?}");

    // The fleet is for operators.
    assert_error(&api.get(&alice, "/api/v1/queues"), 403, "operator");
    let (status, queues) = api.get(&ops, "/api/v1/queues");
    assert_eq!(status, 200);
    assert!(queues["queues"]["queue:video_processing"].is_number(), "{queues:?}");
    assert!(queues["tasks"]["cancelled"].as_i64().unwrap() >= 1);

    // Probes, metrics, templates, and the OpenAPI document matches the router.
    assert_eq!(api.http.get(api.url("/healthz")).send().unwrap().status().as_u16(), 200);
    let ready: Value = api.http.get(api.url("/readyz")).send().unwrap().json().unwrap();
    assert_eq!(ready["status"], "ready");
    let metrics = api.http.get(api.url("/metrics")).send().unwrap().text().unwrap();
    assert!(metrics.contains("videoclip_api_requests_total"), "{metrics}");
    assert!(metrics.contains("videoclip_tasks{status=\"cancelled\"} "), "{metrics}");
    assert_eq!(api.get(&alice, "/api/v1/templates").0, 200);
    let doc: Value = api.http.get(api.url("/api/v1/openapi.json")).send().unwrap().json().unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20);
    for (path, methods) in paths {
        for method in methods.as_object().unwrap().keys() {
            let url = api.url(&format!("/api/v1{}", path.replace('{', "x").replace('}', "")));
            let request = match method.as_str() {
                "get" => api.http.get(&url),
                "post" => api.http.post(&url).json(&json!({})),
                other => panic!("unexpected method {other}"),
            };
            let r = request.bearer_auth(&ops).send().unwrap();
            let status = r.status().as_u16();
            let text = r.text().unwrap_or_default();
            assert!(
                !text.contains("endpoint not found") && status != 405,
                "{method} {path}: {status} {text}"
            );
        }
    }
    assert_error(&api.get(&alice, "/api/v1/nothing-here"), 404, "endpoint");

    // Every change is audited with the caller's IP; no token is stored.
    let audited = env.count(
        &format!("SELECT COUNT(*) FROM operation_logs WHERE operation = 'api video upload' AND ip_address = '127.0.0.1' AND user_id = {alice_id} AND status = 1"),
    );
    assert_eq!(audited, 1);
    let refused = env.sql("SELECT error_message FROM operation_logs WHERE operation = 'api video upload' AND status = 0");
    // The junk file, the body without a form, and the OpenAPI walk's JSON post.
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(refused[0][0].contains("notes.mp4 is not a readable media file"), "{refused:?}");
    assert!(env.count("SELECT COUNT(*) FROM operation_logs WHERE operation = 'api cancel'") >= 2);
    for token in [&alice, &bob, &ops] {
        let leaked = env.count(&format!(
            "SELECT COUNT(*) FROM operation_logs WHERE CONCAT_WS(' ', request_data, response_data, error_message) LIKE '%{}%'",
            &token[3..]
        ));
        assert_eq!(leaked, 0, "a token reached operation_logs");
    }
    let log = std::fs::read_to_string(env.dir.join(format!("api-{}.log", api.port))).unwrap();
    assert!(
        ![&alice, &bob, &ops].iter().any(|t| log.contains(t.as_str())),
        "a token reached the log"
    );
}

#[test]
fn rate_limit_is_counted_per_user_and_endpoint() {
    let env = TestEnv::new();
    let api = Api::start(&env, &[("API_RATE_LIMIT", "3"), ("API_RATE_WINDOW_SECONDS", "3600")]);
    let (alice_id, alice) = user_with_token(&env, "alice", false);
    let (_, bob) = user_with_token(&env, "bob", false);
    for _ in 0..3 {
        assert_eq!(api.get(&alice, "/api/v1/tasks").0, 200);
    }
    let r = api.http.get(api.url("/api/v1/tasks")).bearer_auth(&alice).send().unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let retry_after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    let body: Value = r.json().unwrap();
    assert!(body["error"].as_str().unwrap().contains("rate limit"));
    // Another endpoint, another user: their own counters.
    assert_eq!(api.get(&alice, "/api/v1/templates").0, 200);
    assert_eq!(api.get(&bob, "/api/v1/tasks").0, 200);
    let key = format!("rate_limit:{alice_id}:GET:/api/v1/tasks");
    assert_eq!(env.redis(&["GET", &key]).trim(), "4");
    let ttl: i64 = env.redis(&["TTL", &key]).trim().parse().unwrap();
    assert!(ttl > 0 && ttl <= 3600, "{ttl}");
    // A route with a path parameter is one endpoint, whatever the id.
    for id in ["a", "b", "c", "d"] {
        api.get(&bob, &format!("/api/v1/tasks/{id}"));
    }
    assert_error(&api.get(&bob, "/api/v1/tasks/e"), 429, "rate limit");
}

#[test]
fn oversize_upload_is_refused_and_leaves_nothing() {
    let env = TestEnv::new();
    let api = Api::start(&env, &[("API_MAX_UPLOAD_BYTES", "50000")]);
    let (_, alice) = user_with_token(&env, "alice", false);
    let video = fixture("en-jfk.mp4");
    assert!(std::fs::metadata(&video).unwrap().len() > 150_000);
    assert_error(&api.upload(&alice, &video), 413, "50000 bytes");
    assert_eq!(env.count("SELECT COUNT(*) FROM videos"), 0);
    assert!(env.stored_files().is_empty());
    let leftovers = std::fs::read_dir(env.dir.join("uploads")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "temporary upload removed");
}

#[test]
fn a_50_mb_upload_streams_with_bounded_server_memory() {
    let env = TestEnv::new();
    let big = env.dir.join("big.mp4");
    // Lossless noise: about 50 MB for a few seconds of 720p.
    let out = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "nullsrc=s=1280x720:r=25,geq=random(1)*255:128:128",
            "-f",
            "lavfi",
            "-i",
            "sine=f=440:d=20",
        ])
        .args([
            "-t",
            "20",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-qp",
            "0",
            "-fs",
            "52500000",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .arg(&big)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let size = std::fs::metadata(&big).unwrap().len();
    assert!(size >= 45_000_000, "{size} bytes");
    let api = Api::start(&env, &[]);
    let (_, alice) = user_with_token(&env, "alice", false);
    assert_eq!(api.get(&alice, "/api/v1/tasks").0, 200);
    let (_, peak_before) = api.memory_kib();
    let (status, created) = api.upload(&alice, &big);
    assert_eq!(status, 201, "{created:?}");
    let (_, peak_after) = api.memory_kib();
    let grown_mib = (peak_after.saturating_sub(peak_before)) / 1024;
    eprintln!(
        "api peak RSS {} MiB -> {} MiB for a {} MB upload",
        peak_before / 1024,
        peak_after / 1024,
        size / 1_000_000
    );
    assert!(grown_mib < 24, "peak RSS grew {grown_mib} MiB for a {size}-byte upload");
    let stored = env.sql("SELECT file_size, file_path FROM videos")[0].clone();
    assert_eq!(stored[0], size.to_string());
    assert_eq!(std::fs::metadata(env.storage.join(&stored[1])).unwrap().len(), size);
}

/// Reads SSE events (name, id, JSON data) from `response` until `end`.
fn read_events(response: reqwest::blocking::Response) -> Vec<(String, u64, Value)> {
    let mut events = Vec::new();
    let (mut name, mut id, mut data) = (String::new(), 0u64, String::new());
    for line in std::io::BufReader::new(response).lines() {
        let line = line.unwrap();
        if line.is_empty() {
            if !data.is_empty() {
                let value: Value = serde_json::from_str(&data).unwrap();
                events.push((name.clone(), id, value));
                if name == "end" {
                    break;
                }
            }
            (name, data) = (String::new(), String::new());
        } else if let Some(v) = line.strip_prefix("event: ").or_else(|| line.strip_prefix("event:"))
        {
            name = v.to_string();
        } else if let Some(v) = line.strip_prefix("id: ").or_else(|| line.strip_prefix("id:")) {
            id = v.trim().parse().unwrap();
        } else if let Some(v) = line.strip_prefix("data: ").or_else(|| line.strip_prefix("data:")) {
            data.push_str(v);
        }
    }
    events
}

#[test]
fn live_progress_clips_and_downloads_of_a_real_video() {
    let env = TestEnv::new();
    let api = Api::start(&env, &[]);
    let (_, alice) = user_with_token(&env, "alice", false);
    let (_, bob) = user_with_token(&env, "bob", false);
    let (status, created) = api.upload(&alice, &fixture("en-water-bottle.mp4"));
    assert_eq!(status, 201, "{created:?}");
    let task_id = created["task_id"].as_str().unwrap().to_string();
    let events_url = api.url(&format!("/api/v1/tasks/{task_id}/events"));
    let stream = api.http.get(&events_url).bearer_auth(&alice).send().unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut scheduler = support::api::spawn_beside(&env, "scheduler", api.port);
    let mut worker = support::api::spawn_beside(&env, "worker", api.port);
    let events = read_events(stream);

    let rank =
        |s: &str| ["pending", "processing", "completed"].iter().position(|x| *x == s).unwrap();
    let statuses: Vec<&Value> =
        events.iter().filter(|(n, _, _)| n == "status").map(|(_, _, d)| d).collect();
    assert!(statuses.len() >= 3, "{events:?}");
    assert!(events.windows(2).all(|w| w[0].1 < w[1].1), "ids increase: {events:?}");
    for pair in statuses.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let (ra, rb) = (rank(a["status"].as_str().unwrap()), rank(b["status"].as_str().unwrap()));
        assert!(ra <= rb, "status went back: {a} then {b}");
        if ra == rb {
            assert!(
                a["progress"].as_i64() <= b["progress"].as_i64(),
                "progress went back: {a} then {b}"
            );
        }
    }
    assert!(statuses.iter().any(|s| s["status"] == "processing"), "{statuses:?}");
    let last = statuses.last().unwrap();
    assert_eq!(
        (last["status"].as_str(), last["progress"].as_i64()),
        (Some("completed"), Some(100)),
        "{last}"
    );
    assert_eq!(events.last().unwrap().0, "end");

    // Clips and thumbnails, seekable, scoped.
    let (_, listed) = api.get(&alice, &format!("/api/v1/tasks/{task_id}/segments"));
    let segments = listed["segments"].as_array().unwrap();
    assert!(!segments.is_empty(), "{listed:?}");
    for segment in segments {
        let clip_url = segment["clip_url"].as_str().unwrap();
        let size = segment["file_size"].as_u64().unwrap();
        let r = api
            .http
            .get(clip_url)
            .bearer_auth(&alice)
            .header("range", "bytes=0-99")
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 206);
        assert_eq!(r.headers()["content-range"].to_str().unwrap(), format!("bytes 0-99/{size}"));
        assert_eq!(r.bytes().unwrap().len(), 100);
        let r = api.http.get(clip_url).bearer_auth(&alice).send().unwrap();
        assert_eq!(r.headers()["content-type"].to_str().unwrap(), "video/mp4");
        assert_eq!(r.bytes().unwrap().len() as u64, size);
        let thumb = api
            .http
            .get(segment["thumbnail_url"].as_str().unwrap())
            .bearer_auth(&alice)
            .send()
            .unwrap();
        assert_eq!(thumb.headers()["content-type"].to_str().unwrap(), "image/jpeg");
        assert_eq!(api.http.get(clip_url).bearer_auth(&bob).send().unwrap().status().as_u16(), 404);
    }
    let (_, transcript) = api.get(&alice, &format!("/api/v1/tasks/{task_id}/transcript"));
    assert!(!transcript["analysis"]["sentences"].as_array().unwrap().is_empty(), "{transcript:?}");

    // A stream of a finished task: its state, then end.
    let stream = api
        .http
        .get(api.url(&format!("/api/v1/events?task_ids={task_id}")))
        .bearer_auth(&alice)
        .send()
        .unwrap();
    let again = read_events(stream);
    assert_eq!(again.len(), 2, "{again:?}");
    assert_eq!(again[0].2["status"], "completed");
    let stream = api
        .http
        .get(api.url(&format!("/api/v1/events?task_ids={task_id}")))
        .bearer_auth(&bob)
        .send()
        .unwrap();
    assert_eq!(stream.status().as_u16(), 404);

    // A download package of the task's clips, fetched by its signed link.
    let (status, asked) = api.post(&alice, "/api/v1/downloads", &json!({ "task_id": task_id }));
    assert_eq!(status, 202, "{asked:?}");
    let download = format!("/api/v1/downloads/{}", asked["download_id"].as_str().unwrap());
    assert_error(&api.get(&bob, &download), 404, "not found");
    let deadline = Instant::now() + Duration::from_secs(180);
    let record = loop {
        let (_, record) = api.get(&alice, &download);
        if record["status_name"] == "ready" {
            break record;
        }
        assert!(Instant::now() < deadline, "package not ready: {record:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let link = record["download_url"].as_str().unwrap();
    assert!(link.starts_with(&api.base), "{link}");
    let body = api.http.get(link).send().unwrap();
    assert_eq!(body.status().as_u16(), 200);
    assert!(body.headers()["content-disposition"].to_str().unwrap().contains(".zip"));
    assert_eq!(&body.bytes().unwrap()[..2], b"PK");
    assert_eq!(api.get(&alice, &download).1["download_count"], 1);
    let forged = format!("{}0", &link[..link.len() - 1]);
    let forged = if forged == link { format!("{}1", &link[..link.len() - 1]) } else { forged };
    assert_eq!(api.http.get(&forged).send().unwrap().status().as_u16(), 403);

    let _ = worker.kill();
    let _ = scheduler.kill();
    let _ = (worker.wait(), scheduler.wait());
}

/// The `vc_session` cookie of a login answer.
fn session_cookie(response: &reqwest::blocking::Response) -> String {
    let set = response.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    set.split(';').next().unwrap().to_string()
}

/// The CSRF token the page carries in its `csrf-token` meta tag.
fn csrf_of(page: &str) -> String {
    let marker = r#"name="csrf-token" content=""#;
    let at = page.find(marker).expect("csrf meta") + marker.len();
    page[at..].split('"').next().unwrap().to_string()
}

#[test]
fn dashboard_login_sessions_and_csrf() {
    let env = TestEnv::new();
    let api = Api::start(&env, &[]);
    let (_, ops) = user_with_token(&env, "ops", true);
    let (_, alice) = user_with_token(&env, "alice", false);
    let task_id = env.noop(1, &[])[0].clone();

    let r = api.http.get(api.url("/")).send().unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/login"));
    let r = api.http.post(api.url("/login")).form(&[("token", alice.as_str())]).send().unwrap();
    assert_eq!(r.status().as_u16(), 401, "users are not operators");
    let r = api.http.post(api.url("/login")).form(&[("token", "vc_wrong")]).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = api.http.post(api.url("/login")).form(&[("token", ops.as_str())]).send().unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let cookie = session_cookie(&r);
    let page = |path: &str| {
        let r = api.http.get(api.url(path)).header("cookie", &cookie).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    let (status, overview) = page("/");
    assert_eq!(status, 200);
    assert!(overview.contains("Overview") && overview.contains("queue:high_priority"));
    let csrf = csrf_of(&overview);
    assert!(csrf.len() >= 32);
    let (status, tasks) = page("/tasks");
    assert_eq!(status, 200);
    assert!(tasks.contains(&task_id));

    // A form post without the CSRF token changes nothing.
    let action = api.url(&format!("/tasks/{task_id}/action"));
    let r = api
        .http
        .post(&action)
        .header("cookie", &cookie)
        .form(&[("action", "cancel")])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = api
        .http
        .post(&action)
        .header("cookie", &cookie)
        .form(&[("action", "cancel"), ("csrf", "0".repeat(csrf.len()).as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(
        env.count(&format!("SELECT status FROM processing_tasks WHERE task_id = '{task_id}'")),
        0
    );
    let r = api
        .http
        .post(&action)
        .header("cookie", &cookie)
        .form(&[("action", "cancel"), ("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        env.count(&format!("SELECT status FROM processing_tasks WHERE task_id = '{task_id}'")),
        4
    );

    // The JSON API with the cookie wants the header as well.
    let retry = api.url(&format!("/api/v1/tasks/{task_id}/retry"));
    let r = api.http.post(&retry).header("cookie", &cookie).send().unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = api
        .http
        .post(&retry)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        env.count(&format!("SELECT status FROM processing_tasks WHERE task_id = '{task_id}'")),
        0
    );
    assert!(env.count("SELECT COUNT(*) FROM operation_logs WHERE operation = 'api login' AND status = 1 AND ip_address = '127.0.0.1'") == 1);

    // Logging out ends the session (the old cookie no longer works).
    let r = api
        .http
        .post(api.url("/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(page("/").0, 303);

    // Revoking the token ends its sessions too.
    let r = api.http.post(api.url("/login")).form(&[("token", ops.as_str())]).send().unwrap();
    let cookie2 = session_cookie(&r);
    let listed = env.enqueue(&["token", "list", "ops", "--json"]);
    let token_id = serde_json::from_str::<Value>(
        String::from_utf8_lossy(&listed.stdout).lines().next().unwrap(),
    )
    .unwrap()["id"]
        .to_string();
    assert!(env.enqueue(&["token", "revoke", "ops", &token_id]).status.success());
    let r = api.http.get(api.url("/")).header("cookie", &cookie2).send().unwrap();
    assert_eq!(r.status().as_u16(), 303);
}

#[test]
fn read_only_server_refuses_every_change() {
    let env = TestEnv::new();
    // Behind https (PUBLIC_BASE_URL), the session cookie is Secure.
    let api = Api::start(
        &env,
        &[("API_READ_ONLY", "true"), ("PUBLIC_BASE_URL", "https://clips.example.test")],
    );
    let (_, ops) = user_with_token(&env, "ops", true);
    let task_id = env.noop(1, &[])[0].clone();
    assert_error(
        &api.post(&ops, &format!("/api/v1/tasks/{task_id}/cancel"), &json!({})),
        403,
        "read-only",
    );
    assert_error(&api.upload(&ops, Path::new(&fixture("en-jfk.mp4"))), 403, "read-only");
    assert_eq!(
        env.count(&format!("SELECT status FROM processing_tasks WHERE task_id = '{task_id}'")),
        0
    );
    let r = api.http.post(api.url("/login")).form(&[("token", ops.as_str())]).send().unwrap();
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("; Secure"));
    let cookie = session_cookie(&r);
    let page = api
        .http
        .get(api.url(&format!("/tasks/{task_id}")))
        .header("cookie", &cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("read-only") && !page.contains(r#"value="cancel""#), "{page}");
}

#[test]
fn on_s3_storage_files_redirect_to_short_lived_presigned_urls() {
    let moto = support::moto::Moto::start();
    let (url, _) = moto.new_bucket("api");
    let env = TestEnv::new();
    let mut settings = moto.settings();
    let endpoint = settings[0].1.clone();
    settings.push(("STORAGE_URL", url));
    let extra: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let api = Api::start(&env, &extra);
    let (_, alice) = user_with_token(&env, "alice", false);
    let (_, bob) = user_with_token(&env, "bob", false);
    let video = fixture("en-jfk.mp4");
    let (status, created) = api.upload(&alice, &video);
    assert_eq!(status, 201, "{created:?}");
    let file = api.url(&format!("/api/v1/videos/{}/file", created["video_id"]));
    assert_eq!(api.http.get(&file).bearer_auth(&bob).send().unwrap().status().as_u16(), 404);
    let r = api.http.get(&file).bearer_auth(&alice).send().unwrap();
    assert_eq!(r.status().as_u16(), 307);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&endpoint), "{location}");
    assert!(location.contains("X-Amz-Expires=900"), "15 minutes: {location}");
    let part = api.http.get(&location).header("range", "bytes=0-99").send().unwrap();
    assert_eq!(part.status().as_u16(), 206);
    let bytes = std::fs::read(&video).unwrap();
    assert_eq!(&part.bytes().unwrap()[..], &bytes[..100]);
}
