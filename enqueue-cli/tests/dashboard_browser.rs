//! The dashboard in a real browser (headless Chromium through
//! chromedriver), against the real server, scheduler, worker, MariaDB,
//! Redis and whisper: an operator logs in, watches a task's progress bar
//! advance to 100% live, plays each clip (the `<video>` element's duration
//! is the segment's, within a frame), and retries a failed task from the
//! page, confirming the dialog, and sees its status change.
//!
//! Screenshots of the main pages are written to `SCREENSHOT_DIR` when it
//! is set (the README's come from `SCREENSHOT_DIR=docs/images`), else to the
//! test's directory.

mod support;

use std::path::PathBuf;
use std::time::Duration;
use support::api::{spawn_beside, user_with_token, Api};
use support::browser::Browser;
use support::{project_root, TestEnv};

#[test]
fn an_operator_follows_plays_and_retries_in_the_browser() {
    let env = TestEnv::new();
    let shots = std::env::var("SCREENSHOT_DIR")
        .map(|d| project_root().join(d))
        .unwrap_or_else(|_| env.dir.clone());
    std::fs::create_dir_all(&shots).unwrap();
    let api = Api::start(&env, &[]);
    let (_, ops) = user_with_token(&env, "ops", true);
    let (_, shop) = user_with_token(&env, "shop", false);
    let video = project_root().join("fixtures/videos/en-water-bottle.mp4");
    let (status, created) = api.upload(&shop, &video);
    assert_eq!(status, 201, "{created:?}");
    let task_id = created["task_id"].as_str().unwrap().to_string();
    let failing = env.noop(1, &["--fail-rate", "1", "--max-retries", "0"])[0].clone();

    let browser = Browser::start(&env.dir);
    browser.open(&api.url("/login"));
    browser.type_into("input[name=token]", &ops);
    browser.click("button[type=submit]");
    browser.wait_for(
        Duration::from_secs(10),
        "the overview after login",
        "return location.pathname === '/' && !!document.querySelector('[data-live-overview]')",
    );
    assert_eq!(browser.url(), api.url("/"), "logged in, on the overview");

    // The task's page before any worker runs: 0%, then live to 100%.
    browser.open(&api.url(&format!("/tasks/{task_id}")));
    let start = browser.script("return document.getElementById('task-progress').value");
    assert_eq!(start, 0);
    let mut scheduler = spawn_beside(&env, "scheduler", api.port);
    let mut worker = spawn_beside(&env, "worker", api.port);
    let mut seen = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let value = browser.script(
            "const p = document.getElementById('task-progress'); \
             const s = document.querySelector('[data-live-task]'); \
             return p ? [p.value, s.dataset.final, document.querySelectorAll('video').length] : null",
        );
        if let Some(v) = value.as_array() {
            seen.insert(v[0].as_i64().unwrap_or(0));
            if v[1] == "true" && v[2].as_i64().unwrap_or(0) > 0 {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page never showed the task done: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seen.iter().any(|p| *p > 0 && *p < 100), "the bar moved through the steps: {seen:?}");
    assert_eq!(
        browser.script("return document.getElementById('task-percent').textContent"),
        "100%"
    );
    browser.screenshot(&shots.join("dashboard-task.png"));

    // Every clip plays: its duration is the segment's, within a frame.
    let clips = browser.script_async(
        "const done = arguments[0]; \
         const videos = [...document.querySelectorAll('video')]; \
         Promise.all(videos.map(v => v.readyState >= 1 ? v : new Promise((ok, bad) => { \
             v.addEventListener('loadedmetadata', () => ok(v), { once: true }); \
             v.addEventListener('error', () => bad(v.error && v.error.message), { once: true }); v.load(); }))) \
           .then(vs => done(vs.map(v => [v.duration, Number(v.dataset.duration)])), e => done(String(e)));",
    );
    let clips = clips.as_array().unwrap_or_else(|| panic!("clips did not load: {clips}"));
    assert!(!clips.is_empty());
    for clip in clips {
        let (played, segment) = (clip[0].as_f64().unwrap(), clip[1].as_f64().unwrap());
        assert!(
            (played - segment).abs() <= 1.0 / 25.0 + 0.001,
            "clip plays {played} s, segment is {segment} s"
        );
    }

    // The failed noop task, retried from its page with the confirmation.
    env.wait_until(Duration::from_secs(60), "the noop task to fail", || {
        env.count(&format!("SELECT status FROM processing_tasks WHERE task_id = '{failing}'")) == 3
    });
    let _ = worker.kill();
    let _ = worker.wait();
    browser.open(&api.url(&format!("/tasks/{failing}")));
    assert_eq!(
        browser.script("return document.querySelector('[data-status]').textContent"),
        "failed"
    );
    browser.click("button[value=retry]");
    browser.accept_dialog();
    browser.wait_for(Duration::from_secs(10), "the page to show the task pending", "return document.querySelector('[data-status]') && document.querySelector('[data-status]').textContent === 'pending'");
    assert_eq!(
        env.count(&format!("SELECT status FROM processing_tasks WHERE task_id = '{failing}'")),
        0
    );
    assert_eq!(
        env.count(
            "SELECT COUNT(*) FROM operation_logs WHERE operation = 'api retry' AND status = 1"
        ),
        1
    );

    // The other main pages, for the README.
    browser.open(&api.url("/tasks"));
    browser.wait_for(
        Duration::from_secs(5),
        "the task table",
        "return document.querySelectorAll('table.tasks tr').length > 2",
    );
    browser.screenshot(&shots.join("dashboard-tasks.png"));
    browser.open(&api.url("/"));
    browser.screenshot(&shots.join("dashboard-overview.png"));
    // The overview's numbers follow the fleet without a reload.
    let before = browser
        .script("return Number(document.querySelector('[data-count=cancelled]').textContent)");
    let late = env.noop(1, &[])[0].clone();
    assert!(env.enqueue(&["cancel", &late]).status.success());
    let want = before.as_i64().unwrap() + 1;
    browser.wait_for(
        Duration::from_secs(10),
        "the cancelled count to refresh",
        &format!("return Number(document.querySelector('[data-count=cancelled]').textContent) === {want}"),
    );
    for name in ["dashboard-task.png", "dashboard-tasks.png", "dashboard-overview.png"] {
        let size = std::fs::metadata(PathBuf::from(&shots).join(name)).unwrap().len();
        assert!(size > 10_000, "{name}: {size} bytes");
    }
    let _ = scheduler.kill();
    let _ = scheduler.wait();
}
