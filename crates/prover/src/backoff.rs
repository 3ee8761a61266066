//! Every retry schedule of the prover: exponential backoff with jitter.
//!
//! The `n`-th delay (from 0) is drawn uniformly from `[ceiling(n) / 2, ceiling(n)]`, where
//! `ceiling(n) = min(INITIAL_DELAY · FACTORⁿ, MAX_DELAY)`. The jitter spreads out provers that
//! lost the coordinator at the same moment, so they do not all come back at once; the lower half
//! bound keeps every delay a real pause.
//!
//! One schedule serves hello (retried until the coordinator is up), lease and submit.

use std::time::Duration;

use rand::Rng as _;

/// First delay's ceiling: short, so a coordinator back from a restart is found quickly.
pub const INITIAL_DELAY: Duration = Duration::from_millis(200);

/// Growth of the ceiling per attempt.
pub const FACTOR: u32 = 2;

/// Largest delay: a prover polls a dead coordinator no more than about every 10 s, and notices a
/// recovered one within 10 s.
pub const MAX_DELAY: Duration = Duration::from_secs(10);

/// One retry sequence: call [`Backoff::next_delay`] after each failure, [`Backoff::reset`] after
/// a success.
#[derive(Clone, Debug, Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// A sequence with no failures yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The ceiling of the delay after `failures` earlier failures.
    pub fn ceiling(failures: u32) -> Duration {
        let factor = FACTOR.checked_pow(failures).unwrap_or(u32::MAX);
        INITIAL_DELAY.saturating_mul(factor).min(MAX_DELAY)
    }

    /// The delay before the next attempt; counts one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = Self::ceiling(self.failures);
        self.failures = self.failures.saturating_add(1);
        rand::thread_rng().gen_range(ceiling / 2..=ceiling)
    }

    /// Failures counted since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Start over after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}
