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

#[derive(Subcommand, Debug)]
pub enum QuotaCommand {
    /// Set how many video tasks a user may complete per period
    Set {
        /// User name
        user: String,
        /// Completed video tasks allowed per period
        #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
        monthly_videos: i64,
        /// daily, weekly or monthly
        #[arg(long, default_value = "monthly")]
        reset_period: String,
    },
}

/// Runs a `quota` subcommand.
pub async fn quota(
    settings: &Settings,
    out: &Output,
    command: QuotaCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        QuotaCommand::Set { user, monthly_videos, reset_period } => {
            let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
            let mut conn = shared::db::conn(&pool).await?;
            let found = shared::users::require_user(&mut conn, &user).await?;
            shared::quotas::set_monthly_videos(&mut conn, found.id, monthly_videos, &reset_period)
                .await?;
            out.emit(
                &json!({ "user": user, "quota_type": shared::quotas::MONTHLY_VIDEOS, "total_quota": monthly_videos, "reset_period": reset_period }),
                || format!("{user}: {monthly_videos} videos per {}", reset_period.trim_end_matches("ly").replace("dai", "day")),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
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
pub async fn user(
    settings: &Settings,
    out: &Output,
    command: UserCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Add { name, email } => {
            if name.is_empty() || name.chars().count() > 50 {
                return Err(shared::BadInput::new("user name must be 1 to 50 characters").into());
            }
            if !email.contains('@') || email.chars().count() > 100 {
                return Err(
                    shared::BadInput::new(format!("{email:?} is not an e-mail address")).into()
                );
            }
            let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
            let mut conn = shared::db::conn(&pool).await?;
            let id = shared::users::create_user(&mut conn, &name, &email).await?;
            out.emit(&json!({ "user_id": id, "username": name }), || id.to_string());
            Ok(ExitCode::SUCCESS)
        }
    }
}
