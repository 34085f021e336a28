//! Which templates a task uses: named in its config (`templates`), else the
//! user's `default_templates`; resolved and checked at enqueue, stored in the
//! task's config as numeric ids.

use super::{find_template, status, TemplateKind};
use crate::db::PooledConnection;
use crate::BadInput;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The templates a task names, one per kind (each a `template_id` or `id`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateChoice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intro: Option<TemplateRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outro: Option<TemplateRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<TemplateRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captions: Option<TemplateRef>,
}

/// A template named by its numeric `id` or its `template_id` (in JSON a
/// positive number or a string of letters, digits and `-_.:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateRef {
    Id(i64),
    Key(String),
}

impl TemplateRef {
    fn key(&self) -> String {
        match self {
            Self::Id(id) => id.to_string(),
            Self::Key(key) => key.clone(),
        }
    }
}

impl TemplateChoice {
    /// The slots that name a template, with their kind.
    pub fn slots(&self) -> Vec<(TemplateKind, &TemplateRef)> {
        let slots = [
            (TemplateKind::Intro, &self.intro),
            (TemplateKind::Outro, &self.outro),
            (TemplateKind::Watermark, &self.watermark),
            (TemplateKind::Captions, &self.captions),
        ];
        slots.into_iter().filter_map(|(kind, r)| r.as_ref().map(|r| (kind, r))).collect()
    }

    /// True if no slot names a template.
    pub fn is_empty(&self) -> bool {
        self.slots().is_empty()
    }
}

/// Resolves a task's template choice for `user_id`: every named template
/// must exist, be of its slot's kind, be enabled and be usable by the user;
/// otherwise [`BadInput`] saying which and why. Returns the choice with
/// numeric ids (what the worker loads).
pub async fn resolve_choice(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
    choice: &TemplateChoice,
) -> anyhow::Result<TemplateChoice> {
    let mut resolved = TemplateChoice::default();
    for (kind, reference) in choice.slots() {
        let key = reference.key();
        let slot = kind.as_str();
        let template = find_template(conn, &key)
            .await?
            .ok_or_else(|| BadInput::new(format!("templates.{slot}: no template {key:?}")))?;
        if template.template_type != slot {
            let its = &template.template_type;
            return Err(BadInput::new(format!(
                "templates.{slot}: template {key:?} is a {its} template, not {slot}"
            ))
            .into());
        }
        if template.status != status::ENABLED {
            return Err(
                BadInput::new(format!("templates.{slot}: template {key:?} is disabled")).into()
            );
        }
        if !template.usable_by(user_id) {
            return Err(BadInput::new(format!(
                "templates.{slot}: template {key:?} is neither system, public nor this user's"
            ))
            .into());
        }
        let id = Some(TemplateRef::Id(template.id));
        match kind {
            TemplateKind::Intro => resolved.intro = id,
            TemplateKind::Outro => resolved.outro = id,
            TemplateKind::Watermark => resolved.watermark = id,
            TemplateKind::Captions => resolved.captions = id,
        }
    }
    Ok(resolved)
}

/// The `templates` a new `video_clip` task of `user_id` will store in its
/// config: `config.templates` if the task names any, else the user's
/// `default_templates`, resolved ([`resolve_choice`]). A watermark used at
/// its own size must fit the video's frame (`frame`, when known). Returns
/// the config to store (unchanged when no template applies).
pub async fn choose_for_task(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
    config: Option<serde_json::Value>,
    frame: Option<(i32, i32)>,
) -> anyhow::Result<Option<serde_json::Value>> {
    let named = config.as_ref().and_then(|c| c.get("templates")).cloned();
    let choice = match named {
        Some(value) => value,
        None => match crate::user_configs::find_config(conn, user_id, "default_templates").await? {
            Some(value) => value,
            None => return Ok(config),
        },
    };
    let choice: TemplateChoice =
        serde_json::from_value(choice).map_err(|e| BadInput::new(format!("templates: {e}")))?;
    if choice.is_empty() {
        return Ok(config);
    }
    let resolved = resolve_choice(conn, user_id, &choice).await?;
    if let (Some(TemplateRef::Id(id)), Some((width, height))) = (&resolved.watermark, frame) {
        let mark = super::load_template(conn, *id).await?;
        let style = super::style::WatermarkStyle::from_config(mark.config.as_ref())
            .map_err(|e| BadInput::new(format!("templates.watermark: {e}")))?;
        let (w, h) = (mark.width.unwrap_or(0), mark.height.unwrap_or(0));
        let margin = 2 * style.margin as i32;
        if style.scale.is_none() && (w + margin > width || h + margin > height) {
            return Err(BadInput::new(format!(
                "templates.watermark: {w}x{h} with a {}px margin is larger than the video's {width}x{height} frame (give it a scale)",
                style.margin
            ))
            .into());
        }
    }
    let mut config = config.unwrap_or_else(|| serde_json::json!({}));
    config["templates"] = serde_json::to_value(&resolved)?;
    Ok(Some(config))
}

impl Serialize for TemplateRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            TemplateRef::Id(id) => serializer.serialize_i64(*id),
            TemplateRef::Key(id) => serializer.serialize_str(id),
        }
    }
}

impl<'de> Deserialize<'de> for TemplateRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RefVisitor;
        impl Visitor<'_> for RefVisitor {
            type Value = TemplateRef;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a template id (a template_id string or a positive numeric id)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<TemplateRef, E> {
                match i64::try_from(v) {
                    Ok(id) if id > 0 => Ok(TemplateRef::Id(id)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<TemplateRef, E> {
                if v > 0 {
                    Ok(TemplateRef::Id(v))
                } else {
                    Err(E::invalid_value(de::Unexpected::Signed(v), &self))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TemplateRef, E> {
                let ok = !v.is_empty()
                    && v.chars().count() <= 100
                    && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
                if ok {
                    Ok(TemplateRef::Key(v.to_string()))
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
        }
        deserializer.deserialize_any(RefVisitor)
    }
}
