//! Building a `Routing` from pools and routes, keeping the backends that stay.
//!
//! A backend is identified by its address (`host:port`), and `known` holds every
//! backend ever configured. When a reload builds a new table, a backend already known
//! is reused, the same `Arc<Backend>`: its health (down, failures in a row), its
//! counters and its in-flight count carry over, and the requests still running on the
//! old table update the same atomics. A backend removed and later added back also gets
//! its old entry, so its counters in `/stats` never go backwards. HAProxy keeps server
//! state across reloads the same way (`load-server-state-from-file`). A backend listed
//! in two pools is one backend: one health check, one in-flight count.
//!
//! OS concept: reference counting as the way shared memory is freed. The old and the
//! new table share each `Arc<Backend>`; the old table itself goes away only when the
//! last request still using it drops its reference, so a reload never frees what a
//! worker is reading, and never waits for it either.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use thiserror::Error;

use super::route::{self, Outcomes, Route};
use super::spec::{DEFAULT_POOL, PoolSpec, RouteSpec};
use super::{Pool, Routing};
use crate::proxy::backends::{Backend, BackendSet};
use crate::proxy::stats::requests::{NONE, RequestSeries};
use crate::proxy::strategy::{self, UnknownStrategy};

/// A configuration that cannot be built (the configuration, `src/config/`, reports these with line
/// numbers before it gets here; this is the last line of defence).
#[derive(Debug, Error)]
pub enum RoutingError {
    #[error("pool {0:?}: {1}")]
    Strategy(String, UnknownStrategy),
    #[error("pool {0:?} has no backends")]
    EmptyPool(String),
    #[error("pool {0:?} is defined twice")]
    DuplicatePool(String),
    #[error("route {0:?} goes to pool {1:?}, which does not exist")]
    MissingPool(String, String),
    #[error("route {0:?} is defined twice")]
    DuplicateRoute(String),
    #[error("route {0:?}: a prefix starts with /")]
    BadPrefix(String),
    #[error("route {0:?}: host {1:?} is not a valid header value")]
    BadHost(String, String),
    #[error("no pools: give at least one backend")]
    NoPools,
}

/// Every backend ever configured, by address.
pub type KnownBackends = HashMap<String, Arc<Backend>>;

/// Builds the routing for `pools` and `routes`, reusing the backends in `known` and
/// adding new ones to it.
pub fn build(
    pools: &[PoolSpec],
    routes: &[RouteSpec],
    load_interval: Duration,
    known: &mut KnownBackends,
    series: &RequestSeries,
) -> Result<Routing, RoutingError> {
    if pools.is_empty() {
        return Err(RoutingError::NoPools);
    }
    // Every distinct backend in order of first appearance, with its first weight.
    let mut everyone: Vec<(Arc<Backend>, u32)> = Vec::new();
    let mut built_pools: Vec<Pool> = Vec::new();
    for spec in pools {
        if built_pools.iter().any(|pool| pool.name == spec.name) {
            return Err(RoutingError::DuplicatePool(spec.name.clone()));
        }
        // A pool fed by discovery may be empty for a while (nothing registered yet);
        // its requests get 503 until a backend appears.
        if spec.backends.is_empty() && spec.discovery.is_none() {
            return Err(RoutingError::EmptyPool(spec.name.clone()));
        }
        let strategy = strategy::by_name(&spec.strategy)
            .map_err(|error| RoutingError::Strategy(spec.name.clone(), error))?;
        let mut members = Vec::new();
        for backend in &spec.backends {
            let shared = match known.get(&backend.authority) {
                // A new load address (from discovery) makes a new backend; everything
                // else about a backend lives in its pool membership.
                Some(same) if same.spec.load == backend.load => Arc::clone(same),
                _ => {
                    let fresh = Arc::new(Backend::new(backend.clone()));
                    known.insert(backend.authority.clone(), Arc::clone(&fresh));
                    fresh
                }
            };
            if !everyone.iter().any(|(seen, _)| Arc::ptr_eq(seen, &shared)) {
                everyone.push((Arc::clone(&shared), backend.weight));
            }
            members.push((shared, backend.weight));
        }
        built_pools.push(Pool {
            name: spec.name.clone(),
            backends: BackendSet::from_members(members).with_load_interval(load_interval),
            strategy,
        });
    }
    let mut built_routes: Vec<Route> = Vec::new();
    for spec in routes {
        if !spec.prefix.starts_with('/') {
            return Err(RoutingError::BadPrefix(spec.prefix.clone()));
        }
        let prefix = route::normalize_prefix(&spec.prefix);
        if built_routes.iter().any(|route| route.prefix == prefix) {
            return Err(RoutingError::DuplicateRoute(prefix));
        }
        let pool = built_pools
            .iter()
            .position(|pool| pool.name == spec.pool)
            .ok_or_else(|| RoutingError::MissingPool(spec.prefix.clone(), spec.pool.clone()))?;
        let host = spec
            .host
            .as_deref()
            .map(|host| {
                HeaderValue::from_str(host)
                    .map_err(|_| RoutingError::BadHost(spec.prefix.clone(), host.to_string()))
            })
            .transpose()?;
        let outcomes = outcomes(series, &prefix, &built_pools[pool]);
        built_routes.push(Route {
            prefix,
            pool,
            strip_prefix: spec.strip_prefix,
            host,
            outcomes,
        });
    }
    // Longest first; equal lengths keep the file's order (the sort is stable).
    built_routes.sort_by_key(|route| std::cmp::Reverse(route.prefix.len()));
    let default_pool = built_pools.iter().position(|pool| pool.name == DEFAULT_POOL);
    let unrouted = default_pool.map(|index| outcomes(series, NONE, &built_pools[index]));
    Ok(Routing {
        pools: built_pools,
        routes: built_routes,
        default_pool,
        unrouted,
        not_found: series.counter(NONE, NONE, NONE),
        everyone: BackendSet::from_members(everyone).with_load_interval(load_interval),
    })
}

