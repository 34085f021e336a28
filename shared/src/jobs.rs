//! The task types and their typed configurations: one registry that the
//! CLI (at enqueue, so bad config is refused before a row exists), backfill
//! and the worker (which parses the same types to run a task) all use.
//!
//! Each task type is a [`JobKind`]: its `task_type` name and a config struct
//! that refuses unknown keys (`deny_unknown_fields`) and checks its values.

use crate::BadInput;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A task type's name and configuration.
pub trait JobKind {
    /// `processing_tasks.task_type`.
    const TYPE: &'static str;
    /// `processing_tasks.config`, typed. `Default` is the config of a task
    /// created without one.
    type Config: DeserializeOwned + Default;

    /// Checks values serde cannot (ranges, formats); `Err` is the reason.
    fn validate(config: &Self::Config) -> Result<(), String>;
}

/// `noop`: sleep, maybe fail on purpose, write one result row.
pub struct Noop;

/// The `noop` task's config.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NoopConfig {
    /// How long the task sleeps.
    #[serde(default)]
    pub sleep_ms: u64,
    /// Probability (0..=1) that a run fails with a transient error.
    #[serde(default)]
    pub fail_rate: f64,
}

impl JobKind for Noop {
    const TYPE: &'static str = "noop";
    type Config = NoopConfig;

    fn validate(config: &NoopConfig) -> Result<(), String> {
        if !(0.0..=1.0).contains(&config.fail_rate) {
            return Err(format!("fail_rate must be between 0 and 1, not {}", config.fail_rate));
        }
        if config.sleep_ms > 24 * 3600 * 1000 {
            return Err(format!("sleep_ms must be at most a day, not {}", config.sleep_ms));
        }
        Ok(())
    }
}

/// `video_clip`: transcribe, detect selling points, cut clips.
pub struct VideoClip;

/// The `video_clip` task's config.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VideoClipConfig {
    /// Spoken language (`zh`, `en`, ...); detected when absent.
    #[serde(default)]
    pub language: Option<String>,
    /// Overrides of the detector's lexicons and thresholds, checked against
    /// the detector's schema ([`crate::detection::DetectionConfig`]).
    #[serde(default)]
    pub selling_points: Option<serde_json::Value>,
    /// Templates for the clips (intro, outro, watermark, captions): ids or
    /// `template_id`s; resolved to ids and checked at enqueue
    /// (`crate::templates::choose_for_task`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<crate::templates::TemplateChoice>,
}

impl JobKind for VideoClip {
    const TYPE: &'static str = "video_clip";
    type Config = VideoClipConfig;

    fn validate(config: &VideoClipConfig) -> Result<(), String> {
        if let Some(language) = &config.language {
            check_language(language)?;
        }
        if let Some(overrides) = &config.selling_points {
            crate::detection::DetectionConfig::check_overrides(overrides)?;
        }
        Ok(())
    }
}

/// `download_package`: build a download package (zip or tar of clips,
/// thumbnails, subtitles and a manifest), store it, set its record ready
/// with its link. Created by `enqueue download` with its
/// `download_records` row, which holds the segments and the format.
pub struct DownloadPackage;

/// The `download_package` task's config.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadPackageConfig {
    /// `download_records.download_id` of the package to build.
    pub download_id: String,
    /// Package the templated clips instead of the plain ones.
    #[serde(default)]
    pub templated: bool,
    /// How long the link works once the package is ready (seconds).
    #[serde(default = "default_expires_in")]
    pub expires_in_seconds: u64,
}

fn default_expires_in() -> u64 {
    24 * 3600
}

impl Default for DownloadPackageConfig {
    /// No download id: refused by `validate` (a task of this type is only
    /// ever created with its record).
    fn default() -> Self {
        DownloadPackageConfig {
            download_id: String::new(),
            templated: false,
            expires_in_seconds: default_expires_in(),
        }
    }
}

impl JobKind for DownloadPackage {
    const TYPE: &'static str = "download_package";
    type Config = DownloadPackageConfig;

