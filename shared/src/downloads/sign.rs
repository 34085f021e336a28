//! Signed download links for `file://` storage: HMAC-SHA256 over the
//! download id and the link's expiry, keyed by `DOWNLOAD_SIGNING_KEY`.
//!
//! A link is `{PUBLIC_BASE_URL}/api/v1/downloads/{download_id}/file?expires=UNIX&sig=HEX`,
//! the path the HTTP server serves; `enqueue fetch-download` honours the
//! same links with the same code ([`verify`]). The signature covers
//! `videoclip-download-v1 \n download_id \n expires`, so neither the id nor
//! the expiry can be changed without the key; the comparison is constant
//! time. The key is never printed (`Debug` shows `***`).

use crate::BadInput;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// The environment variable holding the key.
pub const SIGNING_KEY_ENV: &str = "DOWNLOAD_SIGNING_KEY";
/// The environment variable holding the base of links (scheme, host, port).
pub const PUBLIC_BASE_URL_ENV: &str = "PUBLIC_BASE_URL";
/// The base of links when `PUBLIC_BASE_URL` is not set.
pub const DEFAULT_PUBLIC_BASE_URL: &str = "http://127.0.0.1:8080";
/// Fewest bytes a key may have.
pub const MIN_KEY_BYTES: usize = 16;

/// Separates these signatures from any other use of the same key.
const DOMAIN: &str = "videoclip-download-v1";

/// The HMAC key. Never shown.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl SigningKey {
    /// A key of at least [`MIN_KEY_BYTES`] bytes.
    pub fn new(key: &[u8]) -> Result<SigningKey, BadInput> {
        if key.len() < MIN_KEY_BYTES {
            return Err(BadInput::new(format!(
                "{SIGNING_KEY_ENV} is too short: at least {MIN_KEY_BYTES} bytes (e.g. `openssl rand -hex 32`)"
            )));
        }
        Ok(SigningKey(key.to_vec()))
    }

    /// The key from `DOWNLOAD_SIGNING_KEY`; `None` when it is unset or empty.
    pub fn from_env() -> Result<Option<SigningKey>, BadInput> {
        match std::env::var(SIGNING_KEY_ENV) {
            Ok(value) if !value.trim().is_empty() => {
                SigningKey::new(value.trim().as_bytes()).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The key from `DOWNLOAD_SIGNING_KEY`, or bad input saying why it is needed.
    pub fn require_from_env() -> Result<SigningKey, BadInput> {
        SigningKey::from_env()?.ok_or_else(|| {
            BadInput::new(format!(
                "{SIGNING_KEY_ENV} is not set: download links on file:// storage are signed with it (the environment or .env)"
            ))
        })
    }

    fn mac(&self, download_id: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any size");
        mac.update(format!("{DOMAIN}\n{download_id}\n{expires}").as_bytes());
        mac
    }

    /// The signature of a link to `download_id` that expires at `expires`
    /// (Unix seconds), hex.
    pub fn sign(&self, download_id: &str, expires: i64) -> String {
        hex::encode(self.mac(download_id, expires).finalize().into_bytes())
    }

    /// True if `sig` (hex) is the signature of (`download_id`, `expires`);
    /// constant time.
    pub fn verify(&self, download_id: &str, expires: i64, sig: &str) -> bool {
        match hex::decode(sig) {
            Ok(bytes) => self.mac(download_id, expires).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }
}

/// How a program makes links: the key (if set) and the public base URL.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    pub signing_key: Option<SigningKey>,
    pub base_url: String,
}

impl LinkSettings {
    /// From `DOWNLOAD_SIGNING_KEY` and `PUBLIC_BASE_URL`; a key that is set
    /// but too short is bad input.
    pub fn from_env() -> Result<LinkSettings, BadInput> {
        Ok(LinkSettings { signing_key: SigningKey::from_env()?, base_url: public_base_url() })
    }

    /// For the start-up log: the base and whether a key is set, never the key.
    pub fn describe(&self) -> String {
        format!(
            "public_base_url={} download_signing_key={}",
            crate::config::redact_url(&self.base_url),
            if self.signing_key.is_some() { "***" } else { "-" }
        )
    }
}

/// `PUBLIC_BASE_URL` without a trailing slash, else the default.
pub fn public_base_url() -> String {
    std::env::var(PUBLIC_BASE_URL_ENV)
        .ok()
        .map(|v| v.trim().trim_end_matches('/').to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_PUBLIC_BASE_URL.to_string())
}

/// The path the HTTP server serves a package at.
pub fn file_path(download_id: &str) -> String {
    format!("/api/v1/downloads/{download_id}/file")
}

/// A signed link to `download_id` under `base`, valid until `expires`.
pub fn signed_url(key: &SigningKey, base: &str, download_id: &str, expires: i64) -> String {
    format!(
        "{}{}?expires={expires}&sig={}",
        base.trim_end_matches('/'),
        file_path(download_id),
        key.sign(download_id, expires)
    )
}

/// What a signed link says, before it is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedLink {
    pub download_id: String,
    pub expires: i64,
    pub sig: String,
}

/// True for characters a download id may have (UUIDs and similar).
pub fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Reads a signed link: any scheme and host (the link may name a public
/// host the CLI does not run on), the path `/api/v1/downloads/{id}/file`
/// (or just that path with its query), `expires` and `sig` in the query.
/// `None` if `text` is not shaped like one; the signature is not checked
/// here (see [`verify`]).
pub fn parse_link(text: &str) -> Option<SignedLink> {
    let parsed = url::Url::parse(text)
        .or_else(|_| url::Url::parse(DEFAULT_PUBLIC_BASE_URL).and_then(|b| b.join(text)))
        .ok()?;
    let mut segments = parsed.path_segments()?;
    let at = (segments.next()?, segments.next()?, segments.next()?);
    let id = segments.next()?;
    let file = segments.next()?;
    if at != ("api", "v1", "downloads") || file != "file" || segments.next().is_some() {
        return None;
    }
    let (mut expires, mut sig) = (None, None);
    for (name, value) in parsed.query_pairs() {
        match name.as_ref() {
            "expires" => expires = value.parse::<i64>().ok(),
            "sig" => sig = Some(value.to_string()),
            _ => {}
        }
    }
    if !is_plain_id(id) {
        return None;
    }
    Some(SignedLink { download_id: id.to_string(), expires: expires?, sig: sig? })
}

/// Checks a link against the key and the clock (`now`, Unix seconds, from
/// the database): the signature first (nothing about the download is told
/// to a forged link), then the expiry. `Err` is the one-line reason.
pub fn verify(key: &SigningKey, link: &SignedLink, now: i64) -> Result<(), BadInput> {
    if !key.verify(&link.download_id, link.expires, &link.sig) {
        return Err(BadInput::new(
            "the download link's signature does not match (altered, or signed with another key)",
        ));
    }
    if now >= link.expires {
        return Err(BadInput::new(format!(
            "the download link expired at {} ({} ago)",
            unix_to_rfc3339(link.expires),
            human_seconds(now - link.expires)
        )));
    }
    Ok(())
}

/// Unix seconds as `2026-12-02T10:00:00Z`.
pub fn unix_to_rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| unix.to_string())
}

