//! `GET /stats`: one JSON document of every counter, for `curl` and the dashboard
//! (schema in docs/stats.md).
//!
//! OS concept: atomics and memory ordering. Every value is a `Relaxed` load of a
//! counter the workers keep bumping, so the page never waits for a request; it is not
//! one instant (a request may be in `total` and not yet in `ok`), which is fine here.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::proxy::backends::BackendSet;
use crate::proxy::cache::CacheStats;
use crate::proxy::stats::Stats;
use crate::proxy::strategy::BackendsView;

/// How full the bounded queue is right now.
#[derive(Debug, Clone, Copy)]
pub struct Queue {
    pub depth: usize,
    pub capacity: usize,
}

/// The `/stats` document (schema in docs/stats.md).
pub fn document(stats: &Stats, cache: &CacheStats, backends: &BackendSet, queue: Queue) -> Value {
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let workers: Vec<Value> = stats
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
        "uptime_s": stats.started.elapsed().as_secs_f64(),
        "strategy": stats.strategy,
        "workers": workers,
        "backends": backends,
        "queue": {
            "capacity": queue.capacity,
            "depth": queue.depth,
            "rejected": load(&stats.rejected),
        },
        "retries": load(&stats.retries),
        "retries_denied": load(&stats.retries_denied),
        "panics": load(&stats.panics),
        "worker_restarts": load(&stats.worker_restarts),
        "requests": {
            "total": load(&stats.total),
            "ok": load(&stats.ok),
            "client_errors": load(&stats.client_errors),
            "server_errors": load(&stats.server_errors),
        },
        "cache": cache.snapshot(),
    });
    if let Some(processes) = stats.processes.get() {
        document["processes"] = processes.snapshot();
    }
    document
}
