//! All SQL on `system_configs`, and the operator-tunable defaults it holds
//! ([`KEYS`]): each with its built-in default and the check its value must
//! pass, which `enqueue system-config set` applies before writing.
//!
//! Precedence, applied by the binaries at start-up
//! ([`crate::config::Resolver`]): a flag or environment variable wins over a
//! `system_configs` row, which wins over the built-in default. The scheduler
//! and the worker read the table once when they start (a change takes effect
//! at their next start) and log where each setting came from.

use crate::db::PooledConnection;
use crate::schema::system_configs;
use crate::BadInput;
use anyhow::Context;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// One `system_configs` row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = system_configs)]
pub struct SystemConfigRow {
    pub config_key: String,
    pub config_value: Value,
    pub description: Option<String>,
    pub is_public: i8,
    pub created_at: Option<NaiveDateTime>,
    pub updated_at: Option<NaiveDateTime>,
}

/// Built-in defaults (also the flags' defaults).
pub mod defaults {
    pub const HIGH_PRIORITY_THRESHOLD: i8 = 3;
    pub const LEASE_SECONDS: u32 = 30;
    pub const MAX_WAIT_SECONDS: u32 = 300;
    pub const RETRY_BASE_MS: u64 = 1000;
    pub const STEP_TIMEOUT_BASE_SECONDS: f64 = 60.0;
    pub const STEP_TIMEOUT_FACTOR: f64 = 5.0;
}

pub const HIGH_PRIORITY_THRESHOLD: &str = "high_priority_threshold";
pub const LEASE_SECONDS: &str = "lease_seconds";
pub const MAX_WAIT_SECONDS: &str = "max_wait_seconds";
pub const RETRY_BASE_MS: &str = "retry_base_ms";
pub const STEP_TIMEOUT_BASE_SECONDS: &str = "step_timeout_base_seconds";
pub const STEP_TIMEOUT_FACTOR: &str = "step_timeout_factor";
pub const MIN_CLIP_SECONDS: &str = "min_clip_seconds";
pub const MAX_CLIP_SECONDS: &str = "max_clip_seconds";
pub const CAPTION_STYLE: &str = "caption_style";

/// A key operators may set, with its meaning, its default and its check.
pub struct Key {
    pub name: &'static str,
    /// Stored in `system_configs.description`.
    pub description: &'static str,
    /// Stored in `system_configs.is_public`: whether users may see it.
    pub is_public: bool,
    /// The flag and environment variable that override it, if any.
    pub overridden_by: Option<(&'static str, &'static str)>,
    default: fn() -> Value,
    check: fn(&Value) -> Result<(), String>,
}

impl Key {
    /// The built-in default.
    pub fn default_value(&self) -> Value {
        (self.default)()
    }
}

