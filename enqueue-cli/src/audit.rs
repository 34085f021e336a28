//! The audit trail: every state-changing command writes one
//! `operation_logs` row (operation, resource, the command line with secrets
//! redacted, exit status, error, execution time), success or failure.
//! Best effort: a command that could not reach the database cannot be
//! logged there, and a failed audit write never changes the command's result.

use crate::configs::{ConfigCommand, SystemConfigCommand};
use crate::token::TokenCommand;
use crate::Command;
use shared::audit::Operation;
use shared::config::{redact_url, Settings};
use std::process::ExitCode;
use std::time::Duration;

/// What to record about the command being run.
pub struct Audit {
    database_url: String,
    operation: &'static str,
    resource_type: &'static str,
    resource_id: Option<String>,
    username: Option<String>,
}

impl Audit {
    /// An audit for state-changing commands; `None` for read-only ones.
    pub fn for_command(command: &Command, settings: &Settings) -> Option<Audit> {
        let (operation, resource_type, resource_id, username) = match command {
            Command::Migrate => ("migrate", "schema", None, None),
            Command::User { command: crate::admin::UserCommand::Add { name, .. } } => {
                ("user add", "user", None, Some(name.clone()))
            }
            Command::Quota { command: crate::admin::QuotaCommand::Set { user, .. } } => {
                ("quota set", "user_quota", None, Some(user.clone()))
            }
            Command::Video(args) => ("video", "processing_task", None, Some(args.user.clone())),
            Command::Task(args) => {
                ("task", "processing_task", Some(format!("video {}", args.video_id)), None)
            }
            Command::Noop(_) => ("noop", "processing_task", None, None),
            Command::Backfill(_) => ("backfill", "processing_task", None, None),
            Command::Cancel(ids) => {
                ("cancel", "processing_task", Some(ids.task_ids.join(",")), None)
            }
            Command::Gc(args) if !args.dry_run => ("gc", "storage", None, None),
            Command::Template { command: crate::template::TemplateCommand::Add(args) } => {
                ("template add", "template", None, args.user.clone())
            }
            Command::Template {
                command: crate::template::TemplateCommand::Disable { template },
            } => ("template disable", "template", Some(template.clone()), None),
            Command::Token { command: TokenCommand::Create { user, .. } } => {
                ("token create", "api_token", None, Some(user.clone()))
            }
            Command::Token { command: TokenCommand::Revoke { user, token_id } } => {
                ("token revoke", "api_token", Some(token_id.to_string()), Some(user.clone()))
            }
            Command::Download(args) => (
                "download",
                "download_record",
                args.task.as_ref().map(|t| format!("task {t}")),
                args.user.clone(),
            ),
            Command::FetchDownload(args) => (
                "fetch-download",
                "download_record",
                Some(shared::downloads::sign::redact_link(&args.link)),
                None,
            ),
            Command::Config { command: ConfigCommand::Set { user, key, .. } } => {
                ("config set", "user_config", Some(key.clone()), Some(user.clone()))
            }
            Command::Config { command: ConfigCommand::Unset { user, key } } => {
                ("config unset", "user_config", Some(key.clone()), Some(user.clone()))
            }
            Command::SystemConfig { command: SystemConfigCommand::Set { key, .. } } => {
                ("system-config set", "system_config", Some(key.clone()), None)
            }
            Command::SystemConfig { command: SystemConfigCommand::Unset { key } } => {
                ("system-config unset", "system_config", Some(key.clone()), None)
            }
            Command::Retry(args) => (
                "retry",
                "processing_task",
                Some(if args.all_failed { "all failed".into() } else { args.task_ids.join(",") }),
                None,
            ),
            _ => return None,
        };
        Some(Audit {
            database_url: settings.database_url.clone(),
            operation,
            resource_type,
            resource_id: resource_id.map(|id| id.chars().take(100).collect()),
            username,
        })
    }

    /// Writes the row for a command that ended with `result` after `took`.
    pub async fn record(self, result: &anyhow::Result<ExitCode>, took: Duration) {
        let written = async {
            let pool = shared::db::connect(&self.database_url, 1).await?;
            let mut conn = shared::db::conn(&pool).await?;
            let user_id = match &self.username {
                Some(name) => shared::users::find_user(&mut conn, name).await?.map(|u| u.id),
                None => None,
            };
            let argv: Vec<String> = std::env::args().map(|a| redact_arg(&a)).collect();
            let (status, error) = match result {
                Ok(code) if *code == ExitCode::SUCCESS => (1, None),
                Ok(_) => (0, Some("finished with a non-zero exit status".to_string())),
                Err(e) => (0, Some(shared::one_line(e))),
            };
            let operation = Operation {
                user_id,
                operation: format!("enqueue {}", self.operation),
                resource_type: Some(self.resource_type.to_string()),
                resource_id: self.resource_id,
                ip_address: None,
                user_agent: Some(format!("enqueue/{} ({})", env!("CARGO_PKG_VERSION"), whoami())),
                request_data: Some(serde_json::json!({ "argv": argv })),
                response_data: Some(serde_json::json!({ "ok": status == 1 })),
                execution_time: Some(took.as_millis().min(i32::MAX as u128) as i32),
                status,
                error_message: error,
            };
            shared::audit::record(&mut conn, &operation).await
        }
        .await;
        if let Err(e) = written {
            tracing::debug!("audit row not written: {}", shared::one_line(&e));
        }
    }
}

/// A command-line argument with any URL password, the signature of a
/// download link, and an API token replaced by `***`. (No command takes a
/// token as an argument: `token create` prints it. The check keeps one that
/// was pasted into the command line by mistake out of `operation_logs`.)
fn redact_arg(arg: &str) -> String {
    let arg = redact_token(arg);
    match arg.split_once('=') {
        Some((flag, value)) if flag.starts_with("--") => format!("{flag}={}", redact_url(value)),
        _ => shared::downloads::sign::redact_link(&redact_url(&arg)),
    }
}

/// `arg` with every API token in it replaced by `vc_***`.
fn redact_token(arg: &str) -> String {
    let tokens: Vec<&str> = arg
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| shared::tokens::is_well_formed(w))
        .collect();
    let mut redacted = arg.to_string();
    for token in tokens {
        redacted = redacted.replace(token, "vc_***");
    }
    redacted
}

/// `user@host` of whoever runs the command.
fn whoami() -> String {
    let user =
        std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "?".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    format!("{user}@{host}")
}
