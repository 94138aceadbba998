//! `GET /metrics`: the balancer's counters in Prometheus's text format, for scraping.
//!
//! OS concept: observing a running system without stopping it. Everything on this page
//! is read from atomics that the workers keep updating meanwhile (see `proxy/stats/mod.rs`), so
//! a scrape never blocks a request; the only locks taken are the request-series map's
//! and the routing table's pointer, each for a copy. The names follow Prometheus's
//! conventions: a `roundhouse_` prefix, base units (seconds), `_total` on counters.

use std::sync::atomic::{AtomicU64, Ordering};

use http::{StatusCode, header};

use super::Queue;
use super::prometheus::{Exposition, Kind, float};
use crate::http1::Response;
use crate::proxy::cache::CacheStats;
use crate::proxy::routing::RoutingTable;
use crate::proxy::stats::Stats;
use crate::proxy::stats::requests::CLASSES;
use crate::proxy::strategy::BackendsView;
use crate::proxy::tls::TlsCounters;
use crate::proxy::tunnel::Tunnels;

/// What one `/metrics` page is made of.
pub struct Page<'a> {
    pub stats: &'a Stats,
    pub cache: &'a CacheStats,
    pub routing: &'a RoutingTable,
    /// The etcd watchers of discovery pools (empty without discovery).
    pub discovery: &'a [std::sync::Arc<crate::proxy::discovery::Status>],
    pub queue: Queue,
    pub tls: Option<&'a TlsCounters>,
    pub tunnels: &'a Tunnels,
}

