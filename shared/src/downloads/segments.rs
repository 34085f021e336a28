//! The segments a package may hold: loaded for a user, checked (theirs,
//! status 1, a clip file), and resolved to the stored files that go in.

use super::*;

/// A `video_segments` row as a package needs it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = vs)]
pub struct SegmentForPackage {
    pub segment_id: String,
    pub task_id: i64,
    pub user_id: i64,
    pub original_video_id: i64,
    pub selling_point_type: String,
    pub start_time: BigDecimal,
    pub end_time: BigDecimal,
    pub duration: Option<BigDecimal>,
    pub confidence: Option<BigDecimal>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub file_path: Option<String>,
    pub thumbnail_url: Option<String>,
    pub status: i8,
}

pub(super) fn number(d: &BigDecimal) -> f64 {
    d.to_string().parse().unwrap_or(0.0)
}

/// The segments with these ids that exist (any user, any status).
pub async fn segments_by_ids(
    conn: &mut PooledConnection<'_>,
    ids: &[String],
) -> anyhow::Result<Vec<SegmentForPackage>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(crate::tasks::BATCH_ROWS) {
        let rows: Vec<SegmentForPackage> = vs::table
            .filter(vs::segment_id.eq_any(chunk))
            .select(SegmentForPackage::as_select())
            .load(conn)
            .await
            .context("reading segments")?;
        found.extend(rows);
    }
    Ok(found)
}

/// The packageable segments (status 1) of the task with primary key
/// `task_pk`, in time order.
pub async fn segments_of_task(
    conn: &mut PooledConnection<'_>,
    task_pk: i64,
) -> anyhow::Result<Vec<SegmentForPackage>> {
    vs::table
        .filter(vs::task_id.eq(task_pk))
        .filter(vs::status.eq(1))
        .order((vs::start_time, vs::id))
        .select(SegmentForPackage::as_select())
        .load(conn)
        .await
        .context("reading the task's segments")
}

/// The primary key and owner (`user_id`) of the task with this public id.
pub async fn find_task(
    conn: &mut PooledConnection<'_>,
    task_id: &str,
) -> anyhow::Result<Option<(i64, i64)>> {
    use crate::schema::processing_tasks as pt;
    pt::table
        .filter(pt::task_id.eq(task_id))
        .select((pt::id, pt::user_id))
        .first(conn)
        .await
        .optional()
        .context("looking up a task")
}

/// The requested segments in the order asked for (each once), or the
/// reason they cannot be packaged: an id that does not exist, a segment of
/// another user than `user_id` (when given; else all must be one user's), a
/// segment whose `status` is not 1 (deleted), one without a clip file.
pub fn check_packageable(
    requested: &[String],
    found: &[SegmentForPackage],
    user: Option<(i64, &str)>,
) -> Result<Vec<SegmentForPackage>, BadInput> {
    let mut seen = std::collections::HashSet::new();
    let mut ordered: Vec<SegmentForPackage> = Vec::new();
    for id in requested.iter().filter(|id| seen.insert(id.as_str())) {
        let Some(segment) = found.iter().find(|s| &s.segment_id == id) else {
            return Err(BadInput::new(format!("unknown segment id {id:?}")));
        };
        match user {
            Some((user_id, name)) if segment.user_id != user_id => {
                return Err(BadInput::new(format!(
                    "segment {id} is not one of user {name:?}'s segments"
                )));
            }
            None if !ordered.is_empty() && ordered[0].user_id != segment.user_id => {
                return Err(BadInput::new(format!(
                    "segment {id} belongs to another user than segment {} (one user's segments per package)",
                    ordered[0].segment_id
                )));
            }
            _ => {}
        }
        check_segment(segment)?;
        ordered.push(segment.clone());
    }
    if ordered.is_empty() {
        return Err(BadInput::new("no segment to package"));
    }
    Ok(ordered)
}

/// One segment's own conditions: `status` 1 and a clip file.
pub fn check_segment(segment: &SegmentForPackage) -> Result<(), BadInput> {
    if segment.status != 1 {
        return Err(BadInput::new(format!(
            "segment {} has status {} (only segments with status 1 can be packaged)",
            segment.segment_id, segment.status
        )));
    }
    if segment.file_path.as_deref().is_none_or(str::is_empty) {
        return Err(BadInput::new(format!("segment {} has no clip file", segment.segment_id)));
    }
    Ok(())
}

/// Where the templated variant of a segment's clip is stored, if the
/// segment has a clip at all: beside the plain clip, `.templated` before
/// the extension (`…/{segment_id}.templated.mp4`). Whether it exists is
/// the storage's to say ([`resolve_clips`]). The one place that decides
/// where templated clips live; templates are applied by another part of
/// the system, which must store them here (or change this function).
pub fn templated_clip_key(segment: &SegmentForPackage) -> Option<String> {
    let plain = segment.file_path.as_deref().filter(|k| !k.is_empty())?;
    Some(crate::references::templated_key(plain))
}

/// The subtitle files a clip may have: beside it and timed to it
/// (`crate::references::subtitle_keys`; a templated clip's own are shifted
/// by its intro).
pub fn subtitle_candidates(clip_key: &str) -> Vec<String> {
    crate::references::subtitle_keys(clip_key).to_vec()
}

/// The package's clips with the storage keys of their files: the plain or
/// (with `templated`) the templated clip, the thumbnail, the subtitle files
/// that exist. A templated clip that is not stored is [`BadInput`] naming
/// the segment.
pub async fn resolve_clips(
    storage: &Storage,
    segments: &[SegmentForPackage],
    templated: bool,
) -> anyhow::Result<Vec<PackageClip>> {
    let mut clips = Vec::with_capacity(segments.len());
    for segment in segments {
        check_segment(segment)?;
        let plain = segment.file_path.clone().unwrap_or_default();
        let clip_key = if templated {
            let key = templated_clip_key(segment).unwrap_or_default();
            if !storage.exists(&key).await? {
                return Err(BadInput::new(format!(
                    "segment {} has no templated clip (apply templates to its video first, or leave out --templated)",
                    segment.segment_id
                ))
                .into());
            }
            key
        } else {
            plain
        };
        let mut subtitle_keys = Vec::new();
        for key in subtitle_candidates(&clip_key) {
            if storage.exists(&key).await? {
                subtitle_keys.push(key);
            }
        }
        let (start, end) = (number(&segment.start_time), number(&segment.end_time));
        clips.push(PackageClip {
            segment_id: segment.segment_id.clone(),
            selling_point_type: segment.selling_point_type.clone(),
            start_time: start,
            end_time: end,
            duration: segment.duration.as_ref().map(number).unwrap_or(end - start),
            title: segment.title.clone(),
            description: segment.description.clone(),
            confidence: segment.confidence.as_ref().map(number),
            clip_key,
            thumbnail_key: segment.thumbnail_url.clone().filter(|k| !k.is_empty()),
            subtitle_keys,
        });
    }
    Ok(clips)
}
