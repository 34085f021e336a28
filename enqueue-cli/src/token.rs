//! `enqueue token create|list|revoke`: users' API tokens (`api_tokens`,
//! `shared::tokens`).
//!
//! `create` prints the token once; only its SHA-256 is stored, so a lost
//! token cannot be shown again (revoke it and create another). Lists show
//! each token's prefix, never the secret or its hash.

use crate::Output;
use clap::Subcommand;
use serde_json::{json, Value};
use shared::config::Settings;
use shared::models::rfc3339;
use shared::tokens::ApiToken;
use shared::BadInput;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token for USER; prints it once (only its hash is stored)
    Create {
        /// User name
        user: String,
        /// An operator token: may act for every user
        #[arg(long)]
        operator: bool,
        /// What the token is for (at most 100 characters)
        #[arg(long)]
        name: Option<String>,
    },
    /// List USER's tokens, revoked ones too, newest first (prefixes only)
    List {
        /// User name
        user: String,
    },
    /// Revoke one of USER's tokens: it no longer authenticates
    Revoke {
        /// User name
        user: String,
        /// The token's id (`token list`)
        token_id: i64,
    },
}

/// Runs a `token` subcommand.
pub async fn token(
    settings: &Settings,
    out: &Output,
    command: TokenCommand,
) -> anyhow::Result<ExitCode> {
    let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
    let mut conn = shared::db::conn(&pool).await?;
    match command {
        TokenCommand::Create { user, operator, name } => {
            let owner = shared::users::require_user(&mut conn, &user).await?;
            let (row, token) =
                shared::tokens::create_token(&mut conn, owner.id, name.as_deref(), operator)
                    .await?;
            out.emit(
                &json!({
                    "token": token,
                    "token_id": row.id,
                    "user_id": row.user_id,
                    "is_operator": row.is_operator,
                }),
                || {
                    let kind = if row.is_operator { "operator token" } else { "token" };
                    format!(
                        "{token}\n{kind} {} for {user} created; it is shown only this once \
                         (only its hash is stored): keep it now",
                        row.id
                    )
                },
            );
        }
        TokenCommand::List { user } => {
            let owner = shared::users::require_user(&mut conn, &user).await?;
            let rows = shared::tokens::list_tokens(&mut conn, owner.id).await?;
            if out.json {
                for row in &rows {
                    out.emit(&token_json(row, &user), String::new);
                }
            } else {
                let mut table = crate::table::with_header(&[
                    "ID",
                    "NAME",
                    "PREFIX",
                    "OPERATOR",
                    "CREATED (UTC)",
                    "LAST USED",
                    "REVOKED",
                ]);
                for r in &rows {
                    table.add_row([
                        r.id.to_string(),
                        r.name.clone().unwrap_or_else(|| "-".into()),
                        r.token_prefix.clone(),
                        if r.is_operator { "yes" } else { "no" }.to_string(),
                        human_time(Some(r.created_at)),
                        human_time(r.last_used_at),
                        human_time(r.revoked_at),
                    ]);
                }
                println!("{}", crate::table::render(table, &[0]));
            }
        }
        TokenCommand::Revoke { user, token_id } => {
            let owner = shared::users::require_user(&mut conn, &user).await?;
            if !shared::tokens::revoke_token(&mut conn, owner.id, token_id).await? {
                let known = shared::tokens::list_tokens(&mut conn, owner.id)
                    .await?
                    .iter()
                    .any(|t| t.id == token_id);
                let reason = if known {
                    format!("token {token_id} of {user} is already revoked")
                } else {
                    format!("{user} has no token {token_id} (see `enqueue token list {user}`)")
                };
                return Err(BadInput::new(reason).into());
            }
            out.emit(
                &json!({ "token_id": token_id, "user_id": owner.id, "revoked": true }),
                || format!("token {token_id} of {user} revoked"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A token row as JSON, with the table's column names (never the hash).
fn token_json(t: &ApiToken, user: &str) -> Value {
    json!({
        "id": t.id,
        "user_id": t.user_id,
        "username": user,
        "name": t.name,
        "token_prefix": t.token_prefix,
        "is_operator": t.is_operator,
        "created_at": rfc3339(t.created_at),
        "last_used_at": t.last_used_at.map(rfc3339),
        "revoked_at": t.revoked_at.map(rfc3339),
    })
}

fn human_time(time: Option<chrono::NaiveDateTime>) -> String {
    time.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| "-".into())
}
