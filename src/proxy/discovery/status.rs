//! What one discovery watcher is doing, for `/stats` and `/metrics`.
//!
//! OS concept: a writer that may block, and readers that must not wait for it. The
//! watcher thread writes; connection threads answering `/stats` read. Numbers are
//! atomics, and the watcher's `State` is one byte in an `AtomicU8`, so a reader never
//! waits for the watcher (which may be blocked on etcd); the two strings (endpoint,
//! last error) sit behind a mutex each, taken only to copy or replace the string,
//! never while talking to etcd. The last change is kept on both clocks: monotonic for
//! "how long ago", wall-clock for `/metrics`' timestamps.

use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};

use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::proxy::backends::health::now_ms;
use crate::proxy::routing::target::EtcdTarget;

/// The watcher's state, as one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Before the first answer from etcd.
    Starting = 0,
    /// Reading the whole prefix.
    Reading = 1,
    /// Following changes on an open watch.
    Watching = 2,
    /// etcd cannot be reached: serving the last known backends, retrying.
    Retrying = 3,
    /// The member in use failed; trying the next one.
    Connecting = 4,
}

impl State {
    fn from_byte(byte: u8) -> Self {
        match byte {
            1 => State::Reading,
            2 => State::Watching,
            3 => State::Retrying,
            4 => State::Connecting,
            _ => State::Starting,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Reading => "reading",
            State::Watching => "watching",
            State::Retrying => "retrying",
            State::Connecting => "connecting",
        }
    }
}

/// One watcher's counters.
#[derive(Debug)]
pub struct Status {
    pub pool: String,
    pub target: EtcdTarget,
    state: AtomicU8,
    /// Protects the member in use (`host:port`): written by the watcher when it fails
    /// over, read by `/stats`; held only to copy the string.
    endpoint: Mutex<String>,
    /// The newest store revision the pool reflects.
    pub revision: AtomicI64,
    /// Backends in the pool now.
    pub backends: AtomicU64,
    /// Entries under the prefix that describe no usable backend (logged when seen).
    pub skipped: AtomicU64,
    /// Changes applied to the routing table.
    pub changes: AtomicU64,
    /// When the last change was applied (`now_ms`, a monotonic clock), 0 if none yet.
    pub last_change_ms: AtomicU64,
    /// The same moment on the wall clock (milliseconds since the Unix epoch), for
    /// `/metrics`, where timestamps are wall-clock time.
    pub last_change_unix_ms: AtomicU64,
    /// Whole-prefix reads: the first, and after each compaction that outran the watch.
    pub reads: AtomicU64,
    /// Watches opened (each quiet spell or lost member opens a new one).
    pub watches: AtomicU64,
    /// Failed calls to etcd.
    pub errors: AtomicU64,
    /// Protects the last failure, kept until the next success: written by the watcher,
    /// read by `/stats`; held only to replace or copy it.
    last_error: Mutex<Option<String>>,
}

impl Status {
    pub fn new(pool: &str, target: &EtcdTarget) -> Self {
        Status {
            pool: pool.to_string(),
            target: target.clone(),
            state: AtomicU8::new(State::Starting as u8),
            endpoint: Mutex::new(target.endpoints[0].clone()),
            revision: AtomicI64::new(0),
            backends: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            changes: AtomicU64::new(0),
            last_change_ms: AtomicU64::new(0),
            last_change_unix_ms: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            watches: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    pub fn state(&self) -> State {
        State::from_byte(self.state.load(Ordering::Relaxed))
    }

    pub fn set_state(&self, state: State) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    pub fn endpoint(&self) -> String {
        self.endpoint.lock().clone()
    }

    pub fn set_endpoint(&self, endpoint: &str) {
        let mut current = self.endpoint.lock();
        if *current != endpoint {
            *current = endpoint.to_string();
        }
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }

    /// Counts a change of the pool's backends, now `backends` long.
    pub fn record_change(&self, backends: usize) {
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        self.backends.store(backends as u64, Ordering::Relaxed);
        self.changes.fetch_add(1, Ordering::Relaxed);
        self.last_change_ms.store(now_ms(), Ordering::Relaxed);
        self.last_change_unix_ms.store(unix_ms, Ordering::Relaxed);
    }

    /// Counts a failed call to etcd.
    pub fn record_error(&self, error: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock() = Some(error.to_string());
    }

    /// Notes that etcd answered from `endpoint`.
    pub fn record_success(&self, endpoint: &str) {
        self.set_endpoint(endpoint);
        let mut last_error = self.last_error.lock();
        if last_error.is_some() {
            *last_error = None;
        }
    }

    /// Whether the watcher is in touch with etcd.
    pub fn connected(&self) -> bool {
        matches!(self.state(), State::Reading | State::Watching)
    }

    /// The `/stats` object (see docs/stats.md).
    pub fn to_json(&self) -> Value {
        let last_change = self.last_change_ms.load(Ordering::Relaxed);
        let since = (last_change != 0).then(|| now_ms().saturating_sub(last_change) as f64 / 1000.0);
        json!({
            "pool": self.pool,
            "source": self.target.to_string(),
            "state": self.state().name(),
            "endpoint": self.endpoint(),
            "revision": self.revision.load(Ordering::Relaxed),
            "backends": self.backends.load(Ordering::Relaxed),
            "skipped_entries": self.skipped.load(Ordering::Relaxed),
            "changes": self.changes.load(Ordering::Relaxed),
            "seconds_since_change": since,
            "reads": self.reads.load(Ordering::Relaxed),
            "watches": self.watches.load(Ordering::Relaxed),
            "errors": self.errors.load(Ordering::Relaxed),
            "last_error": self.last_error(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_counted_and_the_last_one_kept_until_a_success() {
        let status = Status::new("web", &"etcd://a:1,b:2/web".parse().unwrap());
        assert_eq!(status.state(), State::Starting);
        assert_eq!(status.endpoint(), "a:1");
        status.record_error("refused");
        status.record_error("refused again");
        status.set_state(State::Retrying);
        assert!(!status.connected());
        let report = status.to_json();
        assert_eq!(report["state"], "retrying");
        assert_eq!(report["errors"], 2);
        assert_eq!(report["last_error"], "refused again");
        assert_eq!(report["seconds_since_change"], Value::Null);
        status.record_success("b:2");
        status.record_change(3);
        assert!(status.last_change_unix_ms.load(Ordering::Relaxed) > 1_700_000_000_000);
        status.set_state(State::Watching);
        assert!(status.connected());
        let report = status.to_json();
        assert_eq!(report["last_error"], Value::Null);
        assert_eq!(report["endpoint"], "b:2");
        assert_eq!(report["errors"], 2, "errors are a counter");
        assert_eq!(
            (report["changes"].as_u64(), report["backends"].as_u64()),
            (Some(1), Some(3))
        );
        assert!(report["seconds_since_change"].as_f64().unwrap() < 60.0);
    }
}
