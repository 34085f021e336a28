//! The `s3://` backend, on rust-s3: an S3-compatible bucket, each key stored
//! under the URL's prefix. Uploads are streamed multipart uploads (memory
//! stays bounded whatever the file size), downloads are streamed to a file
//! with an idle timeout instead of an overall one. The URL names only the
//! bucket and prefix; the endpoint, region and credentials come from the
//! environment (`S3Settings`), so no secret is ever part of a URL that
//! could be logged. A missing key is bad input; any other error response
//! (a missing bucket, refused credentials, a server fault) may be fixed by an
//! operator, so it stays retryable.

use super::keys::{check_key, content_type, missing};
use super::StoredObject;
use crate::config::redact_url;
use crate::BadInput;
use ::s3::creds::Credentials;
use ::s3::{Bucket, Region};
use anyhow::{bail, Context};
use futures_util::StreamExt;
use std::fmt;
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use url::Url;

/// Parts of one multipart upload in flight at once (8 MiB each).
const UPLOAD_PARTS_IN_FLIGHT: usize = 4;
/// A download that receives nothing for this long fails (it has no overall
/// time limit: a source video can be gigabytes).
const DOWNLOAD_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// The region when `S3_REGION` is not set.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The connection to one bucket. Its `Debug` shows the endpoint and region,
/// never the credentials.
#[derive(Clone)]
pub struct S3Client {
    pub(super) bucket: Box<Bucket>,
    pub(super) endpoint: Option<String>,
    pub(super) region: String,
}

impl fmt::Debug for S3Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Client")
            .field("endpoint", &self.endpoint.as_deref().map(redact_url))
            .field("region", &self.region)
            .field("path_style", &self.bucket.is_path_style())
            .finish_non_exhaustive()
    }
}

/// The S3 settings besides the URL, from the environment.
pub(super) struct S3Settings {
    endpoint: Option<String>,
    region: String,
    access_key: Option<String>,
    secret_key: Option<String>,
    session_token: Option<String>,
}