/// `90` as `1m30s`, for messages.
pub fn human_seconds(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `url` with the values of its signature-bearing query parameters
/// (`sig`, and S3's `X-Amz-Signature`, `X-Amz-Credential`,
/// `X-Amz-Security-Token`) replaced by `***`, for logs and the audit trail.
/// Text that is not a URL with a query comes back unchanged.
pub fn redact_link(text: &str) -> String {
    const SECRET: &[&str] = &["sig", "x-amz-signature", "x-amz-credential", "x-amz-security-token"];
    let Some((head, query)) = text.split_once('?') else { return text.to_string() };
    if !head.contains("://") && !head.starts_with('/') {
        return text.to_string();
    }
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if SECRET.contains(&name.to_ascii_lowercase().as_str()) => {
                format!("{name}=***")
            }
            _ => pair.to_string(),
        })
        .collect();
    format!("{head}?{}", redacted.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::new(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let url = signed_url(&key(), "https://clips.example.com/", "abc-123", 2_000_000_000);
        assert!(url.starts_with(
            "https://clips.example.com/api/v1/downloads/abc-123/file?expires=2000000000&sig="
        ));
        let link = parse_link(&url).unwrap();
        assert_eq!(link.download_id, "abc-123");
        assert_eq!(link.expires, 2_000_000_000);
        assert!(verify(&key(), &link, 1_999_999_999).is_ok());
        let expired = verify(&key(), &link, 2_000_000_000).unwrap_err();
        assert!(expired.0.contains("expired"), "{expired}");
        // The path alone (as an HTTP server sees it) reads the same.
        let path = &url["https://clips.example.com".len()..];
        assert_eq!(parse_link(path).unwrap(), link);
    }

    #[test]
    fn altered_links_and_other_keys_are_refused() {
        let link = parse_link(&signed_url(&key(), "http://h", "abc", 2_000_000_000)).unwrap();
        let later = SignedLink { expires: link.expires + 3600, ..link.clone() };
        assert!(verify(&key(), &later, 0).unwrap_err().0.contains("signature"));
        let other = SignedLink { download_id: "abd".into(), ..link.clone() };
        assert!(verify(&key(), &other, 0).is_err());
        let mut flipped = link.sig.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = SignedLink { sig: String::from_utf8(flipped).unwrap(), ..link.clone() };
        assert!(verify(&key(), &flipped, 0).is_err());
        let not_hex = SignedLink { sig: "zz".into(), ..link.clone() };
        assert!(verify(&key(), &not_hex, 0).is_err());
        let another = SigningKey::new(b"another key of enough length").unwrap();
        assert!(verify(&another, &link, 0).is_err());
    }

    #[test]
    fn keys_are_never_shown_and_short_ones_refused() {
        assert_eq!(format!("{:?}", key()), "SigningKey(***)");
        assert!(SigningKey::new(b"short").unwrap_err().0.contains("too short"));
    }

    #[test]
    fn only_link_shaped_urls_parse() {
        assert!(parse_link("http://h/api/v1/downloads/abc/file?expires=1").is_none());
        assert!(parse_link("http://h/api/v1/downloads/abc/file?sig=00").is_none());
        assert!(parse_link("http://h/api/v1/downloads/abc?expires=1&sig=00").is_none());
        assert!(parse_link("http://h/api/v1/downloads/a%2Fb/file?expires=1&sig=00").is_none());
        assert!(parse_link("0190a3c4-aaaa-7bbb-8ccc-0123456789ab").is_none());
    }

    #[test]
    fn signatures_are_redacted_from_links() {
        assert_eq!(
            redact_link("http://h/api/v1/downloads/x/file?expires=5&sig=abcdef"),
            "http://h/api/v1/downloads/x/file?expires=5&sig=***"
        );
        assert_eq!(
            redact_link(
                "http://s3/b/k.zip?X-Amz-Credential=AKIA%2F1&X-Amz-Expires=60&X-Amz-Signature=ff"
            ),
            "http://s3/b/k.zip?X-Amz-Credential=***&X-Amz-Expires=60&X-Amz-Signature=***"
        );
        assert_eq!(redact_link("plain-id"), "plain-id");
    }
}
