//! The `video_clip` task end to end: real fixture videos through ffmpeg,
//! whisper (base model) and the detector, clips checked frame by frame; and
//! bad media, refused by the CLI or failed by the worker with a reason.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::{probe, project_root, TestEnv};

fn fixture(name: &str) -> PathBuf {
    project_root().join("fixtures/videos").join(name)
}

fn enqueue_video(env: &TestEnv, file: &Path, language: &str) -> String {
    let config = format!(r#"{{"language":"{language}"}}"#);
    let out = env.enqueue(&[
        "video",
        file.to_str().unwrap(),
        "--user",
        "shop",
        "--config",
        &config,
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    value["task_id"].as_str().unwrap().to_string()
}

/// One decoded frame as 64x36 gray bytes: the source at `at` seconds
/// (accurate seek), or a clip's first frame.
fn frame(path: &Path, at: Option<f64>) -> Vec<u8> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-i"]).arg(path);
    if let Some(at) = at {
        cmd.args(["-ss", &format!("{at:.3}")]);
    }
    let out = cmd
        .args(["-frames:v", "1", "-vf", "scale=64:36,format=gray", "-f", "rawvideo", "-"])
        .output()
        .unwrap();
    assert_eq!(out.stdout.len(), 64 * 36, "decoding a frame of {}", path.display());
    out.stdout
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).abs()).sum::<f64>() / a.len() as f64
}

/// A clip's SRT and WebVTT files: the same cues, each starting and ending
/// within 50 ms of a word's start and end (timed to the clip), inside it.
fn check_subtitles(env: &TestEnv, clip: &Value, words: &[(f64, f64)], name: &str) {
    let clip_key = clip["file_path"].as_str().unwrap();
    let stem = clip_key.rsplit_once('.').unwrap().0;
    let srt = std::fs::read_to_string(env.storage.join(format!("{stem}.srt"))).unwrap();
    let vtt = std::fs::read_to_string(env.storage.join(format!("{stem}.vtt"))).unwrap();
    assert!(vtt.starts_with("WEBVTT\n\n"), "{name}: {vtt}");
    let seconds = |t: &str| -> f64 {
        let t = t.trim().replace(',', ".");
        let parts: Vec<f64> = t.split(':').map(|p| p.parse().unwrap()).collect();
        parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
    };
    let times = |text: &str| -> Vec<(f64, f64)> {
        (text.lines().filter_map(|l| l.split_once(" --> ")))
            .map(|(a, b)| (seconds(a), seconds(b)))
            .collect()
    };
    let (srt_cues, vtt_cues) = (times(&srt), times(&vtt));
    assert!(!srt_cues.is_empty(), "{name}: a clip of speech has subtitles");
    assert_eq!(srt_cues, vtt_cues, "{name}: SRT and WebVTT agree");
    let (clip_start, clip_end) =
        (clip["start_time"].as_f64().unwrap(), clip["end_time"].as_f64().unwrap());
    for (a, b) in srt_cues {
        assert!(0.0 <= a && a < b && b <= clip_end - clip_start + 1e-3, "{name}: cue {a}-{b}");
        let near = |t: f64, pick: fn(&(f64, f64)) -> f64| {
            words.iter().any(|w| ((pick(w) - clip_start).max(0.0) - t).abs() <= 0.05)
        };
        assert!(near(a, |w| w.0), "{name}: cue start {a} is no word's start");
        assert!(
            near(b, |w| w.1) || (b - (clip_end - clip_start)).abs() <= 0.05,
            "{name}: cue end {b}"
        );
    }
}

