//! Settings every binary shares: where the database, Redis and storage are.
//!
//! Each setting comes from a flag, else the environment, else a `.env` file
//! in the working directory (loaded by [`load_dotenv`] before flags are
//! parsed). Binaries print them at start-up through [`Settings::describe`],
//! which never shows a password.

use clap::Args;

/// Connection settings shared by the scheduler, the worker and the CLI.
#[derive(Args, Debug, Clone)]
pub struct Settings {
    /// MySQL/MariaDB URL, e.g. mysql://root@127.0.0.1:3307/videoclip
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        default_value = "",
        hide_default_value = true
    )]
    pub database_url: String,

    /// Redis URL (rediss:// for TLS, user:password@ for ACL)
    #[arg(long, env = "REDIS_URL", global = true, default_value = "redis://127.0.0.1:6379/0")]
    pub redis_url: String,

    /// Where videos and clips live: file:///dir or s3://bucket/prefix
    #[arg(long, env = "STORAGE_URL", global = true, default_value = "file://./storage")]
    pub storage_url: String,

    /// Path of a whisper.cpp ggml model file
    #[arg(long, env = "WHISPER_MODEL", global = true)]
    pub whisper_model: Option<String>,

    /// Log format: text (default on a terminal) or json (one object per line)
    #[arg(long, env = "LOG_FORMAT", global = true, default_value = "text")]
    pub log_format: crate::logging::LogFormat,

    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464)
    #[arg(long, env = "METRICS_ADDR", global = true)]
    pub metrics_addr: Option<String>,
}

impl Settings {
    /// One line listing every setting, passwords replaced by `***`, for the
    /// start-up log.
    pub fn describe(&self) -> String {
        format!(
            "database_url={} redis_url={} storage_url={} whisper_model={}",
            redact_url(&self.database_url),
            redact_url(&self.redis_url),
            redact_url(&self.storage_url),
            self.whisper_model.as_deref().unwrap_or("-"),
        )
    }

    /// The database URL, or a bad-input error naming the missing setting.
    pub fn require_database_url(&self) -> Result<&str, crate::BadInput> {
        if self.database_url.trim().is_empty() {
            return Err(crate::BadInput::new(
                "DATABASE_URL is not set (flag --database-url, the environment or .env)",
            ));
        }
        Ok(&self.database_url)
    }
}

/// Queue tuning shared by the scheduler and the worker.
#[derive(Args, Debug, Clone)]
pub struct QueueSettings {
    /// Tasks with priority <= this go to queue:high_priority
    #[arg(long, env = "HIGH_PRIORITY_THRESHOLD", default_value_t = 3)]
    pub high_priority_threshold: i8,

    /// How long a claimed task's lease lasts without a heartbeat (seconds)
    #[arg(long, env = "LEASE_SECONDS", default_value_t = 30)]
    pub lease_seconds: u32,

    /// A task waiting longer than this is moved to queue:high_priority
    /// whatever its priority (aging), seconds
    #[arg(long, env = "MAX_WAIT_SECONDS", default_value_t = 300)]
    pub max_wait_seconds: u32,
}

/// Loads `.env` from the working directory into the environment if present.
/// Variables already set win over the file.
pub fn load_dotenv() {
    let _ = dotenvy::dotenv();
}

/// Returns `url` with its password (if any) replaced by `***`, so URLs can be
/// logged and shown in errors. Strings that are not URLs come back unchanged.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("mysql://app:s3cret@db:3306/videoclip"),
            "mysql://app:***@db:3306/videoclip"
        );
        assert_eq!(
            redact_url("redis://:hunter2@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(redact_url("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
        assert_eq!(redact_url("file:///var/lib/videoclip"), "file:///var/lib/videoclip");
    }
}