impl S3Settings {
    pub(super) fn from_env(env: &dyn Fn(&str) -> Option<String>) -> S3Settings {
        let get = |name: &str| env(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        S3Settings {
            endpoint: get("S3_ENDPOINT"),
            region: get("S3_REGION").unwrap_or_else(|| DEFAULT_REGION.to_string()),
            access_key: get("AWS_ACCESS_KEY_ID"),
            secret_key: get("AWS_SECRET_ACCESS_KEY"),
            session_token: get("AWS_SESSION_TOKEN"),
        }
    }
}

/// Splits `s3://bucket/prefix/...` into the bucket (the URL's host) and the
/// prefix (its percent-decoded path, without slashes at either end; may be
/// empty).
pub(super) fn parse_url(url: &str) -> Result<(String, String), BadInput> {
    let parsed = Url::parse(url).map_err(|e| {
        // redact_url cannot find the password of a URL that does not parse:
        // nothing before an @ shows.
        let shown = match url.rsplit_once('@') {
            Some((_, host)) => format!("s3://***@{host}"),
            None => url.to_string(),
        };
        BadInput::new(format!("STORAGE_URL {shown:?} is not a URL: {e}"))
    })?;
    let shown = redact_url(url);
    if parsed.scheme() != "s3" {
        return Err(BadInput::new(format!("not an s3:// URL: {shown:?}")));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(BadInput::new(format!(
            "STORAGE_URL {shown:?}: put S3 credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, not in the URL"
        )));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(BadInput::new(format!("STORAGE_URL {shown:?}: no query or fragment allowed")));
    }
    if parsed.port().is_some() {
        return Err(BadInput::new(format!(
            "STORAGE_URL {shown:?}: a bucket has no port (S3_ENDPOINT names the server)"
        )));
    }
    let bucket = parsed.host_str().unwrap_or_default();
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid_bucket {
        return Err(BadInput::new(format!(
            "STORAGE_URL {shown:?}: {bucket:?} is not a bucket name (3-63 characters: a-z, 0-9, '-', '.')"
        )));
    }
    let not_plain = |prefix: &str| {
        BadInput::new(format!(
            "STORAGE_URL {shown:?}: the prefix {prefix:?} is not a plain relative path"
        ))
    };
    // url resolves `.` and `..` segments away (`s3://b/x/../y` parses as
    // `s3://b/y`): a URL that names them is refused, not silently re-pointed.
    // The URL is known here to be `s3://bucket/path` with nothing after it.
    let dot_segment = url.split('/').skip(3).any(|segment| {
        matches!(segment.to_ascii_lowercase().replace("%2e", ".").as_str(), "." | "..")
    });
    if dot_segment {
        return Err(BadInput::new(format!(
            "STORAGE_URL {shown:?}: the prefix is not a plain relative path (no . or .. segments)"
        )));
    }
    let path = parsed.path();
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| not_plain(path.trim_matches('/')))?;
    let prefix = decoded.trim_matches('/');
    if !prefix.is_empty() {
        check_key(prefix).map_err(|_| not_plain(prefix))?;
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

impl S3Client {
    pub(super) fn new(bucket: &str, settings: S3Settings) -> Result<S3Client, BadInput> {
        let (Some(access_key), Some(secret_key)) = (&settings.access_key, &settings.secret_key)
        else {
            return Err(BadInput::new(
                "STORAGE_URL s3:// needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the environment or .env)",
            ));
        };
        let region = match &settings.endpoint {
            Some(endpoint) => {
                let parsed = url::Url::parse(endpoint)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
                if parsed.is_none() {
                    return Err(BadInput::new(format!(
                        "S3_ENDPOINT must be an http:// or https:// URL (got {:?})",
                        redact_url(endpoint)
                    )));
                }
                Region::Custom {
                    region: settings.region.clone(),
                    endpoint: endpoint.trim_end_matches('/').to_string(),
                }
            }
            None => match settings.region.parse::<Region>() {
                Ok(Region::Custom { .. }) | Err(_) => Region::Custom {
                    region: settings.region.clone(),
                    endpoint: format!("https://s3.{}.amazonaws.com", settings.region),
                },
                Ok(region) => region,
            },
        };
        let credentials = Credentials::new(
            Some(access_key),
            Some(secret_key),
            None,
            settings.session_token.as_deref(),
            None,
        )
        .map_err(|e| BadInput::new(format!("S3 credentials: {e}")))?;
        let mut handle = Bucket::new(bucket, region, credentials)
            .map_err(|e| BadInput::new(format!("S3 bucket {bucket:?}: {e}")))?;
        // Non-AWS servers rarely resolve bucket.host names: address them
        // path-style (http://endpoint/bucket/key).
        if settings.endpoint.is_some() {
            handle = handle.with_path_style();
        }
        Ok(S3Client { bucket: handle, endpoint: settings.endpoint, region: settings.region })
    }

    /// Uploads `source` as `object` and returns the bytes sent. `shown`
    /// names the key in messages.
    pub(super) async fn put_file(
        &self,
        source: &Path,
        key: &str,
        object: &str,
        shown: &str,
    ) -> anyhow::Result<u64> {
        let mut file = tokio::fs::File::open(source)
            .await
            .with_context(|| format!("opening {} to upload", source.display()))?;
        let expected =
            file.metadata().await.with_context(|| format!("reading {}", source.display()))?.len();
        let response = self
            .bucket
            .put_object_stream_builder(object)
            .with_content_type(content_type(key))
            .with_max_concurrent_chunks(UPLOAD_PARTS_IN_FLIGHT)
            .execute_stream(&mut file)
            .await
            .with_context(|| format!("uploading {} to {shown}", source.display()))?;
        let size = response.uploaded_bytes() as u64;
        if size != expected {
            bail!(
                "uploading {} to {shown}: sent {size} bytes of {expected} (did the file change?)",
                source.display(),
            );
        }
        Ok(size)
    }

    /// Downloads `object` (the stored `key`) into `partial`; returns its size.
    pub(super) async fn download(
        &self,
        key: &str,
        object: &str,
        shown: &str,
        partial: &Path,
    ) -> anyhow::Result<u64> {
        let what = || format!("downloading {shown}");
        // No overall time limit (the body may be gigabytes); a stall
        // is caught below instead.
        let mut bucket = (*self.bucket).clone();
        bucket.set_request_timeout(None);
        let mut response = bucket.get_object_stream(object).await.with_context(what)?;
        if !(200..300).contains(&response.status_code) {
            let mut body = Vec::new();
            while let Ok(Some(Ok(chunk))) =
                tokio::time::timeout(Duration::from_secs(10), response.bytes.next()).await
            {
                body.extend_from_slice(&chunk);
                if body.len() > 4096 {
                    break;
                }
            }
            return Err(http_error(key, response.status_code, &body)).with_context(what);
        }
        let mut file = tokio::fs::File::create(partial)
            .await
            .with_context(|| format!("creating {}", partial.display()))?;
        let mut size = 0u64;
        loop {
            let chunk =
                match tokio::time::timeout(DOWNLOAD_IDLE_TIMEOUT, response.bytes.next()).await {
                    Err(_) => bail!("{}: no data for {DOWNLOAD_IDLE_TIMEOUT:?}", what()),
                    Ok(None) => break,
                    Ok(Some(chunk)) => chunk.with_context(what)?,
                };
            file.write_all(&chunk)
                .await
                .with_context(|| format!("writing {}", partial.display()))?;
            size += chunk.len() as u64;
        }
        file.flush().await.with_context(|| format!("writing {}", partial.display()))?;
        Ok(size)
    }

    /// A presigned GET of `object`, valid for `seconds`; `filename` (plain
    /// characters only) becomes its `Content-Disposition`.
    pub(super) async fn presign_get(
        &self,
        object: &str,
        seconds: u32,
        filename: Option<&str>,
        shown: &str,
    ) -> anyhow::Result<String> {
        let queries = filename
            .filter(|name| {
                name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            })
            .map(|name| {
                std::collections::HashMap::from([(
                    "response-content-disposition".to_string(),
                    format!("attachment; filename=\"{name}\""),
                )])
            });
        self.bucket
            .presign_get(object, seconds, queries)
            .await
            .with_context(|| format!("presigning a GET of {shown}"))
    }

    pub(super) async fn exists(&self, object: &str, shown: &str) -> anyhow::Result<bool> {
        let (_, status) =
            self.bucket.head_object(object).await.with_context(|| format!("checking {shown}"))?;
        match status {
            200..=299 => Ok(true),
            404 => Ok(false),
            code => bail!("checking {shown}: HTTP {code}"),
        }
    }

    /// Deletes `object` (the stored `key`); a missing one is not an error.
    pub(super) async fn delete(&self, key: &str, object: &str, shown: &str) -> anyhow::Result<()> {
        let what = || format!("deleting {shown}");
        let response = self.bucket.delete_object(object).await.with_context(what)?;
        match response.status_code() {
            200..=299 | 404 => Ok(()),
            code => Err(http_error(key, code, response.as_slice())).with_context(what),
        }
    }

    /// Every object under `prefix/dir/`, keys relative to `prefix`, in no
    /// particular order. `shown` names `dir` in messages.
    pub(super) async fn list(
        &self,
        prefix: &str,
        dir: &str,
        shown: &str,
    ) -> anyhow::Result<Vec<StoredObject>> {
        let mut full = String::new();
        for part in [prefix, dir] {
            if !part.is_empty() {
                full.push_str(part);
                full.push('/');
            }
        }
        let pages =
            self.bucket.list(full, None).await.with_context(|| format!("listing {shown}"))?;
        let strip = if prefix.is_empty() { 0 } else { prefix.len() + 1 };
        Ok(pages
            .into_iter()
            .flat_map(|page| page.contents)
            .filter(|o| o.key.len() > strip)
            .map(|o| StoredObject {
                key: o.key[strip..].to_string(),
                size: o.size,
                modified: chrono::DateTime::parse_from_rfc3339(&o.last_modified)
                    .ok()
                    .map(std::time::SystemTime::from),
            })
            .collect())
    }

    /// Creates `bucket`; one that exists already is not an error.
    pub(super) async fn create_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        let credentials = self.bucket.credentials().await.context("S3 credentials")?;
        let region = self.bucket.region();
        let config = ::s3::BucketConfiguration::default();
        let response = if self.bucket.is_path_style() {
            Bucket::create_with_path_style(bucket, region, credentials, config).await
        } else {
            Bucket::create(bucket, region, credentials, config).await
        }
        .with_context(|| format!("creating bucket {bucket}"))?;
        // 409: it exists already (BucketAlreadyOwnedByYou).
        match response.response_code {
            200..=299 | 409 => Ok(()),
            code => bail!(
                "creating bucket {bucket}: HTTP {code}: {}",
                first_line(&response.response_text)
            ),
        }
    }
}

/// An S3 error response as an error: a missing key is bad input, anything
/// else (a missing bucket, refused credentials, a server fault) may be fixed
/// by an operator, so it is retried.
pub(super) fn http_error(key: &str, status: u16, body: &[u8]) -> anyhow::Error {
    let body = String::from_utf8_lossy(body);
    let code = xml_field(&body, "Code");
    if status == 404 && code.as_deref().is_none_or(|c| c == "NoSuchKey") {
        return missing(key);
    }
    let detail = code.or_else(|| xml_field(&body, "Message")).unwrap_or_else(|| first_line(&body));
    anyhow::anyhow!("HTTP {status}: {detail}")
}

fn xml_field(body: &str, name: &str) -> Option<String> {
    let start = body.find(&format!("<{name}>"))? + name.len() + 2;
    let end = body[start..].find(&format!("</{name}>"))? + start;
    Some(body[start..end].to_string())
}

fn first_line(text: &str) -> String {
    text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").chars().take(200).collect()
}
