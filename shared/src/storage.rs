//! Where videos, clips and thumbnails live, addressed by relative keys such
//! as `videos/7/3fa2...c1.mp4`.
//!
//! Two backends, chosen by `STORAGE_URL`:
//!
//! - `file:///dir` (or `file://./dir`) stores under a local directory.
//! - `s3://bucket/prefix` stores in an S3-compatible bucket, each key under
//!   `prefix/`. `S3_ENDPOINT` names a non-AWS server (MinIO, Ceph, moto...;
//!   addressed path-style), `S3_REGION` the region (default `us-east-1`),
//!   `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and optionally
//!   `AWS_SESSION_TOKEN`) the credentials. Credentials never appear in
//!   errors, logs or `Debug` output.
//!
//! Keys are checked before any use ([`check_key`]): absolute keys, `..`,
//! empty segments and backslashes are refused, so no key can reach outside
//! the storage root or the bucket prefix.
//!
//! Writers upload whole files ([`Storage::put_file`]: a streamed multipart
//! upload for big files, so memory stays bounded whatever the size); readers
//! that need a file on disk (ffmpeg) ask for [`Storage::open_local`], which is
//! the stored file itself for `file://` and a downloaded copy for `s3://`.
//! A key that does not exist is [`BadInput`] ("stored file ... is missing"):
//! no retry brings it back.

use crate::config::redact_url;
use crate::BadInput;
use anyhow::{bail, Context};
use futures_util::StreamExt;
use s3::creds::Credentials;
use s3::{Bucket, Region};
use std::fmt;
use std::path::{Path, PathBuf};
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

/// A configured storage backend.
#[derive(Debug, Clone)]
pub enum Storage {
    /// A local directory (created on first write).
    Local { root: PathBuf },
    /// An S3-compatible bucket; keys live under `prefix/` (no slashes at
    /// either end; empty for the bucket's root).
    S3 { bucket: String, prefix: String, client: S3Client },
}

/// The connection to one bucket. Its `Debug` shows the endpoint and region,
/// never the credentials.
#[derive(Clone)]
pub struct S3Client {
    bucket: Box<Bucket>,
    endpoint: Option<String>,
    region: String,
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

/// One stored object, as [`Storage::list`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// The key, relative to the storage root or bucket prefix.
    pub key: String,
    pub size: u64,
    /// When it was last written, where the storage says (for `enqueue gc`).
    pub modified: Option<std::time::SystemTime>,
}

/// A stored file available on the local disk (see [`Storage::open_local`]).
/// A downloaded copy is deleted when this is dropped; the stored file of
/// `file://` storage is of course kept.
#[derive(Debug)]
pub struct LocalCopy {
    path: PathBuf,
    size: u64,
    temporary: bool,
}

impl LocalCopy {
    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// True for a downloaded copy (deleted on drop).
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }
}

