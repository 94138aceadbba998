//! The admin pages: `/stats` (JSON), `/metrics` (Prometheus text) and `/dashboard`.
//!
//! They only render: every counter they show is owned by the subsystem that counts it
//! (`proxy::stats`, the backends, the routing table, the cache). OS concept: observing
//! a running system without stopping it, by reading atomics the workers keep updating.

pub mod connections;
pub mod dashboard;
pub mod discovery;
pub mod metrics;
pub mod prometheus;
pub mod stats_page;

use std::sync::Arc;

use crossbeam_channel::Receiver;
use http::{Method, StatusCode, header};

use crate::http1::{Request, Response};
use crate::proxy::cache::{Cache, CacheStats};
use crate::proxy::discovery::Discovery;
use crate::proxy::pool::Job;
use crate::proxy::routing::RoutingTable;
use crate::proxy::stats::Stats;
use crate::proxy::tls::TlsAcceptor;
use crate::proxy::tunnel::Tunnels;
pub use stats_page::Queue;

/// Where the admin pages read their numbers.
pub struct AdminPages {
    pub stats: Arc<Stats>,
    pub routing: Arc<RoutingTable>,
    pub cache: Option<Arc<Cache>>,
    /// The workers' end of the bounded queue, read only for its length (a receiver,
    /// not a sender, so the admin listener never keeps the queue open at shutdown).
    pub jobs: Receiver<Job>,
    pub capacity: usize,
    /// The listener's TLS (its handshake counters), when it serves HTTPS.
    pub tls: Option<Arc<TlsAcceptor>>,
    pub tunnels: Arc<Tunnels>,
    /// The etcd watchers of discovery pools, shown under `discovery`.
    pub discovery: Option<Arc<Discovery>>,
}

impl AdminPages {
    /// Whether `path` is one of the admin pages.
    pub fn is_admin_path(path: &str) -> bool {
        matches!(path, "/stats" | "/metrics" | "/dashboard")
    }

    fn tls_counters(&self) -> Option<&crate::proxy::tls::TlsCounters> {
        self.tls.as_deref().map(|tls| &tls.counters)
    }

    /// The page `request` asks for, or `None` when it is not an admin page (it is then
    /// forwarded like any other request).
    pub fn respond(&self, request: &Request) -> Option<Response> {
        if request.method != Method::GET && request.method != Method::HEAD {
            return None;
        }
        let queue = Queue {
            depth: self.jobs.len(),
            capacity: self.capacity,
        };
        let statuses = self
            .discovery
            .as_ref()
            .map_or_else(Vec::new, |discovery| discovery.statuses());
        let empty = CacheStats::default();
        let cache = self.cache.as_deref().map_or(&empty, Cache::counters);
        match request.path() {
            "/stats" => {
                let routing = self.routing.current();
                let mut document = stats_page::document(&self.stats, cache, routing.all_backends(), queue);
                crate::proxy::routing::report::extend_stats(&self.routing, &routing, &mut document);
                connections::stats(self.tls_counters(), &self.tunnels, &mut document);
                document["discovery"] = crate::proxy::discovery::stats_json(&statuses);
                Some(Response::json(StatusCode::OK, &document).with_header(header::CACHE_CONTROL, "no-store"))
            }
            "/dashboard" => Some(dashboard::response()),
            "/metrics" => {
                let page = metrics::Page {
                    stats: &self.stats,
                    cache,
                    routing: &self.routing,
                    discovery: &statuses,
                    queue,
                    tls: self.tls_counters(),
                    tunnels: &self.tunnels,
                };
                Some(page.response())
            }
            _ => None,
        }
    }
}

/// The answer to a client that may not see the admin pages: one line saying how to
/// allow it (HAProxy's stats page answers 403 the same way when its ACL refuses).
pub fn forbidden() -> Response {
    Response::text(
        StatusCode::FORBIDDEN,
        "the admin pages answer only allowed clients (loopback by default); allow others with --admin-allow CIDR",
    )
    .with_header(header::CACHE_CONTROL, "no-store")
}
