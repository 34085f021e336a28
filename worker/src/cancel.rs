//! A cheap, clonable "stop now" flag for one task's run, with an optional
//! deadline.
//!
//! The heartbeat sets it when the task's lease is lost (cancelled by an
//! operator, reaped, taken over); a deadline makes it fire by itself, which
//! is how a per-step time limit reaches a running ffmpeg or whisper. Every
//! long step polls [`Cancel::is_cancelled`] (whisper through its abort
//! callback, ffmpeg runs by killing the child) or awaits
//! [`Cancel::cancelled`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Shared cancellation flag; clones share the flag (not the deadline).
#[derive(Clone, Debug, Default)]
pub struct Cancel {
    inner: Arc<Inner>,
    deadline: Option<Instant>,
}

#[derive(Debug, Default)]
struct Inner {
    flag: AtomicBool,
    notify: Notify,
}

impl Cancel {
    /// A flag not yet set, without deadline.
    pub fn new() -> Self {
        Self::default()
    }

    /// A flag that also reports cancelled once `deadline` has passed.
    pub fn with_deadline(deadline: Instant) -> Self {
        Cancel { inner: Arc::default(), deadline: Some(deadline) }
    }

    /// A flag that reports cancelled `timeout` from now (or when cancelled).
    pub fn with_timeout(timeout: Duration) -> Self {
        Self::with_deadline(Instant::now() + timeout)
    }

    /// A clone sharing this flag whose deadline is the earlier of the
    /// existing one and `deadline`: bounds one step inside a longer job.
    pub fn child_with_deadline(&self, deadline: Instant) -> Self {
        Cancel {
            inner: self.inner.clone(),
            deadline: Some(self.deadline.map_or(deadline, |d| d.min(deadline))),
        }
    }

    /// Sets the flag and wakes every waiter.
    pub fn cancel(&self) {
        self.inner.flag.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// True once cancelled or past the deadline.
    pub fn is_cancelled(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst) || self.deadline_passed()
    }

    /// True if the deadline (rather than an explicit cancel) has passed, so a
    /// caller can report a timeout differently from a cancel.
    pub fn deadline_passed(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// The deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Returns once cancelled or past the deadline (at once if already).
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.is_cancelled() {
                return;
            }
            match self.deadline {
                Some(deadline) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(deadline.into()) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// `Err(MediaError::Cancelled)` if cancelled; used between media steps.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        if self.is_cancelled() {
            Err(crate::pipeline::media::MediaError::Cancelled.into())
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cancel;
    use std::time::Duration;

    #[tokio::test]
    async fn clones_share_the_flag_and_waiters_wake() {
        let cancel = Cancel::new();
        let waiter = cancel.clone();
        let handle = tokio::spawn(async move { waiter.cancelled().await });
        assert!(!cancel.is_cancelled());
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(1), handle).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn deadlines_fire_by_themselves() {
        let cancel = Cancel::with_timeout(Duration::from_millis(50));
        assert!(!cancel.is_cancelled());
        tokio::time::timeout(Duration::from_secs(1), cancel.cancelled()).await.unwrap();
        assert!(cancel.deadline_passed());
    }
}
