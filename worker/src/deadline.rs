//! Per-step time limits for a task's run.
//!
//! The heartbeat keeps a lease alive for as long as the worker process is
//! alive, so a step that hangs (an ffmpeg reading a pipe nobody writes, a
//! storage server that accepts and never answers) would hold its task
//! forever. Every step of a video task therefore runs under a limit scaled
//! to the media's duration: `base + factor × media seconds`. A step past its
//! limit is stopped (its ffmpeg killed, whisper aborted through its abort
//! callback, an await dropped) and the attempt fails as retryable with a
//! [`StepTimedOut`] error naming the step and the limit.

use crate::cancel::Cancel;
use std::future::Future;
use std::time::Duration;

/// How long a step may take: `base + factor × media seconds`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLimits {
    /// Fixed part of every step's limit (process start-up, network latency).
    pub base: Duration,
    /// Seconds allowed per second of media.
    pub factor: f64,
}

impl Default for StepLimits {
    /// 60 s plus 5 s per second of media: whisper base runs at 0.15–0.75×
    /// real time on two loaded cores, cutting well under 1×.
    fn default() -> Self {
        StepLimits { base: Duration::from_secs(60), factor: 5.0 }
    }
}

impl StepLimits {
    /// The limit of a step over `media_seconds` of media (negative or
    /// unknown durations count as zero).
    pub fn limit(&self, media_seconds: f64) -> Duration {
        let scaled = (self.factor * media_seconds.max(0.0)).clamp(0.0, 7.0 * 24.0 * 3600.0);
        self.base + Duration::from_secs_f64(scaled)
    }
}

/// A step ran past its limit; the attempt fails and is retried.
#[derive(Debug, thiserror::Error)]
#[error("step {step} exceeded its time limit of {limit_seconds:.0} s ({base_seconds:.0} s + {factor} s per second of {media_seconds:.1} s of media)")]
pub struct StepTimedOut {
    pub step: &'static str,
    pub limit_seconds: f64,
    pub base_seconds: f64,
    pub factor: f64,
    pub media_seconds: f64,
}

/// Runs one step under its limit. `step` gets a [`Cancel`] that shares the
/// task's flag and also fires at the step's deadline, so cooperative work
/// (ffmpeg, whisper) stops itself; the future is dropped at the deadline
/// either way. Returns the step's own result, or [`StepTimedOut`] if the
/// deadline passed (and the task itself was not cancelled).
pub async fn run_step<T, F, Fut>(
    name: &'static str,
    limits: StepLimits,
    media_seconds: f64,
    cancel: &Cancel,
    step: F,
) -> anyhow::Result<T>
where
    F: FnOnce(Cancel) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let limit = limits.limit(media_seconds);
    let child = crate::cancel::cancelled_after(cancel, limit);
    // Ends the timer when the step is over, however it ends.
    let _end_timer = child.clone().drop_guard();
    let timed_out = || StepTimedOut {
        step: name,
        limit_seconds: limit.as_secs_f64(),
        base_seconds: limits.base.as_secs_f64(),
        factor: limits.factor,
        media_seconds,
    };
    let result = tokio::select! {
        result = step(child.clone()) => result,
        _ = child.cancelled() => {
            if cancel.is_cancelled() {
                Err(crate::pipeline::media::MediaError::Cancelled.into())
            } else {
                Err(timed_out().into())
            }
        }
    };
    match result {
        // The step saw its deadline through the child token and stopped
        // with its own "cancelled" error: report the timeout instead.
        Err(_) if child.is_cancelled() && !cancel.is_cancelled() => Err(timed_out().into()),
        other => other,
    }
}

/// The [`StepTimedOut`] in `err`'s chain, if any.
pub fn timed_out(err: &anyhow::Error) -> Option<&StepTimedOut> {
    err.chain().find_map(|e| e.downcast_ref::<StepTimedOut>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_scale_with_the_media() {
        let limits = StepLimits { base: Duration::from_secs(10), factor: 2.0 };
        assert_eq!(limits.limit(0.0), Duration::from_secs(10));
        assert_eq!(limits.limit(30.0), Duration::from_secs(70));
        assert_eq!(limits.limit(-5.0), Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_hung_step_is_stopped_at_its_deadline() {
        let limits = StepLimits { base: Duration::from_millis(100), factor: 0.0 };
        let cancel = Cancel::new();
        let err = run_step("fetch", limits, 12.0, &cancel, |_| {
            std::future::pending::<anyhow::Result<()>>()
        })
        .await
        .unwrap_err();
        let timeout = timed_out(&err).expect("a StepTimedOut");
        assert_eq!(timeout.step, "fetch");
        assert!(err.to_string().contains("step fetch exceeded its time limit"), "{err}");
    }

    #[tokio::test]
    async fn a_cancelled_task_is_not_reported_as_a_timeout() {
        let limits = StepLimits { base: Duration::from_secs(60), factor: 0.0 };
        let cancel = Cancel::new();
        cancel.cancel();
        let err = run_step("audio", limits, 1.0, &cancel, |_| {
            std::future::pending::<anyhow::Result<()>>()
        })
        .await
        .unwrap_err();
        assert!(timed_out(&err).is_none(), "{err}");
    }

    #[tokio::test]
    async fn a_step_in_time_returns_its_value() {
        let cancel = Cancel::new();
        let value = run_step("probe", StepLimits::default(), 1.0, &cancel, |_| async { Ok(7) })
            .await
            .unwrap();
        assert_eq!(value, 7);
    }
}
