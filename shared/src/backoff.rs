//! How long a loop that must keep going waits after failures in a row (the
//! scheduler's tick, the worker's fetch loop). Not a retry of one call: the
//! loop itself goes on, and the delay grows with each failure in a row and
//! starts over after a success. The delays come from `backon` (exponential,
//! with jitter so a fleet that lost its database does not come back in step).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Failures in a row and the delay before the next attempt.
#[derive(Debug)]
pub struct FailureBackoff {
    builder: ExponentialBuilder,
    delays: Option<ExponentialBackoff>,
    failures: u32,
}

impl Default for FailureBackoff {
    /// 100 ms after the first failure, doubling, at most 5 s, jittered.
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }
}

impl FailureBackoff {
    /// Delays from `min` doubling up to `max`, each jittered (up to twice as long).
    pub fn new(min: Duration, max: Duration) -> Self {
        let builder = ExponentialBuilder::default()
            .with_min_delay(min)
            .with_max_delay(max)
            .without_max_times()
            .with_jitter();
        Self { builder, delays: None, failures: 0 }
    }

    /// Records a failure; returns how many there have been in a row and how
    /// long to wait before the next attempt.
    pub fn failed(&mut self) -> (u32, Duration) {
        self.failures += 1;
        let builder = self.builder;
        let delays = self.delays.get_or_insert_with(|| builder.build());
        // Without a limit on times the iterator never ends; the fallback is
        // only for the type.
        (self.failures, delays.next().unwrap_or(Duration::from_secs(5)))
    }

    /// Records a success; returns how many failures came right before it
    /// (0 if none), so the caller can log a recovery once.
    pub fn succeeded(&mut self) -> u32 {
        self.delays = None;
        std::mem::take(&mut self.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_starts_over_after_success() {
        let (min, max) = (Duration::from_millis(100), Duration::from_millis(800));
        let mut backoff = FailureBackoff::new(min, max);
        let delays: Vec<Duration> = (0..8).map(|_| backoff.failed().1).collect();
        // Jitter adds up to one more delay: each lies in [d, 2d] for d = min * 2^n capped.
        for (n, delay) in delays.iter().enumerate() {
            let base = (min * 2u32.pow(n as u32)).min(max);
            assert!(*delay >= base && *delay <= base * 2, "failure {n}: {delay:?} vs {base:?}");
        }
        assert_eq!(backoff.succeeded(), 8);
        assert_eq!(backoff.succeeded(), 0);
        let (failures, delay) = backoff.failed();
        assert_eq!(failures, 1);
        assert!(delay >= min && delay <= min * 2, "{delay:?}");
    }
}
