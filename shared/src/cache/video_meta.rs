//! `video:meta:{video_id}`: what lists and pages show about a video without
//! a database round trip.

use crate::db::PooledConnection;
use crate::schema::videos;
use anyhow::Context;
use bigdecimal::{BigDecimal, ToPrimitive};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

/// The JSON at `video:meta:{video_id}`: the seed's fields, from the `videos`
/// columns of the same names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoMeta {
    /// `videos.filename`.
    pub filename: String,
    /// `videos.duration`, seconds (probed at upload, then by the worker).
    pub duration: Option<f64>,
    /// `videos.file_size`, bytes.
    pub file_size: i64,
    /// `videos.thumbnail_url`: the storage key of the video's still, once a
    /// task has completed.
    pub thumbnail_url: Option<String>,
}

/// Reads a video's cached fields from the database.
pub(super) async fn load(
    conn: &mut PooledConnection<'_>,
    video_id: i64,
) -> anyhow::Result<Option<VideoMeta>> {
    let row: Option<(String, Option<BigDecimal>, i64, Option<String>)> = videos::table
        .find(video_id)
        .select((videos::filename, videos::duration, videos::file_size, videos::thumbnail_url))
        .first(conn)
        .await
        .optional()
        .context("reading a video's metadata")?;
    Ok(row.map(|(filename, duration, file_size, thumbnail_url)| VideoMeta {
        filename,
        duration: duration.and_then(|d| d.to_f64()),
        file_size,
        thumbnail_url,
    }))
}
