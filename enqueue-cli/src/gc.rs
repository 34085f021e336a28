//! `enqueue gc`: deletes stored objects no row refers to.
//!
//! Orphans come from attempts that stored clips and never committed (a
//! worker killed mid-cut; the worker itself removes the objects of attempts
//! whose commit was refused), from uploads whose transaction failed, and,
//! on `file://` storage, from `.partial` files of writes killed midway.
//! Objects younger than `--older-than` are kept, so an upload or an attempt
//! that is writing right now is never raced; so are the prefixes of
//! attempts that are running.

use crate::Output;
use clap::Args;
use serde_json::json;
use shared::config::Settings;
use shared::BadInput;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

#[derive(Args, Debug)]
pub struct GcArgs {
    /// Only list what would be deleted
    #[arg(long)]
    pub dry_run: bool,
    /// Keep objects written more recently than this (e.g. 30m, 1h, 2d; 0 for none)
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub older_than: Duration,
}

/// `90s`, `30m`, `1h`, `2d` (or plain seconds) as a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) =
        text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 30m, 1h or 2d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?} is not a duration like 90s, 30m, 1h or 2d")),
    };
    n.checked_mul(seconds).map(Duration::from_secs).ok_or_else(|| format!("{text:?} is too long"))
}

/// Deletes (or, with `--dry-run`, lists) the unreferenced objects.
pub async fn gc(settings: &Settings, out: &Output, args: GcArgs) -> anyhow::Result<ExitCode> {
    let storage = shared::storage::Storage::from_url(&settings.storage_url)?;
    let pool = shared::db::connect(settings.require_database_url()?, 1).await?;
    // Listing first, references second: an object written and referenced
    // between the two is seen as referenced.
    let objects = storage.list("").await?;
    let mut conn = shared::db::conn(&pool).await?;
    let referenced = shared::references::referenced_keys(&mut conn).await?;
    let running = shared::references::running_attempt_prefixes(&mut conn).await?;
    drop(conn);
    let cutoff = SystemTime::now()
        .checked_sub(args.older_than)
        .ok_or_else(|| BadInput::new("--older-than is too long"))?;
    let (mut deleted, mut bytes, mut kept_recent) = (0u64, 0u64, 0u64);
    for object in &objects {
        if referenced.contains(&object.key)
            || running.iter().any(|p| object.key.starts_with(&format!("{p}/")))
        {
            continue;
        }
        if object.modified.is_none_or(|m| m > cutoff) {
            kept_recent += 1;
            continue;
        }
        if !args.dry_run {
            storage.delete(&object.key).await?;
        }
        deleted += 1;
        bytes += object.size;
        if !out.json {
            println!("{} {}", if args.dry_run { "would delete" } else { "deleted" }, object.key);
        }
    }
    let summary = json!({
        "dry_run": args.dry_run,
        "objects": objects.len(),
        "referenced": referenced.len(),
        "deleted": deleted,
        "bytes": bytes,
        "kept_recent": kept_recent,
    });
    out.emit(&summary, || {
        format!(
            "{} {deleted} unreferenced object(s), {bytes} bytes, of {} stored; kept {kept_recent} newer than {:?}",
            if args.dry_run { "would delete" } else { "deleted" },
            objects.len(),
            args.older_than
        )
    });
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("-1h").is_err());
    }
}
