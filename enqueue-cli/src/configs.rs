//! `enqueue config` (`user_configs`), `enqueue system-config`
//! (`system_configs`) and `enqueue video-info` (`video:meta`).
//!
//! Values are JSON, checked against their key's type before anything is
//! written (an unknown key or a bad value is bad input, exit 2, with the
//! reason). A write commits, then deletes the cached copy
//! (`user:config:{user_id}`), so the next read by a worker sees it.
//! `--json` output uses the tables' column names.

use crate::Output;
use clap::Subcommand;
use serde_json::{json, Value};
use shared::cache::{Cache, USER_CONFIG_TTL_SECONDS};
use shared::config::Settings;
use shared::models::rfc3339;
use shared::user_configs::ConfigRow;
use shared::BadInput;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Set USER's value for KEY (selling_points, default_templates, language) to JSON
    Set {
        /// User name
        user: String,
        /// Config key
        key: String,
        /// The value, as JSON (a string needs quotes: '"zh"')
        value: String,
    },
    /// Show USER's value for KEY
    Get {
        /// User name
        user: String,
        /// Config key
        key: String,
    },
    /// Show every value of USER
    List {
        /// User name
        user: String,
    },
    /// Remove USER's value for KEY (the default applies again)
    Unset {
        /// User name
        user: String,
        /// Config key
        key: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SystemConfigCommand {
    /// Set KEY to JSON (scheduler and worker read it at start-up; flags and
    /// environment variables still win)
    Set {
        /// Config key (see `system-config list`)
        key: String,
        /// The value, as JSON
        value: String,
    },
    /// Show KEY: the stored value, the default and what overrides it
    Get {
        /// Config key
        key: String,
    },
    /// Show every key with its stored value and default
    List,
    /// Remove KEY's stored value (the built-in default applies again)
    Unset {
        /// Config key
        key: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct VideoInfoArgs {
    /// Video ids (videos.id)
    #[arg(required = true)]
    pub video_ids: Vec<i64>,
}

/// Parses a value given on the command line as JSON.
fn parse_json(text: &str) -> Result<Value, BadInput> {
    serde_json::from_str(text).map_err(|e| {
        BadInput::new(format!("{text:?} is not JSON ({e}); a string needs quotes, e.g. '\"zh\"'"))
    })
}

fn time(value: Option<chrono::NaiveDateTime>) -> Value {
    value.map(rfc3339).map(Value::String).unwrap_or(Value::Null)
}

/// A `user_configs` row as JSON, with the seed's column names.
fn row_json(user_id: i64, user: &str, key: &str, row: Option<&ConfigRow>) -> Value {
    json!({
        "user_id": user_id,
        "username": user,
        "config_key": key,
        "config_value": row.and_then(|r| r.config_value.clone()),
        "created_at": time(row.and_then(|r| r.created_at)),
        "updated_at": time(row.and_then(|r| r.updated_at)),
    })
}

/// Deletes `user:config:{user_id}` after a committed write; if Redis cannot
/// be reached, says how long the old value may still be used.
pub async fn invalidate_user(settings: &Settings, user_id: i64) {
    let cache = Cache::connect_or_disabled(&settings.redis_url).await;
    let result = if cache.is_enabled() {
        cache.invalidate_user_config(user_id).await
    } else {
        Err(anyhow::anyhow!("Redis unavailable"))
    };
    if let Err(e) = result {
        eprintln!(
            "enqueue: warning: {} not deleted ({}): workers may use the previous value for up to {} hours",
            shared::cache::user_config_key(user_id),
            shared::one_line(&e),
            USER_CONFIG_TTL_SECONDS / 3600
        );
    }
}

/// Runs a `config` subcommand.
pub async fn config(
    settings: &Settings,
    out: &Output,
    command: ConfigCommand,
) -> anyhow::Result<ExitCode> {
    // Refuse a bad key or value before touching the database.
    let value = match &command {
        ConfigCommand::Set { key, value, .. } => {
            let value = parse_json(value)?;
            shared::user_configs::check_value(key, &value)?;
            Some(value)
        }
        ConfigCommand::Get { key, .. } | ConfigCommand::Unset { key, .. } => {
            shared::user_configs::key(key)?;
            None
        }
        ConfigCommand::List { .. } => None,
    };
    let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
    let mut conn = shared::db::conn(&pool).await?;
    match command {
        ConfigCommand::Set { user, key, .. } => {
            let found = shared::users::require_user(&mut conn, &user).await?;
            let value = value.unwrap_or_default();
            shared::user_configs::set_config(&mut conn, found.id, &key, &value).await?;
            invalidate_user(settings, found.id).await;
            let row = shared::user_configs::find_row(&mut conn, found.id, &key).await?;
            out.emit(&row_json(found.id, &user, &key, row.as_ref()), || {
                format!("{user}: {key} = {value}")
            });
        }
        ConfigCommand::Unset { user, key } => {
            let found = shared::users::require_user(&mut conn, &user).await?;
            let removed = shared::user_configs::delete_config(&mut conn, found.id, &key).await?;
            if removed {
                invalidate_user(settings, found.id).await;
            }
            out.emit(&row_json(found.id, &user, &key, None), || {
                if removed {
                    format!("{user}: {key} removed")
                } else {
                    format!("{user}: {key} was not set")
                }
            });
        }
        ConfigCommand::Get { user, key } => {
            let found = shared::users::require_user(&mut conn, &user).await?;
            let row = shared::user_configs::find_row(&mut conn, found.id, &key).await?;
            out.emit(&row_json(found.id, &user, &key, row.as_ref()), || {
                match row.as_ref().and_then(|r| r.config_value.as_ref()) {
                    Some(value) => value.to_string(),
                    None => format!("{user}: {key} is not set"),
                }
            });
        }
        ConfigCommand::List { user } => {
            let found = shared::users::require_user(&mut conn, &user).await?;
            let rows = shared::user_configs::list_configs(&mut conn, found.id).await?;
            if out.json {
                for row in &rows {
                    println!("{}", row_json(found.id, &user, &row.config_key, Some(row)));
                }
            } else if rows.is_empty() {
                println!("{user} has no configuration");
            } else {
                let mut table = crate::table::with_header(&["KEY", "VALUE", "UPDATED (UTC)"]);
                for row in &rows {
                    table.add_row([
                        row.config_key.clone(),
                        row.config_value.as_ref().map(Value::to_string).unwrap_or_default(),
                        row.updated_at
                            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                            .unwrap_or_default(),
                    ]);
                }
                println!("{}", crate::table::render(table, &[]));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A system config key as JSON: the stored row (or nulls) plus the default
/// and what overrides it.
fn system_json(
    key: &shared::system_configs::Key,
    row: Option<&shared::system_configs::SystemConfigRow>,
) -> Value {
    json!({
        "config_key": key.name,
        "config_value": row.map(|r| r.config_value.clone()),
        "default": key.default_value(),
        "description": key.description,
        "is_public": i8::from(key.is_public),
        "overridden_by": key.overridden_by.map(|(flag, env)| json!({"flag": flag, "env": env})),
        "created_at": time(row.and_then(|r| r.created_at)),
        "updated_at": time(row.and_then(|r| r.updated_at)),
    })
}

/// One line for people: `key = value (stored|default)`.
fn system_text(
    key: &shared::system_configs::Key,
    row: Option<&shared::system_configs::SystemConfigRow>,
) -> String {
    let overrides =
        key.overridden_by.map(|(flag, env)| format!("; {flag} or {env} wins")).unwrap_or_default();
    match row {
        Some(row) => format!(
            "{} = {} (stored; default {}{overrides})",
            key.name,
            row.config_value,
            key.default_value()
        ),
        None => format!("{} = {} (default{overrides})", key.name, key.default_value()),
    }
}

/// Runs a `system-config` subcommand.
pub async fn system_config(
    settings: &Settings,
    out: &Output,
    command: SystemConfigCommand,
) -> anyhow::Result<ExitCode> {
    use shared::system_configs as sc;
    let value = match &command {
        SystemConfigCommand::Set { key, value } => {
            let value = parse_json(value)?;
            sc::check_value(key, &value)?;
            Some(value)
        }
        SystemConfigCommand::Get { key } | SystemConfigCommand::Unset { key } => {
            sc::key(key)?;
            None
        }
        SystemConfigCommand::List => None,
    };
    let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
    let mut conn = shared::db::conn(&pool).await?;
    match command {
        SystemConfigCommand::Set { key, .. } => {
            let key = sc::key(&key)?;
            let value = value.unwrap_or_default();
            // Keys that must agree with each other (clip limits) are
            // checked against what is stored.
            let mut together = sc::load_values(&mut conn).await?;
            together.insert(key.name.to_string(), value.clone());
            sc::check_together(&together)?;
            sc::set_value(&mut conn, key, &value).await?;
            let row = sc::find_row(&mut conn, key.name).await?;
            out.emit(&system_json(key, row.as_ref()), || system_text(key, row.as_ref()));
        }
        SystemConfigCommand::Unset { key } => {
            let key = sc::key(&key)?;
            let mut together = sc::load_values(&mut conn).await?;
            together.remove(key.name);
            sc::check_together(&together)?;
            sc::delete_value(&mut conn, key.name).await?;
            out.emit(&system_json(key, None), || system_text(key, None));
        }
        SystemConfigCommand::Get { key } => {
            let key = sc::key(&key)?;
            let row = sc::find_row(&mut conn, key.name).await?;
            out.emit(&system_json(key, row.as_ref()), || system_text(key, row.as_ref()));
        }
        SystemConfigCommand::List => {
            let rows = sc::list_rows(&mut conn).await?;
            for key in sc::KEYS {
                let row = rows.iter().find(|r| r.config_key == key.name);
                out.emit(&system_json(key, row), || system_text(key, row));
            }
            // Rows of keys this version does not know (another program's).
            for row in rows.iter().filter(|r| sc::key(&r.config_key).is_err()) {
                out.emit(
                    &json!({
                        "config_key": row.config_key,
                        "config_value": row.config_value,
                        "description": row.description,
                        "is_public": row.is_public,
                        "created_at": time(row.created_at),
                        "updated_at": time(row.updated_at),
                    }),
                    || {
                        format!(
                            "{} = {} (not a setting of this version)",
                            row.config_key, row.config_value
                        )
                    },
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `enqueue video-info`: each video's `video:meta` fields, read through the
/// cache (filled on a miss).
pub async fn video_info(
    settings: &Settings,
    out: &Output,
    args: VideoInfoArgs,
) -> anyhow::Result<ExitCode> {
    let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
    let cache = Cache::connect_or_disabled(&settings.redis_url).await;
    let mut found = Vec::with_capacity(args.video_ids.len());
    for id in &args.video_ids {
        let meta = cache
            .video_meta(&pool, *id)
            .await?
            .ok_or_else(|| BadInput::new(format!("no video with id {id}")))?;
        found.push((*id, meta));
    }
    let mut table =
        crate::table::with_header(&["VIDEO", "FILENAME", "SECONDS", "BYTES", "THUMBNAIL"]);
    for (id, meta) in &found {
        let mut value = serde_json::to_value(meta)?;
        value["video_id"] = json!(id);
        if out.json {
            println!("{value}");
            continue;
        }
        table.add_row([
            id.to_string(),
            meta.filename.clone(),
            meta.duration.map(|d| format!("{d:.2}")).unwrap_or_else(|| "-".into()),
            meta.file_size.to_string(),
            meta.thumbnail_url.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    if !out.json {
        println!("{}", crate::table::render(table, &[0, 2, 3]));
    }
    Ok(ExitCode::SUCCESS)
}
