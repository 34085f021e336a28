//! Which stored objects rows point at: every storage key held by a column
//! of `videos`, `video_segments`, `processing_results`, `templates` and
//! `download_records`, plus the prefixes of attempts still running. What
//! `enqueue gc` must keep; everything else in storage is an orphan (the
//! clips of an attempt killed before it could commit, an upload whose
//! transaction failed).

use crate::db::PooledConnection;
use crate::models::TaskStatus;
use crate::schema::{
    download_records, processing_results, processing_tasks as pt, templates, video_segments, videos,
};
use anyhow::Context;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use std::collections::HashSet;

/// Every storage key some row refers to. Loads them all: one string per
/// stored object, so a few hundred bytes per video.
pub async fn referenced_keys(conn: &mut PooledConnection<'_>) -> anyhow::Result<HashSet<String>> {
    let mut keys = HashSet::new();
    let video_rows: Vec<(String, Option<String>)> = videos::table
        .select((videos::file_path, videos::thumbnail_url))
        .load(conn)
        .await
        .context("reading videos' files")?;
    for (file, thumb) in video_rows {
        keys.insert(file);
        keys.extend(thumb);
    }
    let segment_rows: Vec<(Option<String>, Option<String>)> = video_segments::table
        .select((video_segments::file_path, video_segments::thumbnail_url))
        .load(conn)
        .await
        .context("reading segments' files")?;
    for (file, thumb) in segment_rows {
        if let Some(file) = file {
            keys.extend(subtitle_keys(&file));
            keys.extend(subtitle_keys(&templated_key(&file)));
            keys.insert(templated_key(&file));
            keys.insert(file);
        }
        keys.extend(thumb);
    }
    let result_files: Vec<Option<String>> = processing_results::table
        .select(processing_results::file_path)
        .filter(processing_results::file_path.is_not_null())
        .load(conn)
        .await
        .context("reading results' files")?;
    keys.extend(result_files.into_iter().flatten());
    let template_rows: Vec<(Option<String>, Option<String>)> = templates::table
        .select((templates::file_path, templates::preview_url))
        .load(conn)
        .await
        .context("reading templates' files")?;
    for (file, preview) in template_rows {
        keys.extend(file);
        keys.extend(preview);
    }
    let packages: Vec<Option<String>> = download_records::table
        .select(download_records::file_path)
        .filter(download_records::file_path.is_not_null())
        .load(conn)
        .await
        .context("reading download packages' files")?;
    keys.extend(packages.into_iter().flatten());
    Ok(keys)
}

/// Storage prefixes of attempts that are running now
/// (`clips/{user}/{task}/attempt-{n}`, and for `download_package` tasks
/// `downloads/{user}/{download_id}/attempt-{n}`): their objects are not
/// referenced yet, but will be.
pub async fn running_attempt_prefixes(
    conn: &mut PooledConnection<'_>,
) -> anyhow::Result<Vec<String>> {
    let running: Vec<(i64, String, i32, String, Option<serde_json::Value>)> = pt::table
        .filter(pt::status.eq(TaskStatus::Processing.code()))
        .select((pt::user_id, pt::task_id, pt::attempts, pt::task_type, pt::config))
        .load(conn)
        .await
        .context("reading running tasks")?;
    Ok(running
        .into_iter()
        .map(|(user, task, attempts, task_type, config)| {
            let download = (task_type == crate::models::task_type::DOWNLOAD_PACKAGE)
                .then(|| config?.get("download_id")?.as_str().map(str::to_string))
                .flatten()
                .filter(|id| crate::downloads::sign::is_plain_id(id));
            match download {
                Some(id) => crate::downloads::attempt_prefix(user, &id, attempts),
                None => attempt_prefix(user, &task, attempts),
            }
        })
        .collect())
}

/// Where attempt `attempts` of a task stores its clips and thumbnails.
/// Each attempt has its own prefix, so a refused attempt's objects can be
/// removed without touching a committed one's.
pub fn attempt_prefix(user_id: i64, task_id: &str, attempts: i32) -> String {
    format!("clips/{user_id}/{task_id}/attempt-{attempts}")
}

/// The storage keys of a clip's subtitle files, `{clip stem}.srt` and
/// `{clip stem}.vtt`, beside the clip: derived from `video_segments.file_path`
/// (the seed has no column for them), by the worker that writes them, the
/// packager that ships them and `gc` that keeps them.
pub fn subtitle_keys(clip_key: &str) -> [String; 2] {
    let name_start = clip_key.rfind('/').map_or(0, |i| i + 1);
    let stem = match clip_key[name_start..].rfind('.') {
        Some(dot) => &clip_key[..name_start + dot],
        None => clip_key,
    };
    [format!("{stem}.srt"), format!("{stem}.vtt")]
}

/// The storage key of a clip's branded copy (intro, outro, watermark,
/// captions applied): `{clip stem}.templated.mp4`, beside the clip.
pub fn templated_key(clip_key: &str) -> String {
    let [srt, _] = subtitle_keys(clip_key);
    format!("{}.templated.mp4", srt.trim_end_matches(".srt"))
}

#[cfg(test)]
mod subtitle_key_tests {
    use super::subtitle_keys;

    #[test]
    fn beside_the_clip_with_its_stem() {
        assert_eq!(
            subtitle_keys("clips/1/t/attempt-1/s.mp4"),
            ["clips/1/t/attempt-1/s.srt", "clips/1/t/attempt-1/s.vtt"]
        );
        assert_eq!(subtitle_keys("clips/a.b/s"), ["clips/a.b/s.srt", "clips/a.b/s.vtt"]);
    }
}