    fn validate(config: &DownloadPackageConfig) -> Result<(), String> {
        if !crate::downloads::sign::is_plain_id(&config.download_id) {
            return Err(format!(
                "download_id must name a download record (letters, digits, '-', '_'), not {:?} (create downloads with `enqueue download`)",
                config.download_id
            ));
        }
        let max = crate::downloads::MAX_EXPIRES_IN_SECONDS;
        if !(1..=max).contains(&config.expires_in_seconds) {
            return Err(format!(
                "expires_in_seconds must be between 1 and {max} (a week), not {}",
                config.expires_in_seconds
            ));
        }
        Ok(())
    }
}

/// A spoken-language setting: a two- or three-letter lowercase code
/// (`zh`, `en`, `yue`) or `auto` (detect). `Err` is the reason.
pub fn check_language(language: &str) -> Result<(), String> {
    let ok = (2..=3).contains(&language.len()) && language.chars().all(|c| c.is_ascii_lowercase());
    if !ok && language != "auto" {
        return Err(format!(
            "language must be a two- or three-letter code such as zh or en, not {language:?}"
        ));
    }
    Ok(())
}

/// Every task type, for messages and `--task-type` checks.
pub const TASK_TYPES: &[&str] = &[VideoClip::TYPE, Noop::TYPE, DownloadPackage::TYPE];

/// Parses and validates a config of `J` (none means the default).
pub fn parse_config<J: JobKind>(config: Option<&serde_json::Value>) -> Result<J::Config, BadInput> {
    let parsed = match config {
        None => J::Config::default(),
        Some(value) => serde_json::from_value(value.clone())
            .map_err(|e| BadInput::new(format!("invalid {} config: {e}", J::TYPE)))?,
    };
    J::validate(&parsed).map_err(|e| BadInput::new(format!("invalid {} config: {e}", J::TYPE)))?;
    Ok(parsed)
}

/// Checks that `task_type` exists and `config` is a valid config for it:
/// what every command that creates tasks calls before writing.
pub fn check_config(task_type: &str, config: Option<&serde_json::Value>) -> Result<(), BadInput> {
    match task_type {
        t if t == VideoClip::TYPE => parse_config::<VideoClip>(config).map(drop),
        t if t == Noop::TYPE => parse_config::<Noop>(config).map(drop),
        t if t == DownloadPackage::TYPE => parse_config::<DownloadPackage>(config).map(drop),
        other => Err(BadInput::new(format!(
            "unknown task type {other:?} (one of: {})",
            TASK_TYPES.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configs_refuse_unknown_keys_and_bad_values_with_a_reason() {
        assert!(check_config("video_clip", None).is_ok());
        assert!(check_config("video_clip", Some(&json!({"language": "zh"}))).is_ok());
        let typo = check_config("video_clip", Some(&json!({"langauge": "zh"}))).unwrap_err();
        assert!(typo.0.contains("unknown field `langauge`"), "{typo}");
        let bad = check_config("video_clip", Some(&json!({"language": "Chinese!"}))).unwrap_err();
        assert!(bad.0.contains("language must be"), "{bad}");
        let points = check_config(
            "video_clip",
            Some(&json!({"selling_points": {"thresholds": {"hook": 2.0}}})),
        )
        .unwrap_err();
        assert!(points.0.contains("selling_points.thresholds.hook must be in [0, 1]"), "{points}");
        let rate = check_config("noop", Some(&json!({"fail_rate": 2.0}))).unwrap_err();
        assert!(rate.0.contains("fail_rate"), "{rate}");
        assert!(check_config("download_package", Some(&json!({"download_id": "0190-ab"}))).is_ok());
        let none = check_config("download_package", None).unwrap_err();
        assert!(none.0.contains("download_id"), "{none}");
        let typo =
            check_config("download_package", Some(&json!({"download_id": "a", "templates": true})))
                .unwrap_err();
        assert!(typo.0.contains("unknown field `templates`"), "{typo}");
        let long = check_config(
            "download_package",
            Some(&json!({"download_id": "a", "expires_in_seconds": 700_000})),
        )
        .unwrap_err();
        assert!(long.0.contains("expires_in_seconds"), "{long}");
        let kind = check_config("transcode", None).unwrap_err();
        assert!(kind.0.contains("unknown task type") && kind.0.contains("video_clip"), "{kind}");
    }
}
