//! All SQL on `templates`.

use crate::cache::WatermarkTemplate;
use crate::db::PooledConnection;
use crate::schema::templates;
use anyhow::Context;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

/// `templates.status` of an enabled template (the seed: 1 normal, 0 disabled).
pub const ENABLED: i8 = 1;

/// The user's own enabled watermark templates, oldest first (what
/// `user:config:{user_id}` caches as `watermark_templates`).
pub async fn user_watermarks(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
) -> anyhow::Result<Vec<WatermarkTemplate>> {
    let rows: Vec<(String, String, Option<String>, Option<serde_json::Value>)> = templates::table
        .filter(templates::user_id.eq(user_id))
        .filter(templates::template_type.eq("watermark"))
        .filter(templates::status.eq(ENABLED))
        .order(templates::id)
        .select((templates::template_id, templates::name, templates::file_path, templates::config))
        .load(conn)
        .await
        .context("reading the user's watermark templates")?;
    Ok(rows
        .into_iter()
        .map(|(template_id, name, file_path, config)| WatermarkTemplate {
            template_id,
            name,
            file_path,
            config,
        })
        .collect())
}
