//! `enqueue template add|list|show|disable`: the intros, outros, watermarks
//! and caption styles clips are branded with.
//!
//! `add` checks everything before it writes: the config against its kind's
//! schema, the file by probing it (a video with audio for an intro or outro,
//! an image or a video for a watermark, no file for captions), then stores
//! the file under `templates/{owner}/{template_id}.{ext}` with a preview
//! still beside it, and inserts the row.

use crate::Output;
use anyhow::Context;
use bigdecimal::BigDecimal;
use clap::{Args, Subcommand};
use serde_json::json;
use shared::config::Settings;
use shared::templates::style::{CaptionStyle, WatermarkStyle};
use shared::templates::{NewTemplate, Template, TemplateKind};
use shared::BadInput;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

#[derive(Subcommand, Debug)]
pub enum TemplateCommand {
    /// Add a template: FILE is a video with audio (intro, outro), an image or video (watermark), none (captions)
    Add(AddArgs),
    /// List templates (a user's usable ones with --user; every one otherwise)
    List {
        #[arg(long)]
        user: Option<String>,
        #[arg(long = "type")]
        kind: Option<String>,
        /// Disabled ones too
        #[arg(long)]
        all: bool,
    },
    /// Show one template (its id or template_id)
    Show { template: String },
    /// Disable a template: new tasks may no longer use it
    Disable { template: String },
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// The template's file (not for captions)
    pub file: Option<PathBuf>,
    /// intro, outro, watermark or captions
    #[arg(long = "type")]
    pub kind: String,
    #[arg(long)]
    pub name: String,
    /// Owner (a user name)
    #[arg(long, conflicts_with = "system", required_unless_present = "system")]
    pub user: Option<String>,
    /// A system template, usable by every user
    #[arg(long)]
    pub system: bool,
    /// Usable by every user, not only its owner
    #[arg(long)]
    pub public: bool,
    /// Style JSON: watermark position/margin/scale/opacity, captions font/size/colour/...
    #[arg(long)]
    pub config: Option<String>,
}

