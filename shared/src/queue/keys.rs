//! The names of the queue's keys, and why they differ on Redis Cluster.
//!
//! The seed's names (`queue:high_priority`, `queue:video_processing`) are
//! used on a single server and behind Sentinel. Redis Cluster refuses a
//! command over keys in different hash slots (CROSSSLOT), and the workers'
//! `BLMPOP` takes both lists at once: that is what gives strict priority in
//! one round trip. So in cluster mode the two lists and `queue:epoch` carry
//! the hash tag `{vc}` (`{vc}queue:high_priority`...), which puts them in one
//! slot, on one master. Everything else (`task:status:*`, caches, rate
//! limits, sessions) keeps its name and spreads over the cluster; each of
//! those commands touches one key.
//!
//! The seed's names stay the logical names everywhere a queue is shown
//! (`enqueue queues`, the API, metrics labels), whatever the deployment.

use crate::redis_url::Topology;

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
/// Pub/sub channel on which whoever commits new tasks tells the
/// schedulers to tick now instead of at their next tick (a hint: a lost
/// message only delays the task to the next tick).
pub const NEW_TASKS_CHANNEL: &str = "queue:new_tasks";
/// Lifetime of a `task:status:*` key.
pub const STATUS_TTL_SECONDS: i64 = 3600;

/// The status cache key of a task.
pub fn status_key(task_id: &str) -> String {
    format!("task:status:{task_id}")
}

/// The Redis names of the two lists and the epoch marker in one deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueKeys {
    pub high_priority: &'static str,
    pub video_processing: &'static str,
    pub epoch: &'static str,
}

impl QueueKeys {
    /// The seed's names: a single server, or a master behind Sentinel.
    pub const SEED: QueueKeys = QueueKeys {
        high_priority: HIGH_PRIORITY_QUEUE,
        video_processing: VIDEO_PROCESSING_QUEUE,
        epoch: EPOCH_KEY,
    };

    /// Redis Cluster: the same names behind the hash tag `{vc}` (module doc).
    pub const CLUSTER: QueueKeys = QueueKeys {
        high_priority: "{vc}queue:high_priority",
        video_processing: "{vc}queue:video_processing",
        epoch: "{vc}queue:epoch",
    };

    /// The names used on a deployment of this topology.
    pub fn for_topology(topology: Topology) -> QueueKeys {
        match topology {
            Topology::Cluster => QueueKeys::CLUSTER,
            Topology::Single | Topology::Sentinel => QueueKeys::SEED,
        }
    }

    /// The list a task of this priority goes to.
    pub fn for_priority(&self, priority: i8, high_priority_threshold: i8) -> &'static str {
        if priority <= high_priority_threshold {
            self.high_priority
        } else {
            self.video_processing
        }
    }

    /// The hash slot every key here lives in (one slot in cluster mode), for
    /// routing a keyless command (`INFO`) to the master that holds them.
    pub fn slot(&self) -> u16 {
        fred::util::redis_keyslot(self.epoch.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_keys_share_one_slot_and_keep_the_seed_names() {
        let keys = QueueKeys::CLUSTER;
        let slot = |k: &str| fred::util::redis_keyslot(k.as_bytes());
        assert_eq!(slot(keys.high_priority), slot(keys.video_processing));
        assert_eq!(slot(keys.high_priority), slot(keys.epoch));
        assert!(keys.high_priority.ends_with(HIGH_PRIORITY_QUEUE));
        assert_ne!(slot(HIGH_PRIORITY_QUEUE), slot(VIDEO_PROCESSING_QUEUE), "why the tag");
        assert_eq!(QueueKeys::for_topology(Topology::Sentinel), QueueKeys::SEED);
        assert_eq!(QueueKeys::SEED.for_priority(3, 3), HIGH_PRIORITY_QUEUE);
        assert_eq!(QueueKeys::CLUSTER.for_priority(4, 3), "{vc}queue:video_processing");
    }
}
