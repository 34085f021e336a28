//! All SQL on `user_configs`, and the keys a user may set there, each with
//! the type its value must have ([`KEYS`], [`check_value`]): what
//! `enqueue config set` refuses before writing, so the worker never meets a
//! value it cannot use.
//!
//! Readers on the hot path go through `user:config:{user_id}`
//! ([`crate::cache::Cache::user_config`]); every write here must be followed,
//! after its commit, by [`crate::cache::Cache::invalidate_user_config`].

use crate::db::PooledConnection;
use crate::schema::user_configs;
use crate::BadInput;
use anyhow::Context;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Deserialize;
use serde_json::Value;

/// One `user_configs` row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = user_configs)]
pub struct ConfigRow {
    pub config_key: String,
    pub config_value: Option<Value>,
    pub created_at: Option<NaiveDateTime>,
    pub updated_at: Option<NaiveDateTime>,
}

/// The detector's overrides (`worker/src/pipeline/detect`): lexicons,
/// thresholds, clip limits, merged over the system defaults for every task
/// of the user; a task's own `selling_points` goes on top.
pub const SELLING_POINTS: &str = "selling_points";
/// The templates applied to the user's clips when a task names none
/// ([`DefaultTemplates`]).
pub const DEFAULT_TEMPLATES: &str = "default_templates";
/// The spoken language of the user's videos when a task gives none
/// (`zh`, `en`, ... or `auto`).
pub const LANGUAGE: &str = "language";

/// A key users may set, with what its value means and how it is checked.
pub struct Key {
    pub name: &'static str,
    pub description: &'static str,
    check: fn(&Value) -> Result<(), String>,
}

/// Every key `enqueue config set` accepts.
pub const KEYS: &[Key] = &[
    Key {
        name: SELLING_POINTS,
        description: "detector overrides (thresholds, min/max clip seconds, lexicons), as in a task's config",
        check: |v| crate::detection::DetectionConfig::check_overrides(v),
    },
    Key {
        name: DEFAULT_TEMPLATES,
        description: "templates for clips when a task names none: {\"intro\", \"outro\", \"watermark\", \"captions\"}, each a template_id or numeric id",
        check: |v| typed::<DefaultTemplates>(v).map(drop),
    },
    Key {
        name: LANGUAGE,
        description: "spoken language when a task gives none: a two- or three-letter code (zh, en) or auto",
        check: |v| {
            let Language(language) = typed::<Language>(v)?;
            crate::jobs::check_language(&language)
        },
    },
];

/// The key called `name`, or bad input listing the known ones.
pub fn key(name: &str) -> Result<&'static Key, BadInput> {
    KEYS.iter().find(|k| k.name == name).ok_or_else(|| {
        let known: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        BadInput::new(format!("unknown config key {name:?} (one of: {})", known.join(", ")))
    })
}

/// Checks `value` for the user config key `name`: an unknown key or a value
/// of the wrong shape is bad input with the reason.
pub fn check_value(name: &str, value: &Value) -> Result<(), BadInput> {
    let key = key(name)?;
    (key.check)(value).map_err(|reason| BadInput::new(format!("invalid {name}: {reason}")))
}

/// Parses `value` as `T`, the serde message as the reason. For an object
/// whose field is bad, the reason starts with the field's name (serde's
/// own message does not say which field a wrong value was in).
pub(crate) fn typed<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, String> {
    serde_json::from_value(value.clone()).map_err(|e| {
        if let Value::Object(fields) = value {
            for (name, field) in fields {
                let alone = Value::Object([(name.clone(), field.clone())].into_iter().collect());
                if let Err(field_error) = serde_json::from_value::<T>(alone) {
                    let text = field_error.to_string();
                    if text.starts_with("unknown field") {
                        return text;
                    }
                    return format!("{name}: {text}");
                }
            }
        }
        e.to_string()
    })
}

/// The value of `default_templates`: which template each kind uses (the
/// same type a task's `templates` config has). Every kind is optional;
/// whether the template exists and may be used is decided when a task uses it.
pub use crate::templates::{TemplateChoice as DefaultTemplates, TemplateRef};

/// The value of `language`: a JSON string.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
struct Language(String);

/// Every row of the user, by key.
pub async fn list_configs(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
) -> anyhow::Result<Vec<ConfigRow>> {
    user_configs::table
        .filter(user_configs::user_id.eq(user_id))
        .order(user_configs::config_key)
        .select(ConfigRow::as_select())
        .load(conn)
        .await
        .context("reading user_configs")
}