/// Runs a `template` subcommand.
pub async fn template(
    settings: &Settings,
    out: &Output,
    command: TemplateCommand,
) -> anyhow::Result<ExitCode> {
    let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
    let mut conn = shared::db::conn(&pool).await?;
    match command {
        TemplateCommand::Add(args) => add(settings, out, &mut conn, args).await,
        TemplateCommand::List { user, kind, all } => {
            let user_id = match user {
                Some(name) => Some(shared::users::require_user(&mut conn, &name).await?.id),
                None => None,
            };
            let kind = kind.as_deref().map(TemplateKind::parse).transpose()?;
            let rows = shared::templates::list_templates(&mut conn, user_id, kind, all).await?;
            if out.json {
                for row in &rows {
                    out.emit(&template_json(row), String::new);
                }
            } else {
                let mut table = crate::table::with_header(&[
                    "ID", "TEMPLATE", "TYPE", "NAME", "OWNER", "USES", "STATUS",
                ]);
                for r in &rows {
                    let owner = match (r.is_system, r.user_id) {
                        (1, _) => "system".to_string(),
                        (_, Some(id)) => format!("user {id}"),
                        _ => "-".into(),
                    };
                    let status = if r.status == 1 { "enabled" } else { "disabled" };
                    table.add_row([
                        r.id.to_string(),
                        r.template_id.clone(),
                        r.template_type.clone(),
                        r.name.clone(),
                        owner,
                        r.usage_count.to_string(),
                        status.to_string(),
                    ]);
                }
                println!("{}", crate::table::render(table, &[0, 5]));
            }
            Ok(ExitCode::SUCCESS)
        }
        TemplateCommand::Show { template } => {
            let row = require(&mut conn, &template).await?;
            let value = template_json(&row);
            out.emit(&value, || serde_json::to_string_pretty(&value).unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
        TemplateCommand::Disable { template } => {
            let row = require(&mut conn, &template).await?;
            let changed = shared::templates::disable_template(&mut conn, row.id).await?;
            if let Some(owner) = row.user_id {
                // user:config caches the owner's watermarks.
                crate::configs::invalidate_user(settings, owner).await;
            }
            let value = json!({ "template_id": row.template_id, "id": row.id, "status": 0 });
            out.emit(&value, || {
                let was = if changed { "" } else { " (already)" };
                format!("template {} disabled{was}", row.template_id)
            });
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The template `key` names, or bad input.
async fn require(
    conn: &mut shared::db::PooledConnection<'_>,
    key: &str,
) -> anyhow::Result<Template> {
    shared::templates::find_template(conn, key)
        .await?
        .ok_or_else(|| BadInput::new(format!("no template {key:?}")).into())
}

/// A template as JSON, with the seed's column names.
fn template_json(t: &Template) -> serde_json::Value {
    serde_json::to_value(t).unwrap_or_default()
}

/// The probed facts of a template file: (duration, width, height).
struct Probed {
    duration: Option<f64>,
    width: Option<i32>,
    height: Option<i32>,
}

/// Checks `file` is what a `kind` template needs; returns its facts.
async fn check_file(kind: TemplateKind, file: &Path) -> anyhow::Result<Probed> {
    let name = file.display();
    let json = match shared::probe::probe_json(file).await {
        Ok(json) => json,
        Err(e) if e.downcast_ref::<shared::probe::FfprobeFailed>().is_some() => {
            return Err(BadInput::new(format!("{name} is not a readable image or video")).into())
        }
        Err(e) => return Err(e),
    };
    let video = json.video().ok_or_else(|| BadInput::new(format!("{name} has no picture")))?;
    let (width, height) = (video.width.map(|w| w as i32), video.height.map(|h| h as i32));
    let duration = json.format.as_ref().and_then(|f| f.duration).filter(|d| *d > 0.0);
    if matches!(kind, TemplateKind::Intro | TemplateKind::Outro) {
        if json.audio().is_none() {
            return Err(BadInput::new(format!("{name}: an {} needs audio", kind.as_str())).into());
        }
        let Some(duration) = duration.filter(|d| *d >= 0.1 && *d <= 60.0) else {
            return Err(BadInput::new(format!(
                "{name}: an {} must be a video of 0.1 to 60 seconds",
                kind.as_str()
            ))
            .into());
        };
        shared::probe::check_complete(file).await?;
        return Ok(Probed { duration: Some(duration), width, height });
    }
    Ok(Probed { duration: None, width, height })
}

/// `template add`.
async fn add(
    settings: &Settings,
    out: &Output,
    conn: &mut shared::db::PooledConnection<'_>,
    args: AddArgs,
) -> anyhow::Result<ExitCode> {
    let kind = TemplateKind::parse(&args.kind)?;
    let config = match &args.config {
        None => None,
        Some(text) => Some(
            serde_json::from_str::<serde_json::Value>(text)
                .map_err(|e| BadInput::new(format!("--config is not valid JSON: {e}")))?,
        ),
    };
    let checked = match kind {
        TemplateKind::Watermark => WatermarkStyle::from_config(config.as_ref()).map(drop),
        TemplateKind::Captions => CaptionStyle::from_config(config.as_ref()).map(drop),
        _ if config.as_ref().is_some_and(|c| c != &json!({})) => {
            Err(format!("an {} takes no config", kind.as_str()))
        }
        _ => Ok(()),
    };
    checked
        .map_err(|e| BadInput::new(format!("--config for a {} template: {e}", kind.as_str())))?;
    if args.name.trim().is_empty() || args.name.chars().count() > 200 {
        return Err(BadInput::new("--name must be 1 to 200 characters").into());
    }
    let probed = match (kind, &args.file) {
        (TemplateKind::Captions, Some(_)) => {
            return Err(BadInput::new("a captions template has no file, only --config").into())
        }
        (TemplateKind::Captions, None) => None,
        (_, None) => {
            return Err(BadInput::new(format!("a {} template needs a FILE", kind.as_str())).into())
        }
        (_, Some(file)) => Some(check_file(kind, file).await?),
    };
    let owner = match &args.user {
        Some(name) => Some(shared::users::require_user(conn, name).await?.id),
        None => None,
    };
    let template_id = uuid::Uuid::now_v7().to_string();
    let (file_path, preview_url) = match &args.file {
        Some(file) => {
            let storage = shared::storage::Storage::from_url(&settings.storage_url)?;
            let dir = owner.map_or("system".to_string(), |id| id.to_string());
            let ext = file
                .extension()
                .map(|e| e.to_string_lossy().to_lowercase())
                .filter(|e| e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric()))
                .unwrap_or_else(|| "bin".into());
            let key = format!("templates/{dir}/{template_id}.{ext}");
            let preview_key = format!("templates/{dir}/{template_id}.jpg");
            storage.put_file(file, &key).await?;
            let preview = std::env::temp_dir().join(format!("{template_id}.jpg"));
            make_preview(file, &preview).await?;
            storage.put_file(&preview, &preview_key).await?;
            let _ = tokio::fs::remove_file(&preview).await;
            (Some(key), Some(preview_key))
        }
        None => (None, None),
    };
    let decimal = |v: f64| BigDecimal::from_str(&format!("{v:.2}")).ok();
    let new = NewTemplate {
        template_id,
        user_id: owner,
        name: args.name.trim().to_string(),
        template_type: kind.as_str().to_string(),
        file_path,
        preview_url,
        duration: probed.as_ref().and_then(|p| p.duration).and_then(decimal),
        width: probed.as_ref().and_then(|p| p.width),
        height: probed.as_ref().and_then(|p| p.height),
        config,
        is_public: i8::from(args.public),
        is_system: i8::from(args.system),
    };
    let row = shared::templates::add_template(conn, new).await?;
    if let Some(owner) = owner {
        // user:config caches the owner's watermarks.
        crate::configs::invalidate_user(settings, owner).await;
    }
    let value = template_json(&row);
    out.emit(&value, || {
        format!("template {} ({}) added: id {}", row.template_id, kind.as_str(), row.id)
    });
    Ok(ExitCode::SUCCESS)
}

/// A JPEG still of the template's first frame, at most 320 pixels wide.
async fn make_preview(file: &Path, output: &Path) -> anyhow::Result<()> {
    let status = tokio::process::Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-y", "-i"])
        .arg(file)
        .args(["-frames:v", "1", "-vf", "scale='min(320,iw)':-2", "-f", "image2"])
        .arg(output)
        .status()
        .await
        .context("running ffmpeg for a preview (is ffmpeg installed?)")?;
    anyhow::ensure!(status.success(), "ffmpeg could not make a preview of {}", file.display());
    Ok(())
}
