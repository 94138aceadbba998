//! Whether a backend may receive requests: passive and active failure detection.
//!
//! OS concept: failure detection with timeouts. A process cannot tell a dead peer from
//! a slow one; it can only count what went wrong and for how long. Two detectors, as in
//! real balancers:
//! - passive (nginx `max_fails` / `fail_timeout`): live requests that fail to connect or
//!   time out are counted; `max_fails` in a row take the backend out for `fail_timeout`.
//!   After that it is eligible again: the next request is its trial. A success puts it
//!   back for good; one more failure takes it out for another `fail_timeout`.
//! - active (HAProxy `check inter rise fall`): a checker thread asks each backend's
//!   health path every interval; `fall` failures in a row mark it down, `rise` successes
//!   mark it up (see `checker.rs`).
//!
//! Everything here is atomics, read on every pick by every worker without a lock.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Thresholds of the passive detector.
#[derive(Debug, Clone, Copy)]
pub struct PassivePolicy {
    /// Consecutive failures that take a backend out (`--max-fails`); 0 disables.
    pub max_fails: u32,
    /// How long it stays out (`--fail-timeout`).
    pub fail_timeout: Duration,
}

impl Default for PassivePolicy {
    fn default() -> Self {
        PassivePolicy {
            max_fails: 3,
            fail_timeout: Duration::from_secs(10),
        }
    }
}

/// Milliseconds since the first call: a cheap monotonic clock that fits in an atomic.
pub fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// A change of state worth telling the operator about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Down(String),
    Up(String),
}

/// The health state of one backend.
#[derive(Debug)]
pub struct Health {
    /// Passive: failures in a row from live traffic.
    consecutive_failures: AtomicU32,
    /// Passive: the backend is skipped until this `now_ms()`; 0 means never taken out.
    down_until_ms: AtomicU64,
    /// Passive: when it was last taken out (`now_ms()`), so the checker can tell whether
    /// its passing checks came after that.
    taken_out_at_ms: AtomicU64,
    /// Active: the checker's verdict (up until checks say otherwise).
    check_up: AtomicBool,
    /// The text of the most recent failure, for `/stats`. Protected by a mutex because a
    /// string cannot be swapped atomically; taken only to copy a short string in or
    /// out, never while doing I/O.
    last_error: Mutex<Option<String>>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            consecutive_failures: AtomicU32::new(0),
            down_until_ms: AtomicU64::new(0),
            taken_out_at_ms: AtomicU64::new(0),
            check_up: AtomicBool::new(true),
            last_error: Mutex::new(None),
        }
    }
}

impl Health {
    /// Whether the backend may be picked at time `now` (milliseconds from `now_ms`).
    pub fn is_up(&self, now: u64) -> bool {
        self.check_up.load(Ordering::Relaxed) && now >= self.down_until_ms.load(Ordering::Relaxed)
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }

    /// A live request could not connect or timed out.
    pub fn record_failure(&self, now: u64, policy: &PassivePolicy, reason: &str) -> Option<Transition> {
        *self.last_error.lock() = Some(reason.to_string());
        let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if policy.max_fails == 0 || failures < policy.max_fails {
            return None;
        }
        let was_out = self.down_until_ms.load(Ordering::Relaxed) > now;
        if !was_out {
            self.taken_out_at_ms.store(now, Ordering::Relaxed);
        }
        self.down_until_ms
            .store(now + policy.fail_timeout.as_millis() as u64, Ordering::Relaxed);
        (!was_out).then(|| {
            Transition::Down(format!(
                "{failures} failures in a row (last: {reason}); out for {:?}",
                policy.fail_timeout
            ))
        })
    }

    /// A live request got an answer (any status: the backend is alive).
    pub fn record_success(&self) -> Option<Transition> {
        if self.consecutive_failures.swap(0, Ordering::Relaxed) == 0 {
            return None;
        }
        // Only the first success after being taken out reports the recovery.
        (self.down_until_ms.swap(0, Ordering::Relaxed) != 0)
            .then(|| Transition::Up("a request succeeded after the fail timeout".into()))
    }

    /// The active checker's verdict changed. Coming up after `rise` passed checks is
    /// stronger evidence than the passive guess, so it also ends a passive time-out.
    pub fn set_check_up(&self, up: bool, reason: &str) {
        self.check_up.store(up, Ordering::Relaxed);
        if up {
            self.consecutive_failures.store(0, Ordering::Relaxed);
            self.down_until_ms.store(0, Ordering::Relaxed);
        } else {
            *self.last_error.lock() = Some(reason.to_string());
        }
    }

    pub fn check_up(&self) -> bool {
        self.check_up.load(Ordering::Relaxed)
    }

    /// Whether live failures have the backend out at `now`, and since when.
    pub fn passive_out_since(&self, now: u64) -> Option<u64> {
        (self.down_until_ms.load(Ordering::Relaxed) > now)
            .then(|| self.taken_out_at_ms.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_fails_in_a_row_take_a_backend_out_until_the_fail_timeout() {
        let policy = PassivePolicy {
            max_fails: 3,
            fail_timeout: Duration::from_millis(1000),
        };
        let health = Health::default();
        assert!(health.is_up(100));
        assert_eq!(health.record_failure(100, &policy, "refused"), None);
        // A success in between resets the count.
        assert_eq!(health.record_success(), None);
        assert_eq!(health.record_failure(110, &policy, "refused"), None);
        assert_eq!(health.record_failure(120, &policy, "refused"), None);
        assert!(matches!(
            health.record_failure(130, &policy, "refused"),
            Some(Transition::Down(_))
        ));
        assert!(!health.is_up(131));
        assert!(!health.is_up(1129));
        // After the fail timeout, one trial: a failure takes it out again at once...
        assert!(health.is_up(1130));
        assert_eq!(
            health.record_failure(1130, &policy, "refused"),
            Some(Transition::Down(
                "4 failures in a row (last: refused); out for 1s".into()
            ))
        );
        assert!(!health.is_up(1131));
        // ...and a success brings it back.
        assert!(health.is_up(2130));
        assert!(matches!(health.record_success(), Some(Transition::Up(_))));
        assert!(health.is_up(2131));
        assert_eq!(health.consecutive_failures(), 0);
        assert_eq!(health.last_error().as_deref(), Some("refused"));
    }

    #[test]
    fn the_active_verdict_overrides_passive_health() {
        let health = Health::default();
        health.set_check_up(false, "health check: 500");
        assert!(!health.is_up(10));
        health.set_check_up(true, "");
        assert!(health.is_up(10));
        // Passing checks also end a passive time-out.
        let policy = PassivePolicy {
            max_fails: 1,
            fail_timeout: Duration::from_secs(60),
        };
        health.record_failure(10, &policy, "refused");
        assert!(!health.is_up(11));
        health.set_check_up(true, "");
        assert!(health.is_up(11));
    }
}