impl Page<'_> {
    /// The response for `GET /metrics`.
    pub fn response(&self) -> Response {
        Response::new(StatusCode::OK)
            .with_header(header::CONTENT_TYPE, super::prometheus::CONTENT_TYPE)
            .with_header(header::CACHE_CONTROL, "no-store")
            .with_body(self.render().into_bytes())
    }

    /// The whole page.
    pub fn render(&self) -> String {
        let mut page = Exposition::default();
        self.process(&mut page);
        self.requests(&mut page);
        self.queue_and_workers(&mut page);
        self.backends(&mut page);
        self.cache(&mut page);
        self.reloads(&mut page);
        super::connections::metrics(self.tls, self.tunnels, &mut page);
        super::discovery::render(self.discovery, &mut page);
        page.finish()
    }

    fn process(&self, page: &mut Exposition) {
        page.family(
            "roundhouse_build_info",
            Kind::Gauge,
            "Always 1; the version label says which roundhouse is running.",
        );
        page.sample(
            "roundhouse_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1,
        );
        page.family(
            "roundhouse_uptime_seconds",
            Kind::Gauge,
            "Seconds since the balancer started.",
        );
        page.sample(
            "roundhouse_uptime_seconds",
            &[],
            float(self.stats.started.elapsed().as_secs_f64()),
        );
    }

    fn requests(&self, page: &mut Exposition) {
        page.family(
            "roundhouse_requests_total",
            Kind::Counter,
            "Requests the workers answered, by route prefix, pool, backend that answered and status class (\"none\": no route matched, or no backend answered).",
        );
        for (key, counts) in self.routing.series().list() {
            for (index, class) in CLASSES.iter().enumerate() {
                let value = counts.get(index);
                // A class that never happened is left out rather than written as 0,
                // which keeps the page short; Prometheus treats both the same.
                if value > 0 {
                    let labels = [
                        ("route", key.route.as_str()),
                        ("pool", key.pool.as_str()),
                        ("backend", key.backend.as_str()),
                        ("class", *class),
                    ];
                    page.sample("roundhouse_requests_total", &labels, value);
                }
            }
        }
        let name = "roundhouse_request_duration_seconds";
        page.family(
            name,
            Kind::Histogram,
            "Time from a request's head being read to its response being ready, for requests the workers answered (queue wait included).",
        );
        let snapshot = self.stats.durations.snapshot();
        for (bound, count) in &snapshot.cumulative {
            let bound = float(*bound);
            page.sample(&format!("{name}_bucket"), &[("le", bound.as_str())], count);
        }
        page.sample(&format!("{name}_sum"), &[], float(snapshot.sum_seconds));
        page.sample(&format!("{name}_count"), &[], snapshot.count);
        counter(
            page,
            "roundhouse_retries_total",
            "Attempts repeated on another backend after a retryable failure.",
            &self.stats.retries,
        );
        counter(
            page,
            "roundhouse_retries_denied_total",
            "Retries refused because the retry budget was spent.",
            &self.stats.retries_denied,
        );
        counter(
            page,
            "roundhouse_worker_panics_total",
            "Requests whose handling panicked; each was answered 500 and the worker went on.",
            &self.stats.panics,
        );
        counter(
            page,
            "roundhouse_worker_restarts_total",
            "Worker threads that died and were replaced by a new one.",
            &self.stats.worker_restarts,
        );
    }

    fn queue_and_workers(&self, page: &mut Exposition) {
        page.family(
            "roundhouse_queue_depth",
            Kind::Gauge,
            "Requests waiting in the bounded queue for a worker.",
        );
        page.sample("roundhouse_queue_depth", &[], self.queue.depth);
        page.family(
            "roundhouse_queue_capacity",
            Kind::Gauge,
            "Size of the bounded queue (--queue).",
        );
        page.sample("roundhouse_queue_capacity", &[], self.queue.capacity);
        counter(
            page,
            "roundhouse_queue_rejected_total",
            "Requests answered 503 at once because the queue was full.",
            &self.stats.rejected,
        );
        page.family(
            "roundhouse_worker_requests_total",
            Kind::Counter,
            "Requests each worker thread has finished.",
        );
        for (id, worker) in self.stats.workers.iter().enumerate() {
            let id = id.to_string();
            let handled = worker.handled.load(Ordering::Relaxed);
            page.sample("roundhouse_worker_requests_total", &[("worker", &id)], handled);
        }
        page.family(
            "roundhouse_worker_busy",
            Kind::Gauge,
            "1 while the worker is forwarding a request, else 0.",
        );
        for (id, worker) in self.stats.workers.iter().enumerate() {
            let id = id.to_string();
            let busy = u8::from(worker.busy.load(Ordering::Relaxed));
            page.sample("roundhouse_worker_busy", &[("worker", &id)], busy);
        }
    }

    fn backends(&self, page: &mut Exposition) {
        let routing = self.routing.current();
        page.family(
            "roundhouse_backend_in_flight",
            Kind::Gauge,
            "Requests sent to the backend and not yet answered (a backend in two pools shows the same number in both).",
        );
        for pool in routing.pools() {
            for backend in pool.backends.iter() {
                let labels = [("pool", pool.name.as_str()), ("backend", backend.url.as_str())];
                let value = backend.in_flight.load(Ordering::Relaxed);
                page.sample("roundhouse_backend_in_flight", &labels, value);
            }
        }
        page.family(
            "roundhouse_backend_up",
            Kind::Gauge,
            "1 if health checks let the backend receive requests, else 0.",
        );
        for pool in routing.pools() {
            for (index, backend) in pool.backends.iter().enumerate() {
                let labels = [("pool", pool.name.as_str()), ("backend", backend.url.as_str())];
                let up = u8::from(pool.backends.is_healthy(index));
                page.sample("roundhouse_backend_up", &labels, up);
            }
        }
        page.family(
            "roundhouse_backend_errors_total",
            Kind::Counter,
            "Attempts on the backend that failed: refused, timed out, broken or invalid response.",
        );
        for backend in routing.all_backends().iter() {
            let value = backend.errors.load(Ordering::Relaxed);
            page.sample(
                "roundhouse_backend_errors_total",
                &[("backend", &backend.url)],
                value,
            );
        }
    }

    fn cache(&self, page: &mut Exposition) {
        let cache = self.cache;
        page.family(
            "roundhouse_cache_requests_total",
            Kind::Counter,
            "Requests the response cache saw, by result (all zero while --cache is off).",
        );
        for (result, counter) in [
            ("hit", &cache.hits),
            ("miss", &cache.misses),
            ("revalidated", &cache.revalidated),
            ("stale", &cache.stale),
            ("bypass", &cache.bypass),
        ] {
            let value = counter.load(Ordering::Relaxed);
            page.sample("roundhouse_cache_requests_total", &[("result", result)], value);
        }
        counter(
            page,
            "roundhouse_cache_evictions_total",
            "Cache entries dropped to make room.",
            &cache.evictions,
        );
        gauge(
            page,
            "roundhouse_cache_entries",
            "Responses (variants) stored in the cache now.",
            &cache.entries,
        );
        gauge(
            page,
            "roundhouse_cache_bytes",
            "Bytes charged against --cache-max-bytes now.",
            &cache.bytes,
        );
    }

    fn reloads(&self, page: &mut Exposition) {
        page.family(
            "roundhouse_config_reloads_total",
            Kind::Counter,
            "Configuration reloads on SIGHUP, by result.",
        );
        let routing = self.routing;
        for (result, counter) in [
            ("success", &routing.reloads),
            ("failure", &routing.failed_reloads),
        ] {
            let value = counter.load(Ordering::Relaxed);
            page.sample("roundhouse_config_reloads_total", &[("result", result)], value);
        }
        page.family(
            "roundhouse_config_last_reload_successful",
            Kind::Gauge,
            "1 if the latest reload succeeded (or none was tried), 0 if it kept the old configuration.",
        );
        let ok = u8::from(routing.last_reload_ok.load(Ordering::Relaxed));
        page.sample("roundhouse_config_last_reload_successful", &[], ok);
    }
}

fn counter(page: &mut Exposition, name: &str, help: &str, value: &AtomicU64) {
    page.family(name, Kind::Counter, help);
    page.sample(name, &[], value.load(Ordering::Relaxed));
}

fn gauge(page: &mut Exposition, name: &str, help: &str, value: &AtomicU64) {
    page.family(name, Kind::Gauge, help);
    page.sample(name, &[], value.load(Ordering::Relaxed));
}