impl Drop for LocalCopy {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The S3 settings besides the URL, from the environment.
struct S3Settings {
    endpoint: Option<String>,
    region: String,
    access_key: Option<String>,
    secret_key: Option<String>,
    session_token: Option<String>,
}

impl S3Settings {
    fn from_env(env: &dyn Fn(&str) -> Option<String>) -> S3Settings {
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

impl Storage {
    /// Parses `STORAGE_URL` (with the url crate): `file:///abs/dir`,
    /// `file://./relative/dir` or `s3://bucket/prefix`, percent-decoded
    /// (the S3 settings come from the environment:
    /// `S3_ENDPOINT`, `S3_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`). Makes no network request.
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        Self::from_url_with_env(url, &|name| std::env::var(name).ok())
    }

    /// [`Storage::from_url`] with the S3 settings looked up in `env`
    /// instead of the process environment.
    pub fn from_url_with_env(
        url: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        if let Some(rest) = url.strip_prefix("file://") {
            if rest.is_empty() {
                return Err(BadInput::new("STORAGE_URL file:// needs a directory").into());
            }
            return Ok(Storage::Local { root: local_root(url, rest)? });
        }
        if url.starts_with("s3://") {
            let (bucket, prefix) = parse_s3_url(url)?;
            let client = S3Client::new(&bucket, S3Settings::from_env(env))?;
            return Ok(Storage::S3 { bucket, prefix, client });
        }
        Err(BadInput::new(format!(
            "STORAGE_URL must start with file:// or s3:// (got {:?})",
            redact_url(url)
        ))
        .into())
    }

    /// Copies a local file into storage under `key` and returns the stored
    /// size in bytes. Readers never see half a file: locally the copy is
    /// written beside the target and renamed into place; in S3 an object
    /// appears only when its (multipart) upload completes. Big files are
    /// streamed in 8 MiB parts, a few in flight at once.
    pub async fn put_file(&self, source: &Path, key: &str) -> anyhow::Result<u64> {
        check_key(key)?;
        match self {
            Storage::Local { root } => {
                let target = root.join(key);
                let parent = target.parent().context("storage key has no parent")?;
                tokio::fs::create_dir_all(parent)
                    .await
                    .with_context(|| format!("creating {}", parent.display()))?;
                let partial = target.with_extension("partial");
                let size = tokio::fs::copy(source, &partial)
                    .await
                    .with_context(|| format!("copying {} into storage", source.display()))?;
                tokio::fs::rename(&partial, &target)
                    .await
                    .with_context(|| format!("moving {} into place", target.display()))?;
                Ok(size)
            }
            Storage::S3 { client, .. } => {
                let object = self.object_name(key)?;
                let mut file = tokio::fs::File::open(source)
                    .await
                    .with_context(|| format!("opening {} to upload", source.display()))?;
                let expected = file
                    .metadata()
                    .await
                    .with_context(|| format!("reading {}", source.display()))?
                    .len();
                let response = client
                    .bucket
                    .put_object_stream_builder(&object)
                    .with_content_type(content_type(key))
                    .with_max_concurrent_chunks(UPLOAD_PARTS_IN_FLIGHT)
                    .execute_stream(&mut file)
                    .await
                    .with_context(|| {
                        format!("uploading {} to {}", source.display(), self.describe_key(key))
                    })?;
                let size = response.uploaded_bytes() as u64;
                if size != expected {
                    bail!(
                        "uploading {} to {}: sent {size} bytes of {expected} (did the file change?)",
                        source.display(),
                        self.describe_key(key)
                    );
                }
                Ok(size)
            }
        }
    }

    /// Downloads (or, locally, copies) `key` to `target` and returns its
    /// size. The file appears at `target` only once complete. A missing key
    /// is [`BadInput`].
    pub async fn fetch_to(&self, key: &str, target: &Path) -> anyhow::Result<u64> {
        check_key(key)?;
        if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let partial = partial_path(target);
        let result = self.fetch_to_partial(key, &partial).await;
        let size = match result {
            Ok(size) => size,
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(e);
            }
        };
        tokio::fs::rename(&partial, target)
            .await
            .with_context(|| format!("moving {} into place", target.display()))?;
        Ok(size)
    }

