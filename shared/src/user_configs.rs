//! All SQL on `user_configs`.

use crate::db::PooledConnection;
use crate::schema::user_configs;
use anyhow::Context;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

/// The user's value for `key` (e.g. `selling_points`), if set.
pub async fn find_config(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
    key: &str,
) -> anyhow::Result<Option<serde_json::Value>> {
    let value: Option<Option<serde_json::Value>> = user_configs::table
        .filter(user_configs::user_id.eq(user_id))
        .filter(user_configs::config_key.eq(key))
        .select(user_configs::config_value)
        .first(conn)
        .await
        .optional()
        .context("reading user_configs")?;
    Ok(value.flatten())
}

/// Sets the user's value for `key`, replacing any earlier one.
pub async fn set_config(
    conn: &mut PooledConnection<'_>,
    user_id: i64,
    key: &str,
    value: &serde_json::Value,
) -> anyhow::Result<()> {
    diesel::replace_into(user_configs::table)
        .values((
            user_configs::user_id.eq(user_id),
            user_configs::config_key.eq(key),
            user_configs::config_value.eq(Some(value)),
        ))
        .execute(conn)
        .await
        .context("writing user_configs")?;
    Ok(())
}
