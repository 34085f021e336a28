//! What the selling-point detector is configured with, shared so that every
//! program checks a `selling_points` value the same way: the worker (which
//! runs the detector, `worker/src/pipeline/detect/`), and the CLI, which
//! refuses a bad value before it is stored (`enqueue config set`,
//! `enqueue video --config`).
//!
//! [`DetectionConfig`] holds thresholds, clip limits and lexicons, with JSON
//! overrides deep-merged over the defaults
//! ([`DetectionConfig::with_overrides`]): system defaults
//! (`system_configs`), then the user's `selling_points` (`user_configs`),
//! then the task's.

mod config;

use serde::{Deserialize, Serialize};

pub use config::{DetectionConfig, Lexicon, ShortClipPolicy, TypeValues};

/// The four kinds of selling point. Serialized in lowercase
/// (`"hook"`, `"material"`, `"effect"`, `"promotion"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SellingPointType {
    /// Attention-grabbing opening (question, exclamation, "姐妹们", "stop scrolling").
    Hook,
    /// What the product is made of: material, fabric, ingredients, build.
    Material,
    /// What the product does: results, comfort, performance.
    Effect,
    /// Price, discount, coupon, gift, call to buy.
    Promotion,
}

impl SellingPointType {
    /// All four types in a fixed order (the order of the detector's per-type
    /// score arrays, see [`SellingPointType::index`]).
    pub const ALL: [SellingPointType; 4] = [
        SellingPointType::Hook,
        SellingPointType::Material,
        SellingPointType::Effect,
        SellingPointType::Promotion,
    ];

    /// Returns the lowercase name used in JSON and the database (`"hook"`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            SellingPointType::Hook => "hook",
            SellingPointType::Material => "material",
            SellingPointType::Effect => "effect",
            SellingPointType::Promotion => "promotion",
        }
    }

    /// Returns the type for a lowercase name, or `None` (e.g. for `"none"`),
    /// so labels read from JSON or the database map back to the enum.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "hook" => Some(SellingPointType::Hook),
            "material" => Some(SellingPointType::Material),
            "effect" => Some(SellingPointType::Effect),
            "promotion" => Some(SellingPointType::Promotion),
            _ => None,
        }
    }

    /// Returns a short human label in Chinese (`cjk = true`) or English, used
    /// as the prefix of clip titles.
    pub fn display_label(&self, cjk: bool) -> &'static str {
        match (self, cjk) {
            (SellingPointType::Hook, true) => "开场钩子",
            (SellingPointType::Material, true) => "材质成分",
            (SellingPointType::Effect, true) => "使用效果",
            (SellingPointType::Promotion, true) => "优惠促销",
            (SellingPointType::Hook, false) => "Hook",
            (SellingPointType::Material, false) => "Material",
            (SellingPointType::Effect, false) => "Effect",
            (SellingPointType::Promotion, false) => "Promotion",
        }
    }

    /// Position of this type in [`SellingPointType::ALL`].
    pub fn index(&self) -> usize {
        match self {
            SellingPointType::Hook => 0,
            SellingPointType::Material => 1,
            SellingPointType::Effect => 2,
            SellingPointType::Promotion => 3,
        }
    }
}

impl std::fmt::Display for SellingPointType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
