//! The balancer's request and worker counters: a leaf that imports nothing of the
//! proxy. Each subsystem counts into what it owns (these, the backends' own counters,
//! the cache's, the routing table's request series); the admin pages (`src/proxy/admin/`) render them
//! as `/stats` and `/metrics`.
//!
//! OS concept: atomics and memory ordering. Workers bump counters with `fetch_add`
//! while `/stats` reads them; no lock exists for a reader to wait on. `Relaxed` is
//! enough because each counter stands alone: nobody reads one counter to decide whether
//! another memory location is ready. A snapshot is therefore not one instant (a request
//! may be counted in `total` and not yet in `ok`), which is fine for a dashboard.

pub mod histogram;
pub mod requests;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use http::StatusCode;

use histogram::Histogram;

use crate::process::supervisor::ProcessTable;

/// What one worker thread has done.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub handled: AtomicU64,
    pub busy: AtomicBool,
}

/// All counters of a running balancer.
#[derive(Debug)]
pub struct Stats {
    pub started: Instant,
    pub strategy: String,
    pub workers: Vec<WorkerStats>,
    /// Requests answered 503 at once because the queue was full.
    pub rejected: AtomicU64,
    pub total: AtomicU64,
    pub ok: AtomicU64,
    pub client_errors: AtomicU64,
    pub server_errors: AtomicU64,
    /// Attempts repeated on another backend after a retryable failure.
    pub retries: AtomicU64,
    /// Retries refused because the retry budget was spent.
    pub retries_denied: AtomicU64,
    /// Requests whose handling panicked (each answered 500).
    pub panics: AtomicU64,
    /// Worker threads that died and were replaced.
    pub worker_restarts: AtomicU64,
    /// Time from a request's head to its response, for requests a worker handled
    /// (`roundhouse_request_duration_seconds` in `/metrics`).
    pub durations: Histogram,
    /// The supervised child processes, when there are any (`--sim-processes`,
    /// `[[processes]]`); set once, after the supervisor starts.
    pub processes: OnceLock<Arc<ProcessTable>>,
}

impl Stats {
    pub fn new(strategy: &str, workers: usize) -> Self {
        Stats {
            started: Instant::now(),
            strategy: strategy.to_string(),
            workers: (0..workers).map(|_| WorkerStats::default()).collect(),
            rejected: AtomicU64::new(0),
            total: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            client_errors: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            retries_denied: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            worker_restarts: AtomicU64::new(0),
            durations: Histogram::default(),
            processes: OnceLock::new(),
        }
    }

    /// Counts one finished request by the class of its status.
    pub fn record_status(&self, status: StatusCode) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let class = if status.is_client_error() {
            &self.client_errors
        } else if status.is_server_error() {
            &self.server_errors
        } else {
            &self.ok
        };
        class.fetch_add(1, Ordering::Relaxed);
    }
}
