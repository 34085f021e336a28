//! Detection settings: thresholds, clip limits and lexicons, with JSON
//! overrides merged over the defaults.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::SellingPointType;

/// Default lexicons (zh and en), embedded data.
const DEFAULT_LEXICONS: &str = include_str!("lexicons.json");

/// One number per selling-point type (used for the label thresholds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeValues {
    /// Value for [`SellingPointType::Hook`].
    pub hook: f64,
    /// Value for [`SellingPointType::Material`].
    pub material: f64,
    /// Value for [`SellingPointType::Effect`].
    pub effect: f64,
    /// Value for [`SellingPointType::Promotion`].
    pub promotion: f64,
}

impl TypeValues {
    /// Returns the value for `kind`.
    pub fn get(&self, kind: SellingPointType) -> f64 {
        match kind {
            SellingPointType::Hook => self.hook,
            SellingPointType::Material => self.material,
            SellingPointType::Effect => self.effect,
            SellingPointType::Promotion => self.promotion,
        }
    }
}

/// What to do with a clip shorter than [`DetectionConfig::min_clip_seconds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShortClipPolicy {
    /// Grow it symmetrically into the free time around it (never into a
    /// neighbouring clip); drop it only when there is no room.
    Extend,
    /// Drop it.
    Drop,
}

/// Weighted terms for one language, one map per type plus `neutral` terms
/// whose weight is subtracted from every type (greetings, "subscribe", ...).
///
/// Term syntax: text is matched case-insensitively after normalization
/// (lowercase, full-width to ASCII, hyphens to spaces). `#` matches a number
/// (digits, Chinese numerals, English number words), `...` a gap of up to
/// [`Lexicon::gap_max_chars`] characters, and a trailing `*` lets the last
/// word continue (`crush*` matches "crushes"). A term beginning or ending with
/// a Latin letter or digit must sit on a word boundary. Each term counts once
/// per sentence.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lexicon {
    /// Hook terms and weights.
    pub hook: BTreeMap<String, f64>,
    /// Material terms and weights.
    pub material: BTreeMap<String, f64>,
    /// Effect terms and weights.
    pub effect: BTreeMap<String, f64>,
    /// Promotion terms and weights.
    pub promotion: BTreeMap<String, f64>,
    /// Terms whose weight is subtracted from every type.
    pub neutral: BTreeMap<String, f64>,
    /// Longest gap, in characters, that `...` in a term may skip.
    pub gap_max_chars: usize,
}

impl Lexicon {
    /// Returns the term map for `kind`.
    pub fn terms(&self, kind: SellingPointType) -> &BTreeMap<String, f64> {
        match kind {
            SellingPointType::Hook => &self.hook,
            SellingPointType::Material => &self.material,
            SellingPointType::Effect => &self.effect,
            SellingPointType::Promotion => &self.promotion,
        }
    }
}

