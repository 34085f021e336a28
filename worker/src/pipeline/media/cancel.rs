use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Cheap, clonable cancellation token with an optional deadline.
///
/// Clones share the same flag, so the job runner keeps one clone and hands
/// another to the media step; [`Cancel::cancel`] on any clone stops them all.
/// A deadline makes the token report cancelled once it passes, which is how a
/// per-job time limit reaches a running ffmpeg. Every long ffmpeg run polls
/// [`Cancel::is_cancelled`] and kills its child promptly, returning
/// [`super::MediaError::Cancelled`].
#[derive(Clone, Debug, Default)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
    deadline: Option<Instant>,
}

impl Cancel {
    /// A token that is never cancelled until [`Cancel::cancel`] is called.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token that reports cancelled once `deadline` has passed (or when cancelled).
    pub fn with_deadline(deadline: Instant) -> Self {
        Self {
            flag: Arc::default(),
            deadline: Some(deadline),
        }
    }

    /// A token that reports cancelled `timeout` from now (or when cancelled).
    pub fn with_timeout(timeout: Duration) -> Self {
        Self::with_deadline(Instant::now() + timeout)
    }

    /// A clone sharing this token's flag whose deadline is the earlier of the
    /// existing one and `deadline`; used to bound one step inside a longer job.
    pub fn child_with_deadline(&self, deadline: Instant) -> Self {
        Self {
            flag: self.flag.clone(),
            deadline: Some(self.deadline.map_or(deadline, |d| d.min(deadline))),
        }
    }

    /// Request cancellation of every run using this token or one of its clones.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Whether work should stop: the flag was set or the deadline has passed.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Whether the deadline (rather than an explicit cancel) has passed; lets a
    /// caller report a timeout differently from a user cancel.
    pub fn deadline_passed(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// The deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// `Err(MediaError::Cancelled)` if cancelled; used between steps.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        if self.is_cancelled() {
            Err(super::MediaError::Cancelled.into())
        } else {
            Ok(())
        }
    }
}
