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

/// Why a database call failed, for the callers that branch on it (retry a
/// claim after a deadlock, but not after a bad row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseFault {
    /// InnoDB chose this transaction as a deadlock victim (1213) or a lock
    /// wait timed out (1205): the statement can simply run again.
    Deadlock,
    /// No connection: the server is down, restarting or unreachable.
    Unavailable,
    /// Anything else (a constraint, a bad row, a bug): retrying will not help.
    Other,
}

/// Classifies `err` by the first database or connection error in its chain.
pub fn database_fault(err: &anyhow::Error) -> DatabaseFault {
    use diesel::result::{DatabaseErrorKind, Error as DieselError};
    for cause in err.chain() {
        if let Some(error) = cause.downcast_ref::<DieselError>() {
            return match error {
                DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => {
                    DatabaseFault::Unavailable
                }
                DieselError::DatabaseError(_, info) => {
                    let message = info.message();
                    if message.contains("Deadlock found") || message.contains("Lock wait timeout") {
                        DatabaseFault::Deadlock
                    } else {
                        DatabaseFault::Other
                    }
                }
                DieselError::BrokenTransactionManager => DatabaseFault::Unavailable,
                _ => DatabaseFault::Other,
            };
        }
        if cause.downcast_ref::<diesel::ConnectionError>().is_some()
            || cause.downcast_ref::<std::io::Error>().is_some()
            || cause.downcast_ref::<diesel_async::pooled_connection::bb8::RunError>().is_some()
        {
            return DatabaseFault::Unavailable;
        }
    }
    DatabaseFault::Other
}

#[cfg(test)]
mod fault_tests {
    use super::{database_fault, DatabaseFault};
    use diesel::result::{DatabaseErrorKind, Error};

    fn database_error(kind: DatabaseErrorKind, message: &str) -> anyhow::Error {
        anyhow::Error::new(Error::DatabaseError(kind, Box::new(message.to_string())))
            .context("claiming tasks")
    }

    #[test]
    fn deadlocks_and_lost_connections_are_told_apart_from_bad_rows() {
        let deadlock = database_error(
            DatabaseErrorKind::Unknown,
            "Deadlock found when trying to get lock; try restarting transaction",
        );
        assert_eq!(database_fault(&deadlock), DatabaseFault::Deadlock);
        let wait = database_error(DatabaseErrorKind::Unknown, "Lock wait timeout exceeded");
        assert_eq!(database_fault(&wait), DatabaseFault::Deadlock);
        let closed = database_error(DatabaseErrorKind::ClosedConnection, "server has gone away");
        assert_eq!(database_fault(&closed), DatabaseFault::Unavailable);
        let io = anyhow::Error::new(std::io::Error::other("connection reset")).context("x");
        assert_eq!(database_fault(&io), DatabaseFault::Unavailable);
        let unique = database_error(DatabaseErrorKind::UniqueViolation, "Duplicate entry");
        assert_eq!(database_fault(&unique), DatabaseFault::Other);
        assert_eq!(database_fault(&anyhow::anyhow!("a bad row")), DatabaseFault::Other);
    }
}