#[test]
fn fixture_videos_become_selling_point_clips() {
    let env = TestEnv::new();
    assert!(env.enqueue(&["user", "add", "shop", "--email", "shop@example.com"]).status.success());
    let cases = [("zh-airfryer", "zh"), ("en-water-bottle", "en"), ("silent", "en")];
    let tasks: Vec<(String, &str)> = cases
        .iter()
        .map(|(name, lang)| (enqueue_video(&env, &fixture(&format!("{name}.mp4")), lang), *name))
        .collect();

    let mut scheduler = env.spawn("scheduler", &["--exit-when-idle"], "scheduler");
    let mut worker = env.spawn("worker", &["--exit-when-idle", "--concurrency", "2"], "worker");
    assert!(env.wait_exit(&mut worker, Duration::from_secs(300), "worker").success());
    assert!(env.wait_exit(&mut scheduler, Duration::from_secs(30), "scheduler").success());

    for (task_id, name) in &tasks {
        let row = &env.sql(&format!("SELECT id, status, error_message, video_id FROM processing_tasks WHERE task_id = '{task_id}'"))[0];
        assert_eq!(row[1], "2", "{name} not completed: {}", row[2]);
        let (id, video_id) = (&row[0], &row[3]);
        for kind in ["transcript", "analysis"] {
            assert_eq!(env.count(&format!("SELECT COUNT(*) FROM processing_results WHERE task_id = {id} AND result_type = '{kind}'")), 1, "{name} {kind}");
        }
        let segments =
            env.count(&format!("SELECT COUNT(*) FROM video_segments WHERE task_id = {id}"));
        assert_eq!(env.count(&format!("SELECT COUNT(*) FROM processing_results WHERE task_id = {id} AND result_type = 'segment'")), segments);
        // The probe filled the video's metadata; the video is completed
        // (videos.status 3) and has a still of its own.
        let video = &env.sql(&format!("SELECT width, height, frame_rate, status, thumbnail_url FROM videos WHERE id = {video_id}"))[0];
        assert_eq!(video[..4], ["640", "360", "25.00", "3"], "{name}: videos row");
        assert_eq!(
            probe(&env.storage.join(&video[4]), "v:0", "stream=codec_name"),
            "mjpeg",
            "{name}: video thumbnail"
        );

        let labels: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(&format!("{name}.labels.json"))).unwrap(),
        )
        .unwrap();
        let truth: Vec<(String, f64, f64)> = labels["sentences"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["type"] != "none")
            .map(|s| {
                (
                    s["type"].as_str().unwrap().to_string(),
                    s["start"].as_f64().unwrap(),
                    s["end"].as_f64().unwrap(),
                )
            })
            .collect();
        let out = env.enqueue(&["segments", task_id, "--json"]);
        let clips: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(clips.len() as i64, segments);
        let transcript: Value = serde_json::from_str(&env.sql(&format!("SELECT result_data FROM processing_results WHERE task_id = {id} AND result_type = 'transcript'"))[0][0]).unwrap();
        let (heard, audio) = (
            transcript["speech_seconds"].as_f64().unwrap(),
            transcript["audio_seconds"].as_f64().unwrap(),
        );
        if *name == "silent" {
            // Whisper never ran: nothing heard, no invented text.
            assert_eq!(heard, 0.0, "{name}: {transcript}");
            assert_eq!(transcript["segments"], serde_json::json!([]), "{name}");
            assert!(clips.is_empty(), "a silent video has no selling points");
            continue;
        }
        assert!(
            heard > 0.5 * audio && heard <= audio,
            "{name}: whisper heard {heard} of {audio} s"
        );
        // Each clip's result says how it was cut, and why when fully re-encoded.
        for row in env.sql(&format!("SELECT result_data FROM processing_results WHERE task_id = {id} AND result_type = 'segment'")) {
            let segment: Value = serde_json::from_str(&row[0]).unwrap();
            let reason = &segment["cut_fallback_reason"];
            match segment["cut_method"].as_str().unwrap() {
                "FullReencode" => assert!(reason.as_str().is_some_and(|r| !r.is_empty()), "{name}: {segment}"),
                "SmartCut" | "StreamCopy" => assert!(reason.is_null(), "{name}: {segment}"),
                other => panic!("{name}: unknown cut_method {other}"),
            }
        }
        // Every labelled selling point is found by a clip of its type whose
        // boundaries are within 1 s of the spoken sentence.
        for (kind, start, end) in &truth {
            let found = clips.iter().any(|c| {
                c["selling_point_type"] == kind.as_str()
                    && (c["start_time"].as_f64().unwrap() - start).abs() <= 1.0
                    && (c["end_time"].as_f64().unwrap() - end).abs() <= 1.0
            });
            assert!(
                found,
                "{name}: no {kind} clip within 1 s of {start:.2}-{end:.2}; clips: {clips:?}"
            );
        }
        let words: Vec<(f64, f64)> = (transcript["words"].as_array().expect("word timings"))
            .iter()
            .map(|w| (w["start"].as_f64().unwrap(), w["end"].as_f64().unwrap()))
            .collect();
        for clip in &clips {
            let (start, end) =
                (clip["start_time"].as_f64().unwrap(), clip["end_time"].as_f64().unwrap());
            check_subtitles(&env, clip, &words, name);
            let path = env.storage.join(clip["file_path"].as_str().unwrap());
            let frame_time = 1.0 / 25.0;
            let duration: f64 = probe(&path, "v:0", "stream=duration").parse().unwrap();
            assert!(
                (duration - (end - start)).abs() <= frame_time + 1e-3,
                "{name}: clip lasts {duration}, asked {}",
                end - start
            );
            let audio: f64 = probe(&path, "a:0", "stream=duration").parse().unwrap();
            assert!((audio - duration).abs() <= 0.05, "{name}: audio {audio} vs video {duration}");
            let source = fixture(&format!("{name}.mp4"));
            let diff = mean_abs_diff(&frame(&path, None), &frame(&source, Some(start)));
            assert!(diff < 3.0, "{name}: first frame differs from the source at {start}: {diff}");
            let thumb = env.storage.join(clip["thumbnail_url"].as_str().unwrap());
            assert_eq!(probe(&thumb, "v:0", "stream=codec_name"), "mjpeg", "{name}: thumbnail");
            assert!(
                clip["confidence"].as_f64().unwrap() > 0.0
                    && clip["confidence"].as_f64().unwrap() <= 1.0
            );
            assert!(
                !clip["title"].as_str().unwrap().is_empty()
                    && !clip["description"].as_str().unwrap().is_empty()
            );
        }
    }

    // The same file uploaded again by the same user reuses the stored object.
    let again = env.enqueue(&[
        "video",
        fixture("zh-airfryer.mp4").to_str().unwrap(),
        "--user",
        "shop",
        "--json",
    ]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["reused_stored_file"], true, "{again}");
    let first_video = env
        .count(&format!("SELECT video_id FROM processing_tasks WHERE task_id = '{}'", tasks[0].0));
    let paths = env.sql(&format!(
        "SELECT file_path FROM videos WHERE id IN ({first_video}, {})",
        again["video_id"]
    ));
    assert_eq!(paths.len(), 2);
    assert_eq!(paths[0], paths[1], "both rows point at one stored object");
    assert_eq!(
        env.sql(&format!("SELECT status FROM videos WHERE id = {}", again["video_id"]))[0][0],
        "1",
        "a new upload is uploaded"
    );
}

