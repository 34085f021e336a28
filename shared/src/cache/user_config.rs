//! `user:config:{user_id}`: a user's settings as the worker (and later the
//! API) reads them for every task.

use crate::db::PooledConnection;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The JSON at `user:config:{user_id}`: the seed's fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserConfig {
    /// Every `user_configs` row of the user: `config_key` -> `config_value`
    /// (`selling_points`, `default_templates`, `language`, ...; see
    /// [`crate::user_configs::KEYS`]).
    pub default_config: BTreeMap<String, serde_json::Value>,
    /// The user's own enabled watermark templates (`templates` rows with
    /// `type` watermark, `user_id` the user, `status` 1), oldest first.
    pub watermark_templates: Vec<WatermarkTemplate>,
    /// The latest `user_configs.updated_at` of the user (RFC 3339, UTC), or
    /// null for a user with no configuration.
    pub updated_at: Option<String>,
}

impl UserConfig {
    /// The user's value for `key`, if set.
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.default_config.get(key).filter(|v| !v.is_null())
    }
}

/// One watermark template of the user, as cached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatermarkTemplate {
    /// `templates.template_id`, the public id.
    pub template_id: String,
    pub name: String,
    /// The storage key of the image or video.
    pub file_path: Option<String>,
    /// Position, margin, scale, opacity.
    pub config: Option<serde_json::Value>,
}

/// Reads a user's cached fields from the database.
pub(super) async fn load(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
) -> anyhow::Result<UserConfig> {
    let rows = crate::user_configs::list_configs(conn, user_id).await?;
    let updated_at = rows.iter().filter_map(|row| row.updated_at).max().map(crate::models::rfc3339);
    let default_config =
        rows.into_iter().filter_map(|row| Some((row.config_key, row.config_value?))).collect();
    let watermark_templates = crate::templates::user_watermarks(conn, user_id).await?;
    Ok(UserConfig { default_config, watermark_templates, updated_at })
}
