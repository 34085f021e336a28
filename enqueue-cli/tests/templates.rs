//! Templates end to end: `enqueue template` checks files and configs, a
//! task's templates are resolved and refused at enqueue, and the worker
//! stores a branded copy of every clip (intro + clip + outro, watermark,
//! captions), counting each template's use.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::{probe, project_root, TestEnv};

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg").args(["-v", "error", "-y"]).args(args).output().unwrap();
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn json_of(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Exit 2 with a one-line reason containing `want`.
fn refused(out: &std::process::Output, want: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(want), "{want:?} not in {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

/// Makes the template files: a red intro (1 s), a blue outro (1 s), a
/// small and a huge watermark, and a text file that is no media.
fn make_files(dir: &Path) -> [PathBuf; 5] {
    let p = |n: &str| dir.join(n);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=red:s=320x240:r=25:d=1",
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:r=48000:d=1",
        "-c:v",
        "libx264",
        "-c:a",
        "aac",
        "-shortest",
        p("intro.mp4").to_str().unwrap(),
    ]);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=blue:s=640x360:r=25:d=1",
        "-f",
        "lavfi",
        "-i",
        "sine=f=660:r=44100:d=1",
        "-c:v",
        "libx264",
        "-c:a",
        "aac",
        "-shortest",
        p("outro.mp4").to_str().unwrap(),
    ]);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=white:s=80x40",
        "-frames:v",
        "1",
        p("mark.png").to_str().unwrap(),
    ]);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=white:s=1000x1000",
        "-frames:v",
        "1",
        p("huge.png").to_str().unwrap(),
    ]);
    std::fs::write(p("notes.txt"), "not a video").unwrap();
    ["intro.mp4", "outro.mp4", "mark.png", "huge.png", "notes.txt"].map(p)
}

fn add(env: &TestEnv, args: &[&str]) -> i64 {
    let mut all = vec!["template", "add"];
    all.extend_from_slice(args);
    all.push("--json");
    json_of(&env.enqueue(&all))["id"].as_i64().unwrap()
}

