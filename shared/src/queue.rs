//! The Redis side of the queue: two lists of task ids, status cache keys,
//! and a marker that tells whether Redis still holds what the scheduler put
//! there.
//!
//! Redis is transport and cache only. The lists carry public task ids and
//! nothing else; a worker that pops an id claims the row in the database,
//! so a duplicate or stale id costs one no-op UPDATE and nothing more. That
//! is what makes pushing twice, re-pushing after a crash and rebuilding
//! after a Redis flush safe.
//!
//! Keys (docs/CONTRACT.md, plus `queue:epoch`):
//! - `queue:high_priority`, `queue:video_processing`: lists, pushed at the
//!   tail (RPUSH), popped at the head (BLMPOP ... LEFT): FIFO, and
//!   BLMPOP takes from the first list before the second: strict priority.
//! - `task:status:{task_id}`: JSON `{status, progress, current_step,
//!   updated_at}`, TTL 1 hour.
//! - `workers:alive`: sorted set, worker id -> time of its last heartbeat.
//! - `queue:epoch`: set by the scheduler when it (re)builds the queues, to
//!   the server's replication id. If it is missing, Redis lost its data
//!   (restart without persistence, FLUSHALL); if it names another
//!   replication id, a replica was promoted (Sentinel failover) and may lack
//!   the old master's last pushes. Either way the scheduler pushes every
//!   pending task again.

use crate::config::redact_url;
use crate::models::TaskStatus;
use crate::redis_url;
use crate::tls;
use crate::BadInput;
use anyhow::Context;
use fred::prelude::*;
use fred::types::config::TlsConnector;
use fred::types::lists::LMoveDirection;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// List of tasks with priority up to the high-priority threshold.
pub const HIGH_PRIORITY_QUEUE: &str = "queue:high_priority";
/// List of every other task.
pub const VIDEO_PROCESSING_QUEUE: &str = "queue:video_processing";
/// Present while Redis holds the queues the scheduler built.
pub const EPOCH_KEY: &str = "queue:epoch";
/// Sorted set of live workers: member = worker id, score = Unix time of its
/// last heartbeat.
pub const WORKERS_KEY: &str = "workers:alive";
/// A worker whose heartbeat is older than this counts as gone.
pub const WORKER_ALIVE_SECONDS: i64 = 10;
/// Lifetime of a `task:status:*` key.
pub const STATUS_TTL_SECONDS: i64 = 3600;

/// What [`Queue::state`] reads at the start of each scheduler tick.
#[derive(Debug, Clone)]
pub struct QueueState {
    /// Length of `queue:high_priority`.
    pub high: u64,
    /// Length of `queue:video_processing`.
    pub normal: u64,
    /// The server's replication history (`master_replid` of `INFO
    /// replication`): a new id after a restart without persistence and
    /// after a Sentinel failover promoted a replica.
    pub history: String,
    /// `queue:epoch` exists and names `history`. False when Redis lost its
    /// data, and when a promoted replica may lack the last pushes the old
    /// master acknowledged: either way the scheduler pushes every pending
    /// task again.
    pub intact: bool,
}

/// The `master_replid` field of an `INFO replication` reply.
fn replication_history(info: &str) -> Option<&str> {
    info.lines().find_map(|line| line.trim().strip_prefix("master_replid:"))
}

/// The status cache key of a task.
pub fn status_key(task_id: &str) -> String {
    format!("task:status:{task_id}")
}

/// The list a task of this priority goes to.
pub fn queue_for_priority(priority: i8, high_priority_threshold: i8) -> &'static str {
    if priority <= high_priority_threshold {
        HIGH_PRIORITY_QUEUE
    } else {
        VIDEO_PROCESSING_QUEUE
    }
}

/// The JSON stored at `task:status:{task_id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CachedStatus {
    /// `processing_tasks.status` code.
    pub status: i8,
    pub progress: i8,
    pub current_step: Option<String>,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

