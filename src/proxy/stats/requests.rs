//! Request counters by route, pool, backend and status class, behind
//! `roundhouse_requests_total` and the per-route and per-pool counts of `/stats`.
//!
//! OS concept: keeping locks off the hot path. The set of label combinations changes
//! only when the routing table is built (at start and on reload), so that is the only
//! time the map of series is locked. Each route then holds `Arc`s to its own counters,
//! and a worker counts a request with one `fetch_add` on an atomic, taking no lock.
//! A series outlives the route that created it: a Prometheus counter must never go
//! backwards, so a reload that keeps a route keeps counting in the same atomics, and
//! one that removes it leaves its last values on the page (as a restart-free process
//! should; Prometheus itself treats a vanished series as stale, not as zero).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::StatusCode;
use parking_lot::Mutex;

/// The label value for "no route matched", "no pool" and "no backend answered".
pub const NONE: &str = "none";

/// The status classes, in the order `ClassCounts` stores them.
pub const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Requests by status class for one (route, pool, backend).
#[derive(Debug, Default)]
pub struct ClassCounts {
    counts: [AtomicU64; 5],
}

impl ClassCounts {
    pub fn record(&self, status: StatusCode) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.counts[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests of class `CLASSES[index]`.
    pub fn get(&self, index: usize) -> u64 {
        self.counts[index].load(Ordering::Relaxed)
    }

    pub fn total(&self) -> u64 {
        (0..CLASSES.len()).map(|index| self.get(index)).sum()
    }
}

/// The labels of one series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeriesKey {
    /// The route's prefix, or `NONE` for requests no route matched.
    pub route: String,
    pub pool: String,
    /// The backend's URL, or `NONE` when no backend answered (none available).
    pub backend: String,
}

/// Every request series ever created, by labels.
#[derive(Debug, Default)]
pub struct RequestSeries {
    /// Protects the map itself (adding a series, listing them). Taken when a routing
    /// table is built and when `/metrics` or `/stats` is rendered, never per request.
    series: Mutex<BTreeMap<SeriesKey, Arc<ClassCounts>>>,
}

impl RequestSeries {
    /// The counters of `key`, created on first use and shared afterwards.
    pub fn counter(&self, route: &str, pool: &str, backend: &str) -> Arc<ClassCounts> {
        let key = SeriesKey {
            route: route.to_string(),
            pool: pool.to_string(),
            backend: backend.to_string(),
        };
        Arc::clone(self.series.lock().entry(key).or_default())
    }

    /// A copy of the list, so the caller formats it without holding the lock.
    pub fn list(&self) -> Vec<(SeriesKey, Arc<ClassCounts>)> {
        self.series
            .lock()
            .iter()
            .map(|(key, counts)| (key.clone(), Arc::clone(counts)))
            .collect()
    }

    /// Requests counted for series whose labels satisfy `filter`.
    pub fn total_where(&self, filter: impl Fn(&SeriesKey) -> bool) -> u64 {
        self.list()
            .iter()
            .filter(|(key, _)| filter(key))
            .map(|(_, counts)| counts.total())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_is_shared_and_counts_by_class() {
        let series = RequestSeries::default();
        let first = series.counter("/api", "api", "http://a:1");
        let again = series.counter("/api", "api", "http://a:1");
        first.record(StatusCode::OK);
        again.record(StatusCode::NOT_FOUND);
        again.record(StatusCode::BAD_GATEWAY);
        assert_eq!(first.get(1), 1);
        assert_eq!(first.get(3), 1);
        assert_eq!(first.get(4), 1);
        assert_eq!(first.total(), 3);
        series
            .counter("/", "web", NONE)
            .record(StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(series.total_where(|key| key.route == "/api"), 3);
        assert_eq!(series.total_where(|_| true), 4);
        assert_eq!(series.list().len(), 2);
    }
}
