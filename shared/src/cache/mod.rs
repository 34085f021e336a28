//! The seed's read caches in Redis (design section 6): `video:meta:{video_id}`
//! (TTL 1 day) and `user:config:{user_id}` (TTL 12 hours), each a JSON
//! object with the seed's fields ([`VideoMeta`], [`UserConfig`]).
//!
//! Cache-aside, as section 6.2 says: a read tries Redis, and on a miss reads
//! the database and stores what it read with the TTL; a change of the row
//! commits first and then deletes the key ([`Cache::invalidate_videos`],
//! [`Cache::invalidate_user_config`]), so the next read fills it again. The
//! programs that change the rows call those right after their commit:
//! - `videos`: the worker (`mark_processing` when a task starts, the
//!   finisher's completion or failure), the scheduler's lease reaper (a
//!   video failed with its task), `enqueue cancel` (back to uploaded);
//! - `user_configs`: `enqueue config set|unset`;
//! - `templates` owned by a user (the cached `watermark_templates`): the
//!   templates commands must call [`Cache::invalidate_user_config`] too.
//!
//! **The fill race.** Plain cache-aside can store a stale value for a whole
//! TTL: a reader reads the old row, the writer commits and deletes the key,
//! then the reader stores what it read. A miss here therefore first takes a
//! fill lease (`SET key fill:<token> NX PX 10000`), reads the database, and
//! stores the value only if the key still holds its own token (one Lua
//! compare-and-set). A writer's DEL removes the lease too, so a value read
//! before the commit is never stored after it; a reader that finds another
//! reader's lease reads the database without storing anything.
//!
//! Redis is only a cache: when it cannot be reached a read goes to the
//! database (and says so in a warning), and a failed delete is reported to
//! the caller, who logs it; the key then expires with its TTL.

mod user_config;
mod video_meta;

pub use user_config::{UserConfig, WatermarkTemplate};
pub use video_meta::VideoMeta;

use crate::db::Pool;
use anyhow::Context;
use fred::prelude::*;
use fred::types::{Expiration, SetOptions};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::time::Duration;

/// Lifetime of a `video:meta:*` key (the seed: 1 day).
pub const VIDEO_META_TTL_SECONDS: i64 = 86_400;
/// Lifetime of a `user:config:*` key (the seed: 12 hours).
pub const USER_CONFIG_TTL_SECONDS: i64 = 43_200;
/// How long a fill lease lasts: longer than any database read it covers.
const FILL_LEASE_MILLIS: i64 = 10_000;
/// A key's value while a reader fills it (values proper are JSON objects).
const FILL_MARK: &str = "fill:";
/// Longest wait for Redis on a read: past it the read goes to the database
/// (a cache must not make a reader slower than no cache).
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for a delete (its failure leaves a stale value until the TTL).
const DELETE_TIMEOUT: Duration = Duration::from_secs(10);

/// `future`, or an error once `limit` has passed.
async fn bounded<T>(
    limit: Duration,
    future: impl Future<Output = Result<T, Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

/// The cache key of a video's metadata.
pub fn video_meta_key(video_id: i64) -> String {
    format!("video:meta:{video_id}")
}

/// The cache key of a user's configuration.
pub fn user_config_key(user_id: i64) -> String {
    format!("user:config:{user_id}")
}

/// Stores ARGV[2] with TTL ARGV[3] seconds only if KEYS[1] still holds this
/// reader's fill lease ARGV[1]; with no ARGV[2], releases the lease.
const STORE_IF_LEASED: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) else redis.call('DEL', KEYS[1]) end
return 1
"#;

/// Where a cached value came from, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Read from Redis.
    Hit,
    /// Read from the database (and stored, unless another reader was filling).
    Miss,
    /// Read from the database: no Redis, or Redis failed.
    Bypassed,
}

impl Lookup {
    fn name(self) -> &'static str {
        match self {
            Lookup::Hit => "hit",
            Lookup::Miss => "miss",
            Lookup::Bypassed => "bypassed",
        }
    }
}

/// The read caches over one Redis client (or none: every read goes to the
/// database).
#[derive(Clone)]
pub struct Cache {
    client: Option<Client>,
}

impl Cache {
    /// A cache on the queue's Redis connection.
    pub fn new(queue: &crate::queue::Queue) -> Cache {
        Cache { client: Some(queue.client().clone()) }
    }

    /// No cache: reads go to the database, invalidations do nothing.
    pub fn disabled() -> Cache {
        Cache { client: None }
    }

    /// Connects to Redis at `url` for a short-lived command, giving up after
    /// five seconds (then the cache is [`Cache::disabled`] and a warning
    /// says why): a command must not hang on a cache.
    pub async fn connect_or_disabled(url: &str) -> Cache {
        let connect = crate::queue::Queue::connect(url);
        match tokio::time::timeout(std::time::Duration::from_secs(5), connect).await {
            Ok(Ok(queue)) => Cache::new(&queue),
            Ok(Err(e)) => {
                tracing::warn!("Redis unavailable, caches not used: {}", crate::one_line(&e));
                Cache::disabled()
            }
            Err(_) => {
                tracing::warn!("Redis did not answer within 5 s, caches not used");
                Cache::disabled()
            }
        }
    }

    /// Whether a Redis client is behind this cache.
    pub fn is_enabled(&self) -> bool {
        self.client.is_some()
    }

