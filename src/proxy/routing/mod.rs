//! The routing table: which pool serves a request, by the longest matching path prefix.
//!
//! OS concept: read-mostly shared data, replaced whole. Every worker reads the table on
//! every request; a configuration reload (SIGHUP) replaces it perhaps once a day. So
//! the table is immutable once built, and a reload builds a new one and swaps a pointer
//! (`table.rs`). A worker that took the old table keeps it, through its `Arc`, until its
//! request is finished: requests in flight never see half of one configuration and half
//! of the other, and nothing is freed under them. This is read-copy-update (RCU), the
//! way Linux replaces read-mostly kernel structures, and what nginx does on reload with
//! whole worker processes (old workers finish their requests on the old config).

pub mod build;
pub mod discovered;
pub mod report;
pub mod route;
pub mod spec;
pub mod table;
pub mod target;

use std::sync::Arc;

use http::{HeaderValue, StatusCode};

use crate::proxy::backends::BackendSet;
use crate::proxy::stats::requests::ClassCounts;
use crate::proxy::strategy::Strategy;
pub use build::RoutingError;
pub use route::{Outcomes, Route};
pub use spec::{DEFAULT_POOL, PoolSpec, RouteSpec};
pub use table::RoutingTable;

/// A named group of backends and the strategy that picks among them.
pub struct Pool {
    pub name: String,
    pub backends: BackendSet,
    pub strategy: Box<dyn Strategy>,
}

/// One immutable routing configuration.
pub struct Routing {
    pools: Vec<Pool>,
    /// Longest prefix first, so the first match is the most specific.
    routes: Vec<Route>,
    /// The pool named `default`, which takes requests no route matches.
    default_pool: Option<usize>,
    /// Counters of the requests that matched no route and went to the default pool.
    unrouted: Option<Outcomes>,
    /// Counts the 404s for requests that matched no route with no default pool.
    not_found: Arc<ClassCounts>,
    /// Every distinct backend of every pool, for `/stats` and the health checker.
    everyone: BackendSet,
}

/// Where one request goes.
pub struct Selection<'a> {
    pub pool: &'a Pool,
    /// The route that matched; `None` when the request went to the default pool.
    pub route: Option<&'a Route>,
    outcomes: &'a Outcomes,
}

impl Routing {
    /// The route for `path`: the longest matching prefix, else the default pool; `None`
    /// when nothing matches and there is no default pool (the client gets 404).
    pub fn select(&self, path: &str) -> Option<Selection<'_>> {
        if let Some(route) = self
            .routes
            .iter()
            .find(|route| route::matches(&route.prefix, path))
        {
            return Some(Selection {
                pool: &self.pools[route.pool],
                route: Some(route),
                outcomes: &route.outcomes,
            });
        }
        let pool = self.default_pool?;
        Some(Selection {
            pool: &self.pools[pool],
            route: None,
            outcomes: self.unrouted.as_ref()?,
        })
    }

    /// Counts a request that matched nothing and was answered 404 here.
    pub fn record_not_found(&self, status: StatusCode) {
        self.not_found.record(status);
    }

    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn default_pool(&self) -> Option<&Pool> {
        self.default_pool.map(|index| &self.pools[index])
    }

    /// Every distinct backend of every pool, in the order they first appear.
    pub fn all_backends(&self) -> &BackendSet {
        &self.everyone
    }
}

impl Selection<'_> {
    /// The target to send: the client's, with the route's prefix removed if it says so.
    pub fn target(&self, target: &str) -> Option<String> {
        self.route
            .filter(|route| route.strip_prefix)
            .map(|route| route::strip(&route.prefix, target))
    }

    /// The `Host` header the route sets, if any.
    pub fn host(&self) -> Option<&HeaderValue> {
        self.route.and_then(|route| route.host.as_ref())
    }

    /// Counts the request's outcome: which backend of the pool answered (`None` when
    /// none did) and with what status.
    pub fn record(&self, backend: Option<usize>, status: StatusCode) {
        let counts = backend
            .and_then(|index| self.outcomes.per_backend.get(index))
            .unwrap_or(&self.outcomes.none);
        counts.record(status);
    }
}