impl CachedStatus {
    /// A status stamped with the current time.
    pub fn now(status: TaskStatus, progress: i8, current_step: Option<&str>) -> Self {
        CachedStatus {
            status: status.code(),
            progress,
            current_step: current_step.map(str::to_string),
            updated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }
}

/// The fred configuration for `url` (any form of [`redis_url`]), TLS set up by us for `rediss://`
/// (and `valkeys://`, `-cluster`, `-sentinel` forms): rustls trusting
/// `roots` ([`tls::Roots`]: `REDIS_CA_CERT`, else the system store),
/// verifying the server's certificate and name.
///
/// The URL is parsed by fred with its scheme made plaintext so fred never
/// builds a default connector of its own; the TLS connector is always ours,
/// and if it cannot be built the URL is refused ([`BadInput`]), never used
/// without TLS. A CA file given for a plaintext `redis://` URL is refused
/// as well: it means TLS was wanted.
pub fn redis_config(url: &str, roots: &tls::Roots) -> Result<Config, BadInput> {
    let shown = redact_url(url);
    let url = &redis_url::to_fred_form(url, &shown)?;
    let scheme = url.split_once("://").map(|(scheme, _)| scheme).unwrap_or_default();
    // rediss -> redis, valkeys-cluster -> valkey-cluster, ...
    let plain_scheme = ["rediss", "valkeys"].iter().find_map(|tls_scheme| {
        let rest = scheme.to_ascii_lowercase().strip_prefix(tls_scheme)?.to_string();
        Some(format!("{}{rest}", &tls_scheme[..tls_scheme.len() - 1]))
    });
    let Some(plain_scheme) = plain_scheme else {
        if let Some(file) = roots.file() {
            return Err(BadInput::new(format!(
                "{} is set ({}) but REDIS_URL {shown} is not rediss://: refusing to connect without TLS",
                roots.var(),
                file.display()
            )));
        }
        return Config::from_url(url)
            .map_err(|e| BadInput::new(format!("invalid REDIS_URL {shown}: {e}")));
    };
    let client_config = roots
        .client_config()
        .map_err(|e| BadInput::new(format!("cannot set up TLS for REDIS_URL {shown}: {e}")))?;
    let plain_url = format!("{plain_scheme}{}", &url[scheme.len()..]);
    let mut config = Config::from_url(&plain_url)
        .map_err(|e| BadInput::new(format!("invalid REDIS_URL {shown}: {e}")))?;
    config.tls = Some(TlsConnector::from(client_config).into());
    Ok(config)
}

/// Builds and connects a fred client that reconnects with backoff forever
/// (100 ms doubling to 2 s: a Sentinel failover is followed within 2 s of
/// the promotion).
/// A bad URL or TLS set-up is [`BadInput`] (see [`redis_config`]); an
/// unreachable server is reported once the first command fails.
async fn connect_client(url: &str) -> anyhow::Result<Client> {
    let config = redis_config(url, &tls::Roots::from_env(tls::REDIS_CA_CERT))?;
    let client = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(5);
            c.internal_command_timeout = Duration::from_secs(10);
            c.max_command_attempts = 10;
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
        .build()
        .context("building the Redis client")?;
    client.init().await.map_err(|e| {
        BadInput::new(format!(
            "cannot connect to Redis at {}: {}",
            redact_url(url),
            one_line(&e.to_string())
        ))
    })?;
    Ok(client)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Shared, multiplexed Redis access for pushes, lengths and status keys.
#[derive(Clone)]
pub struct Queue {
    client: Client,
}

impl Queue {
    /// Connects to Redis at `url`.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Ok(Queue { client: connect_client(url).await? })
    }

    /// Appends task ids to the tail of their lists (or, with `to_front`, to
    /// the head of the high-priority list, for aged tasks), in one pipeline.
    pub async fn push(
        &self,
        tasks: &[(&str, i8)],
        high_priority_threshold: i8,
        to_front: bool,
    ) -> anyhow::Result<()> {
        let mut high = Vec::new();
        let mut normal = Vec::new();
        for &(task_id, priority) in tasks {
            if to_front
                || queue_for_priority(priority, high_priority_threshold) == HIGH_PRIORITY_QUEUE
            {
                high.push(task_id.to_string());
            } else {
                normal.push(task_id.to_string());
            }
        }
        let pipeline = self.client.pipeline();
        if !high.is_empty() {
            if to_front {
                // LPUSH reverses its arguments; reverse first so the oldest is popped first.
                high.reverse();
                let _: () = pipeline.lpush(HIGH_PRIORITY_QUEUE, high).await?;
            } else {
                let _: () = pipeline.rpush(HIGH_PRIORITY_QUEUE, high).await?;
            }
        }
        if !normal.is_empty() {
            let _: () = pipeline.rpush(VIDEO_PROCESSING_QUEUE, normal).await?;
        }
        let _: Vec<Value> = pipeline.all().await.context("pushing task ids to Redis")?;
        Ok(())
    }

    /// The list lengths and whether Redis still holds every push since the
    /// queues were last built, in one round trip (see [`QueueState`]).
    pub async fn state(&self) -> anyhow::Result<QueueState> {
        let pipeline = self.client.pipeline();
        let _: () = pipeline.llen(HIGH_PRIORITY_QUEUE).await?;
        let _: () = pipeline.llen(VIDEO_PROCESSING_QUEUE).await?;
        let _: () = pipeline.get(EPOCH_KEY).await?;
        let _: () = pipeline.info(Some(fred::types::InfoKind::Replication)).await?;
        let (high, normal, epoch, info): (u64, u64, Option<String>, String) =
            pipeline.all().await.context("reading queue lengths")?;
        let history = replication_history(&info)
            .context("INFO replication has no master_replid")?
            .to_string();
        let intact = epoch.as_deref() == Some(history.as_str());
        Ok(QueueState { high, normal, history, intact })
    }

    /// Marks the queues as built on the server's replication `history`
    /// ([`QueueState::history`]; see [`EPOCH_KEY`]).
    pub async fn set_epoch(&self, history: &str) -> anyhow::Result<()> {
        let _: () = self
            .client
            .set(EPOCH_KEY, history, None, None, false)
            .await
            .context("setting queue:epoch")?;
        Ok(())
    }

    /// Writes `task:status:{task_id}` for many tasks in one pipeline, each
    /// with the 1-hour TTL.
    pub async fn set_statuses(&self, statuses: &[(String, CachedStatus)]) -> anyhow::Result<()> {
        let pipeline = self.client.pipeline();
        let mut any = false;
        for (task_id, status) in statuses {
            let json = serde_json::to_string(status)?;
            let _: () = pipeline
                .set(
                    status_key(task_id),
                    json,
                    Some(Expiration::EX(STATUS_TTL_SECONDS)),
                    None,
                    false,
                )
                .await?;
            any = true;
        }
        if any {
            let _: Vec<Value> = pipeline.all().await.context("writing task:status keys")?;
        }
        Ok(())
    }

    /// Records that worker `id` is alive now (its heartbeat), dropping
    /// workers silent for an hour.
    pub async fn mark_worker_alive(&self, id: &str) -> anyhow::Result<()> {
        let now = chrono::Utc::now().timestamp();
        let pipeline = self.client.pipeline();
        let _: () = pipeline.zadd(WORKERS_KEY, None, None, false, false, (now as f64, id)).await?;
        let _: () =
            pipeline.zremrangebyscore(WORKERS_KEY, f64::NEG_INFINITY, (now - 3600) as f64).await?;
        let _: Vec<Value> = pipeline.all().await.context("recording the worker heartbeat")?;
        Ok(())
    }

    /// Workers whose last heartbeat is at most [`WORKER_ALIVE_SECONDS`] old.
    pub async fn live_workers(&self) -> anyhow::Result<Vec<String>> {
        let since = (chrono::Utc::now().timestamp() - WORKER_ALIVE_SECONDS) as f64;
        let workers: Vec<String> = self
            .client
            .zrangebyscore(WORKERS_KEY, since, f64::INFINITY, false, None)
            .await
            .context("reading live workers")?;
        Ok(workers)
    }

    /// Forgets worker `id` (it is stopping).
    pub async fn mark_worker_gone(&self, id: &str) -> anyhow::Result<()> {
        let _: () =
            self.client.zrem(WORKERS_KEY, id).await.context("removing the worker heartbeat")?;
        Ok(())
    }

    /// The cached status of each of `task_ids`, in order (`None` where the
    /// key is missing or does not parse), read with one pipelined MGET per
    /// 1000 keys: what progress followers (`enqueue watch`, the API's event
    /// streams) read every tick.
    pub async fn get_statuses(
        &self,
        task_ids: &[String],
    ) -> anyhow::Result<Vec<Option<CachedStatus>>> {
        let keys: Vec<String> = task_ids.iter().map(|id| status_key(id)).collect();
        let pipeline = self.client.pipeline();
        for chunk in keys.chunks(1000) {
            let _: () = pipeline.mget(chunk.to_vec()).await?;
        }
        let mut values: Vec<Option<String>> = Vec::with_capacity(keys.len());
        for reply in pipeline.try_all::<Value>().await {
            match reply.context("reading task:status")? {
                Value::Array(items) => {
                    for item in items {
                        values.push(item.convert()?);
                    }
                }
                single => values.push(single.convert()?),
            }
        }
        anyhow::ensure!(
            values.len() == keys.len(),
            "MGET returned {} values for {} keys",
            values.len(),
            keys.len()
        );
        Ok(values
            .into_iter()
            .map(|v| v.and_then(|json| serde_json::from_str(&json).ok()))
            .collect())
    }

    /// The underlying client, for the rare command not wrapped here.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// A dedicated connection for the worker's blocking pops (a blocking command
/// would stall every other command on a shared connection).
pub struct Popper {
    client: Client,
}

impl Popper {
    /// Connects a client of its own to Redis at `url`.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Ok(Popper { client: connect_client(url).await? })
    }

    /// Pops up to `max` task ids, from `queue:high_priority` if it has any,
    /// else from `queue:video_processing`, waiting up to `timeout` for one
    /// to arrive. Returns an empty list on timeout.
    pub async fn pop(&self, max: usize, timeout: Duration) -> anyhow::Result<Vec<String>> {
        let result: Result<Value, Error> = self
            .client
            .blmpop(
                timeout.as_secs_f64(),
                vec![HIGH_PRIORITY_QUEUE, VIDEO_PROCESSING_QUEUE],
                LMoveDirection::Left,
                Some(max as i64),
            )
            .await;
        let value = match result {
            Ok(value) => value,
            Err(e) if *e.kind() == ErrorKind::Timeout => return Ok(Vec::new()),
            Err(e) => return Err(e).context("popping task ids from Redis"),
        };
        // Reply: nil, or [list name, [id, ...]].
        match value {
            Value::Null => Ok(Vec::new()),
            Value::Array(mut parts) if parts.len() == 2 => {
                let ids: Vec<String> = parts.pop().unwrap_or(Value::Null).convert()?;
                Ok(ids)
            }
            other => anyhow::bail!("unexpected BLMPOP reply {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn ca() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/ca.pem")
    }

    #[test]
    fn rediss_gets_our_tls_and_redis_none() {
        let roots = tls::Roots::new(tls::REDIS_CA_CERT, Some(ca()));
        let config = redis_config("rediss://:pw@127.0.0.1:6380/2", &roots).unwrap();
        assert!(config.tls.is_some());
        assert_eq!(config.database, Some(2));
        assert_eq!(config.password.as_deref(), Some("pw"));
        let plain = tls::Roots::new(tls::REDIS_CA_CERT, None);
        assert!(redis_config("redis://127.0.0.1:6379/0", &plain).unwrap().tls.is_none());
    }

    #[test]
    fn rediss_without_usable_roots_is_refused() {
        let roots = tls::Roots::new(tls::REDIS_CA_CERT, Some(PathBuf::from("/nonexistent/ca.pem")));
        let err = redis_config("rediss://:secret@127.0.0.1:6380/0", &roots).unwrap_err();
        assert!(err.0.contains("cannot read REDIS_CA_CERT file /nonexistent/ca.pem"), "{err}");
        assert!(!err.0.contains("secret"), "{err}");
    }

    #[test]
    fn sentinel_and_cluster_urls_name_their_nodes() {
        let plain = tls::Roots::new(tls::REDIS_CA_CERT, None);
        let config =
            redis_config("redis-sentinel://:pw@127.0.0.1:1,127.0.0.1:2/vc/3", &plain).unwrap();
        assert_eq!(config.database, Some(3));
        assert_eq!(config.password.as_deref(), Some("pw"));
        match config.server {
            ServerConfig::Sentinel { hosts, service_name, password, .. } => {
                assert_eq!(service_name, "vc");
                let mut ports: Vec<u16> = hosts.iter().map(|h| h.port).collect();
                ports.sort();
                assert_eq!(ports, [1, 2]);
                assert_eq!(password, None, "sentinels have no password unless given");
            }
            other => panic!("{other:?}"),
        }
        let roots = tls::Roots::new(tls::REDIS_CA_CERT, Some(ca()));
        let config =
            redis_config("rediss-cluster://127.0.0.1:7000,127.0.0.1:7001", &roots).unwrap();
        assert!(config.tls.is_some());
        assert!(
            matches!(config.server, ServerConfig::Clustered { ref hosts, .. } if hosts.len() == 2)
        );
    }

    #[test]
    fn the_replication_history_is_read_from_info() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_replid:8f1e2d\r\nmaster_replid2:0000\r\n";
        assert_eq!(replication_history(info), Some("8f1e2d"));
        assert_eq!(replication_history("role:master\r\n"), None);
    }

    #[test]
    fn a_ca_file_with_plain_redis_is_refused() {
        let roots = tls::Roots::new(tls::REDIS_CA_CERT, Some(ca()));
        let err = redis_config("redis://127.0.0.1:6379/0", &roots).unwrap_err();
        assert!(err.0.contains("not rediss://"), "{err}");
    }
}
