//! Counters behind the TCP balancer's `/stats`.
//!
//! OS concept: atomics, as in the HTTP balancer's `proxy/stats/mod.rs`: connection threads bump
//! counters with `fetch_add`, `/stats` reads them, nobody waits for anybody. `Relaxed`
//! ordering is enough because each counter stands alone.
//!
//! The document keeps the HTTP balancer's keys where they have a meaning at L4, so the
//! live dashboard (`/dashboard`, written for the HTTP `/stats`) draws a TCP balancer
//! too: per backend `requests`, `in_flight` and `errors` count connections made, open
//! and failed; `requests.total` counts connections accepted; `queue.rejected` counts
//! connections refused over `--max-connections` (there is no queue: capacity 0); and
//! `workers` is empty (there is no pool). The `connections` and `bytes` objects say
//! the same things by their L4 names.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

use super::backends::TcpBackends;
use crate::proxy::strategy::BackendsView;

/// Balancer-wide counters of a TCP balancer.
#[derive(Debug)]
pub struct L4Stats {
    pub started: Instant,
    pub strategy: String,
    /// Client connections accepted and served (given a backend or not).
    pub accepted: AtomicU64,
    /// Client connections closed at once because `--max-connections` were open.
    pub refused: AtomicU64,
    /// Client connections closed because no backend could be connected.
    pub no_backend: AtomicU64,
    /// Client connections open now.
    pub open: AtomicU64,
    /// Bytes copied from clients to backends, and back.
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
}

impl L4Stats {
    pub fn new(strategy: &str) -> Self {
        L4Stats {
            started: Instant::now(),
            strategy: strategy.to_string(),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            no_backend: AtomicU64::new(0),
            open: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
        }
    }

    /// The `/stats` document of a TCP balancer (described in docs/l4.md).
    pub fn snapshot(&self, backends: &TcpBackends) -> Value {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let per_backend: Vec<Value> = (0..backends.len())
            .map(|index| {
                let counters = backends.counters(index);
                let target = backends.target(index);
                let open = load(&counters.in_flight);
                let total = load(&counters.requests);
                let failed = load(&counters.errors);
                json!({
                    "url": format!("tcp://{}", target.spec.address),
                    "address": target.spec.address,
                    "status_address": target.spec.status,
                    "weight": target.spec.weight,
                    "connections": {"open": open, "total": total, "failed": failed},
                    "bytes": {"to_backend": load(&target.bytes_up), "to_client": load(&target.bytes_down)},
                    "healthy": backends.is_healthy(index),
                    "consecutive_failures": counters.health.consecutive_failures(),
                    "last_error": counters.health.last_error(),
                    // null when unknown, stale, or the status port did not answer
                    // with a number (least-load then treats it as the busiest).
                    "load": backends.load(index).filter(|load| load.is_finite()),
                    // The HTTP balancer's names for the same three counters.
                    "requests": total,
                    "in_flight": open,
                    "errors": failed,
                })
            })
            .collect();
        json!({
            "mode": "tcp",
            "uptime_s": self.started.elapsed().as_secs_f64(),
            "strategy": self.strategy,
            "connections": {
                "open": load(&self.open),
                "accepted": load(&self.accepted),
                "refused": load(&self.refused),
                "no_backend": load(&self.no_backend),
            },
            "bytes": {
                "to_backends": load(&self.bytes_up),
                "to_clients": load(&self.bytes_down),
            },
            "backends": per_backend,
            // The HTTP balancer's names, for the dashboard (see the module comment).
            // There is no worker pool or request queue: each connection has its own
            // two threads.
            "workers": [],
            "queue": {"capacity": 0, "depth": 0, "rejected": load(&self.refused)},
            "requests": {"total": load(&self.accepted)},
        })
    }
}
