//! Connecting to Redis: `REDIS_URL` in any of its forms
//! ([`crate::redis_url`]) to a fred client, TLS set up by us.

use crate::config::redact_url;
use crate::redis_url;
use crate::tls;
use crate::BadInput;
use anyhow::Context;
use fred::prelude::*;
use fred::types::config::TlsConnector;
use std::time::Duration;

/// The fred configuration for `url` (any form of [`redis_url`]), TLS set up by us for `rediss://`
/// (and `valkeys://`, `-cluster`, `-sentinel` forms): rustls trusting
/// `roots` ([`tls::Roots`]: `REDIS_CA_CERT`, else the system store),
/// verifying the server's certificate and name.
///
/// The URL is parsed by fred with its scheme made plaintext so fred never
/// builds a default connector of its own; the TLS connector is always ours,
/// and if it cannot be built the URL is refused ([`BadInput`]), never used
/// without TLS. A CA file given for a plaintext `redis://` URL is refused
/// as well: it means TLS was wanted.
pub fn redis_config(url: &str, roots: &tls::Roots) -> Result<Config, BadInput> {
    let shown = redact_url(url);
    let url = &redis_url::to_fred_form(url, &shown)?;
    let scheme = url.split_once("://").map(|(scheme, _)| scheme).unwrap_or_default();
    // rediss -> redis, valkeys-cluster -> valkey-cluster, ...
    let plain_scheme = ["rediss", "valkeys"].iter().find_map(|tls_scheme| {
        let rest = scheme.to_ascii_lowercase().strip_prefix(tls_scheme)?.to_string();
        Some(format!("{}{rest}", &tls_scheme[..tls_scheme.len() - 1]))
    });
    let Some(plain_scheme) = plain_scheme else {
        if let Some(file) = roots.file() {
            return Err(BadInput::new(format!(
                "{} is set ({}) but REDIS_URL {shown} is not rediss://: refusing to connect without TLS",
                roots.var(),
                file.display()
            )));
        }
        return Config::from_url(url)
            .map_err(|e| BadInput::new(format!("invalid REDIS_URL {shown}: {e}")));
    };
    let client_config = roots
        .client_config()
        .map_err(|e| BadInput::new(format!("cannot set up TLS for REDIS_URL {shown}: {e}")))?;
    let plain_url = format!("{plain_scheme}{}", &url[scheme.len()..]);
    let mut config = Config::from_url(&plain_url)
        .map_err(|e| BadInput::new(format!("invalid REDIS_URL {shown}: {e}")))?;
    config.tls = Some(TlsConnector::from(client_config).into());
    Ok(config)
}

/// Builds and connects a fred client that reconnects with backoff forever
/// (100 ms doubling to 2 s: a Sentinel failover is followed within 2 s of
/// the promotion).
/// A bad URL or TLS set-up is [`BadInput`] (see [`redis_config`]); an
/// unreachable server is reported once the first command fails.
pub(super) async fn connect_client(url: &str) -> anyhow::Result<Client> {
    let client = builder(url)?.build().context("building the Redis client")?;
    init(&client, url).await?;
    Ok(client)
}

/// Like [`connect_client`], a client for SUBSCRIBE that subscribes again
/// after every reconnection (fred's `manage_subscriptions`).
pub(super) async fn connect_subscriber(
    url: &str,
) -> anyhow::Result<fred::clients::SubscriberClient> {
    let client =
        builder(url)?.build_subscriber_client().context("building the Redis subscriber")?;
    init(&client, url).await?;
    let _resubscribe = client.manage_subscriptions();
    Ok(client)
}

/// The client settings every connection of ours uses.
fn builder(url: &str) -> anyhow::Result<Builder> {
    let config = redis_config(url, &tls::Roots::from_env(tls::REDIS_CA_CERT))?;
    let mut builder = Builder::from_config(config);
    builder
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(5);
            c.internal_command_timeout = Duration::from_secs(10);
            c.max_command_attempts = 10;
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2));
    Ok(builder)
}

/// Connects `client`; an unreachable server is [`BadInput`] naming the URL
/// (password redacted).
async fn init(client: &impl ClientLike, url: &str) -> anyhow::Result<()> {
    client.init().await.map_err(|e| {
        BadInput::new(format!(
            "cannot connect to Redis at {}: {}",
            redact_url(url),
            one_line(&e.to_string())
        ))
    })?;
    Ok(())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn ca() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/ca.pem")
    }

    #[test]
    fn rediss_gets_our_tls_and_redis_none() {
        let roots = tls::Roots::new(tls::REDIS_CA_CERT, Some(ca()));
        let config = redis_config("rediss://:pw@127.0.0.1:6380/2", &roots).unwrap();
        assert!(config.tls.is_some());
        assert_eq!(config.database, Some(2));
        assert_eq!(config.password.as_deref(), Some("pw"));
        let plain = tls::Roots::new(tls::REDIS_CA_CERT, None);
        assert!(redis_config("redis://127.0.0.1:6379/0", &plain).unwrap().tls.is_none());
    }

    #[test]
    fn rediss_without_usable_roots_is_refused() {
        let roots = tls::Roots::new(tls::REDIS_CA_CERT, Some(PathBuf::from("/nonexistent/ca.pem")));
        let err = redis_config("rediss://:secret@127.0.0.1:6380/0", &roots).unwrap_err();
        assert!(err.0.contains("cannot read REDIS_CA_CERT file /nonexistent/ca.pem"), "{err}");
        assert!(!err.0.contains("secret"), "{err}");
    }

    #[test]
    fn sentinel_and_cluster_urls_name_their_nodes() {
        let plain = tls::Roots::new(tls::REDIS_CA_CERT, None);
        let config =
            redis_config("redis-sentinel://:pw@127.0.0.1:1,127.0.0.1:2/vc/3", &plain).unwrap();
        assert_eq!(config.database, Some(3));
        assert_eq!(config.password.as_deref(), Some("pw"));
        match config.server {
            ServerConfig::Sentinel { hosts, service_name, password, .. } => {
                assert_eq!(service_name, "vc");
                let mut ports: Vec<u16> = hosts.iter().map(|h| h.port).collect();
                ports.sort();
                assert_eq!(ports, [1, 2]);
                assert_eq!(password, None, "sentinels have no password unless given");
            }
            other => panic!("{other:?}"),
        }
        let roots = tls::Roots::new(tls::REDIS_CA_CERT, Some(ca()));
        let config =
            redis_config("rediss-cluster://127.0.0.1:7000,127.0.0.1:7001", &roots).unwrap();
        assert!(config.tls.is_some());
        assert!(
            matches!(config.server, ServerConfig::Clustered { ref hosts, .. } if hosts.len() == 2)
        );
    }

    #[test]
    fn a_ca_file_with_plain_redis_is_refused() {
        let roots = tls::Roots::new(tls::REDIS_CA_CERT, Some(ca()));
        let err = redis_config("redis://127.0.0.1:6379/0", &roots).unwrap_err();
        assert!(err.0.contains("not rediss://"), "{err}");
    }
}
