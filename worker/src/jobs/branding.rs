//! A `video_clip` task's templates, applied to each of its clips: loaded
//! once per task (rows and files), intros and outros normalised once per
//! task to the clips' format, then every clip branded with one encode and a
//! stream-copy join (`crate::pipeline::media::brand`).
//!
//! The templated clip is stored beside the plain one
//! (`shared::references::templated_key`); a shop may download either.

use crate::cancel::Cancel;
use crate::pipeline::detect::TimedWord;
use crate::pipeline::media::brand::{self, Canvas, Captions, Watermark};
use crate::pipeline::media::SourceInfo;
use crate::pipeline::subtitles::{self, CueRules};
use anyhow::Context;
use shared::db::Pool;
use shared::storage::Storage;
use shared::templates::style::{CaptionStyle, WatermarkStyle};
use shared::templates::{Template, TemplateChoice, TemplateRef};
use shared::BadInput;
use std::path::{Path, PathBuf};
use tokio::sync::OnceCell;

/// An intro or outro: its file here, and its normalised copy once made.
struct Bumper {
    file: PathBuf,
    duration: f64,
    normalized: OnceCell<PathBuf>,
}

/// A watermark's file here and its facts.
struct Mark {
    file: PathBuf,
    width: u32,
    height: u32,
    is_image: bool,
    style: WatermarkStyle,
}

/// The templates of one task, ready to apply.
pub struct Branding {
    intro: Option<Bumper>,
    outro: Option<Bumper>,
    watermark: Option<Mark>,
    captions: Option<CaptionStyle>,
    /// `templates.id` of each template used, for `usage_count`.
    pub template_ids: Vec<i64>,
}

/// Loads the templates `choice` names (ids, resolved at enqueue) and
/// fetches their files into `scratch`. `None` when the choice is empty.
/// A template disabled or deleted since the enqueue is bad input: the task
/// fails with the reason rather than ship unbranded clips.
pub async fn load(
    choice: &TemplateChoice,
    pool: &Pool,
    storage: &Storage,
    scratch: &Path,
) -> anyhow::Result<Option<Branding>> {
    if choice.is_empty() {
        return Ok(None);
    }
    let mut conn = shared::db::conn(pool).await?;
    let mut branding = Branding {
        intro: None,
        outro: None,
        watermark: None,
        captions: None,
        template_ids: vec![],
    };
    tokio::fs::create_dir_all(scratch).await.context("creating the scratch directory")?;
    for (kind, reference) in choice.slots() {
        let TemplateRef::Id(id) = reference else {
            return Err(BadInput::new("templates were not resolved at enqueue").into());
        };
        let template = shared::templates::load_template(&mut conn, *id).await?;
        if template.status != shared::templates::status::ENABLED {
            let name = &template.template_id;
            return Err(BadInput::new(format!("template {name} was disabled")).into());
        }
        branding.template_ids.push(template.id);
        use shared::templates::TemplateKind as K;
        match kind {
            K::Intro | K::Outro => {
                let file = fetch(&template, storage, scratch).await?;
                let duration = template.duration_seconds().context("an intro without duration")?;
                let bumper = Bumper { file, duration, normalized: OnceCell::new() };
                if kind == K::Intro {
                    branding.intro = Some(bumper);
                } else {
                    branding.outro = Some(bumper);
                }
            }
            K::Watermark => {
                let file = fetch(&template, storage, scratch).await?;
                let probe = shared::probe::probe_json(&file).await?;
                let format = probe.format.as_ref().and_then(|f| f.format_name.clone());
                let is_image = format.is_some_and(|f| f.ends_with("_pipe") || f == "image2");
                let style = WatermarkStyle::from_config(template.config.as_ref())
                    .map_err(|e| BadInput::new(format!("watermark config: {e}")))?;
                branding.watermark = Some(Mark {
                    file,
                    width: template.width.unwrap_or(0).max(1) as u32,
                    height: template.height.unwrap_or(0).max(1) as u32,
                    is_image,
                    style,
                });
            }
            K::Captions => {
                let style = CaptionStyle::from_config(template.config.as_ref())
                    .map_err(|e| BadInput::new(format!("captions config: {e}")))?;
                branding.captions = Some(style);
            }
        }
    }
    Ok(Some(branding))
}