    async fn fetch_to_partial(&self, key: &str, partial: &Path) -> anyhow::Result<u64> {
        match self {
            Storage::Local { root } => {
                let source = root.join(key);
                match tokio::fs::copy(&source, partial).await {
                    Ok(size) => Ok(size),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && !source.exists() => {
                        Err(missing(key))
                    }
                    Err(e) => Err(e).with_context(|| {
                        format!("copying {} to {}", source.display(), partial.display())
                    }),
                }
            }
            Storage::S3 { client, .. } => {
                let object = self.object_name(key)?;
                let what = || format!("downloading {}", self.describe_key(key));
                // No overall time limit (the body may be gigabytes); a stall
                // is caught below instead.
                let mut bucket = (*client.bucket).clone();
                bucket.set_request_timeout(None);
                let mut response = bucket.get_object_stream(&object).await.with_context(what)?;
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
                        match tokio::time::timeout(DOWNLOAD_IDLE_TIMEOUT, response.bytes.next())
                            .await
                        {
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
        }
    }

    /// The stored file `key` as a local file for tools that read files
    /// (ffprobe, ffmpeg): for `file://` the stored file itself, for `s3://`
    /// a copy downloaded into `scratch_dir` (created if needed) under the
    /// key's file name, so its extension is kept. A missing key is
    /// [`BadInput`] ("stored file KEY is missing").
    pub async fn open_local(&self, key: &str, scratch_dir: &Path) -> anyhow::Result<LocalCopy> {
        check_key(key)?;
        match self {
            Storage::Local { root } => {
                let path = root.join(key);
                match tokio::fs::metadata(&path).await {
                    Ok(meta) if meta.is_file() => {
                        Ok(LocalCopy { path, size: meta.len(), temporary: false })
                    }
                    Ok(_) => Err(BadInput::new(format!("stored file {key} is not a file")).into()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(missing(key)),
                    Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
                }
            }
            Storage::S3 { .. } => {
                let name = key.rsplit('/').next().unwrap_or(key);
                let path = scratch_dir.join(name);
                let size = self.fetch_to(key, &path).await?;
                Ok(LocalCopy { path, size, temporary: true })
            }
        }
    }

    /// Whether `key` is stored.
    pub async fn exists(&self, key: &str) -> anyhow::Result<bool> {
        check_key(key)?;
        match self {
            Storage::Local { root } => {
                let path = root.join(key);
                tokio::fs::try_exists(&path)
                    .await
                    .with_context(|| format!("reading {}", path.display()))
            }
            Storage::S3 { client, .. } => {
                let object = self.object_name(key)?;
                let (_, status) = client
                    .bucket
                    .head_object(&object)
                    .await
                    .with_context(|| format!("checking {}", self.describe_key(key)))?;
                match status {
                    200..=299 => Ok(true),
                    404 => Ok(false),
                    code => bail!("checking {}: HTTP {code}", self.describe_key(key)),
                }
            }
        }
    }

    /// Deletes `key`; deleting a key that does not exist is not an error.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        check_key(key)?;
        match self {
            Storage::Local { root } => {
                let path = root.join(key);
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(e).with_context(|| format!("deleting {}", path.display())),
                }
            }
            Storage::S3 { client, .. } => {
                let object = self.object_name(key)?;
                let what = || format!("deleting {}", self.describe_key(key));
                let response = client.bucket.delete_object(&object).await.with_context(what)?;
                match response.status_code() {
                    200..=299 | 404 => Ok(()),
                    code => Err(http_error(key, code, response.as_slice())).with_context(what),
                }
            }
        }
    }

    /// Deletes every object under `dir/` and returns how many there were:
    /// how a refused attempt's clips are discarded.
    pub async fn delete_all_under(&self, dir: &str) -> anyhow::Result<usize> {
        anyhow::ensure!(!dir.trim_matches('/').is_empty(), "refusing to delete the whole storage");
        let objects = self.list(dir).await?;
        for object in &objects {
            self.delete(&object.key).await?;
        }
        if let Storage::Local { root } = self {
            // Leave no empty directory behind (best effort).
            let _ = tokio::fs::remove_dir(root.join(dir.trim_end_matches('/'))).await;
        }
        Ok(objects.len())
    }

    /// Every stored object whose key starts with `dir/` (everything if `dir`
    /// is empty), sorted by key. Keys are relative to the storage root or
    /// bucket prefix, as given to [`Storage::put_file`].
    pub async fn list(&self, dir: &str) -> anyhow::Result<Vec<StoredObject>> {
        let dir = dir.trim_end_matches('/');
        if !dir.is_empty() {
            check_key(dir)?;
        }
        let mut objects = match self {
            Storage::Local { root } => {
                let mut objects = Vec::new();
                let mut pending = vec![(root.join(dir), dir.to_string())];
                while let Some((path, key)) = pending.pop() {
                    let mut entries = match tokio::fs::read_dir(&path).await {
                        Ok(entries) => entries,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => {
                            return Err(e).with_context(|| format!("listing {}", path.display()))
                        }
                    };
                    while let Some(entry) = entries
                        .next_entry()
                        .await
                        .with_context(|| format!("listing {}", path.display()))?
                    {
                        let name = entry.file_name().to_string_lossy().to_string();
                        let child =
                            if key.is_empty() { name.clone() } else { format!("{key}/{name}") };
                        let meta = entry.metadata().await?;
                        if meta.is_dir() {
                            pending.push((entry.path(), child));
                        } else if !name.ends_with(".partial") {
                            objects.push(StoredObject {
                                key: child,
                                size: meta.len(),
                                modified: meta.modified().ok(),
                            });
                        }
                    }
                }
                objects
            }
            Storage::S3 { client, prefix, .. } => {
                let mut full = String::new();
                for part in [prefix.as_str(), dir] {
                    if !part.is_empty() {
                        full.push_str(part);
                        full.push('/');
                    }
                }
                let pages = client
                    .bucket
                    .list(full, None)
                    .await
                    .with_context(|| format!("listing {}", self.describe_key(dir)))?;
                let strip = if prefix.is_empty() { 0 } else { prefix.len() + 1 };
                pages
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
                    .collect()
            }
        };
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Creates the bucket if it does not exist yet (S3), or the directory
    /// (`file://`). For first set-up and tests. Creating a bucket on a
    /// non-AWS server in us-east-1 may need
    /// `RUST_S3_SKIP_LOCATION_CONSTRAINT=true` in the environment.
    pub async fn create_bucket_if_missing(&self) -> anyhow::Result<()> {
        match self {
            Storage::Local { root } => tokio::fs::create_dir_all(root)
                .await
                .with_context(|| format!("creating {}", root.display())),
            Storage::S3 { bucket, client, .. } => {
                let credentials = client.bucket.credentials().await.context("S3 credentials")?;
                let region = client.bucket.region();
                let config = s3::BucketConfiguration::default();
                let response = if client.bucket.is_path_style() {
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
    }

    /// The local path of `key` (for `file://` storage only; S3 keys have
    /// none: use [`Storage::open_local`]).
    pub fn local_path(&self, key: &str) -> anyhow::Result<PathBuf> {
        check_key(key)?;
        match self {
            Storage::Local { root } => Ok(root.join(key)),
            Storage::S3 { .. } => {
                bail!("{} is not a local path (use open_local)", self.describe_key(key))
            }
        }
    }

    /// The full object name of `key` in the bucket (`prefix/key`).
    fn object_name(&self, key: &str) -> Result<String, BadInput> {
        check_key(key)?;
        Ok(match self {
            Storage::S3 { prefix, .. } if !prefix.is_empty() => format!("{prefix}/{key}"),
            _ => key.to_string(),
        })
    }

    /// `key` as a URL for messages (no credentials).
    fn describe_key(&self, key: &str) -> String {
        match self {
            Storage::Local { root } => root.join(key).display().to_string(),
            Storage::S3 { bucket, prefix, .. } if prefix.is_empty() => {
                format!("s3://{bucket}/{key}")
            }
            Storage::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}/{key}"),
        }
    }
}

impl fmt::Display for Storage {
    /// The storage as a URL, without credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Storage::Local { root } => write!(f, "file://{}", root.display()),
            Storage::S3 { bucket, prefix, client } => {
                write!(f, "s3://{bucket}")?;
                if !prefix.is_empty() {
                    write!(f, "/{prefix}")?;
                }
                match &client.endpoint {
                    Some(endpoint) => write!(f, " at {} ({})", redact_url(endpoint), client.region),
                    None => write!(f, " ({})", client.region),
                }
            }
        }
    }
}

impl S3Client {
    fn new(bucket: &str, settings: S3Settings) -> Result<S3Client, BadInput> {
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
}

/// The directory of a `file://` URL. `file:///abs/dir` (and
/// `file://localhost/abs/dir`) is a file URL proper: [`Url::to_file_path`],
/// percent-decoded. `file://./dir` is not: URL syntax has no relative file
/// URLs (url reads `.` as a host name and would resolve `..` segments away),
/// so a URL with a host is, as it always was, the relative path written
/// after `file://`.
fn local_root(url: &str, rest: &str) -> Result<PathBuf, BadInput> {
    let Some(parsed) = Url::parse(url).ok().filter(|u| u.host().is_none()) else {
        return Ok(PathBuf::from(rest));
    };
    let shown = redact_url(url);
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(BadInput::new(format!(
            "STORAGE_URL {shown:?}: no query or fragment allowed (percent-encode ? and # in a directory name)"
        )));
    }
    parsed
        .to_file_path()
        .map_err(|()| BadInput::new(format!("STORAGE_URL {shown:?} is not a local directory")))
}

/// Splits `s3://bucket/prefix/...` into the bucket (the URL's host) and the
/// prefix (its percent-decoded path, without slashes at either end; may be
/// empty).
fn parse_s3_url(url: &str) -> Result<(String, String), BadInput> {
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

/// Refuses keys that could leave the storage root.
pub fn check_key(key: &str) -> Result<(), BadInput> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.contains('\\')
        || key.contains('\0')
        || key.split('/').any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(BadInput::new(format!("storage path {key:?} is not a plain relative path")));
    }
    Ok(())
}

fn missing(key: &str) -> anyhow::Error {
    BadInput::new(format!("stored file {key} is missing")).into()
}

/// An S3 error response as an error: a missing key is bad input, anything
/// else (a missing bucket, refused credentials, a server fault) may be fixed
/// by an operator, so it is retried.
fn http_error(key: &str, status: u16, body: &[u8]) -> anyhow::Error {
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

/// `target` with `.partial` appended to its name.
fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    target.with_file_name(name)
}

/// The MIME type stored with an object, from its key's extension as
/// mime_guess knows it; `application/octet-stream` when it knows none.
fn content_type(key: &str) -> &'static str {
    let ext = Path::new(key).extension().and_then(|e| e.to_str()).unwrap_or_default();
    // mime_guess says `video/x-m4v` (Apple's unregistered name); an .m4v is
    // an MP4 file, and objects have always been stored as `video/mp4`.
    if ext.eq_ignore_ascii_case("m4v") {
        return "video/mp4";
    }
    mime_guess::from_ext(ext).first_raw().unwrap_or("application/octet-stream")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn keys_cannot_escape_the_root() {
        assert!(check_key("videos/1/abc.mp4").is_ok());
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "videos/../../x",
            "a//b",
            "a/./b",
            "a\\b",
            "videos/..",
            "a/b/",
            "x\0y",
        ] {
            assert!(check_key(bad).is_err(), "{bad} accepted");
        }
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    const CREDS: [(&str, &str); 2] =
        [("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"), ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-s3cret")];

    fn s3(url: &str, extra: &[(&str, &str)]) -> anyhow::Result<Storage> {
        let mut pairs = CREDS.to_vec();
        pairs.extend_from_slice(extra);
        Storage::from_url_with_env(url, &env(&pairs))
    }

    fn reason(result: anyhow::Result<Storage>) -> String {
        let err = result.expect_err("accepted");
        crate::bad_input_reason(&err)
            .unwrap_or_else(|| panic!("not bad input: {err:#}"))
            .to_string()
    }

    #[test]
    fn s3_urls_give_bucket_and_prefix() {
        for (url, bucket, prefix) in [
            ("s3://clips", "clips", ""),
            ("s3://clips/", "clips", ""),
            ("s3://clips/prefix", "clips", "prefix"),
            ("s3://my.clips-2/a/b/", "my.clips-2", "a/b"),
        ] {
            match s3(url, &[]).unwrap() {
                Storage::S3 { bucket: b, prefix: p, .. } => {
                    assert_eq!((b.as_str(), p.as_str()), (bucket, prefix), "{url}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn bad_s3_urls_are_bad_input_without_secrets() {
        for (url, needle) in [
            ("s3://", "not a bucket name"),
            ("s3://ab/x", "not a bucket name"),
            ("s3://Clips/x", "not a bucket name"),
            ("s3://bucket_1/x", "not a bucket name"),
            ("s3://clips/../x", "not a plain relative path"),
            ("s3://clips/a//b", "not a plain relative path"),
            ("s3://clips/a/?x=1", "no query"),
            ("s3://key:hunter2@clips/x", "not in the URL"),
        ] {
            let text = reason(s3(url, &[]));
            assert!(text.contains(needle), "{url}: {text}");
            assert!(!text.contains("hunter2"), "{url}: {text}");
        }
        let text = reason(Storage::from_url("ftp://u:hunter2@host/x"));
        assert!(text.contains("file:// or s3://") && !text.contains("hunter2"), "{text}");
        for (url, needle) in [
            ("s3://clips/a/./b", "not a plain relative path"),
            ("s3://clips/%2E%2e/x", "not a plain relative path"),
            ("s3://clips/a%2F%2Fb", "not a plain relative path"),
            ("s3://clips/a%5Cb", "not a plain relative path"),
            ("s3://clips/%FF", "not a plain relative path"),
            ("s3://clips/a#f", "no query or fragment"),
            ("s3://key@clips/x", "not in the URL"),
            ("s3://clips:9000/x", "no port"),
            ("s3://clips:x/p", "is not a URL"),
            ("s3://key:hunter2@clips:x/p", "is not a URL"),
            ("S3://clips/x", "file:// or s3://"),
        ] {
            let text = reason(s3(url, &[]));
            assert!(text.contains(needle), "{url}: {text}");
            assert!(!text.contains("hunter2") && !text.contains('\n'), "{url}: {text}");
        }
    }

    #[test]
    fn s3_prefixes_are_percent_decoded() {
        for (url, prefix) in [
            ("s3://clips/a%20b/c", "a b/c"),
            ("s3://clips/a b", "a b"),
            ("s3://clips/視頻/x", "視頻/x"),
            ("s3://clips/a%2Fb", "a/b"),
        ] {
            let Storage::S3 { prefix: p, .. } = s3(url, &[]).unwrap() else { panic!("{url}") };
            assert_eq!(p, prefix, "{url}");
        }
    }

    #[test]
    fn file_urls_give_the_directory() {
        for (url, root) in [
            ("file:///var/lib/videoclip", "/var/lib/videoclip"),
            ("file:///var/lib/videoclip/", "/var/lib/videoclip/"),
            ("file://localhost/srv/clips", "/srv/clips"),
            ("file:///srv/my%20clips", "/srv/my clips"),
            ("file:///srv/my clips", "/srv/my clips"),
            ("file:///", "/"),
            // Relative directories, as written.
            ("file://./storage", "./storage"),
            ("file://storage", "storage"),
            ("file://../shared/storage", "../shared/storage"),
            ("file://./a/../b", "./a/../b"),
        ] {
            match Storage::from_url(url).unwrap() {
                Storage::Local { root: r } => assert_eq!(r, Path::new(root), "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        for (url, needle) in [
            ("file://", "needs a directory"),
            ("file:///srv/clips?x=1", "no query or fragment"),
            ("file:///srv/clips#x", "no query or fragment"),
            ("file:relative", "file:// or s3://"),
        ] {
            let text = reason(Storage::from_url(url));
            assert!(text.contains(needle), "{url}: {text}");
        }
    }

    #[test]
    fn s3_needs_credentials_and_a_usable_endpoint() {
        let text =
            reason(Storage::from_url_with_env("s3://clips/x", &env(&[("AWS_ACCESS_KEY_ID", "a")])));
        assert!(text.contains("AWS_SECRET_ACCESS_KEY"), "{text}");
        let text = reason(s3("s3://clips/x", &[("S3_ENDPOINT", "ftp://u:hunter2@host")]));
        assert!(text.contains("S3_ENDPOINT") && !text.contains("hunter2"), "{text}");
    }

    #[test]
    fn custom_endpoints_are_path_style_and_aws_is_not() {
        let storage = s3(
            "s3://clips/p",
            &[("S3_ENDPOINT", "http://127.0.0.1:9000/"), ("S3_REGION", "eu-west-3")],
        )
        .unwrap();
        let Storage::S3 { client, .. } = &storage else { panic!() };
        assert!(client.bucket.is_path_style());
        assert_eq!(client.bucket.url(), "http://127.0.0.1:9000/clips");
        assert_eq!(client.bucket.region().to_string(), "eu-west-3");
        assert_eq!(storage.to_string(), "s3://clips/p at http://127.0.0.1:9000/ (eu-west-3)");

        let storage = s3("s3://clips", &[("S3_REGION", "")]).unwrap();
        let Storage::S3 { client, .. } = &storage else { panic!() };
        assert!(!client.bucket.is_path_style());
        assert_eq!(client.bucket.region().to_string(), "us-east-1");
        assert_eq!(client.bucket.url(), "https://clips.s3.amazonaws.com");
    }

    #[test]
    fn secrets_never_show() {
        let storage = s3(
            "s3://clips/p",
            &[("S3_ENDPOINT", "http://127.0.0.1:9000"), ("AWS_SESSION_TOKEN", "tok-s3cret")],
        )
        .unwrap();
        for text in [format!("{storage:?}"), format!("{storage:#?}"), storage.to_string()] {
            assert!(!text.contains("s3cret") && !text.contains("AKIDEXAMPLE"), "{text}");
        }
    }

    #[test]
    fn keys_go_under_the_prefix() {
        let storage = s3("s3://clips/tenant/a", &[]).unwrap();
        assert_eq!(storage.object_name("videos/1/x.mp4").unwrap(), "tenant/a/videos/1/x.mp4");
        assert!(storage.object_name("../b/x.mp4").is_err());
        assert!(storage.object_name("/tenant/a/x").is_err());
        assert_eq!(storage.describe_key("videos/1/x.mp4"), "s3://clips/tenant/a/videos/1/x.mp4");
        let root = s3("s3://clips", &[]).unwrap();
        assert_eq!(root.object_name("videos/1/x.mp4").unwrap(), "videos/1/x.mp4");
        assert!(root.local_path("videos/1/x.mp4").is_err());
    }

    #[test]
    fn error_responses_are_classified() {
        let no_key = b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>";
        let err = http_error("videos/1/x.mp4", 404, no_key);
        assert_eq!(
            crate::bad_input_reason(&err).unwrap().to_string(),
            "stored file videos/1/x.mp4 is missing"
        );
        assert!(crate::bad_input_reason(&http_error("k", 404, b"")).is_some());
        let no_bucket = b"<Error><Code>NoSuchBucket</Code></Error>";
        let err = http_error("k", 404, no_bucket);
        assert!(crate::bad_input_reason(&err).is_none());
        assert_eq!(err.to_string(), "HTTP 404: NoSuchBucket");
        assert_eq!(http_error("k", 503, b"Slow Down\n").to_string(), "HTTP 503: Slow Down");
    }

    #[test]
    fn content_types_and_partial_names() {
        for (key, mime) in [
            ("clips/1/t/a.MP4", "video/mp4"),
            ("clips/1/t/a.m4v", "video/mp4"),
            ("videos/1/a.mov", "video/quicktime"),
            ("videos/1/a.mkv", "video/x-matroska"),
            ("clips/1/t/a.webm", "video/webm"),
            ("clips/1/t/a.jpg", "image/jpeg"),
            ("clips/1/t/a.JPEG", "image/jpeg"),
            ("clips/1/t/a.png", "image/png"),
            ("clips/1/t/a.json", "application/json"),
            ("x", "application/octet-stream"),
            ("dir.v2/x", "application/octet-stream"),
            ("videos/1/a.unknownext", "application/octet-stream"),
        ] {
            assert_eq!(content_type(key), mime, "{key}");
        }
        assert_eq!(partial_path(Path::new("/tmp/s/a.mp4")), Path::new("/tmp/s/a.mp4.partial"));
    }

    #[tokio::test]
    async fn local_storage_round_trip() {
        let root =
            std::env::temp_dir().join(format!("videoclip-storage-test-{}", std::process::id()));
        let storage = Storage::from_url(&format!("file://{}", root.display())).unwrap();
        let source = root.join("in.bin");
        tokio::fs::create_dir_all(&root).await.unwrap();
        tokio::fs::write(&source, b"hello").await.unwrap();
        assert_eq!(storage.put_file(&source, "videos/1/a.mp4").await.unwrap(), 5);
        assert!(storage.exists("videos/1/a.mp4").await.unwrap());
        let copy = storage.open_local("videos/1/a.mp4", &root.join("scratch")).await.unwrap();
        assert_eq!(
            (copy.path(), copy.size(), copy.is_temporary()),
            (root.join("videos/1/a.mp4").as_path(), 5, false)
        );
        drop(copy);
        assert_eq!(storage.fetch_to("videos/1/a.mp4", &root.join("out/b.mp4")).await.unwrap(), 5);
        let listed = storage.list("videos").await.unwrap();
        assert_eq!(
            listed.iter().map(|o| (o.key.as_str(), o.size)).collect::<Vec<_>>(),
            vec![("videos/1/a.mp4", 5)]
        );
        assert!(listed[0].modified.is_some());
        let err = storage.open_local("videos/1/none.mp4", &root).await.unwrap_err();
        assert_eq!(
            crate::bad_input_reason(&err).unwrap().to_string(),
            "stored file videos/1/none.mp4 is missing"
        );
        let err = storage.fetch_to("videos/1/none.mp4", &root.join("out/c.mp4")).await.unwrap_err();
        assert!(crate::bad_input_reason(&err).is_some(), "{err:#}");
        assert!(storage.open_local("../in.bin", &root).await.is_err());
        storage.delete("videos/1/a.mp4").await.unwrap();
        storage.delete("videos/1/a.mp4").await.unwrap();
        assert!(!storage.exists("videos/1/a.mp4").await.unwrap());
        tokio::fs::remove_dir_all(&root).await.unwrap();
    }
}
