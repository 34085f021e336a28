//! Reads that may be served by a replica (`DATABASE_REPLICA_URL`), and the
//! type that keeps queue decisions off it.
//!
//! A replica lags its primary by up to seconds, more while replication is
//! stopped. That is fine for what people look at (task listings, segment
//! lists, the counts of `enqueue queues` and the dashboard), and wrong for
//! anything the queue protocol decides on: a claim, a lease check, the
//! finisher's locked reads and the scheduler's selects must see the
//! primary's latest commit, or a task could run twice or be lost.
//!
//! The rule is enforced by types. The protocol's functions take the
//! primary's connection (`&mut PooledConnection` of [`crate::db::Pool`]).
//! Display reads take a [`ReadConnection`], which only a [`ReadPool`] hands
//! out, and which does not give its inner connection to code outside this
//! crate: so a replica connection cannot reach a claim, and a listing can
//! be moved to the replica only by changing its signature here.
//!
//! A replica that is down, or does not answer within [`REPLICA_WAIT`],
//! degrades reads to the primary with a warning (at most one per minute per
//! process); a read never fails because of the replica.

use crate::config::redact_url;
use crate::db::{Pool, PooledConnection};
use crate::BadInput;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a read waits for a replica connection before using the primary.
pub const REPLICA_WAIT: Duration = Duration::from_secs(2);

/// Where a [`ReadConnection`] reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadSource {
    Replica,
    /// No replica configured, or the replica is unreachable.
    Primary,
}

/// The primary and, if configured, a replica, for display reads.
#[derive(Clone)]
pub struct ReadPool {
    primary: Pool,
    replica: Option<(Pool, String)>,
    last_warning: std::sync::Arc<Mutex<Option<Instant>>>,
}

/// A connection for display reads (module doc): from the replica, or from
/// the primary when there is none or it is down.
pub struct ReadConnection<'a> {
    conn: PooledConnection<'a>,
    /// Where this connection reads from.
    pub source: ReadSource,
}

impl<'a> ReadConnection<'a> {
    /// The inner connection, for the display reads of this crate only.
    pub(crate) fn connection(&mut self) -> &mut PooledConnection<'a> {
        &mut self.conn
    }
}

/// Replication state of the replica, from `SHOW SLAVE STATUS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaLag {
    /// `Seconds_Behind_Master`: `None` while replication is stopped.
    pub seconds: Option<i64>,
    /// Both replication threads are running.
    pub running: bool,
}

impl ReadPool {
    /// Display reads on the primary only.
    pub fn primary_only(primary: Pool) -> ReadPool {
        ReadPool { primary, replica: None, last_warning: Default::default() }
    }

    /// Display reads on the replica at `replica_url` (if given), the primary
    /// as fallback. The replica's URL is checked now ([`BadInput`] if it
    /// cannot be used); its server is not: a replica that is down at start
    /// degrades to the primary like one that goes away later.
    pub fn new(
        primary: Pool,
        replica_url: Option<&str>,
        max_size: u32,
    ) -> Result<ReadPool, BadInput> {
        let replica = match replica_url.filter(|u| !u.trim().is_empty()) {
            Some(url) => Some((crate::db::connect_lazy(url, max_size)?, redact_url(url))),
            None => None,
        };
        Ok(ReadPool { primary, replica, last_warning: Default::default() })
    }

    /// True when a replica is configured.
    pub fn has_replica(&self) -> bool {
        self.replica.is_some()
    }

    /// A connection for display reads: the replica's if one is configured and
    /// answers within [`REPLICA_WAIT`], else the primary's (with a warning).
    pub async fn reader(&self) -> anyhow::Result<ReadConnection<'_>> {
        if let Some((replica, shown)) = &self.replica {
            match tokio::time::timeout(REPLICA_WAIT, replica.get()).await {
                Ok(Ok(conn)) => return Ok(ReadConnection { conn, source: ReadSource::Replica }),
                Ok(Err(e)) => self.warn(shown, &e.to_string()),
                Err(_) => self.warn(shown, &format!("no connection within {REPLICA_WAIT:?}")),
            }
        }
        let conn = crate::db::conn(&self.primary).await?;
        Ok(ReadConnection { conn, source: ReadSource::Primary })
    }

    /// The replica's replication state, `None` without a replica; an
    /// unreachable replica is an error.
    pub async fn replica_lag(&self) -> anyhow::Result<Option<ReplicaLag>> {
        #[derive(QueryableByName)]
        struct Status {
            #[diesel(sql_type = Nullable<BigInt>, column_name = "Seconds_Behind_Master")]
            seconds: Option<i64>,
            #[diesel(sql_type = Text, column_name = "Slave_IO_Running")]
            io: String,
            #[diesel(sql_type = Text, column_name = "Slave_SQL_Running")]
            sql: String,
        }
        let Some((replica, shown)) = &self.replica else { return Ok(None) };
        let mut conn = tokio::time::timeout(REPLICA_WAIT, replica.get())
            .await
            .map_err(|_| anyhow::anyhow!("replica {shown}: no connection within {REPLICA_WAIT:?}"))?
            .map_err(|e| {
                anyhow::anyhow!("replica {shown}: {}", crate::db::one_line(&e.to_string()))
            })?;
        let rows: Vec<Status> = diesel::sql_query("SHOW SLAVE STATUS")
            .load(&mut *conn)
            .await
            .map_err(|e| anyhow::anyhow!("replica {shown}: SHOW SLAVE STATUS: {e}"))?;
        Ok(Some(match rows.into_iter().next() {
            Some(s) => ReplicaLag { seconds: s.seconds, running: s.io == "Yes" && s.sql == "Yes" },
            None => ReplicaLag { seconds: None, running: false },
        }))
    }

    fn warn(&self, shown: &str, reason: &str) {
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| at.elapsed() < Duration::from_secs(60)) {
            return;
        }
        *last = Some(Instant::now());
        tracing::warn!(
            "replica {shown} unavailable ({}): reading from the primary",
            crate::db::one_line(reason)
        );
    }
}
