//! Bounded exponential backoff with seeded jitter, for reconnects, lane re-opens and retried alerts.

use rand::{Rng, SeedableRng};
use std::time::Duration;

/// Bounded exponential backoff with jitter.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First delay.
    pub initial: Duration,
    /// Largest delay (the doubling stops here).
    pub max: Duration,
    /// Fraction of each delay taken off at random (0 = none, 1 = full jitter).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(2),
            jitter: 0.5,
        }
    }
}

/// Exponential backoff state.
#[derive(Debug)]
pub(crate) struct Backoff {
    policy: RetryPolicy,
    attempt: u32,
    rng: rand_pcg::Pcg64Mcg,
}

impl Backoff {
    pub(crate) fn new(policy: RetryPolicy, seed: u64) -> Self {
        Backoff {
            policy,
            attempt: 0,
            rng: rand_pcg::Pcg64Mcg::seed_from_u64(seed),
        }
    }

    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    pub(crate) fn next(&mut self) -> Duration {
        let factor = 2f64.powi(self.attempt.min(30) as i32);
        let base = self.policy.initial.mul_f64(factor).min(self.policy.max);
        self.attempt = self.attempt.saturating_add(1);
        let jitter = self.policy.jitter.clamp(0.0, 1.0) * self.rng.random::<f64>();
        base.mul_f64(1.0 - jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let mut b = Backoff::new(RetryPolicy::default(), 1);
        let d: Vec<Duration> = (0..10).map(|_| b.next()).collect();
        assert!(d[0] <= Duration::from_millis(50) && d[0] >= Duration::from_millis(25));
        assert!(d.iter().all(|x| *x <= Duration::from_secs(2)));
        assert!(d[9] >= Duration::from_secs(1));
        b.reset();
        assert!(b.next() <= Duration::from_millis(50));
    }
}
