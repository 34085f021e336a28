//! The one error kind callers must tell apart: bad input.
//!
//! Bad input (a missing file, an unknown user, invalid JSON, a database that
//! cannot be reached with the given URL) is the caller's to fix: the CLI
//! exits with status 2 and a one-line reason, and a task fails at once
//! without retries. Everything else is an `anyhow::Error` with context.

use std::fmt;

/// An error the caller caused and can fix; never worth retrying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadInput(pub String);

impl BadInput {
    /// Wraps a one-line reason.
    pub fn new(reason: impl Into<String>) -> Self {
        BadInput(reason.into())
    }
}

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// Returns the bad-input reason if `err` or any error in its chain is a
/// [`BadInput`], so callers decide "exit 2" or "fail without retry".
pub fn bad_input_reason(err: &anyhow::Error) -> Option<&BadInput> {
    err.chain().find_map(|cause| cause.downcast_ref::<BadInput>())
}

/// Formats an error chain on one line (`outer: inner: root`), the form the
/// CLI prints and `error_message` stores.
pub fn one_line(err: &anyhow::Error) -> String {
    let text = format!("{err:#}");
    text.replace('\n', " ")
}

/// The exit status for a failure: 2 for bad input (the caller's to fix),
/// 1 for anything else, as docs/CONTRACT.md fixes them.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if bad_input_reason(err).is_some() {
        2
    } else {
        1
    }
}