/// All settings of the detector. Serializable so it can be stored and
/// overridden per user / per task with [`DetectionConfig::with_overrides`].
/// Missing fields take their defaults; unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectionConfig {
    /// A pause between two words at least this long (seconds) ends a sentence.
    pub pause_split_seconds: f64,
    /// A comma followed by a pause at least this long (seconds) ends a sentence.
    pub comma_pause_split_seconds: f64,
    /// Pieces cut off by a pause or comma with fewer content units than this
    /// (CJK characters or Latin words) are glued back to their neighbour.
    pub min_sentence_units: usize,
    /// Sentences longer than this (seconds) are cut at their largest pause.
    pub max_sentence_seconds: f64,
    /// Minimum score for a sentence to be labelled with a type.
    pub thresholds: TypeValues,
    /// The best score must exceed the second best by at least this much.
    pub min_margin: f64,
    /// An unlabelled sentence right next to (within `merge_gap_seconds`) a
    /// labelled one takes that label when its own score for the type reaches
    /// this (selling points often span sentences).
    pub continuation_threshold: f64,
    /// Hook bonus (raw score) for the first sentence; the k-th early sentence
    /// gets `bonus * (1 - k / hook_early_sentences)`.
    pub hook_position_bonus: f64,
    /// Number of opening sentences that receive a hook bonus.
    pub hook_early_sentences: usize,
    /// Only sentences starting before this time (seconds) count as opening.
    pub hook_window_seconds: f64,
    /// Raw hook evidence of sentences after the opening is multiplied by this.
    pub hook_late_factor: f64,
    /// Raw hook points for a question mark.
    pub question_weight: f64,
    /// Raw hook points for an exclamation mark.
    pub exclamation_weight: f64,
    /// Same-type sentences closer than this (seconds) are merged into one clip.
    pub merge_gap_seconds: f64,
    /// Clip edges extend into half the surrounding pause, at most this (seconds).
    pub max_pad_seconds: f64,
    /// Clips shorter than this (seconds) are extended or dropped.
    pub min_clip_seconds: f64,
    /// Clips longer than this (seconds) are split at sentence boundaries.
    pub max_clip_seconds: f64,
    /// What to do with clips shorter than `min_clip_seconds`.
    pub short_clip_policy: ShortClipPolicy,
    /// Title length limit in characters for Chinese (CJK) clips.
    pub title_max_chars_cjk: usize,
    /// Title length limit in characters for other clips.
    pub title_max_chars_latin: usize,
    /// Lexicon per language code (`"zh"`, `"en"`, ...).
    pub lexicons: BTreeMap<String, Lexicon>,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        let lexicons: BTreeMap<String, Lexicon> =
            serde_json::from_str(DEFAULT_LEXICONS).expect("embedded lexicons.json is valid");
        DetectionConfig {
            pause_split_seconds: 0.6,
            comma_pause_split_seconds: 0.45,
            min_sentence_units: 4,
            max_sentence_seconds: 12.0,
            thresholds: TypeValues { hook: 0.45, material: 0.45, effect: 0.45, promotion: 0.45 },
            min_margin: 0.0,
            continuation_threshold: 0.25,
            hook_position_bonus: 0.5,
            hook_early_sentences: 2,
            hook_window_seconds: 12.0,
            hook_late_factor: 0.6,
            question_weight: 0.5,
            exclamation_weight: 0.35,
            merge_gap_seconds: 1.2,
            max_pad_seconds: 0.4,
            min_clip_seconds: 1.5,
            max_clip_seconds: 30.0,
            short_clip_policy: ShortClipPolicy::Extend,
            title_max_chars_cjk: 30,
            title_max_chars_latin: 60,
            lexicons,
        }
    }
}

/// Object-valued config paths whose keys are free (languages, terms) rather
/// than field names.
fn is_open_map(path: &[String]) -> bool {
    match path {
        [a] => a == "lexicons",
        [a, _lang, kind] => {
            a == "lexicons"
                && matches!(kind.as_str(), "hook" | "material" | "effect" | "promotion" | "neutral")
        }
        _ => false,
    }
}