/// Every key `enqueue system-config set` accepts.
pub const KEYS: &[Key] = &[
    Key {
        name: HIGH_PRIORITY_THRESHOLD,
        description: "tasks with priority <= this go to queue:high_priority (0..10; scheduler)",
        is_public: false,
        overridden_by: Some(("--high-priority-threshold", "HIGH_PRIORITY_THRESHOLD")),
        default: || json!(defaults::HIGH_PRIORITY_THRESHOLD),
        check: |v| integer_in(v, 0, 10),
    },
    Key {
        name: LEASE_SECONDS,
        description: "how long a claimed task's lease lasts without a heartbeat, seconds (1..86400; worker)",
        is_public: false,
        overridden_by: Some(("--lease-seconds", "LEASE_SECONDS")),
        default: || json!(defaults::LEASE_SECONDS),
        check: |v| integer_in(v, 1, 86_400),
    },
    Key {
        name: MAX_WAIT_SECONDS,
        description: "a task waiting longer than this goes to queue:high_priority (aging), seconds (1..604800; scheduler)",
        is_public: false,
        overridden_by: Some(("--max-wait-seconds", "MAX_WAIT_SECONDS")),
        default: || json!(defaults::MAX_WAIT_SECONDS),
        check: |v| integer_in(v, 1, 604_800),
    },
    Key {
        name: RETRY_BASE_MS,
        description: "first retry's backoff, milliseconds, doubling each retry with jitter (1..3600000; worker)",
        is_public: false,
        overridden_by: Some(("--retry-base-ms", "RETRY_BASE_MS")),
        default: || json!(defaults::RETRY_BASE_MS),
        check: |v| integer_in(v, 1, 3_600_000),
    },
    Key {
        name: STEP_TIMEOUT_BASE_SECONDS,
        description: "time limit of each video step: this many seconds plus step_timeout_factor per second of video (0 < s <= 604800; worker)",
        is_public: false,
        overridden_by: Some(("--step-timeout-base-seconds", "STEP_TIMEOUT_BASE_SECONDS")),
        default: || json!(defaults::STEP_TIMEOUT_BASE_SECONDS),
        check: |v| number_in(v, 0.0, 604_800.0, false),
    },
    Key {
        name: STEP_TIMEOUT_FACTOR,
        description: "seconds a video step may take per second of video, on top of the base (0..1000; worker)",
        is_public: false,
        overridden_by: Some(("--step-timeout-factor", "STEP_TIMEOUT_FACTOR")),
        default: || json!(defaults::STEP_TIMEOUT_FACTOR),
        check: |v| number_in(v, 0.0, 1000.0, true),
    },
    Key {
        name: MIN_CLIP_SECONDS,
        description: "shortest clip the detector keeps, seconds (users' and tasks' selling_points override it; worker)",
        is_public: true,
        overridden_by: None,
        default: || json!(crate::detection::DetectionConfig::builtin().min_clip_seconds),
        check: |v| number_in(v, 0.0, 3600.0, true),
    },
    Key {
        name: MAX_CLIP_SECONDS,
        description: "longest clip the detector makes before splitting, seconds (users' and tasks' selling_points override it; worker)",
        is_public: true,
        overridden_by: None,
        default: || json!(crate::detection::DetectionConfig::builtin().max_clip_seconds),
        check: |v| number_in(v, 0.0, 3600.0, false),
    },
    Key {
        name: CAPTION_STYLE,
        description: "default style of burned-in captions: font, size, colour, outline, outline_colour, position, max_chars_per_line",
        is_public: true,
        overridden_by: None,
        default: || serde_json::to_value(CaptionStyle::default()).unwrap_or_default(),
        check: |v| CaptionStyle::parse(v).map(drop),
    },
];

/// The key called `name`, or bad input listing the known ones.
pub fn key(name: &str) -> Result<&'static Key, BadInput> {
    KEYS.iter().find(|k| k.name == name).ok_or_else(|| {
        let known: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        BadInput::new(format!("unknown system config key {name:?} (one of: {})", known.join(", ")))
    })
}

/// Checks `value` for the key `name` alone.
pub fn check_value(name: &str, value: &Value) -> Result<(), BadInput> {
    let key = key(name)?;
    (key.check)(value).map_err(|reason| BadInput::new(format!("invalid {name}: {reason}")))
}

/// Checks what several keys must satisfy together, for a set of stored
/// values (key -> value; missing keys take their defaults): the clip limits
/// must make a usable detector (`min_clip_seconds <= max_clip_seconds`).
pub fn check_together(values: &BTreeMap<String, Value>) -> Result<(), BadInput> {
    detection_defaults(values).map(drop).map_err(BadInput::new)
}

/// The detector's defaults with the stored clip limits applied.
pub fn detection_defaults(
    values: &BTreeMap<String, Value>,
) -> Result<crate::detection::DetectionConfig, String> {
    let mut overrides = serde_json::Map::new();
    for name in [MIN_CLIP_SECONDS, MAX_CLIP_SECONDS] {
        if let Some(value) = values.get(name) {
            check_value(name, value).map_err(|e| e.0)?;
            overrides.insert(name.to_string(), value.clone());
        }
    }
    crate::detection::DetectionConfig::builtin()
        .with_overrides(&Value::Object(overrides))
        .map_err(|e| format!("system_configs: {e:#}"))
}

/// Parses a stored value as `T` after checking it.
pub fn parse<T: serde::de::DeserializeOwned>(name: &str, value: &Value) -> Result<T, String> {
    check_value(name, value).map_err(|e| e.0)?;
    serde_json::from_value(value.clone()).map_err(|e| format!("invalid {name}: {e}"))
}

