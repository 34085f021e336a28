//! `enqueue migrate` and `enqueue user ...`.

use crate::Output;
use clap::Subcommand;
use serde_json::json;
use shared::config::Settings;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user; prints its id
    Add {
        /// Unique user name (at most 50 characters)
        name: String,
        /// Unique e-mail address
        #[arg(long)]
        email: String,
    },
}

/// Applies pending migrations and reports which ran.
pub async fn migrate(settings: &Settings, out: &Output) -> anyhow::Result<ExitCode> {
    let applied = shared::db::run_migrations(settings.require_database_url()?).await?;
    out.emit(&json!({ "applied": applied }), || {
        if applied.is_empty() {
            "schema is up to date".to_string()
        } else {
            format!("applied {} migration(s): {}", applied.len(), applied.join(", "))
        }
    });
    Ok(ExitCode::SUCCESS)
}

/// Runs a `user` subcommand.
pub async fn user(settings: &Settings, out: &Output, command: UserCommand) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Add { name, email } => {
            if name.is_empty() || name.chars().count() > 50 {
                return Err(shared::BadInput::new("user name must be 1 to 50 characters").into());
            }
            if !email.contains('@') || email.chars().count() > 100 {
                return Err(shared::BadInput::new(format!("{email:?} is not an e-mail address")).into());
            }
            let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
            let mut conn = shared::db::conn(&pool).await?;
            let id = shared::users::create_user(&mut conn, &name, &email).await?;
            out.emit(&json!({ "user_id": id, "username": name }), || id.to_string());
            Ok(ExitCode::SUCCESS)
        }
    }
}
