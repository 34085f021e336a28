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
//! Keys (docs/CONTRACT.md, plus `queue:epoch`; on Redis Cluster the lists
//! and the epoch carry a hash tag, see [`keys`]):
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

mod connect;
mod keys;

pub use connect::redis_config;
pub use keys::*;

use crate::models::TaskStatus;
use crate::redis_url;
use anyhow::Context;
use connect::{connect_client, connect_subscriber};
use fred::prelude::*;
use fred::types::config::Options;
use fred::types::lists::LMoveDirection;
use fred::types::ClusterHash;
use serde::{Deserialize, Serialize};
use std::time::Duration;

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

/// Shared, multiplexed Redis access for pushes, lengths and status keys.
#[derive(Clone)]
pub struct Queue {
    client: Client,
    keys: QueueKeys,
}

impl Queue {
    /// Connects to Redis at `url`.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let keys = QueueKeys::for_topology(redis_url::topology(url));
        Ok(Queue { client: connect_client(url).await?, keys })
    }

    /// The Redis names of the lists and the epoch marker here.
    pub fn keys(&self) -> QueueKeys {
        self.keys
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
                || self.keys.for_priority(priority, high_priority_threshold)
                    == self.keys.high_priority
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
                let _: () = pipeline.lpush(self.keys.high_priority, high).await?;
            } else {
                let _: () = pipeline.rpush(self.keys.high_priority, high).await?;
            }
        }
        if !normal.is_empty() {
            let _: () = pipeline.rpush(self.keys.video_processing, normal).await?;
        }
        let _: Vec<Value> = pipeline.all().await.context("pushing task ids to Redis")?;
        Ok(())
    }

    /// The list lengths and whether Redis still holds every push since the
    /// queues were last built, in two round trips (see [`QueueState`]).
    pub async fn state(&self) -> anyhow::Result<QueueState> {
        let pipeline = self.client.pipeline();
        let _: () = pipeline.llen(self.keys.high_priority).await?;
        let _: () = pipeline.llen(self.keys.video_processing).await?;
        let _: () = pipeline.get(self.keys.epoch).await?;
        let (high, normal, epoch): (u64, u64, Option<String>) =
            pipeline.all().await.context("reading queue lengths")?;
        // Keyless: sent to the master holding the queue keys (cluster mode).
        let on_queue_master = Options {
            cluster_hash: Some(ClusterHash::Custom(self.keys.slot())),
            ..Default::default()
        };
        let info: String = self
            .client
            .with_options(&on_queue_master)
            .info(Some(fred::types::InfoKind::Replication))
            .await
            .context("reading INFO replication")?;
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
            .set(self.keys.epoch, history, None, None, false)
            .await
            .context("setting queue:epoch")?;
        Ok(())
    }

    /// Writes `task:status:{task_id}` for many tasks in one pipeline, each
    /// with the 1-hour TTL.
    pub async fn set_statuses(&self, statuses: &[(String, CachedStatus)]) -> anyhow::Result<()> {
        self.write_statuses(statuses, None).await
    }

    /// Writes the first `task:status:{task_id}` of new tasks, where no key
    /// exists yet (`SET NX`): a creator that writes it late, after a worker
    /// already wrote "processing" or "completed", changes nothing.
    pub async fn set_first_statuses(
        &self,
        statuses: &[(String, CachedStatus)],
    ) -> anyhow::Result<()> {
        self.write_statuses(statuses, Some(fred::types::SetOptions::NX)).await
    }

    /// The pipeline of SETs behind [`Self::set_statuses`] and
    /// [`Self::set_first_statuses`].
    async fn write_statuses(
        &self,
        statuses: &[(String, CachedStatus)],
        options: Option<fred::types::SetOptions>,
    ) -> anyhow::Result<()> {
        let pipeline = self.client.pipeline();
        let mut any = false;
        for (task_id, status) in statuses {
            let json = serde_json::to_string(status)?;
            let _: () = pipeline
                .set(
                    status_key(task_id),
                    json,
                    Some(Expiration::EX(STATUS_TTL_SECONDS)),
                    options.clone(),
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
    /// key is missing or does not parse), read with pipelined GETs, 1000
    /// per round trip: what progress followers (`enqueue watch`, the API's
    /// event streams) read every tick. One key per command, not MGET: on
    /// Redis Cluster the keys live in different slots.
    pub async fn get_statuses(
        &self,
        task_ids: &[String],
    ) -> anyhow::Result<Vec<Option<CachedStatus>>> {
        let mut values: Vec<Option<String>> = Vec::with_capacity(task_ids.len());
        for chunk in task_ids.chunks(1000) {
            let pipeline = self.client.pipeline();
            for id in chunk {
                let _: () = pipeline.get(status_key(id)).await?;
            }
            // try_all: one reply per command, also for a chunk of one.
            for reply in pipeline.try_all::<Option<String>>().await {
                values.push(reply.context("reading task:status")?);
            }
        }
        anyhow::ensure!(
            values.len() == task_ids.len(),
            "read {} values for {} keys",
            values.len(),
            task_ids.len()
        );
        Ok(values
            .into_iter()
            .map(|v| v.and_then(|json| serde_json::from_str(&json).ok()))
            .collect())
    }

    /// Tells the schedulers that new tasks were committed, so one ticks now
    /// ([`NEW_TASKS_CHANNEL`]; best effort: call after the commit).
    pub async fn announce_new_tasks(&self) -> anyhow::Result<()> {
        let _: i64 =
            self.client.publish(NEW_TASKS_CHANNEL, "1").await.context("announcing new tasks")?;
        Ok(())
    }

    /// The underlying client, for the rare command not wrapped here.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// The scheduler's subscription to [`NEW_TASKS_CHANNEL`]: it ends the wait
/// between ticks when tasks were just committed, which takes the tick out
/// of the dispatch latency. Resubscribes after reconnections.
pub struct NewTaskSignal {
    _client: fred::clients::SubscriberClient,
    messages: tokio::sync::broadcast::Receiver<fred::types::Message>,
}

impl NewTaskSignal {
    /// Connects a subscriber of its own to Redis at `url` and subscribes.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let client = connect_subscriber(url).await?;
        let messages = client.message_rx();
        client.subscribe(NEW_TASKS_CHANNEL).await.context("subscribing to queue:new_tasks")?;
        Ok(NewTaskSignal { _client: client, messages })
    }

    /// Waits for the next announcement (returns at once if some arrived
    /// since the last call: they are all taken, so a burst is one wake-up).
    pub async fn next(&mut self) {
        use tokio::sync::broadcast::error::{RecvError, TryRecvError};
        match self.messages.try_recv() {
            Ok(_) | Err(TryRecvError::Lagged(_)) => {}
            Err(TryRecvError::Empty) => match self.messages.recv().await {
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                // The client is gone: never wake (the tick still runs).
                Err(RecvError::Closed) => std::future::pending::<()>().await,
            },
            Err(TryRecvError::Closed) => std::future::pending::<()>().await,
        }
        while matches!(self.messages.try_recv(), Ok(_) | Err(TryRecvError::Lagged(_))) {}
    }
}

/// A dedicated connection for the worker's blocking pops (a blocking command
/// would stall every other command on a shared connection).
pub struct Popper {
    client: Client,
    keys: QueueKeys,
}

impl Popper {
    /// Connects a client of its own to Redis at `url`.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let keys = QueueKeys::for_topology(redis_url::topology(url));
        Ok(Popper { client: connect_client(url).await?, keys })
    }

    /// Pops up to `max` task ids, from `queue:high_priority` if it has any,
    /// else from `queue:video_processing`, waiting up to `timeout` for one
    /// to arrive. Returns an empty list on timeout.
    pub async fn pop(&self, max: usize, timeout: Duration) -> anyhow::Result<Vec<String>> {
        let result: Result<Value, Error> = self
            .client
            .blmpop(
                timeout.as_secs_f64(),
                vec![self.keys.high_priority, self.keys.video_processing],
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

    #[test]
    fn the_replication_history_is_read_from_info() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_replid:8f1e2d\r\nmaster_replid2:0000\r\n";
        assert_eq!(replication_history(info), Some("8f1e2d"));
        assert_eq!(replication_history("role:master\r\n"), None);
    }
}