/// The user's row for `key`, if set.
pub async fn find_row(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
    key: &str,
) -> anyhow::Result<Option<ConfigRow>> {
    user_configs::table
        .filter(user_configs::user_id.eq(user_id))
        .filter(user_configs::config_key.eq(key))
        .select(ConfigRow::as_select())
        .first(conn)
        .await
        .optional()
        .context("reading user_configs")
}

/// The user's value for `key` (e.g. `selling_points`), if set.
pub async fn find_config(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
    key: &str,
) -> anyhow::Result<Option<Value>> {
    Ok(find_row(conn, user_id, key).await?.and_then(|row| row.config_value))
}

/// Sets the user's value for `key`, replacing any earlier one (the row keeps
/// its `created_at`; `updated_at` is now). Unchecked: callers check the
/// value with [`check_value`] first.
pub async fn set_config(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
    key: &str,
    value: &Value,
) -> anyhow::Result<()> {
    diesel::insert_into(user_configs::table)
        .values((
            user_configs::user_id.eq(user_id),
            user_configs::config_key.eq(key),
            user_configs::config_value.eq(Some(value)),
        ))
        .on_conflict(diesel::dsl::DuplicatedKeys)
        .do_update()
        .set((
            user_configs::config_value.eq(Some(value)),
            user_configs::updated_at.eq(diesel::dsl::now.nullable()),
        ))
        .execute(conn)
        .await
        .context("writing user_configs")?;
    Ok(())
}

/// Removes the user's value for `key`; returns whether there was one.
pub async fn delete_config(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
    key: &str,
) -> anyhow::Result<bool> {
    let deleted = diesel::delete(
        user_configs::table
            .filter(user_configs::user_id.eq(user_id))
            .filter(user_configs::config_key.eq(key)),
    )
    .execute(conn)
    .await
    .context("deleting from user_configs")?;
    Ok(deleted > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reason(key: &str, value: Value) -> String {
        check_value(key, &value).unwrap_err().0
    }

    #[test]
    fn values_are_checked_by_key() {
        assert!(check_value("selling_points", &json!({"thresholds": {"hook": 0.6}})).is_ok());
        assert!(check_value("selling_points", &json!({"max_clip_seconds": 20})).is_ok());
        let r = reason("selling_points", json!({"thresholds": {"hooks": 0.5}}));
        assert!(r.contains("selling_points.thresholds.hooks"), "{r}");
        let r = reason("selling_points", json!({"min_clip_seconds": 40, "max_clip_seconds": 20}));
        assert!(r.contains("must not exceed max_clip_seconds"), "{r}");
        assert!(reason("selling_points", json!([1])).contains("must be a JSON object"));

        assert!(check_value("default_templates", &json!({})).is_ok());
        let ok = json!({"intro": "tpl-intro-1", "watermark": 7, "captions": "cap_2"});
        assert!(check_value("default_templates", &ok).is_ok());
        let r = reason("default_templates", json!({"banner": "x"}));
        assert!(r.contains("unknown field `banner`") && r.contains("intro"), "{r}");
        let r = reason("default_templates", json!({"outro": 3, "intro": true}));
        assert!(r.contains("intro: invalid type: boolean `true`, expected a template id (a template_id string or a positive numeric id)"), "{r}");
        assert!(reason("default_templates", json!({"outro": -3})).contains("template id"));
        assert!(reason("default_templates", json!({"outro": ""})).contains("template id"));
        assert!(reason("default_templates", json!("tpl-1")).contains("invalid default_templates"));

        assert!(check_value("language", &json!("zh")).is_ok());
        assert!(check_value("language", &json!("auto")).is_ok());
        assert!(reason("language", json!("Chinese")).contains("two- or three-letter code"));
        assert!(reason("language", json!(3)).contains("invalid type"));

        let r = reason("colour", json!("red"));
        assert!(r.contains("unknown config key \"colour\"") && r.contains("selling_points"), "{r}");
    }

    #[test]
    fn template_refs_round_trip() {
        let value = json!({"intro": "tpl-1", "watermark": 12});
        let parsed: DefaultTemplates = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(parsed.watermark, Some(TemplateRef::Id(12)));
        assert_eq!(serde_json::to_value(&parsed).unwrap(), value);
    }
}
