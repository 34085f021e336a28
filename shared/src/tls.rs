//! TLS for Redis (`rediss://`) and MySQL/MariaDB (`?require_ssl=true`).
//!
//! Which servers are trusted is the same for both: the PEM file named by a
//! CA variable ([`REDIS_CA_CERT`], [`DATABASE_CA_CERT`]) when it is set,
//! else the system store (`SSL_CERT_FILE` / `SSL_CERT_DIR` when set, else
//! the platform's bundle, as `rustls-native-certs` finds it). Nothing else:
//! no built-in root bundle, no "accept anything" default.
//!
//! Whatever cannot be set up (a CA file that is missing or holds no
//! certificate, an empty system store) is [`BadInput`]: the caller refuses
//! to connect. There is no fallback to plaintext anywhere.
//!
//! A CA variable set for a plaintext URL (`redis://`, or a `DATABASE_URL`
//! without `require_ssl=true`) is refused too: it says TLS was meant, and
//! connecting in plaintext would hide the mistake.
//!
//! Crypto is rustls with *ring*, the one provider in the build, named
//! explicitly so no process-wide default has to be installed.

use crate::BadInput;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// PEM file with the CA(s) that signed the Redis server's certificate.
pub const REDIS_CA_CERT: &str = "REDIS_CA_CERT";
/// PEM file with the CA(s) that signed the database server's certificate.
pub const DATABASE_CA_CERT: &str = "DATABASE_CA_CERT";

/// Where the trusted roots for one server come from: the CA file named by
/// a variable, or the system store.
#[derive(Debug, Clone)]
pub struct Roots {
    var: &'static str,
    file: Option<PathBuf>,
}

impl Roots {
    /// The roots for the CA variable `var` ([`REDIS_CA_CERT`],
    /// [`DATABASE_CA_CERT`]): its file if it is set and not blank, else the
    /// system store.
    pub fn from_env(var: &'static str) -> Roots {
        let file = std::env::var_os(var)
            .filter(|v| !v.to_string_lossy().trim().is_empty())
            .map(PathBuf::from);
        Roots { var, file }
    }

    /// The roots in `file` (named by `var` in messages), or the system store.
    pub fn new(var: &'static str, file: Option<PathBuf>) -> Roots {
        Roots { var, file }
    }

    /// The CA variable these roots come from.
    pub fn var(&self) -> &'static str {
        self.var
    }

    /// The CA file, if one is set.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The trusted certificates: every one in the CA file (none, or an
    /// unreadable file, is an error), else the system store's.
    pub fn certs(&self) -> Result<Vec<CertificateDer<'static>>, BadInput> {
        match &self.file {
            Some(path) => ca_file_certs(self.var, path),
            None => system_certs(),
        }
    }

    /// A rustls client configuration that trusts [`Roots::certs`] and
    /// verifies the server's certificate and name (fred's `rediss://`).
    pub fn client_config(&self) -> Result<ClientConfig, BadInput> {
        let var = self.var;
        let mut store = RootCertStore::empty();
        let certs = self.certs()?;
        if self.file.is_some() {
            for cert in certs {
                store
                    .add(cert)
                    .map_err(|e| BadInput::new(format!("{var}: unusable CA certificate: {e}")))?;
            }
        } else {
            let (_, ignored) = store.add_parsable_certificates(certs);
            if ignored > 0 {
                tracing::warn!("ignored {ignored} unparsable certificate(s) in the system store");
            }
            if store.is_empty() {
                return Err(BadInput::new("no usable root certificate in the system store"));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| BadInput::new(format!("cannot set up TLS: {e}")))?
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(config)
    }
}

/// Every certificate in the PEM file `path` (named by `var`); none is an
/// error.
fn ca_file_certs(var: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, BadInput> {
    let shown = path.display();
    let data = std::fs::read(path)
        .map_err(|e| BadInput::new(format!("cannot read {var} file {shown}: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BadInput::new(format!("{var} file {shown} is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(BadInput::new(format!("{var} file {shown} holds no PEM certificate")));
    }
    Ok(certs)
}

/// The system store, `SSL_CERT_FILE` / `SSL_CERT_DIR` honoured. Unreadable
/// entries are logged and skipped; no certificate at all is an error.
fn system_certs() -> Result<Vec<CertificateDer<'static>>, BadInput> {
    let loaded = rustls_native_certs::load_native_certs();
    if loaded.certs.is_empty() {
        let why = loaded.errors.first().map(|e| format!(": {e}")).unwrap_or_default();
        return Err(BadInput::new(format!(
            "no trusted root certificate in the system store (SSL_CERT_FILE, SSL_CERT_DIR or the platform's){}",
            one_line(&why)
        )));
    }
    for err in &loaded.errors {
        tracing::warn!(
            "skipping part of the system certificate store: {}",
            one_line(&err.to_string())
        );
    }
    Ok(loaded.certs)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed CA certificate (only parsing is tested here; the
    /// handshakes are in enqueue-cli/tests/tls.rs).
    const CA_PEM: &str = include_str!("../testdata/ca.pem");

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("shared-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_ca_file_is_read_and_trusted() {
        let roots = Roots::new("X_CA", Some(write("ca.pem", CA_PEM)));
        assert_eq!(roots.certs().unwrap().len(), 1);
        roots.client_config().unwrap();
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_bad_input() {
        let missing =
            Roots::new("X_CA", Some(std::env::temp_dir().join("no-such-dir-shared-tls/ca.pem")));
        let err = missing.client_config().unwrap_err();
        assert!(err.0.starts_with("cannot read X_CA file"), "{err}");
        let empty = Roots::new("X_CA", Some(write("empty.pem", "not a certificate\n")));
        let err = empty.client_config().unwrap_err();
        assert!(err.0.contains("holds no PEM certificate"), "{err}");
        assert!(!err.0.contains('\n'));
    }
}
