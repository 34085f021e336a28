//! Download packages against real servers: `enqueue download` creates the
//! record and a `download_package` task, the worker builds the zip or tar
//! (its contents match its manifest and unpack cleanly), the signed link
//! (`file://` storage) or presigned link (`s3://`, moto) fetches it and each
//! fetch is counted, links are refused once altered or expired, the sweeper
//! (a function, and the scheduler running it) marks expired records and
//! deletes their packages, and bad input exits 2 with one line and writes
//! nothing.
//!
//! Segments are `video_segments` rows inserted directly, with real small
//! clips made by ffmpeg in storage (running whisper is not what is tested).
//!
//! (Long on purpose: one scenario per test function, all on one harness.)

mod support;

use serde_json::Value;
use shared::storage::Storage;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::moto::{block_on, Moto};
use support::{make_video, TestEnv};

/// The signing key the binaries get (never printed, checked below).
const KEY: &str = "test-download-signing-key-0123456789";

/// `env.command(bin)` with the signing key, and without a whisper model
/// (download tasks need none, and a worker without one starts faster).
fn cmd(env: &TestEnv, bin: &str) -> Command {
    let mut command = env.command(bin);
    command.env("DOWNLOAD_SIGNING_KEY", KEY).env_remove("WHISPER_MODEL");
    command
}

fn enqueue(env: &TestEnv, args: &[&str]) -> Output {
    let out = cmd(env, "enqueue").args(args).output().expect("running enqueue");
    let all =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!all.contains(KEY), "the signing key was printed: {all}");
    out
}

