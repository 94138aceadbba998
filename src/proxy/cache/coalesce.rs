//! Request coalescing: when many clients miss on the same key at once, one of them (the
//! leader) asks the backend and the others wait for its answer.
//!
//! OS concept: condition variables. The followers must sleep until a condition becomes
//! true ("the leader has finished") that another thread makes true. A `Condvar` is made
//! for exactly that: each follower locks the flight's mutex, checks the condition, and
//! if it is not yet true calls `wait`, which atomically releases the mutex and sleeps;
//! the leader sets the outcome under the same mutex and calls `notify_all`. Checking in a
//! loop guards against spurious wake-ups, and every wait has a deadline (the upstream
//! timeout): a follower whose leader is stuck gives up and fetches for itself.
//!
//! nginx calls this `proxy_cache_lock` (with `proxy_cache_lock_timeout`); Varnish does it
//! by default ("request coalescing"). Without it, a popular object expiring sends every
//! concurrent request to the backend at the same moment (a "thundering herd").

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// How a leader's fetch ended, as the followers need to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The response was stored: followers answer from the cache.
    Stored,
    /// Nothing usable was stored (not cacheable, an error, or the leader failed):
    /// followers fetch for themselves.
    NotStored,
}

/// One fetch in progress that others may wait on.
pub struct Flight {
    /// Protects the outcome: `None` while the leader is still fetching.
    outcome: Mutex<Option<Outcome>>,
    /// Signalled once, when the outcome is set.
    finished: Condvar,
    /// Led by a revalidation in the background (`refresh.rs`), whose fetch waits its turn
    /// in the bounded queue for a worker.
    background: bool,
}

impl Flight {
    /// Sleeps until the leader finishes or `deadline` passes (then `None`).
    pub fn wait(&self, deadline: Instant) -> Option<Outcome> {
        let mut outcome = self.outcome.lock();
        while outcome.is_none() {
            if self.finished.wait_until(&mut outcome, deadline).timed_out() {
                break;
            }
        }
        *outcome
    }

    /// Whether the leader is a background revalidation (see `Cache::serve` for why a
    /// worker must not wait on one).
    pub fn in_background(&self) -> bool {
        self.background
    }
}

/// Your part in a fetch of a key.
pub enum Role<'a> {
    /// Nobody is fetching this key: you do, then call `Leader::finish`.
    Leader(Leader<'a>),
    /// Someone is: wait on the flight.
    Follower(Arc<Flight>),
}

/// The table of fetches in progress, by cache key.
#[derive(Default)]
pub struct Coalescer {
    /// Protects the table: held only to add or remove a flight, never while fetching.
    flights: Mutex<HashMap<String, Arc<Flight>>>,
}

impl Coalescer {
    /// Joins the fetch of `key`, becoming its leader if there is none.
    pub fn join(&self, key: &str) -> Role<'_> {
        self.join_as(key, false)
    }

    /// The same, for a revalidation in the background: a flight it leads says so.
    pub fn join_in_background(&self, key: &str) -> Role<'_> {
        self.join_as(key, true)
    }

    fn join_as(&self, key: &str, background: bool) -> Role<'_> {
        let mut flights = self.flights.lock();
        if let Some(flight) = flights.get(key) {
            return Role::Follower(Arc::clone(flight));
        }
        let flight = Arc::new(Flight {
            outcome: Mutex::new(None),
            finished: Condvar::new(),
            background,
        });
        flights.insert(key.to_string(), Arc::clone(&flight));
        Role::Leader(Leader {
            coalescer: self,
            key: key.to_string(),
            flight,
            done: false,
        })
    }

    /// Whether a fetch of `key` is in progress now.
    pub fn is_fetching(&self, key: &str) -> bool {
        self.flights.lock().contains_key(key)
    }

    /// Number of fetches in progress (for tests).
    pub fn in_flight(&self) -> usize {
        self.flights.lock().len()
    }
}

/// The leader's duty to tell the followers how it went. If the leader's thread unwinds
/// before finishing, `Drop` reports `NotStored` so no follower waits for nothing.
pub struct Leader<'a> {
    coalescer: &'a Coalescer,
    key: String,
    flight: Arc<Flight>,
    done: bool,
}

impl Leader<'_> {
    pub fn finish(mut self, outcome: Outcome) {
        self.publish(outcome);
    }

    fn publish(&mut self, outcome: Outcome) {
        if self.done {
            return;
        }
        self.done = true;
        // Leave the table first: a request arriving from now on finds the cache filled
        // (the leader stored before finishing) or starts a new flight.
        self.coalescer.flights.lock().remove(&self.key);
        *self.flight.outcome.lock() = Some(outcome);
        self.flight.finished.notify_all();
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.publish(Outcome::NotStored);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;
    use std::thread;
    use std::time::Duration;

    use super::*;

    #[test]
    fn followers_wake_with_the_leaders_outcome() {
        let coalescer = Coalescer::default();
        let Role::Leader(leader) = coalescer.join("k") else {
            panic!("first is leader")
        };
        let barrier = Barrier::new(5);
        thread::scope(|scope| {
            let waiters: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let Role::Follower(flight) = coalescer.join("k") else {
                            panic!("leader exists")
                        };
                        barrier.wait();
                        flight.wait(Instant::now() + Duration::from_secs(10))
                    })
                })
                .collect();
            barrier.wait();
            leader.finish(Outcome::Stored);
            for waiter in waiters {
                assert_eq!(waiter.join().unwrap(), Some(Outcome::Stored));
            }
        });
        assert_eq!(coalescer.in_flight(), 0);
        assert!(matches!(coalescer.join("k"), Role::Leader(_)));
    }

    #[test]
    fn a_dropped_leader_releases_followers_and_waits_time_out() {
        let coalescer = Coalescer::default();
        let leader = coalescer.join("k");
        let Role::Follower(flight) = coalescer.join("k") else {
            panic!()
        };
        assert_eq!(flight.wait(Instant::now() + Duration::from_millis(20)), None);
        drop(leader);
        assert_eq!(flight.wait(Instant::now()), Some(Outcome::NotStored));
    }
}
