//! Prometheus metrics: the recorder every binary installs, and a tiny
//! `/metrics` endpoint to scrape it.
//!
//! Code records with the `metrics` crate's macros (`counter!`, `gauge!`,
//! `histogram!`); names start with `videoclip_`. The endpoint is a few
//! lines of plain HTTP/1.1 over tokio rather than a web framework: it
//! answers `GET /metrics` and nothing else.

use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Histogram buckets (seconds, or ratios for the real-time factor).
const BUCKETS: &[f64] =
    &[0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0];

/// Installs the global recorder and, if `addr` is given (e.g.
/// `127.0.0.1:9464`), serves it at `http://addr/metrics`. Returns the bound
/// address (useful with port 0).
pub async fn serve(addr: Option<&str>) -> anyhow::Result<Option<std::net::SocketAddr>> {
    let handle = PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .context("metrics buckets")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    let Some(addr) = addr else { return Ok(None) };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| crate::BadInput::new(format!("cannot listen on {addr} for metrics: {e}")))?;
    let local = listener.local_addr()?;
    tokio::spawn(accept_loop(listener, handle));
    tracing::info!(%local, "serving metrics at http://{local}/metrics");
    Ok(Some(local))
}

async fn accept_loop(listener: TcpListener, handle: PrometheusHandle) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { continue };
        let handle = handle.clone();
        tokio::spawn(async move {
            let mut request = vec![0u8; 2048];
            let n = match tokio::time::timeout(
                std::time::Duration::from_secs(5),
                stream.read(&mut request),
            )
            .await
            {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let line = String::from_utf8_lossy(&request[..n]);
            let ok = line.starts_with("GET /metrics ") || line.starts_with("GET /metrics?");
            let (status, body) = if ok {
                ("200 OK", handle.render())
            } else {
                ("404 Not Found", "try /metrics\n".to_string())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
