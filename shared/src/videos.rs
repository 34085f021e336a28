//! All SQL on `videos`.

use crate::db::PooledConnection;
use crate::models::{NewVideo, Video};
use crate::schema::videos;
use anyhow::Context;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

/// Inserts a video row and returns its id.
pub async fn insert_video(conn: &mut PooledConnection<'_>, video: &NewVideo) -> anyhow::Result<i64> {
    diesel::insert_into(videos::table)
        .values(video)
        .execute(conn)
        .await
        .context("inserting a videos row")?;
    let id: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>("LAST_INSERT_ID()"))
        .get_result(conn)
        .await
        .context("reading the new video's id")?;
    Ok(id)
}

/// The video with this id, if any.
pub async fn find_video(conn: &mut PooledConnection<'_>, id: i64) -> anyhow::Result<Option<Video>> {
    videos::table
        .find(id)
        .select(Video::as_select())
        .first(conn)
        .await
        .optional()
        .context("looking up a video")
}

/// The placeholder video that no-op tasks point at (`processing_tasks.video_id`
/// is a required foreign key), created on first use for `user_id`.
pub async fn ensure_placeholder_video(conn: &mut PooledConnection<'_>, user_id: i64) -> anyhow::Result<i64> {
    const PLACEHOLDER_PATH: &str = "noop://placeholder";
    let found: Option<i64> = videos::table
        .filter(videos::user_id.eq(user_id))
        .filter(videos::file_path.eq(PLACEHOLDER_PATH))
        .select(videos::id)
        .first(conn)
        .await
        .optional()
        .context("looking up the placeholder video")?;
    if let Some(id) = found {
        return Ok(id);
    }
    insert_video(
        conn,
        &NewVideo {
            user_id,
            filename: "noop".into(),
            original_filename: "noop".into(),
            file_path: PLACEHOLDER_PATH.into(),
            file_size: 0,
            file_hash: None,
            mime_type: None,
            duration: None,
            width: None,
            height: None,
            frame_rate: None,
            bitrate: None,
        },
    )
    .await
}
