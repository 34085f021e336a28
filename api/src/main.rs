//! `api`: the HTTP front door. One server for two audiences:
//!
//! - `/api/v1/...`: a versioned JSON API for the systems that upload
//!   videos and follow their tasks (bearer tokens from `enqueue token
//!   create`), documented by `/api/v1/openapi.json`;
//! - `/`: the operators' dashboard, server-rendered HTML with a little
//!   JavaScript, logged in with a token once and then by session cookie.
//!
//! Both are thin: every query and state change is `shared`'s, the same
//! code the `enqueue` CLI runs, so the three never disagree. The server
//! keeps no state of its own besides sessions and rate-limit counters in
//! Redis: any number can run behind a load balancer.
//!
//! Map: `state` (what every handler gets), `error` (one JSON error shape),
//! `auth` (tokens, sessions, CSRF, rate limits), `audit` (operation_logs),
//! `routes/` (the JSON API, one file per resource), `dashboard/` (HTML).

mod audit;
mod auth;
mod dashboard;
mod error;
mod routes;
mod state;

use clap::Parser;
use shared::config::{load_dotenv, Settings};
use std::net::SocketAddr;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "api", version, about = "HTTP API and dashboard of the video-clipping queue")]
pub struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(flatten)]
    options: state::ServerOptions,
    /// Address to listen on
    #[arg(long, env = "API_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
}

fn main() -> ExitCode {
    load_dotenv();
    let cli = Cli::parse();
    shared::logging::init(cli.settings.log_format, "info");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = shared::exit_code(&err);
            tracing::error!("api stopped: {}", shared::one_line(&err));
            ExitCode::from(code)
        }
    }
}

/// Connects everything, then serves until SIGTERM or Ctrl-C, letting
/// requests in flight finish (SSE streams end at once).
async fn run(cli: Cli) -> anyhow::Result<()> {
    tracing::info!("starting: {} listen={}", cli.settings.describe(), cli.listen);
    let state = state::AppState::connect(&cli.settings, cli.options).await?;
    let listener = tokio::net::TcpListener::bind(&cli.listen)
        .await
        .map_err(|e| shared::BadInput::new(format!("cannot listen on {}: {e}", cli.listen)))?;
    let local = listener.local_addr()?;
    // Scripts wait for this line (it carries the real port for :0).
    tracing::info!("listening on http://{local}");
    eprintln!("api listening on http://{local}");
    let (shutdown, _trigger) = shared::shutdown::Shutdown::on_signals();
    state.stop_streams_on(shutdown.clone());
    let app = routes::router(state);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            let mut shutdown = shutdown;
            shutdown.wait().await
        })
        .await?;
    tracing::info!("stopped");
    Ok(())
}
