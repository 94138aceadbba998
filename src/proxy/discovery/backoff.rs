//! How long to wait before asking an unreachable etcd again.
//!
//! Exponential backoff with jitter: each failure doubles the ceiling, up to a limit, and
//! the wait is drawn between half the ceiling and the ceiling ("equal jitter", from the
//! AWS Architecture Blog's "Exponential Backoff and Jitter"; etcd's own client jitters
//! its retries the same way). Doubling keeps a long outage from costing a request
//! storm; the random half keeps many balancers that lost etcd at the same moment from
//! all coming back at the same moment.
//!
//! OS concept: the thundering herd. Many waiters woken by one event (etcd is back) who
//! all act at once overload what woke them; `Backoff::next_wait` spreads them with its
//! random half, as the kernel learned to wake one `accept(2)` waiter instead of all.

use std::time::Duration;

use rand::RngExt;

/// The waits of one outage.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    limit: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(first: Duration, limit: Duration) -> Self {
        Backoff {
            first,
            limit,
            failures: 0,
        }
    }

    /// The wait after one more failure.
    pub fn next_wait(&mut self) -> Duration {
        let ceiling = self
            .first
            .saturating_mul(1u32 << self.failures.min(16))
            .min(self.limit);
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        half + Duration::from_micros(rand::rng().random_range(0..=half.as_micros() as u64))
    }

    /// Back to the first wait, after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_limit_and_reset_after_a_success() {
        let first = Duration::from_millis(100);
        let limit = Duration::from_secs(2);
        let mut backoff = Backoff::new(first, limit);
        let mut ceiling = first;
        for _ in 0..10 {
            let wait = backoff.next_wait();
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "{wait:?} within {ceiling:?}"
            );
            ceiling = (ceiling * 2).min(limit);
        }
        assert!(backoff.next_wait() >= limit / 2);
        backoff.reset();
        assert!(backoff.next_wait() <= first);
    }
}
