//! The `file://` backend: keys are paths under a local directory. Writes go
//! to a `.partial` file beside the target and are renamed into place, so a
//! reader never sees half a file. A write killed midway leaves its
//! `.partial` file behind: it is listed like any object, so `enqueue gc`
//! deletes it once it is older than `--older-than` (a write in progress is
//! younger than that, as with every other object gc keeps).

use super::keys::missing;
use super::{LocalCopy, StoredObject};
use crate::config::redact_url;
use crate::BadInput;
use anyhow::Context;
use std::path::{Path, PathBuf};
use url::Url;

/// The directory of a `file://` URL. `file:///abs/dir` (and
/// `file://localhost/abs/dir`) is a file URL proper: [`Url::to_file_path`],
/// percent-decoded. `file://./dir` is not: URL syntax has no relative file
/// URLs (url reads `.` as a host name and would resolve `..` segments away),
/// so a URL with a host is, as it always was, the relative path written
/// after `file://`.
pub(super) fn root_from_url(url: &str, rest: &str) -> Result<PathBuf, BadInput> {
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

/// Copies `source` to `root/key` (through `key.partial` beside it: its own
/// name, so `a.mp4` and `a.jpg` written at once never share one); returns
/// the size.
pub(super) async fn put_file(root: &Path, source: &Path, key: &str) -> anyhow::Result<u64> {
    let target = root.join(key);
    let parent = target.parent().context("storage key has no parent")?;
    tokio::fs::create_dir_all(parent)
        .await
        .with_context(|| format!("creating {}", parent.display()))?;
    let partial = super::keys::partial_path(&target);
    let size = tokio::fs::copy(source, &partial)
        .await
        .with_context(|| format!("copying {} into storage", source.display()))?;
    tokio::fs::rename(&partial, &target)
        .await
        .with_context(|| format!("moving {} into place", target.display()))?;
    Ok(size)
}

/// Copies `root/key` to `partial`; returns the size.
pub(super) async fn copy_out(root: &Path, key: &str, partial: &Path) -> anyhow::Result<u64> {
    let source = root.join(key);
    match tokio::fs::copy(&source, partial).await {
        Ok(size) => Ok(size),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !source.exists() => Err(missing(key)),
        Err(e) => {
            Err(e).with_context(|| format!("copying {} to {}", source.display(), partial.display()))
        }
    }
}

/// The stored file itself (not a copy).
pub(super) async fn open(root: &Path, key: &str) -> anyhow::Result<LocalCopy> {
    let path = root.join(key);
    match tokio::fs::metadata(&path).await {
        Ok(meta) if meta.is_file() => Ok(LocalCopy { path, size: meta.len(), temporary: false }),
        Ok(_) => Err(BadInput::new(format!("stored file {key} is not a file")).into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(missing(key)),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub(super) async fn exists(root: &Path, key: &str) -> anyhow::Result<bool> {
    let path = root.join(key);
    tokio::fs::try_exists(&path).await.with_context(|| format!("reading {}", path.display()))
}

/// Removes `root/key`; a file that is not there is not an error.
pub(super) async fn delete(root: &Path, key: &str) -> anyhow::Result<()> {
    let path = root.join(key);
    match tokio::fs::remove_file(&path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("deleting {}", path.display())),
    }
}

/// Every file under `root/dir` (recursively, in no particular order),
/// leftover `.partial` files included (module doc); a directory that does
/// not exist holds nothing.
pub(super) async fn list(root: &Path, dir: &str) -> anyhow::Result<Vec<StoredObject>> {
    let mut objects = Vec::new();
    let mut pending = vec![(root.join(dir), dir.to_string())];
    while let Some((path, key)) = pending.pop() {
        let mut entries = match tokio::fs::read_dir(&path).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("listing {}", path.display())),
        };
        while let Some(entry) =
            entries.next_entry().await.with_context(|| format!("listing {}", path.display()))?
        {
            let name = entry.file_name().to_string_lossy().to_string();
            let child = if key.is_empty() { name.clone() } else { format!("{key}/{name}") };
            let meta = entry.metadata().await?;
            if meta.is_dir() {
                pending.push((entry.path(), child));
            } else {
                objects.push(StoredObject {
                    key: child,
                    size: meta.len(),
                    modified: meta.modified().ok(),
                });
            }
        }
    }
    Ok(objects)
}

pub(super) async fn create_root(root: &Path) -> anyhow::Result<()> {
    tokio::fs::create_dir_all(root).await.with_context(|| format!("creating {}", root.display()))
}
