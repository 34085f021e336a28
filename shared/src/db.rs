//! Database connections and migrations.
//!
//! Every binary talks to MySQL/MariaDB through one [`Pool`] of diesel-async
//! connections. The connection set-up (UTC session time zone, utf8mb4) is
//! diesel-async's; the first connection is made eagerly by [`connect`] so a
//! wrong or unreachable `DATABASE_URL` is reported at start-up, once, with the
//! server's own reason.
//!
//! TLS: `?require_ssl=true` in `DATABASE_URL` (mysql_async's own parameter;
//! the seed's `ssl_mode=REQUIRED`) makes every connection TLS or nothing: a
//! server without TLS is refused ("server does not have this capability"),
//! never used in plaintext. The server's certificate and name are verified
//! against `DATABASE_CA_CERT` (a PEM file) if set, else the system store
//! ([`crate::tls::Roots`]); mysql_async's built-in bundle is not used.
//! `verify_ca=false` / `verify_identity=false` in the URL still loosen that,
//! as mysql_async documents. A TLS session is never swapped for the server's
//! unix socket (`prefer_socket` is off with TLS). `DATABASE_CA_CERT` without
//! `require_ssl=true` is refused: it means TLS was wanted.
//!
//! How: diesel-async's `establish(url)` can only take a URL and mysql_async
//! has no URL parameter for a CA file, so [`mysql_opts`] builds mysql_async
//! `Opts` from the URL (plus `SslOpts` with the roots, and the two options
//! diesel-async's `establish` sets: no statement cache of mysql_async's own,
//! `CLIENT_FOUND_ROWS`), and [`open`] wraps the `mysql_async::Conn` with
//! diesel-async's public `AsyncMysqlConnection::try_from`, which runs the same
//! set-up queries. One path for TLS and plaintext alike.

use crate::config::redact_url;
use crate::tls;
use crate::BadInput;
use anyhow::Context;
use diesel_async::pooled_connection::bb8;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::{AsyncMigrationHarness, AsyncMysqlConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use mysql_async::{Opts, OptsBuilder};
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
    let opts = mysql_opts(url, &tls::Roots::from_env(tls::DATABASE_CA_CERT))?;
    establish_with(url, opts.clone()).await?;
    let pool = bb8::Pool::builder()
        .max_size(max_size)
        .connection_timeout(Duration::from_secs(30))
        .build(manager(url, opts))
        .await
        .with_context(|| format!("cannot build a connection pool for {}", redact_url(url)))?;
    Ok(pool)
}

/// A pool for `url` that opens no connection until one is asked for (so a
/// server that is down now is not an error now): for the replica, whose
/// absence degrades reads instead of failing a start. A bad URL is
/// [`BadInput`]. Waits at most 2 s for a connection.
pub fn connect_lazy(url: &str, max_size: u32) -> Result<Pool, BadInput> {
    let opts = mysql_opts(url, &tls::Roots::from_env(tls::DATABASE_CA_CERT))?;
    Ok(bb8::Pool::builder()
        .max_size(max_size)
        .min_idle(Some(0))
        .connection_timeout(Duration::from_secs(2))
        .build_unchecked(manager(url, opts)))
}

/// The pool's connection manager: every connection opened from `opts` in
/// READ COMMITTED ([`establish_read_committed`]).
fn manager(url: &str, opts: Opts) -> AsyncDieselConnectionManager<AsyncMysqlConnection> {
    let mut config = ManagerConfig::default();
    config.custom_setup = Box::new(move |_| Box::pin(establish_read_committed(opts.clone())));
    AsyncDieselConnectionManager::<AsyncMysqlConnection>::new_with_config(url, config)
}

/// Opens a pooled connection in READ COMMITTED isolation. The queue's
/// statements lock rows by primary key or with SKIP LOCKED; REPEATABLE READ's
/// gap and next-key locks would only add deadlocks between claims,
/// completions and the reaper (seen at 128 concurrent tasks).
async fn establish_read_committed(opts: Opts) -> diesel::ConnectionResult<AsyncMysqlConnection> {
    let mut conn = open(opts).await?;
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"),
        &mut conn,
    )
    .await
    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// The mysql_async options for `url`, with TLS as the module doc says
