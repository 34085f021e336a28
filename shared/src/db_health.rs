//! The database's own health, as the seed's section 8.3 asks to watch it:
//! connections used of the maximum, queries and transactions, slow
//! queries, InnoDB row-lock waits, and the replica's lag and state. Read
//! from `SHOW GLOBAL STATUS` (one statement) by the scheduler, which
//! exports it as Prometheus metrics (scheduler/src/gauges.rs).
//!
//! The server's counters are cumulative since its start; Prometheus turns
//! them into rates (`rate(videoclip_db_queries_total[1m])` is QPS). CPU,
//! memory and disk of the database machine are node_exporter's job, not
//! this one's.

use crate::db::PooledConnection;
use anyhow::Context;
use diesel::sql_types::Text;
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use std::collections::HashMap;

/// One sample of the server's status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatabaseHealth {
    /// `Threads_connected`.
    pub connections: u64,
    /// `@@max_connections`.
    pub max_connections: u64,
    /// `Questions`: statements sent by clients.
    pub queries: u64,
    /// `Com_commit` + `Com_rollback`.
    pub transactions: u64,
    /// `Slow_queries` (longer than `long_query_time`).
    pub slow_queries: u64,
    /// `Innodb_row_lock_waits`.
    pub row_lock_waits: u64,
    /// `Innodb_row_lock_time`, milliseconds spent waiting for row locks.
    pub row_lock_wait_ms: u64,
}

const STATUS_NAMES: &[&str] = &[
    "Threads_connected",
    "Questions",
    "Com_commit",
    "Com_rollback",
    "Slow_queries",
    "Innodb_row_lock_waits",
    "Innodb_row_lock_time",
];

impl DatabaseHealth {
    /// Reads a sample on `conn` (two statements, no table touched).
    pub async fn read(conn: &mut PooledConnection<'_>) -> anyhow::Result<DatabaseHealth> {
        #[derive(QueryableByName)]
        struct Status {
            #[diesel(sql_type = Text, column_name = "Variable_name")]
            name: String,
            #[diesel(sql_type = Text, column_name = "Value")]
            value: String,
        }
        let names = STATUS_NAMES.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(",");
        let rows: Vec<Status> =
            diesel::sql_query(format!("SHOW GLOBAL STATUS WHERE Variable_name IN ({names})"))
                .load(conn)
                .await
                .context("SHOW GLOBAL STATUS")?;
        let status: HashMap<String, u64> =
            rows.into_iter().map(|r| (r.name, r.value.parse().unwrap_or(0))).collect();
        let get = |name: &str| status.get(name).copied().unwrap_or(0);
        #[derive(QueryableByName)]
        struct Max {
            #[diesel(sql_type = diesel::sql_types::Unsigned<diesel::sql_types::BigInt>)]
            max_connections: u64,
        }
        let max: Max = diesel::sql_query("SELECT @@max_connections AS max_connections")
            .get_result(conn)
            .await
            .context("reading max_connections")?;
        Ok(DatabaseHealth {
            connections: get("Threads_connected"),
            max_connections: max.max_connections,
            queries: get("Questions"),
            transactions: get("Com_commit") + get("Com_rollback"),
            slow_queries: get("Slow_queries"),
            row_lock_waits: get("Innodb_row_lock_waits"),
            row_lock_wait_ms: get("Innodb_row_lock_time"),
        })
    }
}