fn integer_in(value: &Value, low: i64, high: i64) -> Result<(), String> {
    match value.as_i64() {
        Some(n) if (low..=high).contains(&n) => Ok(()),
        _ => Err(format!("must be a whole number from {low} to {high}, not {value}")),
    }
}

fn number_in(value: &Value, low: f64, high: f64, low_included: bool) -> Result<(), String> {
    let ok = value
        .as_f64()
        .is_some_and(|n| n.is_finite() && n <= high && (n > low || (low_included && n == low)));
    if ok {
        Ok(())
    } else {
        let bound = if low_included { "from" } else { "above" };
        Err(format!("must be a number {bound} {low} up to {high}, not {value}"))
    }
}

/// Where burned-in captions sit in the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptionPosition {
    Bottom,
    Middle,
    Top,
}

/// How burned-in captions look (the `caption_style` default; a captions
/// template's `config` has the same fields). Missing fields take their
/// defaults; unknown ones are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptionStyle {
    /// Font family (fontconfig name); the default covers Chinese.
    pub font: String,
    /// Font size in pixels of a 1080-line frame (scaled with the frame).
    pub size: u32,
    /// Text colour, `#RRGGBB` or `#RRGGBBAA`.
    pub colour: String,
    /// Outline width in pixels (0: none).
    pub outline: f64,
    /// Outline colour, `#RRGGBB` or `#RRGGBBAA`.
    pub outline_colour: String,
    pub position: CaptionPosition,
    /// Longer lines are wrapped (characters; a CJK character counts one).
    pub max_chars_per_line: u32,
}

impl Default for CaptionStyle {
    fn default() -> Self {
        CaptionStyle {
            font: "Noto Sans CJK SC".into(),
            size: 48,
            colour: "#FFFFFF".into(),
            outline: 2.0,
            outline_colour: "#000000".into(),
            position: CaptionPosition::Bottom,
            max_chars_per_line: 18,
        }
    }
}

impl CaptionStyle {
    /// Parses and checks a style object; `Err` is the reason.
    pub fn parse(value: &Value) -> Result<CaptionStyle, String> {
        if !value.is_object() {
            return Err(format!("must be a JSON object, not {value}"));
        }
        let style: CaptionStyle = crate::user_configs::typed(value)?;
        let font_ok = !style.font.trim().is_empty()
            && style.font.chars().count() <= 100
            && !style.font.chars().any(|c| c.is_control() || "':,\\".contains(c));
        if !font_ok {
            return Err(format!("font must be a font name of 1 to 100 characters without quotes, colons, commas or backslashes, not {:?}", style.font));
        }
        if !(8..=200).contains(&style.size) {
            return Err(format!("size must be 8 to 200 pixels, not {}", style.size));
        }
        for (name, colour) in [("colour", &style.colour), ("outline_colour", &style.outline_colour)]
        {
            let hex = colour.strip_prefix('#').unwrap_or("");
            if !matches!(hex.len(), 6 | 8) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!("{name} must be #RRGGBB or #RRGGBBAA, not {colour:?}"));
            }
        }
        if !(style.outline.is_finite() && (0.0..=20.0).contains(&style.outline)) {
            return Err(format!("outline must be 0 to 20 pixels, not {}", style.outline));
        }
        if !(4..=200).contains(&style.max_chars_per_line) {
            return Err(format!(
                "max_chars_per_line must be 4 to 200, not {}",
                style.max_chars_per_line
            ));
        }
        Ok(style)
    }
}

/// Every row, by key.
pub async fn list_rows(conn: &mut PooledConnection<'_>) -> anyhow::Result<Vec<SystemConfigRow>> {
    system_configs::table
        .order(system_configs::config_key)
        .select(SystemConfigRow::as_select())
        .load(conn)
        .await
        .context("reading system_configs")
}

/// Every stored value, by key (what [`crate::config::Resolver`] layers
/// under the flags).
pub async fn load_values(
    conn: &mut PooledConnection<'_>,
) -> anyhow::Result<BTreeMap<String, Value>> {
    Ok(list_rows(conn).await?.into_iter().map(|row| (row.config_key, row.config_value)).collect())
}

/// The row for `name`, if set.
pub async fn find_row(
    conn: &mut PooledConnection<'_>,
    name: &str,
) -> anyhow::Result<Option<SystemConfigRow>> {
    system_configs::table
        .filter(system_configs::config_key.eq(name))
        .select(SystemConfigRow::as_select())
        .first(conn)
        .await
        .optional()
        .context("reading system_configs")
}

