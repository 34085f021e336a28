//! Download packages (`download_records`): all their SQL, the storage keys
//! of packages, the links they are fetched by, and the sweep that expires
//! them. The CLI (`enqueue download`, `enqueue fetch-download`), the
//! worker's `download_package` job, the scheduler's sweeper and a future
//! HTTP server all use this module, so a link means the same to each.
//!
//! A record's life: `enqueue download` checks the segments (the requesting
//! user's, `status` 1, each with a clip) and writes the row with status 0
//! (preparing) and a `download_package` task, in one transaction. The task
//! goes through the queue like any other; its job builds the package
//! ([`package::build`]), uploads it under [`package_key`] and its completion
//! sets `file_path`, `file_size`, `download_url`, `expires_at` and status 1
//! (ready) in the same transaction that completes the task, under the lease.
//! [`sweep_expired`] marks records past `expires_at` status 2 (expired) and
//! deletes their packages.
//!
//! `expires_at` is first set at enqueue (now + the requested lifetime), so
//! a record whose task never completes expires too; the completion sets it
//! again from the moment the package is ready. All times are the
//! database's (`NOW()`, `UNIX_TIMESTAMP()`).

pub mod package;
mod records;
mod request;
mod segments;
pub mod sign;
mod sweep;

pub use records::*;
pub use request::*;
pub use segments::*;
pub use sweep::*;

use crate::db::PooledConnection;
use crate::schema::{download_records as dr, video_segments as vs};
use crate::storage::Storage;
use crate::BadInput;
use anyhow::Context;
use bigdecimal::BigDecimal;
use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Timestamp};
use diesel_async::{AsyncConnection, RunQueryDsl};
use package::{PackageClip, PackageFormat};
use serde::Serialize;
pub use sign::SigningKey;

/// `download_records.status`.
pub mod status {
    /// Created; the package is being built.
    pub const PREPARING: i8 = 0;
    /// The package is stored and its link works until `expires_at`.
    pub const READY: i8 = 1;
    /// Past `expires_at`: the package is deleted, the link refused.
    pub const EXPIRED: i8 = 2;

    /// The status's name.
    pub fn name(code: i8) -> &'static str {
        match code {
            PREPARING => "preparing",
            READY => "ready",
            EXPIRED => "expired",
            _ => "unknown",
        }
    }
}

/// Longest lifetime of a link: a week, the longest an S3 presigned URL
/// may live (SigV4), and the same for signed `file://` links.
pub const MAX_EXPIRES_IN_SECONDS: u64 = 7 * 86_400;

/// A new download id (UUIDv7: unique without coordination, time-ordered).
pub fn new_download_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Where an attempt of a download's task stores its package:
/// `downloads/{user_id}/{download_id}/attempt-{n}`. Each attempt has its own
/// prefix (like clips, `references::attempt_prefix`), so removing the
/// package of an attempt that did not commit never touches a committed one.
pub fn attempt_prefix(user_id: i64, download_id: &str, attempts: i32) -> String {
    format!("{}/attempt-{attempts}", package_dir(user_id, download_id))
}

/// Everything stored for one download: `downloads/{user_id}/{download_id}`.
pub fn package_dir(user_id: i64, download_id: &str) -> String {
    format!("downloads/{user_id}/{download_id}")
}

/// The storage key of a package:
/// `downloads/{user_id}/{download_id}/attempt-{n}/{download_id}.{zip|tar}`
/// (the last part is the name a browser saves an S3 link's file under).
pub fn package_key(
    user_id: i64,
    download_id: &str,
    attempts: i32,
    format: PackageFormat,
) -> String {
    format!("{}/{download_id}.{}", attempt_prefix(user_id, download_id, attempts), format.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn segment(id: &str, user_id: i64, status: i8) -> SegmentForPackage {
        SegmentForPackage {
            segment_id: id.into(),
            task_id: 1,
            user_id,
            original_video_id: 1,
            selling_point_type: "hook".into(),
            start_time: BigDecimal::from_str("1.5").unwrap(),
            end_time: BigDecimal::from_str("4").unwrap(),
            duration: None,
            confidence: None,
            title: None,
            description: None,
            file_path: Some(format!("clips/{user_id}/t/attempt-1/{id}.mp4")),
            thumbnail_url: None,
            status,
        }
    }

    #[test]
    fn only_the_users_live_segments_with_clips_are_packageable() {
        let found = vec![segment("a", 1, 1), segment("b", 2, 1), segment("c", 1, 0)];
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ok = check_packageable(&ids(&["a", "a"]), &found, Some((1, "shop"))).unwrap();
        assert_eq!(ok.len(), 1);
        let other = check_packageable(&ids(&["a", "b"]), &found, Some((1, "shop"))).unwrap_err();
        assert!(other.0.contains("not one of user \"shop\"'s"), "{other}");
        let mixed = check_packageable(&ids(&["a", "b"]), &found, None).unwrap_err();
        assert!(mixed.0.contains("another user"), "{mixed}");
        let deleted = check_packageable(&ids(&["c"]), &found, Some((1, "shop"))).unwrap_err();
        assert!(deleted.0.contains("status 0"), "{deleted}");
        let unknown = check_packageable(&ids(&["z"]), &found, None).unwrap_err();
        assert!(unknown.0.contains("unknown segment id \"z\""), "{unknown}");
        let mut no_clip = segment("d", 1, 1);
        no_clip.file_path = None;
        assert!(check_packageable(&ids(&["d"]), &[no_clip], None)
            .unwrap_err()
            .0
            .contains("no clip"));
    }

    #[test]
    fn templated_clips_and_subtitles_live_beside_the_plain_clip() {
        let s = segment("a", 7, 1);
        assert_eq!(templated_clip_key(&s).unwrap(), "clips/7/t/attempt-1/a.templated.mp4");
        assert_eq!(
            subtitle_candidates("clips/7/t/attempt-1/a.templated.mp4"),
            vec!["clips/7/t/attempt-1/a.templated.srt", "clips/7/t/attempt-1/a.templated.vtt"]
        );
        assert_eq!(subtitle_candidates("x.y/clip"), vec!["x.y/clip.srt", "x.y/clip.vtt"]);
    }

    #[test]
    fn package_keys_pass_the_storage_key_rules() {
        let key = package_key(7, "0190-ab", 2, PackageFormat::Zip);
        assert_eq!(key, "downloads/7/0190-ab/attempt-2/0190-ab.zip");
        crate::storage::check_key(&key).unwrap();
        assert!(key.starts_with(&format!("{}/", attempt_prefix(7, "0190-ab", 2))));
    }

    #[test]
    fn the_record_of_one_segment_is_single_and_of_more_a_batch() {
        let one = NewDownload::for_segments("d", 1, &[segment("a", 1, 1)], PackageFormat::Tar);
        assert_eq!((one.download_type.as_str(), one.file_format.as_str()), ("single", "mp4"));
        assert_eq!(one.package_format.as_deref(), Some("tar"));
        let two = NewDownload::for_segments(
            "d",
            1,
            &[segment("a", 1, 1), segment("b", 1, 1)],
            PackageFormat::Zip,
        );
        assert_eq!(two.download_type, "batch");
        assert_eq!(two.segment_ids, Some(serde_json::json!(["a", "b"])));
    }
}
