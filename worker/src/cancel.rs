//! The flag that stops one task's run: tokio-util's `CancellationToken`.
//!
//! The heartbeat cancels a task's token when its lease is lost (cancelled
//! by an operator, reaped, taken over). Each step runs under a child token
//! that its deadline also cancels (`crate::deadline`), so a step limit
//! reaches a running ffmpeg (killed) or whisper (its abort callback polls
//! `is_cancelled`) the same way a lost lease does.

use std::time::Duration;

pub use tokio_util::sync::CancellationToken as Cancel;

/// `Err(MediaError::Cancelled)` if `cancel` fired; used between media steps.
pub(crate) fn check(cancel: &Cancel) -> anyhow::Result<()> {
    if cancel.is_cancelled() {
        Err(crate::pipeline::media::MediaError::Cancelled.into())
    } else {
        Ok(())
    }
}

/// A child of `parent` that is also cancelled `after` from now. The timer
/// ends as soon as the child is cancelled (or dropped through a drop guard).
pub fn cancelled_after(parent: &Cancel, after: Duration) -> Cancel {
    let child = parent.child_token();
    let timer = child.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(after) => timer.cancel(),
            _ = timer.cancelled() => {}
        }
    });
    child
}

#[cfg(test)]
mod tests {
    use super::*;

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
    async fn a_timed_child_fires_by_itself_and_with_its_parent() {
        let parent = Cancel::new();
        let timed = cancelled_after(&parent, Duration::from_millis(50));
        tokio::time::timeout(Duration::from_secs(1), timed.cancelled()).await.unwrap();
        assert!(!parent.is_cancelled(), "a child's deadline does not stop the task");
        let later = cancelled_after(&parent, Duration::from_secs(3600));
        parent.cancel();
        assert!(later.is_cancelled(), "cancelling the task stops every step");
    }
}