#[test]
fn bad_media_is_refused_or_failed_with_a_reason_and_the_worker_goes_on() {
    let env = TestEnv::new();
    assert!(env.enqueue(&["user", "add", "shop", "--email", "shop@example.com"]).status.success());
    let user = env.count("SELECT id FROM users WHERE username = 'shop'");
    std::fs::create_dir_all(env.storage.join("videos")).unwrap();
    let good = std::fs::read(fixture("zh-airfryer.mp4")).unwrap();
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("empty.mp4", Vec::new()),
        ("text.mp4", b"this is a text file, not a video\n".to_vec()),
        ("truncated.mp4", good[..good.len() / 3].to_vec()),
    ];
    for (name, bytes) in &bad {
        std::fs::write(env.storage.join("videos").join(name), bytes).unwrap();
    }
    // No audio, and audio only.
    let run = |args: &[&str], out: &Path| {
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y"])
            .args(args)
            .arg(out)
            .status()
            .unwrap();
        assert!(status.success());
    };
    run(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=25:duration=2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ],
        &env.storage.join("videos/noaudio.mp4"),
    );
    run(
        &["-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac"],
        &env.storage.join("videos/audioonly.m4a"),
    );

    // The CLI refuses each of them.
    for name in ["empty.mp4", "text.mp4", "truncated.mp4", "noaudio.mp4", "audioonly.m4a"] {
        let path = env.storage.join("videos").join(name);
        let out = env.enqueue(&["video", path.to_str().unwrap(), "--user", "shop"]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim().lines().count(), 1, "{name}");
    }
    assert_eq!(env.count("SELECT COUNT(*) FROM processing_tasks"), 0);

    // Another system writes the rows directly: the worker fails each task at
    // once with a reason, and goes on with the next.
    let cases = [
        ("videos/empty.mp4", "empty"),
        ("videos/text.mp4", "not a usable video"),
        ("videos/truncated.mp4", "not a usable video"),
        ("videos/noaudio.mp4", "no audio"),
        ("videos/audioonly.m4a", "not a usable video"),
        ("../../etc/passwd", "not a plain relative path"),
        ("videos/missing.mp4", "missing"),
    ];
    for (i, (path, _)) in cases.iter().enumerate() {
        env.sql(&format!(
            "INSERT INTO videos (id, user_id, filename, original_filename, file_path, file_size) VALUES ({id}, {user}, 'f{i}', 'f{i}', '{path}', 1); \
             INSERT INTO processing_tasks (task_id, user_id, video_id, task_type, priority) VALUES ('bad-{i}', {user}, {id}, 'video_clip', 5)",
            id = 100 + i
        ));
    }
    let out = env.enqueue(&["noop", "--count", "1", "--priority", "9"]);
    assert!(out.status.success());
    let mut scheduler = env.spawn("scheduler", &["--exit-when-idle"], "scheduler");
    let mut worker = env.spawn("worker", &["--exit-when-idle", "--concurrency", "2"], "worker");
    assert!(env.wait_exit(&mut worker, Duration::from_secs(120), "worker").success());
    assert!(env.wait_exit(&mut scheduler, Duration::from_secs(30), "scheduler").success());
    for (i, (path, reason)) in cases.iter().enumerate() {
        let row = &env.sql(&format!("SELECT status, retry_count, attempts, error_message FROM processing_tasks WHERE task_id = 'bad-{i}'"))[0];
        assert_eq!(row[0], "3", "{path} should fail: {row:?}");
        assert_eq!(
            (row[1].as_str(), row[2].as_str()),
            ("0", "1"),
            "{path}: failed at once, no retries"
        );
        assert!(row[3].contains(reason), "{path}: error_message {:?} lacks {reason:?}", row[3]);
        assert!(!row[3].contains('\n'), "one line");
        let video_status = env.count(&format!("SELECT status FROM videos WHERE id = {}", 100 + i));
        assert_eq!(video_status, 4, "{path}: the video of a failed task is failed");
    }
    assert_eq!(
        env.count("SELECT COUNT(*) FROM processing_tasks WHERE task_type = 'noop' AND status = 2"),
        1,
        "the worker went on"
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM video_segments"), 0);
}
