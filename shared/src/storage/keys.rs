//! Storage keys: the one rule every key passes before any use
//! ([`check_key`]), and the names derived from a key (the `.partial` file a
//! download is written to, the Content-Type an object is stored with, the
//! error for a key that is not stored). Both backends use these, so a key
//! means the same thing whichever one is configured.

use crate::BadInput;
use std::path::{Path, PathBuf};

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

/// A key that is not stored: bad input, since no retry brings it back.
pub(super) fn missing(key: &str) -> anyhow::Error {
    BadInput::new(format!("stored file {key} is missing")).into()
}

/// `target` with `.partial` appended to its name.
pub(super) fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    target.with_file_name(name)
}

/// The MIME type stored with an object, from its key's extension as
/// mime_guess knows it; `application/octet-stream` when it knows none.
pub(super) fn content_type(key: &str) -> &'static str {
    let ext = Path::new(key).extension().and_then(|e| e.to_str()).unwrap_or_default();
    // mime_guess says `video/x-m4v` (Apple's unregistered name); an .m4v is
    // an MP4 file, and objects have always been stored as `video/mp4`.
    if ext.eq_ignore_ascii_case("m4v") {
        return "video/mp4";
    }
    mime_guess::from_ext(ext).first_raw().unwrap_or("application/octet-stream")
}
