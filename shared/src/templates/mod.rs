//! All SQL on `templates`: the intros, outros, watermarks and caption styles
//! shops brand their clips with, and who may use which.
//!
//! Visibility: a template is usable by a user when it is a system template
//! (`is_system`), public (`is_public`) or the user's own, and enabled
//! (`status` 1). A task names its templates in its config (`templates`), or
//! gets the user's `default_templates`; either way they are resolved here,
//! at enqueue, so a task never starts with a template it may not use.

mod choice;
pub mod style;

pub use choice::{choose_for_task, resolve_choice, TemplateChoice, TemplateRef};

use crate::db::PooledConnection;
use crate::schema::templates as t;
use crate::BadInput;
use anyhow::Context;
use bigdecimal::{BigDecimal, ToPrimitive};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

/// `templates.status`.
pub mod status {
    pub const DISABLED: i8 = 0;
    pub const ENABLED: i8 = 1;
}

/// What a template is (`templates.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TemplateKind {
    /// A video with audio played before the clip.
    Intro,
    /// A video with audio played after the clip.
    Outro,
    /// An image or video overlaid on the clip.
    Watermark,
    /// A style for the transcript burned into the clip (no file).
    Captions,
}

impl TemplateKind {
    pub const ALL: [TemplateKind; 4] = [Self::Intro, Self::Outro, Self::Watermark, Self::Captions];

    /// The name stored in `templates.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Intro => "intro",
            Self::Outro => "outro",
            Self::Watermark => "watermark",
            Self::Captions => "captions",
        }
    }

    /// The kind named `name`, or bad input listing the kinds.
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name).ok_or_else(|| {
            BadInput::new(format!(
                "template type must be intro, outro, watermark or captions, not {name:?}"
            ))
            .into()
        })
    }
}

/// A `templates` row.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = t)]
pub struct Template {
    pub id: i64,
    pub template_id: String,
    pub user_id: Option<i64>,
    pub name: String,
    #[serde(rename = "type")]
    pub template_type: String,
    pub file_path: Option<String>,
    pub preview_url: Option<String>,
    #[serde(serialize_with = "decimal_as_f64")]
    pub duration: Option<BigDecimal>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub config: Option<serde_json::Value>,
    pub is_public: i8,
    pub is_system: i8,
    pub usage_count: i32,
    pub status: i8,
    pub created_at: Option<chrono::NaiveDateTime>,
}

impl Template {
    /// The kind this row is (rows are only written through [`add_template`]).
    pub fn kind(&self) -> anyhow::Result<TemplateKind> {
        TemplateKind::parse(&self.template_type)
    }

    /// Duration in seconds (intros and outros).
    pub fn duration_seconds(&self) -> Option<f64> {
        self.duration.as_ref().and_then(|d| d.to_f64())
    }

    /// True if `user_id` may use this template (enabled, and system, public or theirs).
    pub fn usable_by(&self, user_id: i64) -> bool {
        self.status == status::ENABLED
            && (self.is_system == 1 || self.is_public == 1 || self.user_id == Some(user_id))
    }
}

fn decimal_as_f64<S: serde::Serializer>(d: &Option<BigDecimal>, s: S) -> Result<S::Ok, S::Error> {
    d.as_ref().and_then(|d| d.to_f64()).serialize(s)
}

/// A template to add: the probed facts of its stored file, if it has one.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = t)]
pub struct NewTemplate {
    pub template_id: String,
    pub user_id: Option<i64>,
    pub name: String,
    #[diesel(column_name = template_type)]
    pub template_type: String,
    pub file_path: Option<String>,
    pub preview_url: Option<String>,
    pub duration: Option<BigDecimal>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub config: Option<serde_json::Value>,
    pub is_public: i8,
    pub is_system: i8,
}

/// Inserts a template and returns its row.
pub async fn add_template(
    conn: &mut PooledConnection<'_>,
    new: NewTemplate,
) -> anyhow::Result<Template> {
    let template_id = new.template_id.clone();
    diesel::insert_into(t::table).values(new).execute(conn).await.context("adding a template")?;
    find_template(conn, &template_id).await?.context("the new template vanished")
}

/// The template whose `template_id` (or numeric `id`) is `key`, if any.
pub async fn find_template(
    conn: &mut PooledConnection<'_>,
    key: &str,
) -> anyhow::Result<Option<Template>> {
    let query = t::table.select(Template::as_select()).into_boxed();
    let query = match key.parse::<i64>() {
        Ok(id) => query.filter(t::id.eq(id).or(t::template_id.eq(key))),
        Err(_) => query.filter(t::template_id.eq(key)),
    };
    query.first(conn).await.optional().context("reading a template")
}

/// Templates `user_id` may use (`None`: every template, for operators),
/// optionally of one kind, newest first, disabled ones too when `all`.
pub async fn list_templates(
    conn: &mut PooledConnection<'_>,
    user_id: Option<i64>,
    kind: Option<TemplateKind>,
    all: bool,
) -> anyhow::Result<Vec<Template>> {
    let mut query = t::table.select(Template::as_select()).order(t::id.desc()).into_boxed();
    if let Some(user_id) = user_id {
        query = query.filter(t::is_system.eq(1).or(t::is_public.eq(1)).or(t::user_id.eq(user_id)));
    }
    if let Some(kind) = kind {
        query = query.filter(t::template_type.eq(kind.as_str()));
    }
    if !all {
        query = query.filter(t::status.eq(status::ENABLED));
    }
    query.load(conn).await.context("listing templates")
}

/// Disables a template (tasks already created keep what they resolved;
/// new tasks may no longer name it). Returns false if it was disabled.
pub async fn disable_template(conn: &mut PooledConnection<'_>, id: i64) -> anyhow::Result<bool> {
    let n = diesel::update(t::table.find(id).filter(t::status.eq(status::ENABLED)))
        .set(t::status.eq(status::DISABLED))
        .execute(conn)
        .await
        .context("disabling a template")?;
    Ok(n == 1)
}

/// Counts one more use of each template in `ids` (one per templated clip).
pub async fn count_usage(
    conn: &mut PooledConnection<'_>,
    ids: &[(i64, i32)],
) -> anyhow::Result<()> {
    for (id, uses) in ids {
        diesel::update(t::table.find(id))
            .set(t::usage_count.eq(t::usage_count + uses))
            .execute(conn)
            .await
            .context("counting template usage")?;
    }
    Ok(())
}

/// Loads a template by numeric id (the worker, for a resolved choice).
pub async fn load_template(conn: &mut PooledConnection<'_>, id: i64) -> anyhow::Result<Template> {
    t::table
        .find(id)
        .select(Template::as_select())
        .first(conn)
        .await
        .with_context(|| format!("loading template {id}"))
}

/// The user's own enabled watermark templates, oldest first (what
/// `user:config:{user_id}` caches as `watermark_templates`).
pub async fn user_watermarks(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
) -> anyhow::Result<Vec<crate::cache::WatermarkTemplate>> {
    let rows: Vec<(String, String, Option<String>, Option<serde_json::Value>)> = t::table
        .filter(t::user_id.eq(user_id))
        .filter(t::template_type.eq(TemplateKind::Watermark.as_str()))
        .filter(t::status.eq(status::ENABLED))
        .order(t::id)
        .select((t::template_id, t::name, t::file_path, t::config))
        .load(conn)
        .await
        .context("reading the user's watermark templates")?;
    Ok(rows
        .into_iter()
        .map(|(template_id, name, file_path, config)| crate::cache::WatermarkTemplate {
            template_id,
            name,
            file_path,
            config,
        })
        .collect())
}