/// Copies a template's stored file into `scratch`.
async fn fetch(template: &Template, storage: &Storage, scratch: &Path) -> anyhow::Result<PathBuf> {
    let key = template.file_path.as_deref().context("template without a file")?;
    let name = key.rsplit('/').next().unwrap_or("template");
    let local = scratch.join(format!("template-{name}"));
    storage.fetch_to(key, &local).await.with_context(|| format!("fetching template {key}"))?;
    Ok(local)
}

impl Branding {
    /// How long the intro plays before the clip (0 without one): what the
    /// templated clip's own subtitles are shifted by.
    pub fn intro_seconds(&self) -> f64 {
        self.intro.as_ref().map_or(0.0, |b| b.duration)
    }

    /// Brands one clip: `clip` as cut (`duration` seconds, frames of
    /// `source`), captions from `words` timed to `[start, end]` on the
    /// source. Writes `output` (MP4) and returns its size.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply(
        &self,
        clip: &Path,
        (start, end, duration): (f64, f64, f64),
        source: &SourceInfo,
        words: &[TimedWord],
        output: &Path,
        scratch: &Path,
        cancel: &Cancel,
    ) -> anyhow::Result<u64> {
        let canvas = Canvas::of(source);
        let stem = output.file_stem().and_then(|s| s.to_str()).unwrap_or("clip").to_string();
        let srt = scratch.join(format!("{stem}.captions.srt"));
        let captions = match &self.captions {
            Some(style) => {
                let cjk = style.max_chars_per_line / 2;
                let rules = CueRules {
                    max_chars: style.max_chars_per_line,
                    max_cjk_chars: cjk.max(4),
                    ..CueRules::default()
                };
                let cues = subtitles::clip_cues(words, start, end, &rules);
                tokio::fs::write(&srt, subtitles::to_srt(&cues))
                    .await
                    .context("writing captions")?;
                Some(Captions { srt: &srt, style })
            }
            None => None,
        };
        let mark = self.watermark.as_ref().map(|m| Watermark {
            file: &m.file,
            width: m.width,
            height: m.height,
            is_image: m.is_image,
            style: &m.style,
        });
        let body = scratch.join(format!("{stem}.body.mp4"));
        brand::render_body(
            clip,
            duration,
            &body,
            &canvas,
            mark.as_ref(),
            captions.as_ref(),
            cancel,
        )
        .await?;
        let intro = self.normalized(self.intro.as_ref(), "intro", &canvas, scratch, cancel).await?;
        let outro = self.normalized(self.outro.as_ref(), "outro", &canvas, scratch, cancel).await?;
        let pieces: Vec<&Path> =
            [intro, Some(body.as_path()), outro].into_iter().flatten().collect();
        let size = if pieces.len() == 1 {
            tokio::fs::rename(&body, output).await.context("moving the branded clip")?;
            tokio::fs::metadata(output).await?.len()
        } else {
            brand::join(&pieces, output, &canvas, cancel).await?
        };
        let _ = tokio::fs::remove_file(&body).await;
        let _ = tokio::fs::remove_file(&srt).await;
        Ok(size)
    }

    /// The bumper normalised to `canvas`, made on first use (one encode per
    /// task: every clip of a task has the source's format).
    async fn normalized<'a>(
        &self,
        bumper: Option<&'a Bumper>,
        name: &str,
        canvas: &Canvas,
        scratch: &Path,
        cancel: &Cancel,
    ) -> anyhow::Result<Option<&'a Path>> {
        let Some(bumper) = bumper else { return Ok(None) };
        let path = bumper
            .normalized
            .get_or_try_init(|| async {
                let out = scratch.join(format!("{name}-{}.mp4", canvas.tag()));
                brand::normalize_bumper(&bumper.file, bumper.duration, &out, canvas, cancel)
                    .await?;
                anyhow::Ok(out)
            })
            .await?;
        Ok(Some(path.as_path()))
    }
}
