//! Prometheus metrics: the recorder every binary installs, and its
//! `/metrics` endpoint.
//!
//! Code records with the `metrics` crate's macros (`counter!`, `gauge!`,
//! `histogram!`); names start with `videoclip_`. The endpoint is the
//! exporter crate's own HTTP listener (`metrics-exporter-prometheus`'s
//! `http-listener`), which answers any path with the exposition text.

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusBuilder;

/// Histogram buckets (seconds, or ratios for the real-time factor).
const BUCKETS: &[f64] =
    &[0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0];

/// Installs the global recorder and, if `addr` is given (e.g.
/// `127.0.0.1:9464`), serves it at `http://addr/metrics`. Returns the
/// address it listens on. An address that does not resolve or cannot be
/// bound is [`crate::BadInput`].
pub async fn serve(addr: Option<&str>) -> anyhow::Result<Option<std::net::SocketAddr>> {
    let builder = PrometheusBuilder::new().set_buckets(BUCKETS).context("metrics buckets")?;
    let Some(addr) = addr else {
        builder.install_recorder().context("installing the metrics recorder")?;
        return Ok(None);
    };
    let bad =
        |why: String| crate::BadInput::new(format!("cannot listen on {addr} for metrics: {why}"));
    let socket = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("the name has no address".into()))?;
    builder.with_http_listener(socket).install().map_err(|e| bad(e.to_string()))?;
    tracing::info!(%socket, "serving metrics at http://{socket}/metrics");
    Ok(Some(socket))
}

/// Installs the global recorder and returns its handle, for a program
/// that serves `/metrics` on its own HTTP server (the API) by rendering
/// the handle.
pub fn install_handle() -> anyhow::Result<metrics_exporter_prometheus::PrometheusHandle> {
    PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .context("metrics buckets")?
        .install_recorder()
        .context("installing the metrics recorder")
}