#[test]
fn templates_are_checked_resolved_and_applied_to_every_clip() {
    let env = TestEnv::new();
    for user in ["shop", "other"] {
        let email = format!("{user}@example.com");
        assert!(env.enqueue(&["user", "add", user, "--email", &email]).status.success());
    }
    let dir = env.storage.parent().unwrap().join("template-files");
    std::fs::create_dir_all(&dir).unwrap();
    let [intro, outro, mark, huge, notes] = make_files(&dir);
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();

    // Bad templates are refused before anything is stored.
    let bad = |args: &[&str], want: &str| {
        let mut all = vec!["template", "add"];
        all.extend_from_slice(args);
        refused(&env.enqueue(&all), want);
    };
    bad(&[&s(&notes), "--type", "intro", "--name", "n", "--user", "shop"], "not a readable");
    bad(&[&s(&mark), "--type", "intro", "--name", "n", "--user", "shop"], "needs audio");
    bad(&[&s(&mark), "--type", "logo", "--name", "n", "--system"], "template type must be");
    bad(&["--type", "watermark", "--name", "n", "--system"], "needs a FILE");
    bad(&[&s(&mark), "--type", "captions", "--name", "n", "--system"], "has no file");
    let opacity = r#"{"opacity": 3}"#;
    bad(
        &[&s(&mark), "--type", "watermark", "--name", "n", "--system", "--config", opacity],
        "opacity",
    );
    bad(
        &["--type", "captions", "--name", "n", "--system", "--config", r#"{"colour":"red"}"#],
        "colour",
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM templates"), 0);

    let intro_id = add(&env, &[&s(&intro), "--type", "intro", "--name", "Intro", "--user", "shop"]);
    let outro_id = add(&env, &[&s(&outro), "--type", "outro", "--name", "Outro", "--system"]);
    let mark_cfg = r#"{"position": "top-right", "margin": 12, "opacity": 1.0}"#;
    let mark_id = add(
        &env,
        &[
            &s(&mark),
            "--type",
            "watermark",
            "--name",
            "Logo",
            "--user",
            "shop",
            "--config",
            mark_cfg,
        ],
    );
    let captions_id = add(
        &env,
        &[
            "--type",
            "captions",
            "--name",
            "Subs",
            "--system",
            "--config",
            r##"{"size": 30, "colour": "#FFFF00"}"##,
        ],
    );
    let private =
        add(&env, &[&s(&mark), "--type", "watermark", "--name", "Theirs", "--user", "other"]);
    let huge_id =
        add(&env, &[&s(&huge), "--type", "watermark", "--name", "Huge", "--user", "shop"]);
    let disabled = add(&env, &[&s(&outro), "--type", "outro", "--name", "Old", "--user", "shop"]);
    assert!(env.enqueue(&["template", "disable", &disabled.to_string()]).status.success());
    // Stored with a preview, probed.
    let row = &env.sql(&format!("SELECT file_path, preview_url, duration, width, height FROM templates WHERE id = {intro_id}"))[0];
    assert!(env.storage.join(&row[0]).is_file() && env.storage.join(&row[1]).is_file(), "{row:?}");
    assert_eq!(row[2..], ["1.00", "320", "240"]);
    let listed = env.enqueue(&["template", "list", "--user", "shop", "--json"]);
    let listed: Vec<i64> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_i64().unwrap())
        .collect();
    assert!(listed.contains(&intro_id) && listed.contains(&outro_id) && !listed.contains(&private));

    // A task may only name templates that exist, fit their slot, are
    // enabled, usable by its user, and (watermarks) fit the frame.
    let video = project_root().join("fixtures/videos/en-water-bottle.mp4");
    let video = video.to_str().unwrap();
    let with = |templates: &str| {
        let config = format!(r#"{{"language": "en", "templates": {templates}}}"#);
        env.enqueue(&["video", video, "--user", "shop", "--config", &config, "--json"])
    };
    refused(&with(r#"{"intro": "no-such-template"}"#), "no template");
    refused(
        &with(&format!(r#"{{"watermark": {private}}}"#)),
        "neither system, public nor this user's",
    );
    refused(&with(&format!(r#"{{"outro": {disabled}}}"#)), "is disabled");
    refused(&with(&format!(r#"{{"intro": {outro_id}}}"#)), "is a outro template");
    refused(&with(&format!(r#"{{"watermark": {huge_id}}}"#)), "larger than the video's");
    refused(&with(r#"{"logo": 1}"#), "unknown field");
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_tasks"), 0, "nothing was enqueued");

    let all = format!(
        r#"{{"intro": {intro_id}, "outro": {outro_id}, "watermark": {mark_id}, "captions": {captions_id}}}"#
    );
    let task = json_of(&with(&all))["task_id"].as_str().unwrap().to_string();
    let mut scheduler = env.spawn("scheduler", &["--exit-when-idle"], "scheduler");
    let mut worker = env.spawn("worker", &["--exit-when-idle"], "worker");
    assert!(env.wait_exit(&mut worker, Duration::from_secs(400), "worker").success());
    assert!(env.wait_exit(&mut scheduler, Duration::from_secs(30), "scheduler").success());
    let row = &env.sql(&format!(
        "SELECT status, error_message, id FROM processing_tasks WHERE task_id = '{task}'"
    ))[0];
    assert_eq!(row[0], "2", "not completed: {}", row[1]);

    let results = env.sql(&format!(
        "SELECT result_data FROM processing_results WHERE task_id = {} AND result_type = 'segment'",
        row[2]
    ));
    assert!(!results.is_empty(), "the fixture has selling points");
    for result in &results {
        let data: Value = serde_json::from_str(&result[0]).unwrap();
        let key = data["templated"]["file_path"].as_str().expect("a templated clip");
        let branded = env.storage.join(key);
        let plain: f64 = data["end_time"].as_f64().unwrap() - data["start_time"].as_f64().unwrap();
        let duration: f64 = probe(&branded, "v:0", "stream=duration").parse().unwrap();
        assert!(
            (duration - (1.0 + plain + 1.0)).abs() <= 1.0 / 25.0 + 1e-3,
            "{duration} vs {plain} + 2"
        );
        let audio: f64 = probe(&branded, "a:0", "stream=duration").parse().unwrap();
        assert!((audio - duration).abs() <= 0.05, "audio {audio} vs video {duration}");
        assert_eq!(
            data["templated"]["file_size"].as_u64(),
            Some(std::fs::metadata(&branded).unwrap().len())
        );
        // Its own subtitles play after the 1 s intro.
        let srt = std::fs::read_to_string(branded.with_extension("srt")).unwrap();
        let first = srt.lines().find_map(|l| l.split_once(" --> ")).expect("a cue").0;
        let secs: f64 = first.replace(',', ".").rsplit(':').next().unwrap().parse().unwrap();
        assert!(secs >= 1.0 - 1e-3, "the first cue starts at {first}, inside the intro");
        assert!(branded.with_extension("vtt").is_file());
        // The plain clip is kept too.
        let clip = env.storage.join(data["thumbnail"].as_str().unwrap().replace(".jpg", ".mp4"));
        assert!(clip.is_file(), "{}", clip.display());
    }
    let clips = results.len() as i64;
    for id in [intro_id, outro_id, mark_id, captions_id] {
        let uses = env.count(&format!("SELECT usage_count FROM templates WHERE id = {id}"));
        assert_eq!(uses, clips, "template {id} counted once per clip");
    }

    // The user's default_templates apply when a task names none.
    env.sql(&format!(
        "INSERT INTO user_configs (user_id, config_key, config_value) SELECT id, 'default_templates', '{{\"watermark\": {mark_id}}}' FROM users WHERE username = 'shop'"
    ));
    let video_id =
        env.count(&format!("SELECT video_id FROM processing_tasks WHERE task_id = '{task}'"));
    let out = json_of(&env.enqueue(&["task", &video_id.to_string(), "--json"]));
    let config = &env.sql(&format!(
        "SELECT config FROM processing_tasks WHERE task_id = '{}'",
        out["task_id"].as_str().unwrap()
    ))[0][0];
    let config: Value = serde_json::from_str(config).unwrap();
    assert_eq!(config["templates"]["watermark"], mark_id, "{config}");
}
