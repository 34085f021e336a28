//! `s3://` storage against a real S3-compatible server (moto, installed by
//! `scripts/s3-server.sh install` into `.cache/moto-venv` on first use, about
//! 2 minutes; each test starts its own server on a free port and kills it at
//! the end): `enqueue video` uploads into the bucket, the worker downloads
//! the source and uploads clips and thumbnails, missing and escaping keys
//! fail at once, and big files go up in parts and come back whole.

mod support;

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::moto::{block_on, Moto, SECRET_KEY};
use support::{probe, project_root, TestEnv};

fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs a scheduler and a worker on S3 storage until idle.
fn run_until_idle(moto: &Moto, env: &TestEnv, url: &str, limit: Duration) {
    let log = |name: &str| std::fs::File::create(env.dir.join(format!("{name}.log"))).unwrap();
    let mut scheduler = moto
        .command(env, "scheduler", url)
        .arg("--exit-when-idle")
        .stdout(Stdio::null())
        .stderr(log("scheduler"))
        .spawn()
        .unwrap();
    let mut worker = moto
        .command(env, "worker", url)
        .args(["--exit-when-idle", "--concurrency", "2"])
        .stdout(Stdio::null())
        .stderr(log("worker"))
        .spawn()
        .unwrap();
    assert!(env.wait_exit(&mut worker, limit, "worker").success());
    assert!(env.wait_exit(&mut scheduler, Duration::from_secs(30), "scheduler").success());
    let logs = std::fs::read_to_string(env.dir.join("worker.log")).unwrap()
        + &std::fs::read_to_string(env.dir.join("scheduler.log")).unwrap();
    assert!(!logs.contains(SECRET_KEY), "a log shows the secret key");
}