/// (roots from `roots` when the URL has `require_ssl=true`). A URL it cannot
/// parse, a CA file without `require_ssl=true`, or roots that cannot be
/// loaded are [`BadInput`].
pub fn mysql_opts(url: &str, roots: &tls::Roots) -> Result<Opts, BadInput> {
    if url.trim().is_empty() {
        return Err(BadInput::new(
            "DATABASE_URL is not set (flag --database-url, the environment or .env)",
        ));
    }
    let shown = redact_url(url);
    let opts = Opts::from_url(url)
        .map_err(|e| BadInput::new(format!("invalid DATABASE_URL {shown}: {e}")))?;
    let ssl = opts.ssl_opts().cloned();
    let builder = OptsBuilder::from_opts(opts).stmt_cache_size(0).client_found_rows(true);
    let builder = match ssl {
        None => {
            if let Some(file) = roots.file() {
                return Err(BadInput::new(format!(
                    "{} is set ({}) but DATABASE_URL {shown} has no require_ssl=true: refusing to connect without TLS",
                    roots.var(),
                    file.display()
                )));
            }
            builder
        }
        Some(ssl) => {
            let certs = roots.certs().map_err(|e| {
                BadInput::new(format!("cannot set up TLS for DATABASE_URL {shown}: {e}"))
            })?;
            // DER buffers: mysql_async reads them as such when they hold no PEM.
            let certs = certs.into_iter().map(|cert| cert.to_vec().into()).collect();
            let ssl = ssl.with_root_certs(certs).with_disable_built_in_roots(true);
            builder.ssl_opts(ssl).prefer_socket(false)
        }
    };
    Ok(builder.into())
}

/// Connects with `opts` and wraps the connection for diesel-async (whose
/// `try_from` runs its session set-up queries).
async fn open(opts: Opts) -> diesel::ConnectionResult<AsyncMysqlConnection> {
    let conn = mysql_async::Conn::new(opts)
        .await
        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
    AsyncMysqlConnection::try_from(conn).await
}

/// Opens a single connection, with [`BadInput`] as the error when the
/// database cannot be reached with this URL (or its TLS cannot be set up).
pub async fn establish(url: &str) -> anyhow::Result<AsyncMysqlConnection> {
    let opts = mysql_opts(url, &tls::Roots::from_env(tls::DATABASE_CA_CERT))?;
    establish_with(url, opts).await
}

async fn establish_with(url: &str, opts: Opts) -> anyhow::Result<AsyncMysqlConnection> {
    match tokio::time::timeout(CONNECT_TIMEOUT, open(opts)).await {
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

pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn ca() -> Option<PathBuf> {
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/ca.pem"))
    }

    #[test]
    fn require_ssl_gets_the_ca_and_no_socket() {
        let roots = tls::Roots::new(tls::DATABASE_CA_CERT, ca());
        let opts =
            mysql_opts("mysql://root:pw@127.0.0.1:3306/db?require_ssl=true", &roots).unwrap();
        let ssl = opts.ssl_opts().expect("TLS is on");
        assert_eq!(ssl.root_certs().len(), 1);
        assert!(ssl.disable_built_in_roots());
        assert!(!ssl.accept_invalid_certs() && !ssl.skip_domain_validation());
        assert!(!opts.prefer_socket());
        assert_eq!(opts.stmt_cache_size(), 0);
        assert!(opts.client_found_rows());
    }

    #[test]
    fn a_ca_file_without_require_ssl_is_refused() {
        let roots = tls::Roots::new(tls::DATABASE_CA_CERT, ca());
        let err = mysql_opts("mysql://root:secret@127.0.0.1:3306/db", &roots).unwrap_err();
        assert!(err.0.contains("has no require_ssl=true"), "{err}");
        assert!(!err.0.contains("secret"), "{err}");
        let plain = tls::Roots::new(tls::DATABASE_CA_CERT, None);
        assert!(mysql_opts("mysql://root@127.0.0.1:3306/db", &plain).unwrap().ssl_opts().is_none());
    }

    #[test]
    fn an_unreadable_ca_file_is_bad_input() {
        let roots =
            tls::Roots::new(tls::DATABASE_CA_CERT, Some(PathBuf::from("/nonexistent/ca.pem")));
        let err =
            mysql_opts("mysql://root@127.0.0.1:3306/db?require_ssl=true", &roots).unwrap_err();
        assert!(err.0.contains("cannot read DATABASE_CA_CERT file /nonexistent/ca.pem"), "{err}");
    }
}
