//! Counters behind `/stats`.
//!
//! OS concept: atomics and memory ordering. Workers bump counters with `fetch_add`
//! while `/stats` reads them; no lock exists for a reader to wait on. `Relaxed` is
//! enough because each counter stands alone: nobody reads one counter to decide whether
//! another memory location is ready. A snapshot is therefore not one instant (a request
//! may be counted in `total` and not yet in `ok`), which is fine for a dashboard.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use http::StatusCode;
use serde_json::{Value, json};

use crate::backends::BackendSet;
use crate::cache::CacheStats;
use crate::metrics::histogram::Histogram;
use crate::process::supervisor::ProcessTable;
use crate::strategy::BackendsView;

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
    /// The response cache's counters (all zero while `--cache` is off).
    pub cache: CacheStats,
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
            cache: CacheStats::default(),
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

    /// The `/stats` document (schema in docs/stats.md).
    pub fn snapshot(&self, backends: &BackendSet, queue_depth: usize, queue_capacity: usize) -> Value {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let workers: Vec<Value> = self
            .workers
            .iter()
            .enumerate()
            .map(|(id, worker)| {
                json!({
                    "id": id,
                    "handled": load(&worker.handled),
                    "busy": worker.busy.load(Ordering::Relaxed),
                })
            })
            .collect();
        let backends: Vec<Value> = (0..backends.len())
            .map(|index| {
                let backend = backends.get(index);
                json!({
                    "url": backend.url,
                    "requests": load(&backend.requests),
                    "errors": load(&backend.errors),
                    "in_flight": load(&backend.in_flight),
                    "healthy": backends.is_healthy(index),
                    "weight": backends.weight(index),
                    "consecutive_failures": backend.health.consecutive_failures(),
                    "last_error": backend.health.last_error(),
                    "load": backends.load(index),
                    "busy_ms": load(&backend.busy_us) as f64 / 1000.0,
                })
            })
            .collect();
        let mut document = json!({
            // Which process answers: it changes when an upgrade (SIGUSR2) hands over.
            "pid": std::process::id(),
            "uptime_s": self.started.elapsed().as_secs_f64(),
            "strategy": self.strategy,
            "workers": workers,
            "backends": backends,
            "queue": {
                "capacity": queue_capacity,
                "depth": queue_depth,
                "rejected": load(&self.rejected),
            },
            "retries": load(&self.retries),
            "retries_denied": load(&self.retries_denied),
            "requests": {
                "total": load(&self.total),
                "ok": load(&self.ok),
                "client_errors": load(&self.client_errors),
                "server_errors": load(&self.server_errors),
            },
            "cache": self.cache.snapshot(),
        });
        if let Some(processes) = self.processes.get() {
            document["processes"] = processes.snapshot();
        }
        document
    }
}