#[test]
fn a_video_in_s3_becomes_clips_and_thumbnails_in_s3() {
    let moto = Moto::start();
    let (url, storage) = moto.new_bucket("tenant-a");
    let env = TestEnv::new();
    assert!(env.enqueue(&["user", "add", "shop", "--email", "shop@example.com"]).status.success());
    let user = env.count("SELECT id FROM users WHERE username = 'shop'");
    let fixture = project_root().join("fixtures/videos/zh-airfryer.mp4");

    // enqueue video uploads into the bucket, under the prefix.
    let started = Instant::now();
    let out = moto
        .command(&env, "enqueue", &url)
        .args([
            "video",
            fixture.to_str().unwrap(),
            "--user",
            "shop",
            "--config",
            r#"{"language":"zh"}"#,
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(SECRET_KEY));
    let task_id = serde_json::from_slice::<Value>(&out.stdout).unwrap()["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    let key = format!("videos/{user}/{}.mp4", sha256(&fixture));
    assert_eq!(env.sql("SELECT file_path FROM videos")[0][0], key);
    let stored = block_on(storage.list("videos")).unwrap();
    let size = std::fs::metadata(&fixture).unwrap().len();
    assert_eq!(
        stored.iter().map(|o| (o.key.clone(), o.size)).collect::<Vec<_>>(),
        vec![(key.clone(), size)]
    );
    assert!(stored[0].modified.is_some(), "S3 listings carry the modification time");
    let whole_bucket = moto.storage(url.trim_end_matches("/tenant-a"));
    let raw = block_on(whole_bucket.list("")).unwrap();
    assert_eq!(raw.len(), 1);
    assert_eq!(raw[0].key, format!("tenant-a/{key}"));
    assert!(!env.storage.exists(), "nothing was written to the local storage directory");
    eprintln!("enqueue video (upload {size} bytes): {:.1?}", started.elapsed());

    // The worker downloads the source and uploads clips and thumbnails.
    let started = Instant::now();
    run_until_idle(&moto, &env, &url, Duration::from_secs(300));
    eprintln!("scheduler + worker: {:.1?}", started.elapsed());
    let row = &env.sql(&format!("SELECT id, status, error_message, attempts FROM processing_tasks WHERE task_id = '{task_id}'"))[0];
    assert_eq!(row[1], "2", "not completed: {}", row[2]);
    assert!(
        !Path::new(&std::env::temp_dir().join(format!("videoclip-{task_id}-{}", row[3]))).exists(),
        "scratch left behind"
    );
    let segments = env.sql(&format!(
        "SELECT file_path, thumbnail_url, file_size, start_time, end_time FROM video_segments WHERE task_id = {}",
        row[0]
    ));
    assert!(!segments.is_empty(), "the air fryer video has selling points");
    let clips = block_on(storage.list(&format!("clips/{user}/{task_id}"))).unwrap();
    assert_eq!(
        clips.len(),
        segments.len() * 4 + 1,
        "one clip, one thumbnail, an SRT and a WebVTT file per segment, and the video's still: {clips:?}"
    );
    for segment in &segments {
        let stem = segment[0].rsplit_once('.').unwrap().0.to_string();
        for subtitles in [format!("{stem}.srt"), format!("{stem}.vtt")] {
            assert!(clips.iter().any(|o| o.key == subtitles), "{subtitles} not in the bucket");
        }
    }
    let still = env.sql("SELECT thumbnail_url FROM videos")[0][0].clone();
    assert!(clips.iter().any(|o| o.key == still), "the video's still {still} not in the bucket");
    for segment in &segments {
        let clip = clips
            .iter()
            .find(|o| o.key == segment[0])
            .unwrap_or_else(|| panic!("{} not in the bucket", segment[0]));
        assert_eq!(clip.size.to_string(), segment[2], "stored size");
        assert!(clips.iter().any(|o| o.key == segment[1]), "{} not in the bucket", segment[1]);
    }

    // One clip and its thumbnail, downloaded, are real media of the right length.
    let (clip_key, thumb_key) = (&segments[0][0], &segments[0][1]);
    let (start, end): (f64, f64) =
        (segments[0][3].parse().unwrap(), segments[0][4].parse().unwrap());
    let clip = env.dir.join("clip.mp4");
    let thumb = env.dir.join("thumb.jpg");
    assert_eq!(
        block_on(storage.fetch_to(clip_key, &clip)).unwrap(),
        std::fs::metadata(&clip).unwrap().len()
    );
    block_on(storage.fetch_to(thumb_key, &thumb)).unwrap();
    let duration: f64 = probe(&clip, "v:0", "stream=duration").parse().unwrap();
    assert!(
        (duration - (end - start)).abs() <= 0.05,
        "clip lasts {duration}, segment {start}-{end}"
    );
    assert_eq!(probe(&clip, "a:0", "stream=codec_name"), "aac");
    assert_eq!(probe(&thumb, "v:0", "stream=codec_name"), "mjpeg");
}

#[test]
fn missing_or_escaping_keys_in_s3_fail_at_once_and_bad_urls_are_refused() {
    let moto = Moto::start();
    let (url, storage) = moto.new_bucket("p");
    let env = TestEnv::new();
    assert!(env.enqueue(&["user", "add", "shop", "--email", "shop@example.com"]).status.success());
    let user = env.count("SELECT id FROM users WHERE username = 'shop'");

    // The storage refuses keys that would leave the prefix.
    let source = env.dir.join("small.bin");
    std::fs::write(&source, b"x").unwrap();
    for key in ["../x.mp4", "videos/../../x.mp4", "/p/x.mp4", "a//b.mp4"] {
        let err = block_on(storage.put_file(&source, key)).unwrap_err();
        assert!(shared::bad_input_reason(&err).is_some(), "{key}: {err:#}");
        assert!(block_on(storage.open_local(key, &env.dir)).is_err(), "{key}");
    }
    assert!(block_on(storage.list("")).unwrap().is_empty());

    // A bad STORAGE_URL is bad usage: exit 2, one line, no secret shown.
    let fixture = project_root().join("fixtures/videos/zh-airfryer.mp4");
    for bad_url in ["s3://videoclip-x/../escape", "s3://key:hunter2@videoclip-x/p"] {
        let out = moto
            .command(&env, "enqueue", bad_url)
            .args(["video", fixture.to_str().unwrap(), "--user", "shop"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad_url}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{bad_url}: {stderr}");
        assert!(!stderr.contains("hunter2") && !stderr.contains(SECRET_KEY), "{stderr}");
    }
    assert_eq!(env.count("SELECT COUNT(*) FROM videos"), 0);

    // Rows written by another system: the worker fails each at once.
    let cases = [
        ("../../etc/passwd", "not a plain relative path"),
        ("videos/missing.mp4", "stored file videos/missing.mp4 is missing"),
    ];
    for (i, (path, _)) in cases.iter().enumerate() {
        env.sql(&format!(
            "INSERT INTO videos (id, user_id, filename, original_filename, file_path, file_size) VALUES ({id}, {user}, 'f{i}', 'f{i}', '{path}', 1); \
             INSERT INTO processing_tasks (task_id, user_id, video_id, task_type, priority) VALUES ('bad-{i}', {user}, {id}, 'video_clip', 5)",
            id = 100 + i
        ));
    }
    run_until_idle(&moto, &env, &url, Duration::from_secs(120));
    for (i, (path, reason)) in cases.iter().enumerate() {
        let row = &env.sql(&format!("SELECT status, retry_count, attempts, error_message FROM processing_tasks WHERE task_id = 'bad-{i}'"))[0];
        assert_eq!(row[0], "3", "{path} should fail: {row:?}");
        assert_eq!(
            (row[1].as_str(), row[2].as_str()),
            ("0", "1"),
            "{path}: failed at once, no retries"
        );
        assert!(row[3].contains(reason), "{path}: error_message {:?} lacks {reason:?}", row[3]);
    }

    // A missing bucket is not "a missing file": it is retried, not bad input.
    let gone = moto.storage("s3://videoclip-no-such-bucket/p");
    let err = block_on(gone.fetch_to("videos/1/a.mp4", &env.dir.join("a.mp4"))).unwrap_err();
    assert!(shared::bad_input_reason(&err).is_none(), "{err:#}");
    assert!(format!("{err:#}").contains("NoSuchBucket"), "{err:#}");
}

#[test]
fn big_files_go_up_in_parts_and_come_back_whole() {
    let moto = Moto::start();
    let (_, storage) = moto.new_bucket("big");
    let dir = project_root().join(format!(".local/tests/s3-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // 21 MiB + 5 bytes: three 8 MiB parts, the last one short.
    let mut bytes = Vec::with_capacity(21 << 20);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    while bytes.len() < (21 << 20) + 5 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes()[..(((21 << 20) + 5) - bytes.len()).min(8)]);
    }
    let source = dir.join("big.mp4");
    std::fs::write(&source, &bytes).unwrap();

    let started = Instant::now();
    assert_eq!(
        block_on(storage.put_file(&source, "videos/1/big.mp4")).unwrap(),
        bytes.len() as u64
    );
    let up = started.elapsed();
    assert!(block_on(storage.exists("videos/1/big.mp4")).unwrap());
    let started = Instant::now();
    let copy = block_on(storage.open_local("videos/1/big.mp4", &dir.join("scratch"))).unwrap();
    let down = started.elapsed();
    assert!(copy.is_temporary());
    assert_eq!(copy.path(), dir.join("scratch/big.mp4"));
    assert_eq!(copy.size(), bytes.len() as u64);
    assert_eq!(sha256(copy.path()), sha256(&source), "the downloaded copy differs");
    let path = copy.path().to_path_buf();
    drop(copy);
    assert!(!path.exists(), "the temporary copy is removed on drop");
    eprintln!("21 MiB: upload {up:.1?}, download {down:.1?}");

    block_on(storage.delete("videos/1/big.mp4")).unwrap();
    block_on(storage.delete("videos/1/big.mp4")).unwrap();
    assert!(!block_on(storage.exists("videos/1/big.mp4")).unwrap());
    let err = block_on(storage.open_local("videos/1/big.mp4", &dir)).unwrap_err();
    assert_eq!(
        shared::bad_input_reason(&err).map(|r| r.to_string()).as_deref(),
        Some("stored file videos/1/big.mp4 is missing")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
