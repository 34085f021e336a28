//! One clip of a `video_clip` task: cut frame-exactly, its thumbnail, its
//! SRT and WebVTT subtitles and (with templates) its branded copy, all
//! stored under the attempt's prefix; and the `video_segments` row for it.

use super::*;

/// One stored clip and its thumbnail.
pub(super) struct CutClip<'a> {
    pub(super) point: &'a SellingPoint,
    pub(super) segment_id: String,
    pub(super) report: media::CutReport,
    pub(super) clip_key: String,
    pub(super) clip_size: u64,
    pub(super) thumb_key: String,
    /// Subtitle cues stored beside the clip (SRT and WebVTT).
    pub(super) cues: usize,
    /// The branded copy's storage key and size, with templates.
    pub(super) templated: Option<(String, u64)>,
}

/// What every clip of a task is cut with.
pub(super) struct ClipContext<'a> {
    pub(super) task: &'a ClaimedTask,
    pub(super) source: &'a Path,
    /// The source as the cutter reads it: packets scanned once for all clips.
    pub(super) cut_source: &'a media::CutSource,
    pub(super) info: &'a media::SourceInfo,
    pub(super) words: &'a [detect::TimedWord],
    pub(super) ext: &'a str,
    pub(super) scratch: &'a Path,
    pub(super) storage: &'a Storage,
    pub(super) branding: Option<&'a branding::Branding>,
}

/// Cuts one selling point frame-exactly, makes its thumbnail and subtitles
/// (from the words, timed to the clip as cut) and, with templates, its
/// branded copy, and stores them all.
pub(super) async fn cut_one<'a>(
    cx: &ClipContext<'_>,
    point: &'a SellingPoint,
    cancel: &Cancel,
) -> anyhow::Result<CutClip<'a>> {
    let segment_id = uuid_v7();
    let clip = cx.scratch.join(format!("{segment_id}.{}", cx.ext));
    let thumb = cx.scratch.join(format!("{segment_id}.jpg"));
    let request = CutRequest { start: point.start, end: point.end };
    let report = cx.cut_source.cut(&clip, &request, cancel, |_| {}).await?;
    let at = report.start + (report.duration / 2.0).min(1.0);
    media::thumbnail(cx.source, at, &thumb, cancel).await?;
    let prefix = attempt_prefix(cx.task);
    let clip_key = format!("{prefix}/{segment_id}.{}", cx.ext);
    let thumb_key = format!("{prefix}/{segment_id}.jpg");
    let clip_size = cx.storage.put_file(&clip, &clip_key).await?;
    cx.storage.put_file(&thumb, &thumb_key).await?;
    let cues = subtitles::clip_cues(cx.words, report.start, report.end, &CueRules::default());
    store_subtitles(cx, &clip_key, &cues).await?;
    let templated = match cx.branding {
        Some(branding) => {
            let output = cx.scratch.join(format!("{segment_id}.templated.mp4"));
            let span = (report.start, report.end, report.duration);
            let words = cx.words;
            branding.apply(&clip, span, cx.info, words, &output, cx.scratch, cancel).await?;
            let key = shared::references::templated_key(&clip_key);
            let size = cx.storage.put_file(&output, &key).await?;
            // Its own subtitles, shifted by the intro that plays first.
            let shift = branding.intro_seconds();
            let shifted: Vec<subtitles::Cue> = cues
                .iter()
                .map(|c| subtitles::Cue { start: c.start + shift, end: c.end + shift, ..c.clone() })
                .collect();
            store_subtitles(cx, &key, &shifted).await?;
            Some((key, size))
        }
        None => None,
    };
    Ok(CutClip {
        point,
        segment_id,
        report,
        clip_key,
        clip_size,
        thumb_key,
        cues: cues.len(),
        templated,
    })
}

/// Stores `cues` as the SRT and WebVTT files beside the clip `clip_key`.
pub(super) async fn store_subtitles(
    cx: &ClipContext<'_>,
    clip_key: &str,
    cues: &[subtitles::Cue],
) -> anyhow::Result<()> {
    let [srt_key, vtt_key] = shared::references::subtitle_keys(clip_key);
    for (key, text) in [(srt_key, subtitles::to_srt(cues)), (vtt_key, subtitles::to_webvtt(cues))] {
        let file = cx.scratch.join(key.rsplit('/').next().unwrap_or("subtitles"));
        tokio::fs::write(&file, text)
            .await
            .with_context(|| format!("writing {}", file.display()))?;
        cx.storage.put_file(&file, &key).await?;
    }
    Ok(())
}

/// Where one attempt of a task stores its clips and thumbnails:
/// `clips/{user_id}/{task_id}/attempt-{n}`. Each attempt writes under its
/// own prefix, so a refused attempt's objects are removed without touching
/// the committed ones (see [`super::discard_attempt`]).
pub fn attempt_prefix(task: &ClaimedTask) -> String {
    shared::references::attempt_prefix(task.user_id, &task.task_id, task.attempts)
}

pub(super) fn uuid_v7() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub(super) fn segment_row(
    task: &ClaimedTask,
    point: &SellingPoint,
    segment_id: &str,
    report: &media::CutReport,
    clip_key: &str,
    clip_size: u64,
    thumb_key: &str,
) -> NewSegment {
    NewSegment {
        segment_id: segment_id.to_string(),
        task_id: task.id,
        user_id: task.user_id,
        original_video_id: task.video_id,
        selling_point_type: point.kind.as_str().to_string(),
        start_time: decimal(report.start, 3),
        end_time: decimal(report.end, 3),
        confidence: Some(decimal(point.confidence.clamp(0.0, 1.0), 2)),
        title: Some(point.title.chars().take(200).collect()),
        description: Some(point.description.clone()),
        file_path: Some(clip_key.to_string()),
        file_size: Some(clip_size as i64),
        thumbnail_url: Some(thumb_key.to_string()),
    }
}
