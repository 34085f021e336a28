//! All SQL on `videos`.

use crate::db::PooledConnection;
use crate::models::{NewVideo, Video};
use crate::schema::videos;
use anyhow::Context;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

/// Inserts a video row and returns its id.
pub async fn insert_video(
    conn: &mut PooledConnection<'_>,
    video: &NewVideo,
) -> anyhow::Result<i64> {
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
pub async fn ensure_placeholder_video(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
) -> anyhow::Result<i64> {
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

/// Which videos [`page_after`] walks; empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct VideoFilter {
    pub user_id: Option<i64>,
    /// `created_at` at or after this time (UTC).
    pub created_since: Option<chrono::NaiveDateTime>,
    /// `created_at` strictly before this time (UTC).
    pub created_before: Option<chrono::NaiveDateTime>,
    /// `videos.status` (1 uploaded, 2 processing, 3 completed, 4 failed).
    pub status: Option<i8>,
}

/// One row of [`page_after`]'s query.
#[derive(QueryableByName)]
struct VideoId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    user_id: i64,
}

/// A video and its owner, as a backfill needs them.
#[derive(Debug, Clone, Queryable)]
pub struct VideoOwner {
    pub id: i64,
    pub user_id: i64,
    pub username: String,
}

/// Up to `limit` videos matching `filter` whose id is above `after_id`, by
/// id ascending, with their owner's name: one page of a keyset walk
/// (`WHERE id > last ORDER BY id LIMIT n`, never OFFSET), so every page
/// costs the same however deep the walk is and a walk can resume from the
/// last id it finished. The page is read from `videos` alone (the primary
/// key, or `idx_user_id`/`idx_status`, which end in `id`, walked in order
/// from `after_id` on)
/// and the owners' names with a second lookup by primary key: a join would
/// let the optimizer start from `users` and sort every matching video. The
/// placeholder rows that no-op tasks point at (`noop://` paths, see
/// [`ensure_placeholder_video`]) are not videos and are never returned.
pub async fn page_after(
    conn: &mut PooledConnection<'_>,
    filter: &VideoFilter,
    after_id: i64,
    limit: usize,
) -> anyhow::Result<Vec<VideoOwner>> {
    use diesel::sql_types::{BigInt, Timestamp, TinyInt};
    // The index is named because MariaDB's own choice made the walk
    // quadratic: with `user_id = ?` it took `ref` access on idx_user_id and
    // read the user's entries from the first one at every page (34 ms per
    // page at 700,000 videos, BENCHMARKS.md "Enqueue throughput"). Named,
    // it is a range from (user_id, after_id): each page reads its own rows.
    let index = match (filter.user_id, filter.status) {
        (Some(_), _) => "idx_user_id",
        (None, Some(_)) => "idx_status",
        (None, None) => "PRIMARY",
    };
    let mut query = diesel::sql_query(format!(
        "SELECT id, user_id FROM videos FORCE INDEX ({index}) \
         WHERE file_path NOT LIKE 'noop://%' AND id > ?"
    ))
    .into_boxed::<diesel::mysql::Mysql>()
    .bind::<BigInt, _>(after_id);
    if let Some(user_id) = filter.user_id {
        query = query.sql(" AND user_id = ?").bind::<BigInt, _>(user_id);
    }
    if let Some(since) = filter.created_since {
        query = query.sql(" AND created_at >= ?").bind::<Timestamp, _>(since);
    }
    if let Some(before) = filter.created_before {
        query = query.sql(" AND created_at < ?").bind::<Timestamp, _>(before);
    }
    if let Some(status) = filter.status {
        query = query.sql(" AND status = ?").bind::<TinyInt, _>(status);
    }
    let page: Vec<VideoId> = query
        .sql(" ORDER BY id LIMIT ?")
        .bind::<BigInt, _>(limit as i64)
        .load(conn)
        .await
        .context("reading a page of videos")?;
    let owner_ids: Vec<i64> = page.iter().map(|v| v.user_id).collect();
    let names = crate::users::usernames(conn, &owner_ids).await?;
    Ok(page
        .into_iter()
        .map(|v| VideoOwner {
            id: v.id,
            user_id: v.user_id,
            username: names.get(&v.user_id).cloned().unwrap_or_default(),
        })
        .collect())
}

/// `videos.status` values (the seed: 1 uploaded, 2 processing, 3 completed,
/// 4 failed). A video follows its latest `video_clip` task.
pub mod status {
    pub const UPLOADED: i8 = 1;
    pub const PROCESSING: i8 = 2;
    pub const COMPLETED: i8 = 3;
    pub const FAILED: i8 = 4;
}

/// Locks the user's row until the transaction ends, so enqueues for one
/// user (quota decisions, reuse of stored files) happen one at a time.
pub async fn lock_owner(conn: &mut PooledConnection<'_>, user_id: i64) -> anyhow::Result<()> {
    crate::schema::users::table
        .find(user_id)
        .select(crate::schema::users::id)
        .for_update()
        .first::<i64>(conn)
        .await
        .context("locking the user row")?;
    Ok(())
}

/// The storage key of a video this user already stored with the same
/// SHA-256, if any: a re-upload reuses that object instead of a copy.
pub async fn stored_file_with_hash(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
    file_hash: &str,
) -> anyhow::Result<Option<String>> {
    videos::table
        .filter(videos::user_id.eq(user_id))
        .filter(videos::file_hash.eq(file_hash))
        .filter(videos::file_path.not_like("noop://%"))
        .order(videos::id.desc())
        .select(videos::file_path)
        .first(conn)
        .await
        .optional()
        .context("looking for a stored copy of the same file")
}

/// Moves a video to `videos.status` PROCESSING (its task has started).
pub async fn mark_processing(conn: &mut PooledConnection<'_>, video_id: i64) -> anyhow::Result<()> {
    diesel::update(videos::table.find(video_id))
        .set(videos::status.eq(status::PROCESSING))
        .execute(conn)
        .await
        .context("marking a video processing")?;
    Ok(())
}