/// `enqueue ARGS... --json`, expecting success: the last stdout line.
fn enqueue_json(env: &TestEnv, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = enqueue(env, &all);
    assert!(out.status.success(), "enqueue {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().expect("no output")).unwrap()
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

fn add_user(env: &TestEnv, name: &str) -> i64 {
    let out = enqueue(env, &["user", "add", name, "--email", &format!("{name}@example.com")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// A small clip (1.5 s, video and audio) and its thumbnail, made once per test.
fn media(env: &TestEnv) -> (PathBuf, PathBuf) {
    let clip = env.dir.join("clip.mp4");
    let thumb = env.dir.join("clip.jpg");
    if !clip.exists() {
        make_video(&clip, 2, true);
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-ss", "0.5", "-i"])
            .arg(&clip)
            .args(["-frames:v", "1"])
            .arg(&thumb)
            .status()
            .unwrap();
        assert!(status.success());
    }
    (clip, thumb)
}

/// A processed video of `user_id`: its `videos` row, a completed
/// `video_clip` task and one segment per entry of `statuses` (that status).
struct Processed {
    task_id: String,
    segments: Vec<String>,
    /// Storage key of each segment's clip.
    clip_keys: Vec<String>,
}

/// Inserts a processed video's rows and writes its clips, thumbnails and
/// (for the first segment) an SRT file with `put` (a storage key and a
/// local file to store under it).
fn processed_video(
    env: &TestEnv,
    user_id: i64,
    statuses: &[i8],
    put: &dyn Fn(&str, &Path),
) -> Processed {
    let (clip, thumb) = media(env);
    let task_id = uuid::Uuid::now_v7().to_string();
    let rows = env.sql(&format!(
        "INSERT INTO videos (user_id, filename, original_filename, file_path, file_size, status) \
         VALUES ({user_id}, 'v.mp4', 'v.mp4', 'videos/{user_id}/{task_id}.mp4', 1000, 3); \
         INSERT INTO processing_tasks (task_id, user_id, video_id, task_type, status, progress) \
         VALUES ('{task_id}', {user_id}, LAST_INSERT_ID(), 'video_clip', 2, 100); \
         SELECT id, video_id FROM processing_tasks WHERE task_id = '{task_id}'"
    ));
    let (task_pk, video_id) = (&rows[0][0], &rows[0][1]);
    let types = ["hook", "material", "effect", "promotion"];
    let prefix = format!("clips/{user_id}/{task_id}/attempt-1");
    let srt = env.dir.join("clip.srt");
    std::fs::write(&srt, "1\n00:00:00,000 --> 00:00:01,200\n这个锅真的不粘\n").unwrap();
    let (mut segments, mut clip_keys) = (Vec::new(), Vec::new());
    for (i, status) in statuses.iter().enumerate() {
        let segment_id = format!("{}-{i}", uuid::Uuid::now_v7());
        let clip_key = format!("{prefix}/{segment_id}.mp4");
        let thumb_key = format!("{prefix}/{segment_id}.jpg");
        put(&clip_key, &clip);
        put(&thumb_key, &thumb);
        if i == 0 {
            put(&format!("{prefix}/{segment_id}.srt"), &srt);
        }
        env.sql(&format!(
            "INSERT INTO video_segments (segment_id, task_id, user_id, original_video_id, selling_point_type, \
             start_time, end_time, confidence, title, description, file_path, file_size, thumbnail_url, status) \
             VALUES ('{segment_id}', {task_pk}, {user_id}, {video_id}, '{}', {}, {}, 0.{}, '卖点 {i}', 'clip {i}', \
             '{clip_key}', {}, '{thumb_key}', {status})",
            types[i % 4],
            i * 2,
            i * 2 + 1,
            80 + i,
            std::fs::metadata(&clip).unwrap().len(),
        ));
        segments.push(segment_id);
        clip_keys.push(clip_key);
    }
    Processed { task_id, segments, clip_keys }
}

/// [`processed_video`] on the test's `file://` storage.
fn local_video(env: &TestEnv, user_id: i64, statuses: &[i8]) -> Processed {
    let root = env.storage.clone();
    processed_video(env, user_id, statuses, &move |key, file| {
        let target = root.join(key);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(file, target).unwrap();
    })
}

/// Runs a scheduler and a worker (from `command`) until no task is left.
fn run_until_idle(env: &TestEnv, command: &dyn Fn(&str) -> Command) {
    let log = |name: &str| std::fs::File::create(env.dir.join(format!("{name}.log"))).unwrap();
    let mut scheduler = command("scheduler")
        .arg("--exit-when-idle")
        .stdout(Stdio::null())
        .stderr(log("scheduler"))
        .spawn()
        .unwrap();
    let mut worker = command("worker")
        .args(["--exit-when-idle", "--concurrency", "2"])
        .stdout(Stdio::null())
        .stderr(log("worker"))
        .spawn()
        .unwrap();
    let worker_status = env.wait_exit(&mut worker, Duration::from_secs(120), "worker");
    let scheduler_status = env.wait_exit(&mut scheduler, Duration::from_secs(30), "scheduler");
    let logs = std::fs::read_to_string(env.dir.join("worker.log")).unwrap()
        + &std::fs::read_to_string(env.dir.join("scheduler.log")).unwrap();
    assert!(worker_status.success() && scheduler_status.success(), "logs: {logs}");
    assert!(!logs.contains(KEY), "a log shows the signing key");
}

/// A background process, killed when dropped (also when a test fails).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a scheduler and a worker that run until dropped.
fn start_servers(env: &TestEnv, scheduler_args: &[&str]) -> (Running, Running) {
    let log = |name: &str| std::fs::File::create(env.dir.join(format!("{name}.log"))).unwrap();
    let scheduler = cmd(env, "scheduler")
        .args(scheduler_args)
        .stdout(Stdio::null())
        .stderr(log("scheduler-bg"))
        .spawn()
        .unwrap();
    let worker = cmd(env, "worker").stdout(Stdio::null()).stderr(log("worker-bg")).spawn().unwrap();
    (Running(scheduler), Running(worker))
}

/// One `download_records` column of a record.
fn record(env: &TestEnv, download_id: &str, column: &str) -> String {
    env.sql(&format!("SELECT {column} FROM download_records WHERE download_id = '{download_id}'"))
        [0][0]
        .clone()
}

/// Every entry of a zip, read to its end (so each CRC is checked).
fn read_zip(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut entries = BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().unwrap().to_string();
        let expected = if name.ends_with(".json") || name.ends_with(".srt") {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        assert_eq!(entry.compression(), expected, "{name}");
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        assert!(entries.insert(name, data).is_none());
    }
    // And the system's unzip agrees that it unpacks cleanly.
    if Command::new("unzip").arg("-v").output().is_ok() {
        let out = Command::new("unzip").arg("-tq").arg(path).output().unwrap();
        assert!(out.status.success(), "unzip -t: {}", String::from_utf8_lossy(&out.stdout));
    }
    entries
}

/// Every entry of a tar.
fn read_tar(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    let mut entries = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        assert!(entries.insert(name, data).is_none());
    }
    let out = Command::new("tar").arg("-tf").arg(path).output().unwrap();
    assert!(out.status.success(), "tar -t failed");
    entries
}

/// Checks a package's entries against its manifest, the segment rows and
/// the stored files (`clip` is what each clip entry must hold): exactly the
/// manifest's files plus the manifest, in the order of `segments`.
fn check_package(
    env: &TestEnv,
    entries: &BTreeMap<String, Vec<u8>>,
    segments: &[String],
    clip: &[u8],
    templated: bool,
) -> Value {
    let manifest: Value = serde_json::from_slice(&entries["manifest.json"]).unwrap();
    assert_eq!(manifest["templated"], templated);
    let clips = manifest["clips"].as_array().unwrap();
    let ids: Vec<&str> = clips.iter().map(|c| c["segment_id"].as_str().unwrap()).collect();
    assert_eq!(ids, segments.iter().map(String::as_str).collect::<Vec<_>>());
    let mut expected_names = vec!["manifest.json".to_string()];
    let (_, thumb) = media(env);
    let thumb = std::fs::read(thumb).unwrap();
    for entry in clips {
        let id = entry["segment_id"].as_str().unwrap();
        let row = &env.sql(&format!(
            "SELECT selling_point_type, start_time, end_time, duration, title, confidence FROM video_segments WHERE segment_id = '{id}'"
        ))[0];
        assert_eq!(entry["selling_point_type"], row[0].as_str());
        let number = |v: &Value| v.as_f64().unwrap();
        assert_eq!(number(&entry["start_time"]), row[1].parse::<f64>().unwrap());
        assert_eq!(number(&entry["end_time"]), row[2].parse::<f64>().unwrap());
        assert_eq!(number(&entry["duration"]), row[3].parse::<f64>().unwrap());
        assert_eq!(entry["title"], row[4].as_str());
        assert_eq!(number(&entry["confidence"]), row[5].parse::<f64>().unwrap());
        let clip_name = entry["clip"].as_str().unwrap();
        assert!(
            clip_name.starts_with("clips/") && clip_name.ends_with(&format!("{id}.mp4")),
            "{clip_name}"
        );
        assert_eq!(entries[clip_name], clip, "{clip_name} holds the clip");
        assert_eq!(entry["clip_size"], clip.len());
        let thumb_name = entry["thumbnail"].as_str().unwrap();
        assert_eq!(entries[thumb_name], thumb);
        expected_names.push(clip_name.to_string());
        expected_names.push(thumb_name.to_string());
        for subtitle in entry["subtitles"].as_array().unwrap() {
            let name = subtitle.as_str().unwrap();
            assert!(String::from_utf8_lossy(&entries[name]).contains("这个锅真的不粘"));
            expected_names.push(name.to_string());
        }
    }
    expected_names.sort();
    assert_eq!(entries.keys().cloned().collect::<Vec<_>>(), expected_names);
    manifest
}

#[test]
fn a_zip_package_matches_its_manifest_and_each_fetch_is_counted() {
    let env = TestEnv::new();
    let user = add_user(&env, "shop");
    let video = local_video(&env, user, &[1, 1, 1]);
    let ids: Vec<&str> = video.segments.iter().map(String::as_str).collect();

    let mut args = vec!["download"];
    args.extend(&ids);
    args.extend(["--user", "shop"]);
    let created = enqueue_json(&env, &args);
    let download_id = created["download_id"].as_str().unwrap().to_string();
    let task_id = created["task_id"].as_str().unwrap().to_string();
    assert_eq!(created["status"], 0);
    assert!(created["download_url"].is_null() && created["file_path"].is_null());
    let row = &env.sql(&format!(
        "SELECT user_id, download_type, segment_ids, file_format, package_format, status FROM download_records WHERE download_id = '{download_id}'"
    ))[0];
    assert_eq!(row[0], user.to_string());
    assert_eq!(
        (row[1].as_str(), row[3].as_str(), row[4].as_str(), row[5].as_str()),
        ("batch", "mp4", "zip", "0")
    );
    assert_eq!(serde_json::from_str::<Value>(&row[2]).unwrap(), serde_json::json!(ids));
    let task = &env.sql(&format!(
        "SELECT task_type, config, status FROM processing_tasks WHERE task_id = '{task_id}'"
    ))[0];
    assert_eq!((task[0].as_str(), task[2].as_str()), ("download_package", "0"));
    assert_eq!(
        serde_json::from_str::<Value>(&task[1]).unwrap()["download_id"],
        download_id.as_str()
    );

    run_until_idle(&env, &|bin| cmd(&env, bin));
    let status = &env.sql(&format!(
        "SELECT status, error_message FROM processing_tasks WHERE task_id = '{task_id}'"
    ))[0];
    assert_eq!(status[0], "2", "task not completed: {}", status[1]);
    let key = record(&env, &download_id, "file_path");
    assert_eq!(key, format!("downloads/{user}/{download_id}/attempt-1/{download_id}.zip"));
    assert_eq!(record(&env, &download_id, "status"), "1");
    let stored = env.storage.join(&key);
    assert_eq!(
        record(&env, &download_id, "file_size"),
        std::fs::metadata(&stored).unwrap().len().to_string()
    );
    let lifetime: i64 =
        record(&env, &download_id, "TIMESTAMPDIFF(SECOND, NOW(), expires_at)").parse().unwrap();
    assert!((86_000..=86_400).contains(&lifetime), "expires in {lifetime}s, not about 24h");
    let url = record(&env, &download_id, "download_url");
    assert!(
        url.starts_with(&format!(
            "http://127.0.0.1:8080/api/v1/downloads/{download_id}/file?expires="
        )) && url.contains("&sig="),
        "{url}"
    );

    // The link fetches the package; it is the stored file and matches its manifest.
    let out_path = env.dir.join("out.zip");
    let fetched = enqueue_json(&env, &["fetch-download", &url, "-o", out_path.to_str().unwrap()]);
    assert_eq!(fetched["download_count"], 1);
    assert_eq!(std::fs::read(&out_path).unwrap(), std::fs::read(&stored).unwrap());
    let clip = std::fs::read(media(&env).0).unwrap();
    let entries = read_zip(&out_path);
    let manifest = check_package(&env, &entries, &video.segments, &clip, false);
    assert_eq!(manifest["download_id"], download_id.as_str());
    assert_eq!(
        manifest["clips"][0]["subtitles"].as_array().unwrap().len(),
        1,
        "the first segment has an SRT"
    );

    // By id, into a directory: counted again, on the record and each segment.
    let fetched =
        enqueue_json(&env, &["fetch-download", &download_id, "-o", env.dir.to_str().unwrap()]);
    assert_eq!(fetched["output"], env.dir.join(format!("{download_id}.zip")).display().to_string());
    assert_eq!(record(&env, &download_id, "download_count"), "2");
    for segment in &video.segments {
        assert_eq!(
            env.count(&format!(
                "SELECT download_count FROM video_segments WHERE segment_id = '{segment}'"
            )),
            2
        );
    }

    // gc keeps a package its record refers to.
    let out = enqueue(&env, &["gc", "--older-than", "0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stored.exists(), "gc deleted a live package");
}

#[test]
fn a_task_packaged_as_tar_with_wait_prints_its_link() {
    let env = TestEnv::new();
    add_user(&env, "shop");
    let user = env.count("SELECT id FROM users WHERE username = 'shop'");
    // The deleted segment (status 0) is left out of a --task package.
    let video = local_video(&env, user, &[1, 0, 1]);
    let servers = start_servers(&env, &[]);
    let started = Instant::now();
    let out = enqueue(
        &env,
        &[
            "download",
            "--task",
            &video.task_id,
            "--format",
            "tar",
            "--wait",
            "--json",
            "--user",
            "shop",
        ],
    );
    let took = started.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    eprintln!("download --wait (tar of 2 clips): {took:.1?}");
    assert_eq!(shown["status"], 1);
    assert_eq!(shown["package_format"], "tar");
    let download_id = shown["download_id"].as_str().unwrap();
    assert_eq!(shown["file_path"], record(&env, download_id, "file_path").as_str());
    assert!(shown["file_path"].as_str().unwrap().ends_with(".tar"));
    assert_eq!(
        shown["file_size"].as_i64().unwrap().to_string(),
        record(&env, download_id, "file_size")
    );
    assert!(shown["expires_at"].as_str().unwrap().ends_with('Z'));
    let url = shown["download_url"].as_str().unwrap();

    // Without --json, --wait prints the link on the first line.
    let plain = enqueue(&env, &["download", &video.segments[2], "--wait"]);
    assert!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stderr));
    let first =
        String::from_utf8_lossy(&plain.stdout).lines().next().unwrap_or_default().to_string();
    assert!(
        first.starts_with("http://127.0.0.1:8080/api/v1/downloads/") && first.contains("sig="),
        "{first}"
    );
    // Its record is a single download.
    assert_eq!(
        env.count(
            "SELECT COUNT(*) FROM download_records WHERE download_type = 'single' AND status = 1"
        ),
        1
    );
    drop(servers);

    let out_path = env.dir.join("out.tar");
    enqueue_json(&env, &["fetch-download", url, "-o", out_path.to_str().unwrap()]);
    let clip = std::fs::read(media(&env).0).unwrap();
    let live = vec![video.segments[0].clone(), video.segments[2].clone()];
    check_package(&env, &read_tar(&out_path), &live, &clip, false);
}

#[test]
fn templated_clips_are_packaged_when_stored_and_refused_when_not() {
    let env = TestEnv::new();
    let user = add_user(&env, "shop");
    let video = local_video(&env, user, &[1, 1]);
    // Only the first segment has a templated clip (a different, longer video).
    let templated = env.dir.join("templated.mp4");
    make_video(&templated, 3, true);
    let key = video.clip_keys[0].replace(".mp4", ".templated.mp4");
    std::fs::copy(&templated, env.storage.join(&key)).unwrap();
    let out = enqueue(
        &env,
        &["download", &video.segments[0], &video.segments[1], "--templated", "--user", "shop"],
    );
    assert_refused(&out, &format!("segment {} has no templated clip", video.segments[1]));
    assert_eq!(env.count("SELECT COUNT(*) FROM download_records"), 0);
    let created =
        enqueue_json(&env, &["download", &video.segments[0], "--templated", "--user", "shop"]);
    run_until_idle(&env, &|bin| cmd(&env, bin));
    let download_id = created["download_id"].as_str().unwrap();
    assert_eq!(record(&env, download_id, "status"), "1");
    let out_path = env.dir.join("t.zip");
    enqueue_json(&env, &["fetch-download", download_id, "-o", out_path.to_str().unwrap()]);
    let entries = read_zip(&out_path);
    let manifest = check_package(
        &env,
        &entries,
        &video.segments[..1],
        &std::fs::read(&templated).unwrap(),
        true,
    );
    // The plain clip's SRT is not the templated clip's: none is packaged.
    assert!(manifest["clips"][0]["subtitles"].as_array().unwrap().is_empty());
}

#[test]
fn bad_input_is_refused_with_one_line_and_writes_nothing() {
    let env = TestEnv::new();
    let shop = add_user(&env, "shop");
    let rival = add_user(&env, "rival");
    let mine = local_video(&env, shop, &[1, 0]);
    let theirs = local_video(&env, rival, &[1]);
    let (live, deleted, other) = (&mine.segments[0], &mine.segments[1], &theirs.segments[0]);

    assert_refused(
        &enqueue(&env, &["download", other, "--user", "shop"]),
        "is not one of user \"shop\"'s segments",
    );
    assert_refused(
        &enqueue(&env, &["download", live, other, "--user", "shop"]),
        "is not one of user \"shop\"'s",
    );
    assert_refused(&enqueue(&env, &["download", live, other]), "belongs to another user");
    assert_refused(&enqueue(&env, &["download", deleted, "--user", "shop"]), "has status 0");
    assert_refused(
        &enqueue(&env, &["download", "no-such-segment", "--user", "shop"]),
        "unknown segment id \"no-such-segment\"",
    );
    assert_refused(&enqueue(&env, &["download", live, "--user", "nobody"]), "unknown user");
    assert_refused(&enqueue(&env, &["download", "--task", "no-such-task"]), "no task with id");
    assert_refused(
        &enqueue(&env, &["download", "--task", &theirs.task_id, "--user", "shop"]),
        "is not one of user \"shop\"'s tasks",
    );
    assert_refused(&enqueue(&env, &["download", live, "--expires-in", "8d"]), "between 1s and 7d");
    assert_refused(&enqueue(&env, &["download", live, "--expires-in", "0"]), "between 1s and 7d");
    assert_refused(&enqueue(&env, &["download", live, "--format", "rar"]), "rar");
    assert_refused(
        &enqueue(&env, &["download", live, "--task", &mine.task_id]),
        "cannot be used with",
    );
    assert_refused(&enqueue(&env, &["download"]), "required");
    // file:// storage signs links: no key, no download (and a short key is refused).
    let unsigned = cmd(&env, "enqueue")
        .env_remove("DOWNLOAD_SIGNING_KEY")
        .args(["download", live])
        .output()
        .unwrap();
    assert_refused(&unsigned, "DOWNLOAD_SIGNING_KEY is not set");
    let short = cmd(&env, "enqueue")
        .env("DOWNLOAD_SIGNING_KEY", "short")
        .args(["download", live])
        .output()
        .unwrap();
    assert_refused(&short, "too short");
    // A task of this type is only made by `enqueue download`.
    assert_refused(&enqueue(&env, &["backfill", "--task-type", "download_package"]), "download_id");

    assert_eq!(env.count("SELECT COUNT(*) FROM download_records"), 0);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM processing_tasks WHERE task_type = 'download_package'"),
        0
    );
    // Fetching what does not exist.
    assert_refused(&enqueue(&env, &["fetch-download", "no-such-download"]), "does not exist");
    assert_refused(
        &enqueue(&env, &["fetch-download", "http://127.0.0.1:9/elsewhere?x=1"]),
        "not a download link",
    );
}

#[test]
fn an_altered_link_is_refused_and_counts_nothing() {
    let env = TestEnv::new();
    let user = add_user(&env, "shop");
    let video = local_video(&env, user, &[1, 1]);
    let first = enqueue_json(&env, &["download", &video.segments[0], "--user", "shop"]);
    let second = enqueue_json(&env, &["download", &video.segments[1], "--user", "shop"]);
    run_until_idle(&env, &|bin| cmd(&env, bin));
    let id = first["download_id"].as_str().unwrap();
    let other = second["download_id"].as_str().unwrap();
    let url = record(&env, id, "download_url");
    let (head, sig) = url.rsplit_once("sig=").unwrap();
    let flipped = format!(
        "{head}sig={}{}",
        &sig[..sig.len() - 1],
        if sig.ends_with('0') { '1' } else { '0' }
    );
    assert_refused(&enqueue(&env, &["fetch-download", &flipped]), "signature does not match");
    let expires: i64 =
        url.split("expires=").nth(1).unwrap().split('&').next().unwrap().parse().unwrap();
    let later =
        url.replace(&format!("expires={expires}"), &format!("expires={}", expires + 86_400));
    assert_refused(&enqueue(&env, &["fetch-download", &later]), "signature does not match");
    let elsewhere = url.replace(id, other);
    assert_refused(&enqueue(&env, &["fetch-download", &elsewhere]), "signature does not match");
    let other_key = cmd(&env, "enqueue")
        .env("DOWNLOAD_SIGNING_KEY", "another-key-of-enough-length")
        .args(["fetch-download", &url])
        .output()
        .unwrap();
    assert_refused(&other_key, "signature does not match");
    // Correctly signed, but expired: refused for the expiry.
    let key = shared::downloads::SigningKey::new(KEY.as_bytes()).unwrap();
    let past =
        shared::downloads::sign::signed_url(&key, "http://example.com", id, expires - 2 * 86_400);
    assert_refused(&enqueue(&env, &["fetch-download", &past]), "the download link expired at");
    assert_eq!(record(&env, id, "download_count"), "0");
    assert_eq!(
        env.count(&format!(
            "SELECT download_count FROM video_segments WHERE segment_id = '{}'",
            video.segments[0]
        )),
        0
    );
    // The audit trail keeps no signature.
    let logged = env
        .sql("SELECT request_data FROM operation_logs WHERE operation = 'enqueue fetch-download'");
    assert!(!logged.is_empty() && logged.iter().all(|r| !r[0].contains(sig)), "{logged:?}");
    // The untouched link (on any host: the path is what counts) works.
    let moved = url.replace("http://127.0.0.1:8080", "https://clips.example.com");
    assert_eq!(
        enqueue_json(&env, &["fetch-download", &moved, "-o", env.dir.to_str().unwrap()])
            ["download_count"],
        1
    );
}

#[test]
fn an_expired_link_is_refused_and_the_sweeper_deletes_its_package() {
    let env = TestEnv::new();
    let user = add_user(&env, "shop");
    let video = local_video(&env, user, &[1]);
    let seg = video.segments[0].as_str();
    let short = enqueue_json(&env, &["download", seg, "--expires-in", "2s"]);
    let short2 = enqueue_json(&env, &["download", seg, "--expires-in", "2s", "--format", "tar"]);
    let long = enqueue_json(&env, &["download", seg, "--expires-in", "1h"]);
    run_until_idle(&env, &|bin| cmd(&env, bin));
    let ids: Vec<String> = [&short, &short2, &long]
        .iter()
        .map(|v| v["download_id"].as_str().unwrap().to_string())
        .collect();
    for id in &ids {
        assert_eq!(record(&env, id, "status"), "1", "download {id} not ready");
    }
    let url = record(&env, &ids[0], "download_url");
    let packages: Vec<PathBuf> =
        ids.iter().map(|id| env.storage.join(record(&env, id, "file_path"))).collect();
    env.wait_until(Duration::from_secs(10), "the short links to expire", || {
        env.count(&format!("SELECT COUNT(*) FROM download_records WHERE expires_at <= NOW() AND download_id IN ('{}', '{}')", ids[0], ids[1])) == 2
    });
    // Past its expiry, before any sweep: refused by the link and by id.
    assert_refused(&enqueue(&env, &["fetch-download", &url]), "the download link expired at");
    assert_refused(&enqueue(&env, &["fetch-download", &ids[1]]), "expired at");
    assert!(packages[0].exists(), "not swept yet");

    // The sweep (the function the scheduler runs): both short ones, not the long one.
    let report = block_on(async {
        let pool = shared::db::connect(&env.database_url, 1).await.unwrap();
        let mut conn = shared::db::conn(&pool).await.unwrap();
        let storage = Storage::Local { root: env.storage.clone() };
        shared::downloads::sweep_expired(&mut conn, &storage, 1).await.unwrap()
    });
    assert_eq!((report.expired, report.deleted_objects), (2, 2), "{report:?}");
    assert_eq!(
        (
            record(&env, &ids[0], "status"),
            record(&env, &ids[1], "status"),
            record(&env, &ids[2], "status")
        ),
        ("2".into(), "2".into(), "1".into())
    );
    assert!(!packages[0].exists() && !packages[1].exists(), "expired packages are deleted");
    assert!(packages[2].exists(), "a live package is kept");
    assert_refused(&enqueue(&env, &["fetch-download", &ids[1]]), "has expired");
    assert_eq!(env.count("SELECT SUM(download_count) FROM download_records"), 0);

    // The scheduler runs the sweep: the long one, made to expire now.
    env.sql(&format!("UPDATE download_records SET expires_at = NOW() - INTERVAL 1 SECOND WHERE download_id = '{}'", ids[2]));
    let long_url = record(&env, &ids[2], "download_url");
    let scheduler = Running(
        cmd(&env, "scheduler")
            .args(["--download-sweep-seconds", "1"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(env.dir.join("sweeper.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    env.wait_until(Duration::from_secs(20), "the scheduler to expire the record", || {
        record(&env, &ids[2], "status") == "2"
    });
    drop(scheduler);
    assert!(!packages[2].exists(), "the scheduler's sweep deletes the package");
    // Its link is still correctly signed and not past its own expiry, but the record is.
    assert_refused(&enqueue(&env, &["fetch-download", &long_url]), "has expired");
}

/// An HTTP GET of `url`: status, headers and body.
fn http_get(url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    block_on(async {
        let response = reqwest::get(url).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.bytes().await.unwrap().to_vec())
    })
}

#[test]
fn on_s3_the_presigned_link_fetches_the_package_until_it_expires() {
    let moto = Moto::start();
    let (url, storage) = moto.new_bucket("tenant");
    let env = TestEnv::new();
    let s3 = |bin: &str| {
        let mut command = moto.command(&env, bin, &url);
        // No signing key: S3 signs its own links.
        command.env_remove("WHISPER_MODEL");
        command
    };
    let user = {
        let out = s3("enqueue")
            .args(["user", "add", "shop", "--email", "shop@example.com"])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).trim().parse::<i64>().unwrap()
    };
    let video = processed_video(&env, user, &[1, 1], &|key, file| {
        block_on(storage.put_file(file, key)).unwrap();
    });
    let json = |args: &[&str]| -> Value {
        let out = s3("enqueue").args(args).arg("--json").output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap()
    };
    let long = json(&["download", &video.segments[0], &video.segments[1], "--user", "shop"]);
    let short = json(&["download", &video.segments[0], "--user", "shop", "--expires-in", "3s"]);
    run_until_idle(&env, &s3);
    let (long_id, short_id) =
        (long["download_id"].as_str().unwrap(), short["download_id"].as_str().unwrap());
    assert_eq!(record(&env, long_id, "status"), "1");
    let link = record(&env, long_id, "download_url");
    assert!(link.starts_with(&moto.endpoint) && link.contains("X-Amz-Signature="), "{link}");
    assert!(link.contains("X-Amz-Expires=86400") || link.contains("X-Amz-Expires=8639"), "{link}");
    let key = record(&env, long_id, "file_path");
    assert!(block_on(storage.exists(&key)).unwrap());
    assert!(!env.storage.exists(), "nothing went to the local storage directory");

    // A plain HTTP GET of the link is the package.
    let (status, headers, body) = http_get(&link);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let stored = env.dir.join("stored.zip");
    block_on(storage.fetch_to(&key, &stored)).unwrap();
    assert_eq!(body, std::fs::read(&stored).unwrap());
    eprintln!(
        "presigned GET: {} bytes, content-disposition {:?}",
        body.len(),
        headers.get("content-disposition")
    );
    let clip = std::fs::read(media(&env).0).unwrap();
    check_package(&env, &read_zip(&stored), &video.segments, &clip, false);
    // fetch-download honours the same link and counts it.
    let fetched = json(&["fetch-download", &link, "-o", env.dir.join("f.zip").to_str().unwrap()]);
    assert_eq!(fetched["download_count"], 1);
    assert_eq!(
        env.count(&format!(
            "SELECT download_count FROM video_segments WHERE segment_id = '{}'",
            video.segments[1]
        )),
        1
    );

    // The short link: S3 is told its lifetime (X-Amz-Expires; a real S3
    // answers 403 after it, moto does not check), fetch-download refuses it
    // once expired, and after the sweep the link is dead.
    let short_link = record(&env, short_id, "download_url");
    assert!(
        short_link.contains("X-Amz-Expires=3&") || short_link.contains("X-Amz-Expires=2&"),
        "{short_link}"
    );
    assert_eq!(http_get(&short_link).0, 200);
    env.wait_until(Duration::from_secs(15), "the short link to expire", || {
        env.count(&format!("SELECT COUNT(*) FROM download_records WHERE download_id = '{short_id}' AND expires_at <= NOW()")) == 1
    });
    let out = s3("enqueue").args(["fetch-download", &short_link]).output().unwrap();
    assert_refused(&out, "expired at");
    // The sweep deletes it from the bucket.
    let report = block_on(async {
        let pool = shared::db::connect(&env.database_url, 1).await.unwrap();
        let mut conn = shared::db::conn(&pool).await.unwrap();
        shared::downloads::sweep_expired(&mut conn, &storage, 100).await.unwrap()
    });
    assert_eq!(report.expired, 1);
    let short_key = record(&env, short_id, "file_path");
    assert!(!block_on(storage.exists(&short_key)).unwrap());
    // (S3 answers 404, or 403 without list rights; moto says 403.)
    let (status, _, body) = http_get(&short_link);
    assert!(
        matches!(status, 403 | 404),
        "a swept package: {status} {}",
        String::from_utf8_lossy(&body)
    );
    assert!(block_on(storage.exists(&key)).unwrap());
    assert_eq!(http_get(&link).0, 200, "the live package is kept");
}
