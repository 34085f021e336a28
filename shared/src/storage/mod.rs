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
//!
//! # Layout
//!
//! This file holds [`Storage`] and its public API. Each method checks the
//! key, then hands over to the backend, so backend code can assume a plain
//! relative key, and each backend can be read and changed on its own:
//!
//! - `keys`: [`check_key`] and the names derived from a key.
//! - `local`: the `file://` backend, with `file://` URL parsing.
//! - `s3`: the `s3://` backend (rust-s3), with `s3://` URL and environment
//!   parsing.
//! - `tests`: the unit tests of all three (`s3://` against a real server is
//!   `enqueue-cli/tests/s3_storage.rs`).

mod keys;
mod local;
mod s3;
#[cfg(test)]
mod tests;

pub use self::keys::check_key;
pub use self::s3::{S3Client, DEFAULT_REGION};

use self::keys::partial_path;
use self::s3::S3Settings;
use crate::config::redact_url;
use crate::BadInput;
use anyhow::{bail, Context};
use std::fmt;
use std::path::{Path, PathBuf};

/// A configured storage backend.
#[derive(Debug, Clone)]
pub enum Storage {
    /// A local directory (created on first write).
    Local { root: PathBuf },
    /// An S3-compatible bucket; keys live under `prefix/` (no slashes at
    /// either end; empty for the bucket's root).
    S3 { bucket: String, prefix: String, client: S3Client },
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
            return Ok(Storage::Local { root: local::root_from_url(url, rest)? });
        }
        if url.starts_with("s3://") {
            let (bucket, prefix) = s3::parse_url(url)?;
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
            Storage::Local { root } => local::put_file(root, source, key).await,
            Storage::S3 { client, .. } => {
                let object = self.object_name(key)?;
                client.put_file(source, key, &object, &self.describe_key(key)).await
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
            Storage::Local { root } => local::copy_out(root, key, partial).await,
            Storage::S3 { client, .. } => {
                let object = self.object_name(key)?;
                client.download(key, &object, &self.describe_key(key), partial).await
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
            Storage::Local { root } => local::open(root, key).await,
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
            Storage::Local { root } => local::exists(root, key).await,
            Storage::S3 { client, .. } => {
                let object = self.object_name(key)?;
                client.exists(&object, &self.describe_key(key)).await
            }
        }
    }

    /// Deletes `key`; deleting a key that does not exist is not an error.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        check_key(key)?;
        match self {
            Storage::Local { root } => local::delete(root, key).await,
            Storage::S3 { client, .. } => {
                let object = self.object_name(key)?;
                client.delete(key, &object, &self.describe_key(key)).await
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
            Storage::Local { root } => local::list(root, dir).await?,
            Storage::S3 { client, prefix, .. } => {
                client.list(prefix, dir, &self.describe_key(dir)).await?
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
            Storage::Local { root } => local::create_root(root).await,
            Storage::S3 { bucket, client, .. } => client.create_bucket(bucket).await,
        }
    }

    /// True for `s3://` storage.
    pub fn is_s3(&self) -> bool {
        matches!(self, Storage::S3 { .. })
    }

    /// A presigned GET URL for `key` that S3 honours for `seconds` (at most
    /// a week, SigV4's limit), with `filename` as the name a browser saves
    /// it under (`response-content-disposition`). Only for `s3://`
    /// storage: `file://` storage has no URL of its own (download links
    /// there are signed by `downloads::sign`). Makes no request.
    pub async fn presigned_get(
        &self,
        key: &str,
        seconds: u32,
        filename: Option<&str>,
    ) -> anyhow::Result<String> {
        check_key(key)?;
        match self {
            Storage::Local { .. } => {
                bail!("{} has no presigned URL (file:// storage)", self.describe_key(key))
            }
            Storage::S3 { client, .. } => {
                let object = self.object_name(key)?;
                client.presign_get(&object, seconds, filename, &self.describe_key(key)).await
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