/// The counters of requests from `route` to each backend of `pool`.
fn outcomes(series: &RequestSeries, route: &str, pool: &Pool) -> Outcomes {
    Outcomes {
        per_backend: pool
            .backends
            .iter()
            .map(|backend| series.counter(route, &pool.name, &backend.url))
            .collect(),
        none: series.counter(route, &pool.name, NONE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::backends::BackendSpec;

    fn pool(name: &str, urls: &[&str]) -> PoolSpec {
        PoolSpec {
            name: name.into(),
            strategy: "round-robin".into(),
            backends: urls
                .iter()
                .map(|url| url.parse::<BackendSpec>().unwrap())
                .collect(),
            discovery: None,
        }
    }

    fn route(prefix: &str, pool: &str) -> RouteSpec {
        RouteSpec {
            prefix: prefix.into(),
            pool: pool.into(),
            strip_prefix: false,
            host: None,
        }
    }

    fn build_simple(pools: &[PoolSpec], routes: &[RouteSpec], known: &mut KnownBackends) -> Routing {
        build(
            pools,
            routes,
            Duration::from_secs(1),
            known,
            &RequestSeries::default(),
        )
        .unwrap()
    }

    #[test]
    fn the_longest_prefix_wins_and_unmatched_requests_go_to_default() {
        let pools = [
            pool("default", &["http://a:1"]),
            pool("api", &["http://b:1"]),
            pool("users", &["http://c:1"]),
        ];
        let routing = build_simple(
            &pools,
            &[route("/api", "api"), route("/api/users/", "users")],
            &mut KnownBackends::new(),
        );
        let pool_of = |path: &str| routing.select(path).map(|selection| selection.pool.name.clone());
        assert_eq!(pool_of("/api/users/7").as_deref(), Some("users"));
        assert_eq!(pool_of("/api/users").as_deref(), Some("users"));
        assert_eq!(pool_of("/api/orders").as_deref(), Some("api"));
        assert_eq!(pool_of("/apiary").as_deref(), Some("default"));
        assert!(routing.select("/").unwrap().route.is_none());
    }

    #[test]
    fn without_a_default_pool_unmatched_requests_select_nothing() {
        let routing = build_simple(
            &[pool("api", &["http://b:1"])],
            &[route("/api", "api")],
            &mut KnownBackends::new(),
        );
        assert!(routing.select("/other").is_none());
        assert!(routing.select("/api/x").is_some());
    }

    #[test]
    fn strip_prefix_and_host_rewrite_the_request() {
        let mut spec = route("/api/", "api");
        spec.strip_prefix = true;
        spec.host = Some("api.internal".into());
        let routing = build_simple(
            &[pool("api", &["http://b:1"])],
            &[spec],
            &mut KnownBackends::new(),
        );
        let selection = routing.select("/api/users").unwrap();
        assert_eq!(
            selection.target("/api/users?id=1").as_deref(),
            Some("/users?id=1")
        );
        assert_eq!(selection.host().unwrap(), "api.internal");
    }

    #[test]
    fn a_rebuild_keeps_backends_that_stay_and_shares_one_across_pools() {
        let mut known = KnownBackends::new();
        let first = build_simple(
            &[
                pool("default", &["http://a:1", "http://b:1"]),
                pool("api", &["http://b:1"]),
            ],
            &[route("/api", "api")],
            &mut known,
        );
        assert_eq!(first.all_backends().len(), 2, "b is one backend in two pools");
        assert!(Arc::ptr_eq(
            &first.pools()[0].backends.members()[1],
            &first.pools()[1].backends.members()[0]
        ));
        let second = build_simple(&[pool("default", &["http://b:1", "http://c:1"])], &[], &mut known);
        assert!(Arc::ptr_eq(
            &first.all_backends().members()[1],
            &second.all_backends().members()[0]
        ));
        assert_eq!(second.all_backends().get(1).url, "http://c:1");
        // `a` was left out of the second table; added back, it is the same backend.
        let third = build_simple(&[pool("default", &["http://a:1"])], &[], &mut known);
        assert!(Arc::ptr_eq(
            &first.all_backends().members()[0],
            &third.all_backends().members()[0]
        ));
    }

    #[test]
    fn bad_tables_are_refused() {
        let series = RequestSeries::default();
        let one_second = Duration::from_secs(1);
        let api = pool("api", &["http://b:1"]);
        let cases: Vec<(Vec<PoolSpec>, Vec<RouteSpec>)> = vec![
            (vec![], vec![]),
            (vec![api.clone(), api.clone()], vec![]),
            (vec![pool("empty", &[])], vec![]),
            (vec![api.clone()], vec![route("/x", "missing")]),
            (vec![api.clone()], vec![route("/x", "api"), route("/x/", "api")]),
            (vec![api.clone()], vec![route("x", "api")]),
            (
                vec![PoolSpec {
                    strategy: "fastest".into(),
                    ..api.clone()
                }],
                vec![],
            ),
        ];
        for (pools, routes) in cases {
            assert!(
                build(&pools, &routes, one_second, &mut KnownBackends::new(), &series).is_err(),
                "{pools:?} {routes:?}"
            );
        }
    }
}
