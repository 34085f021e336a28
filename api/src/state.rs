//! What every handler gets: the connections, the storage, the server's
//! options. Cloned per request (an `Arc` inside).

use clap::Args;
use shared::config::Settings;
use shared::db::Pool;
use shared::downloads::sign::LinkSettings;
use shared::queue::Queue;
use shared::shutdown::Shutdown;
use shared::storage::Storage;
use std::path::PathBuf;
use std::sync::Arc;

/// The server's own settings (flags or environment).
#[derive(Args, Debug, Clone)]
pub struct ServerOptions {
    /// Refuse every state change (uploads, cancel, retry, ...; 403), for a
    /// dashboard that only watches
    #[arg(long, env = "API_READ_ONLY")]
    pub read_only: bool,
    /// Largest upload accepted, in bytes (larger: 413)
    #[arg(long, env = "API_MAX_UPLOAD_BYTES", default_value_t = 2 * 1024 * 1024 * 1024)]
    pub max_upload_bytes: u64,
    /// Requests per user and endpoint per rate-limit window (more: 429)
    #[arg(long, env = "API_RATE_LIMIT", default_value_t = 600)]
    pub rate_limit: u64,
    /// Length of a rate-limit window, in seconds
    #[arg(long, env = "API_RATE_WINDOW_SECONDS", default_value_t = 60)]
    pub rate_window_seconds: u64,
    /// Where uploads are written while they arrive (default: the system's temp dir)
    #[arg(long, env = "API_UPLOAD_DIR")]
    pub upload_dir: Option<PathBuf>,
    /// How long a dashboard login lasts, in hours
    #[arg(long, env = "API_SESSION_HOURS", default_value_t = 12)]
    pub session_hours: u64,
    /// Connections to the database
    #[arg(long, env = "API_DB_CONNECTIONS", default_value_t = 8)]
    pub db_connections: u32,
}

/// Shared by every request.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub pool: Pool,
    /// Display reads: the replica if `DATABASE_REPLICA_URL` is set.
    pub reads: shared::replica::ReadPool,
    pub queue: Queue,
    pub storage: Storage,
    pub links: LinkSettings,
    pub options: ServerOptions,
    pub upload_dir: PathBuf,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Set once at start-up; SSE streams end when it triggers.
    pub stopping: std::sync::OnceLock<Shutdown>,
    /// Cookies carry `Secure` when the public base URL is https.
    pub secure_cookies: bool,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Connects to the database, Redis and storage and prepares the upload
    /// directory. Any setting that cannot work is an error now, not at the
    /// first request.
    pub async fn connect(settings: &Settings, options: ServerOptions) -> anyhow::Result<AppState> {
        let pool =
            shared::db::connect(settings.require_database_url()?, options.db_connections).await?;
        // One query now: a wrong URL or password fails the start, not a request.
        shared::db::conn(&pool).await?;
        let reads = settings.read_pool(pool.clone(), options.db_connections)?;
        let queue = Queue::connect(&settings.redis_url).await?;
        let storage = Storage::from_url(&settings.storage_url)?;
        let links = LinkSettings::from_env()?;
        tracing::info!("{}", links.describe());
        let upload_dir = options
            .upload_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("videoclip-api-uploads"));
        tokio::fs::create_dir_all(&upload_dir).await.map_err(|e| {
            shared::BadInput::new(format!("upload dir {}: {e}", upload_dir.display()))
        })?;
        let metrics = shared::metrics::install_handle()?;
        let secure_cookies = links.base_url.starts_with("https://");
        Ok(AppState(Arc::new(Inner {
            pool,
            reads,
            queue,
            storage,
            links,
            options,
            upload_dir,
            metrics,
            stopping: std::sync::OnceLock::new(),
            secure_cookies,
        })))
    }

    /// Lets live streams end when `shutdown` triggers.
    pub fn stop_streams_on(&self, shutdown: Shutdown) {
        let _ = self.stopping.set(shutdown);
    }

    /// A connection for display reads (listings, segments, counts): the
    /// replica's if one is configured and up, else the primary's.
    pub async fn reader(&self) -> anyhow::Result<shared::replica::ReadConnection<'_>> {
        self.reads.reader().await
    }

    /// A pooled database connection.
    pub async fn conn(&self) -> anyhow::Result<shared::db::PooledConnection<'_>> {
        shared::db::conn(&self.pool).await
    }
}