    /// `video:meta:{video_id}`: the video's metadata, or `None` if there is
    /// no such video (not cached).
    pub async fn video_meta(
        &self,
        pool: &Pool,
        video_id: i64,
    ) -> anyhow::Result<Option<VideoMeta>> {
        let (meta, _) = self
            .read_through(
                "video_meta",
                video_meta_key(video_id),
                VIDEO_META_TTL_SECONDS,
                || async {
                    let mut conn = crate::db::conn(pool).await?;
                    video_meta::load(&mut conn, video_id).await
                },
            )
            .await?;
        Ok(meta)
    }

    /// `user:config:{user_id}`: every `user_configs` value of the user and
    /// their watermark templates (empty for a user with none).
    pub async fn user_config(&self, pool: &Pool, user_id: i64) -> anyhow::Result<UserConfig> {
        let (config, _) = self
            .read_through(
                "user_config",
                user_config_key(user_id),
                USER_CONFIG_TTL_SECONDS,
                || async {
                    let mut conn = crate::db::conn(pool).await?;
                    user_config::load(&mut conn, user_id).await.map(Some)
                },
            )
            .await?;
        Ok(config.unwrap_or_default())
    }

    /// Deletes `video:meta:*` of these videos: call right after committing
    /// a change of their rows.
    pub async fn invalidate_videos(&self, video_ids: &[i64]) -> anyhow::Result<()> {
        let keys: Vec<String> = video_ids.iter().map(|id| video_meta_key(*id)).collect();
        self.delete(keys).await
    }

    /// Deletes `user:config:{user_id}`: call right after committing a change
    /// of the user's `user_configs` rows or own templates.
    pub async fn invalidate_user_config(&self, user_id: i64) -> anyhow::Result<()> {
        self.delete(vec![user_config_key(user_id)]).await
    }

    async fn delete(&self, keys: Vec<String>) -> anyhow::Result<()> {
        let Some(client) = &self.client else { return Ok(()) };
        if keys.is_empty() {
            return Ok(());
        }
        let shown = keys.join(" ");
        // One DEL per key, pipelined: on Redis Cluster the keys live in
        // different slots, and a DEL of several would be refused (CROSSSLOT).
        let pipeline = client.pipeline();
        for key in keys {
            let _: () = pipeline.del(key).await.map_err(anyhow::Error::msg)?;
        }
        bounded(DELETE_TIMEOUT, async { pipeline.all::<fred::types::Value>().await })
            .await
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("deleting {shown} from Redis"))?;
        Ok(())
    }

    /// Cache-aside read of `key`: Redis, else `load` from the database and
    /// store the value with `ttl_seconds` under a fill lease (see the module
    /// docs). `load` returning `None` (no such row) stores nothing. `cache`
    /// names the cache in the `videoclip_cache_reads_total` metric.
    pub async fn read_through<T, F, Fut>(
        &self,
        cache: &'static str,
        key: String,
        ttl_seconds: i64,
        load: F,
    ) -> anyhow::Result<(Option<T>, Lookup)>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<Option<T>>>,
    {
        let count = |lookup: Lookup| {
            metrics::counter!("videoclip_cache_reads_total", "cache" => cache, "result" => lookup.name())
                .increment(1);
            tracing::debug!(%key, result = lookup.name(), "cache read");
        };
        let Some(client) = &self.client else {
            count(Lookup::Bypassed);
            return Ok((load().await?, Lookup::Bypassed));
        };
        match bounded(READ_TIMEOUT, client.get::<Option<String>, _>(key.as_str())).await {
            Ok(Some(text)) if !text.starts_with(FILL_MARK) => match serde_json::from_str(&text) {
                Ok(value) => {
                    count(Lookup::Hit);
                    return Ok((Some(value), Lookup::Hit));
                }
                Err(e) => {
                    // Not ours (an older format, a hand edit): replace it.
                    tracing::warn!(%key, "unreadable cached value replaced: {e}");
                    let _ = bounded(READ_TIMEOUT, client.del::<i64, _>(key.as_str())).await;
                }
            },
            // Another reader is filling the key: read, do not store.
            Ok(Some(_)) => {
                count(Lookup::Miss);
                return Ok((load().await?, Lookup::Miss));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%key, "Redis read failed, reading the database: {e}");
                count(Lookup::Bypassed);
                return Ok((load().await?, Lookup::Bypassed));
            }
        }
        count(Lookup::Miss);
        let token = format!("{FILL_MARK}{}", uuid::Uuid::now_v7().simple());
        let lease = client.set::<Option<String>, _, _>(
            key.as_str(),
            token.as_str(),
            Some(Expiration::PX(FILL_LEASE_MILLIS)),
            Some(SetOptions::NX),
            false,
        );
        let leased: Option<String> = bounded(READ_TIMEOUT, lease).await.unwrap_or_else(|e| {
            tracing::warn!(%key, "Redis fill lease failed: {e}");
            None
        });
        let value = load().await;
        if leased.is_some() {
            let json = match &value {
                Ok(Some(v)) => Some(serde_json::to_string(v)?),
                _ => None,
            };
            let mut args = vec![token];
            if let Some(json) = json {
                args.push(json);
                args.push(ttl_seconds.to_string());
            }
            let store = client.eval::<i64, _, _, _>(STORE_IF_LEASED, vec![key.as_str()], args);
            let stored = bounded(READ_TIMEOUT, store).await;
            if let Err(e) = stored {
                tracing::warn!(%key, "Redis fill failed: {e}");
            }
        }
        Ok((value?, Lookup::Miss))
    }
}
