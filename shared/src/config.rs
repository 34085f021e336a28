//! Settings every binary shares: where the database, Redis and storage are.
//!
//! Each setting comes from a flag, else the environment, else a `.env` file
//! in the working directory (loaded by [`load_dotenv`] before flags are
//! parsed). Binaries print them at start-up through [`Settings::describe`],
//! which never shows a password.
//!
//! Operator-tunable defaults (lease, aging, retries, step limits, ...) may
//! also be stored in `system_configs` ([`crate::system_configs`]): a flag or
//! environment variable wins, then the stored value, then the built-in
//! default. [`Resolver`] applies that order and records where each value
//! came from, for the start-up log.

use crate::system_configs::{self, defaults};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Display;

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

    /// A read-only replica of the database, for listings and counts
    /// (queue decisions always read the primary)
    #[arg(long, env = "DATABASE_REPLICA_URL", global = true)]
    pub database_replica_url: Option<String>,

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
            "database_url={} database_replica_url={} redis_url={} storage_url={} whisper_model={}",
            redact_url(&self.database_url),
            self.database_replica_url.as_deref().map(redact_url).unwrap_or_else(|| "-".into()),
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

    /// Display reads ([`crate::replica`]) on the replica if one is set, of
    /// at most `max_size` connections, with `primary` as the fallback.
    pub fn read_pool(
        &self,
        primary: crate::db::Pool,
        max_size: u32,
    ) -> Result<crate::replica::ReadPool, crate::BadInput> {
        crate::replica::ReadPool::new(primary, self.database_replica_url.as_deref(), max_size)
    }
}

/// Queue tuning shared by the scheduler and the worker.
#[derive(Args, Debug, Clone)]
pub struct QueueSettings {
    /// Tasks with priority <= this go to queue:high_priority
    #[arg(long, env = "HIGH_PRIORITY_THRESHOLD", default_value_t = defaults::HIGH_PRIORITY_THRESHOLD)]
    pub high_priority_threshold: i8,

    /// How long a claimed task's lease lasts without a heartbeat (seconds)
    #[arg(long, env = "LEASE_SECONDS", default_value_t = defaults::LEASE_SECONDS)]
    pub lease_seconds: u32,

    /// A task waiting longer than this is moved to queue:high_priority
    /// whatever its priority (aging), seconds
    #[arg(long, env = "MAX_WAIT_SECONDS", default_value_t = defaults::MAX_WAIT_SECONDS)]
    pub max_wait_seconds: u32,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// An environment variable (or the `.env` file).
    Env,
    /// A `system_configs` row.
    SystemConfigs,
    /// The built-in default.
    Default,
}

impl Source {
    /// The name the start-up log uses.
    pub fn name(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::SystemConfigs => "system_configs",
            Source::Default => "default",
        }
    }
}

/// Where clap found the argument `id`: a flag, a variable, or (default or
/// absent) neither.
pub fn given_by(matches: &ArgMatches, id: &str) -> Option<Source> {
    match matches.value_source(id)? {
        ValueSource::CommandLine => Some(Source::Flag),
        ValueSource::EnvVariable => Some(Source::Env),
        _ => None,
    }
}

/// Applies the precedence flag / environment > `system_configs` > built-in
/// default to a binary's tunable settings, and remembers each one's source.
///
/// Each setting's `system_configs` key is its flag's argument id (the field
/// name: `lease_seconds` for `--lease-seconds`).
pub struct Resolver<'a> {
    matches: &'a ArgMatches,
    stored: BTreeMap<String, Value>,
    origins: Vec<(&'static str, String, Source)>,
}

impl<'a> Resolver<'a> {
    /// A resolver over the parsed command line and the stored values.
    pub fn new(matches: &'a ArgMatches, stored: BTreeMap<String, Value>) -> Self {
        Resolver { matches, stored, origins: Vec::new() }
    }

    /// Reads `system_configs` over `pool`; if that fails the stored values
    /// are left out (flags, variables and defaults still apply) and a
    /// warning says why.
    pub async fn load(matches: &'a ArgMatches, pool: &crate::db::Pool) -> Resolver<'a> {
        let stored = async {
            let mut conn = crate::db::conn(pool).await?;
            system_configs::load_values(&mut conn).await
        }
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(
                "system_configs not read, using flags, environment and defaults: {}",
                crate::one_line(&e)
            );
            BTreeMap::new()
        });
        Resolver::new(matches, stored)
    }

    /// The stored values (key -> value).
    pub fn stored(&self) -> &BTreeMap<String, Value> {
        &self.stored
    }

    /// `slot` holds what clap parsed (a flag, a variable, or its default).
    /// Unless a flag or variable gave it, the stored value for `key`
    /// replaces it if there is a valid one.
    pub fn resolve<T>(&mut self, key: &'static str, slot: &mut T)
    where
        T: serde::de::DeserializeOwned + Display + Clone,
    {
        if let Some(source) = given_by(self.matches, key) {
            self.note(key, slot.to_string(), source);
            return;
        }
        *slot = self.stored_or(key, slot.clone());
    }

    /// A setting with no flag: the valid stored value for `key`, else
    /// `default`.
    pub fn stored_or<T>(&mut self, key: &'static str, default: T) -> T
    where
        T: serde::de::DeserializeOwned + Display,
    {
        if let Some(value) = self.stored.get(key) {
            match system_configs::parse::<T>(key, value) {
                Ok(parsed) => {
                    self.note(key, parsed.to_string(), Source::SystemConfigs);
                    return parsed;
                }
                Err(reason) => {
                    tracing::warn!("system_configs {key} ignored, using the default: {reason}")
                }
            }
        }
        self.note(key, default.to_string(), Source::Default);
        default
    }

    /// Records where `key` came from (for settings resolved by the caller).
    pub fn note(&mut self, key: &'static str, shown: String, source: Source) {
        self.origins.retain(|(k, _, _)| *k != key);
        self.origins.push((key, shown, source));
    }

    /// One line: `key=value (source)` for every setting resolved so far.
    pub fn describe(&self) -> String {
        self.origins
            .iter()
            .map(|(key, shown, source)| format!("{key}={shown} ({})", source.name()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Loads `.env` from the working directory into the environment if present.
/// Variables already set win over the file.
pub fn load_dotenv() {
    let _ = dotenvy::dotenv();
}

/// Returns `url` with its passwords replaced by `***`, so URLs can be logged
/// and shown in errors: the one in the authority and any query parameter
/// whose name contains "password" (`sentinelPassword=`). Also for URLs the
/// `url` crate cannot parse (a Sentinel node list `h1:1,h2:2`). Strings
/// without `://` come back unchanged.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (main, query) = match rest.split_once('?') {
        Some((main, query)) => (main, Some(query)),
        None => (rest, None),
    };
    let main = match main.rfind('@') {
        Some(at) => match main[..at].split_once(':') {
            Some((user, _password)) => format!("{user}:***{}", &main[at..]),
            None => main.to_string(),
        },
        None => main.to_string(),
    };
    let Some(query) = query else { return format!("{scheme}://{main}") };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name.to_ascii_lowercase().contains("password") => {
                format!("{name}=***")
            }
            _ => pair.to_string(),
        })
        .collect();
    format!("{scheme}://{main}?{}", query.join("&"))
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
        assert_eq!(
            redact_url("redis-sentinel://:pw@h1:26379,h2:26379/vc?sentinelPassword=s2&node=x"),
            "redis-sentinel://:***@h1:26379,h2:26379/vc?sentinelPassword=***&node=x"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
