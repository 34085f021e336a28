//! Database connections and migrations.
//!
//! Every binary talks to MySQL/MariaDB through one [`Pool`] of diesel-async
//! connections. The connection set-up (UTC session time zone, utf8mb4) is
//! diesel-async's; the first connection is made eagerly by [`connect`] so a
//! wrong or unreachable `DATABASE_URL` is reported at start-up, once, with the
//! server's own reason.

use crate::config::redact_url;
use crate::BadInput;
use anyhow::Context;
use diesel_async::pooled_connection::bb8;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::{AsyncConnection, AsyncMigrationHarness, AsyncMysqlConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::time::Duration;

/// A pool of async MySQL connections.
pub type Pool = bb8::Pool<AsyncMysqlConnection>;
/// A connection borrowed from the [`Pool`].
pub type PooledConnection<'a> = bb8::PooledConnection<'a, AsyncMysqlConnection>;

/// The project's migrations, compiled into every binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// How long the first connection may take before the database counts as
/// unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens one connection to check the URL, then returns a pool of at most
/// `max_size` connections. An unreachable server or bad URL is [`BadInput`]
/// with the server's reason and the URL (password redacted).
pub async fn connect(url: &str, max_size: u32) -> anyhow::Result<Pool> {
    establish(url).await?;
    let mut config = ManagerConfig::default();
    config.custom_setup = Box::new(|url| Box::pin(establish_read_committed(url.to_string())));
    let manager =
        AsyncDieselConnectionManager::<AsyncMysqlConnection>::new_with_config(url, config);
    let pool = bb8::Pool::builder()
        .max_size(max_size)
        .connection_timeout(Duration::from_secs(30))
        .build(manager)
        .await
        .with_context(|| format!("cannot build a connection pool for {}", redact_url(url)))?;
    Ok(pool)
}

/// Opens a pooled connection in READ COMMITTED isolation. The queue's
/// statements lock rows by primary key or with SKIP LOCKED; REPEATABLE READ's
/// gap and next-key locks would only add deadlocks between claims,
/// completions and the reaper (seen at 128 concurrent tasks).
async fn establish_read_committed(url: String) -> diesel::ConnectionResult<AsyncMysqlConnection> {
    let mut conn = AsyncMysqlConnection::establish(&url).await?;
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"),
        &mut conn,
    )
    .await
    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// Opens a single connection, with [`BadInput`] as the error when the
/// database cannot be reached with this URL.
pub async fn establish(url: &str) -> anyhow::Result<AsyncMysqlConnection> {
    if url.trim().is_empty() {
        return Err(BadInput::new(
            "DATABASE_URL is not set (flag --database-url, the environment or .env)",
        )
        .into());
    }
    match tokio::time::timeout(CONNECT_TIMEOUT, AsyncMysqlConnection::establish(url)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(err)) => Err(BadInput::new(format!(
            "cannot connect to the database at {}: {}",
            redact_url(url),
            one_line(&err.to_string())
        ))
        .into()),
        Err(_) => Err(BadInput::new(format!(
            "cannot connect to the database at {}: no answer within {}s",
            redact_url(url),
            CONNECT_TIMEOUT.as_secs()
        ))
        .into()),
    }
}

/// Applies every pending migration and returns the versions it applied
/// (empty when the schema was already current).
pub async fn run_migrations(url: &str) -> anyhow::Result<Vec<String>> {
    let conn = establish(url).await?;
    let applied = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let mut harness = AsyncMigrationHarness::new(conn);
        let versions = harness
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("applying migrations")?;
        Ok(versions.iter().map(|v| v.to_string()).collect())
    })
    .await
    .context("migration thread")??;
    Ok(applied)
}

/// Borrows a connection from the pool, with context for the error.
pub async fn conn(pool: &Pool) -> anyhow::Result<PooledConnection<'_>> {
    pool.get().await.context("no database connection available")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
