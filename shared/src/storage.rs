//! Where videos, clips and thumbnails live, addressed by relative keys such
//! as `videos/7/3fa2...c1.mp4`.
//!
//! `file:///dir` stores under a local directory. Keys are checked before any
//! use: absolute keys, `..`, empty segments and backslashes are refused, so
//! no key can reach outside the storage root.

use crate::BadInput;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// A configured storage backend.
#[derive(Debug, Clone)]
pub enum Storage {
    /// A local directory (created on first write).
    Local { root: PathBuf },
}

impl Storage {
    /// Parses `STORAGE_URL`: `file:///abs/dir` or `file://./relative/dir`.
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        if let Some(rest) = url.strip_prefix("file://") {
            if rest.is_empty() {
                return Err(BadInput::new("STORAGE_URL file:// needs a directory").into());
            }
            return Ok(Storage::Local { root: PathBuf::from(rest) });
        }
        if url.starts_with("s3://") {
            return Err(BadInput::new("STORAGE_URL s3:// is not supported by this build yet; use file://").into());
        }
        Err(BadInput::new(format!("STORAGE_URL must start with file:// (got {url:?})")).into())
    }

    /// Copies a local file into storage under `key` and returns the stored
    /// size in bytes. The copy is written beside the target and renamed into
    /// place, so readers never see half a file.
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
        }
    }

    /// The local path of `key` (for `file://` storage).
    pub fn local_path(&self, key: &str) -> anyhow::Result<PathBuf> {
        check_key(key)?;
        match self {
            Storage::Local { root } => Ok(root.join(key)),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::check_key;

    #[test]
    fn keys_cannot_escape_the_root() {
        assert!(check_key("videos/1/abc.mp4").is_ok());
        for bad in ["", "/etc/passwd", "../x", "videos/../../x", "a//b", "a/./b", "a\\b", "videos/.."] {
            assert!(check_key(bad).is_err(), "{bad} accepted");
        }
    }
}