fn merge(base: &mut Value, over: &Value, path: &mut Vec<String>) -> anyhow::Result<()> {
    let dotted = |path: &Vec<String>| {
        if path.is_empty() {
            "selling_points".to_string()
        } else {
            format!("selling_points.{}", path.join("."))
        }
    };
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let open = is_open_map(path);
            for (k, v) in o {
                path.push(k.clone());
                if v.is_null() {
                    // null removes a free key (a term, a language) and leaves a field as it is
                    if open {
                        b.remove(k);
                    } else if !b.contains_key(k) {
                        bail!("unknown config key `{}`", dotted(path));
                    }
                } else if let Some(slot) = b.get_mut(k) {
                    merge(slot, v, path)?;
                } else if open {
                    b.insert(k.clone(), v.clone());
                } else {
                    bail!("unknown config key `{}`", dotted(path));
                }
                path.pop();
            }
            Ok(())
        }
        (Value::Object(_), o) => {
            bail!("config key `{}` must be an object, got {}", dotted(path), json_kind(o))
        }
        (b, o) => {
            *b = o.clone();
            Ok(())
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl DetectionConfig {
    /// The built-in defaults ([`DetectionConfig::default`]), parsed once per
    /// process.
    pub fn builtin() -> &'static DetectionConfig {
        static BUILTIN: OnceLock<DetectionConfig> = OnceLock::new();
        BUILTIN.get_or_init(DetectionConfig::default)
    }

    /// Checks a stored `selling_points` value (the overrides object itself,
    /// as `user_configs` and a task's config hold it) the way the detector
    /// will use it: merged over the built-in defaults. `Err` is the reason,
    /// naming the offending path (`selling_points.thresholds.hook must be in
    /// [0, 1], got 2`).
    pub fn check_overrides(overrides: &Value) -> Result<(), String> {
        if let Value::Object(map) = overrides {
            if map.contains_key("selling_points") {
                return Err("unknown config key `selling_points.selling_points` (give the overrides object itself)".into());
            }
        }
        Self::builtin().with_overrides(overrides).map(drop).map_err(|e| format!("{e:#}"))
    }

    /// Returns a copy of this config with `overrides` deep-merged over it.
    ///
    /// `overrides` is either the `selling_points` object itself or any config
    /// object holding it under the key `"selling_points"` (its other keys
    /// belong to other stages and are ignored); `null` changes nothing. Apply
    /// user settings first, then the task's:
    /// `cfg.with_overrides(&user_cfg)?.with_overrides(&task_cfg)?`.
    /// Objects merge key by key; lexicon term maps and the language map accept
    /// new keys, and `null` there removes a term or language. Any other
    /// unknown key is an error naming its path, as is a wrong value type or an
    /// inconsistent value (negative durations, thresholds outside `[0, 1]`,
    /// `min_clip_seconds > max_clip_seconds`).
    pub fn with_overrides(&self, overrides: &Value) -> anyhow::Result<Self> {
        let over = match overrides {
            Value::Object(m) if m.contains_key("selling_points") => &m["selling_points"],
            v => v,
        };
        if over.is_null() {
            return Ok(self.clone());
        }
        if !over.is_object() {
            bail!("selling_points overrides must be a JSON object, got {}", json_kind(over));
        }
        let mut base = serde_json::to_value(self).context("serializing detection config")?;
        merge(&mut base, over, &mut Vec::new())?;
        let cfg: DetectionConfig =
            serde_json::from_value(base).context("invalid selling_points override")?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks that the values are usable; returns an error naming the first
    /// bad field.
    pub fn validate(&self) -> anyhow::Result<()> {
        let secs = [
            ("pause_split_seconds", self.pause_split_seconds),
            ("comma_pause_split_seconds", self.comma_pause_split_seconds),
            ("max_sentence_seconds", self.max_sentence_seconds),
            ("hook_window_seconds", self.hook_window_seconds),
            ("merge_gap_seconds", self.merge_gap_seconds),
            ("max_pad_seconds", self.max_pad_seconds),
            ("min_clip_seconds", self.min_clip_seconds),
            ("max_clip_seconds", self.max_clip_seconds),
            ("hook_position_bonus", self.hook_position_bonus),
            ("hook_late_factor", self.hook_late_factor),
            ("question_weight", self.question_weight),
            ("exclamation_weight", self.exclamation_weight),
            ("min_margin", self.min_margin),
            ("continuation_threshold", self.continuation_threshold),
        ];
        for (name, v) in secs {
            if !v.is_finite() || v < 0.0 {
                bail!("selling_points.{name} must be a non-negative number, got {v}");
            }
        }
        for kind in SellingPointType::ALL {
            let v = self.thresholds.get(kind);
            if !(0.0..=1.0).contains(&v) {
                bail!("selling_points.thresholds.{} must be in [0, 1], got {v}", kind.as_str());
            }
        }
        if self.max_clip_seconds <= 0.0 || self.min_clip_seconds > self.max_clip_seconds {
            bail!(
                "selling_points.min_clip_seconds ({}) must not exceed max_clip_seconds ({}), which must be positive",
                self.min_clip_seconds,
                self.max_clip_seconds
            );
        }
        if self.max_sentence_seconds <= 0.0 {
            bail!("selling_points.max_sentence_seconds must be positive");
        }
        for (lang, lex) in &self.lexicons {
            for (kind, map) in [
                ("hook", &lex.hook),
                ("material", &lex.material),
                ("effect", &lex.effect),
                ("promotion", &lex.promotion),
                ("neutral", &lex.neutral),
            ] {
                for (term, w) in map {
                    if !w.is_finite() {
                        bail!(
                            "selling_points.lexicons.{lang}.{kind}.{term}: weight must be a number"
                        );
                    }
                }
            }
        }
        Ok(())
    }
}