/// Stores `value` for `key` (with its description and visibility),
/// replacing any earlier value. Unchecked: callers check first.
pub async fn set_value(
    conn: &mut PooledConnection<'_>,
    key: &Key,
    value: &Value,
) -> anyhow::Result<()> {
    let is_public = i8::from(key.is_public);
    diesel::insert_into(system_configs::table)
        .values((
            system_configs::config_key.eq(key.name),
            system_configs::config_value.eq(value),
            system_configs::description.eq(key.description),
            system_configs::is_public.eq(is_public),
        ))
        .on_conflict(diesel::dsl::DuplicatedKeys)
        .do_update()
        .set((
            system_configs::config_value.eq(value),
            system_configs::description.eq(key.description),
            system_configs::is_public.eq(is_public),
            system_configs::updated_at.eq(diesel::dsl::now.nullable()),
        ))
        .execute(conn)
        .await
        .context("writing system_configs")?;
    Ok(())
}

/// Removes the row for `name` (the default applies again); returns whether
/// there was one.
pub async fn delete_value(conn: &mut PooledConnection<'_>, name: &str) -> anyhow::Result<bool> {
    let deleted = diesel::delete(system_configs::table.filter(system_configs::config_key.eq(name)))
        .execute(conn)
        .await
        .context("deleting from system_configs")?;
    Ok(deleted > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked() {
        assert!(check_value("lease_seconds", &json!(45)).is_ok());
        let r = check_value("lease_seconds", &json!(0)).unwrap_err().0;
        assert_eq!(r, "invalid lease_seconds: must be a whole number from 1 to 86400, not 0");
        assert!(check_value("lease_seconds", &json!(1.5)).is_err());
        assert!(check_value("lease_seconds", &json!("45")).is_err());
        assert!(check_value("step_timeout_factor", &json!(0)).is_ok());
        assert!(check_value("step_timeout_base_seconds", &json!(0)).is_err());
        assert!(check_value("max_clip_seconds", &json!(12.5)).is_ok());
        let r = check_value("lease", &json!(1)).unwrap_err().0;
        assert!(r.contains("unknown system config key") && r.contains("lease_seconds"), "{r}");
        // Every default passes its own check.
        for key in KEYS {
            assert!(check_value(key.name, &key.default_value()).is_ok(), "{}", key.name);
        }
    }

    #[test]
    fn clip_limits_are_checked_together() {
        let mut values = BTreeMap::new();
        values.insert(MAX_CLIP_SECONDS.to_string(), json!(20));
        assert_eq!(detection_defaults(&values).unwrap().max_clip_seconds, 20.0);
        values.insert(MIN_CLIP_SECONDS.to_string(), json!(25));
        let r = check_together(&values).unwrap_err().0;
        assert!(r.contains("must not exceed max_clip_seconds"), "{r}");
    }

    #[test]
    fn caption_styles_are_checked() {
        let ok = json!({"font": "Noto Sans CJK SC", "size": 40, "colour": "#FFCC00", "outline": 3, "position": "top", "max_chars_per_line": 20});
        assert_eq!(CaptionStyle::parse(&ok).unwrap().position, CaptionPosition::Top);
        assert_eq!(CaptionStyle::parse(&json!({})).unwrap(), CaptionStyle::default());
        let r = CaptionStyle::parse(&json!({"color": "#FFFFFF"})).unwrap_err();
        assert!(r.contains("unknown field `color`"), "{r}");
        let r = CaptionStyle::parse(&json!({"colour": "white"})).unwrap_err();
        assert!(r.contains("colour must be #RRGGBB"), "{r}");
        let r = CaptionStyle::parse(&json!({"size": 40, "position": "left"})).unwrap_err();
        assert!(r.starts_with("position: unknown variant `left`"), "{r}");
        assert!(CaptionStyle::parse(&json!({"size": 2})).unwrap_err().contains("size must be"));
        assert!(CaptionStyle::parse(&json!({"max_chars_per_line": 0})).is_err());
        assert!(CaptionStyle::parse(&json!({"font": "a'b"})).is_err());
    }
}
