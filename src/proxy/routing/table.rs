//! The routing table in force, and how a reload replaces it.
//!
//! OS concept: a reader-writer lock guarding one pointer. The lock protects only the
//! `Arc<Routing>` (which table is current), never the table's contents, which are
//! immutable. A worker takes the read lock just long enough to clone the `Arc` (one
//! atomic increment), then routes with its own reference and no lock; a reload takes
//! the write lock for one pointer assignment. Neither holds it across I/O or while
//! building a table. `parking_lot`'s lock is used (already a dependency) because it is
//! fair to writers: a steady stream of readers cannot starve a reload. The `arc-swap`
//! crate would make the read side a few nanoseconds cheaper with no lock at all, but a
//! request costs a network round trip, so a lock held for one increment is nowhere near
//! the bottleneck, and this version needs no new crate and reads like the textbook.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use super::Routing;
use super::build::{self, RoutingError};
use super::discovered::Inputs;
use super::spec::{PoolSpec, RouteSpec};
use super::target::EtcdTarget;
use crate::proxy::backends::{Backend, BackendSource, BackendSpec};
use crate::proxy::stats::requests::RequestSeries;

/// The current routing plus what outlives any one routing: the request counters and
/// the reload counts.
pub struct RoutingTable {
    /// Which routing is in force (see the module comment for what the lock covers).
    current: RwLock<Arc<Routing>>,
    /// What the table is built from (see `discovered.rs`), with every backend ever
    /// configured (see `build.rs`). The mutex also serialises rebuilds, a reload's and
    /// discovery's, so each builds on the one before. Held only while building a
    /// table; workers never take it.
    inputs: Mutex<Inputs>,
    load_interval: Duration,
    series: RequestSeries,
    pub reloads: AtomicU64,
    pub failed_reloads: AtomicU64,
    /// Whether the latest reload attempt succeeded (true before any).
    pub last_reload_ok: AtomicBool,
}

impl RoutingTable {
    pub fn new(
        pools: &[PoolSpec],
        routes: &[RouteSpec],
        load_interval: Duration,
    ) -> Result<Self, RoutingError> {
        let series = RequestSeries::default();
        let mut inputs = Inputs::new(pools, routes);
        let routing = build::build(pools, routes, load_interval, &mut inputs.known, &series)?;
        Ok(RoutingTable {
            current: RwLock::new(Arc::new(routing)),
            inputs: Mutex::new(inputs),
            load_interval,
            series,
            reloads: AtomicU64::new(0),
            failed_reloads: AtomicU64::new(0),
            last_reload_ok: AtomicBool::new(true),
        })
    }

    /// The routing in force now. The caller keeps it for the whole request.
    pub fn current(&self) -> Arc<Routing> {
        Arc::clone(&self.current.read())
    }

    /// Builds a routing for `pools` and `routes`, keeping the backends that stay, and
    /// makes it current. On error the current routing stays.
    /// Pools that take their backends from etcd get the ones discovery found last.
    pub fn replace(&self, pools: &[PoolSpec], routes: &[RouteSpec]) -> Result<(), RoutingError> {
        let mut inputs = self.inputs.lock();
        let previous = (
            std::mem::replace(&mut inputs.pools, pools.to_vec()),
            std::mem::replace(&mut inputs.routes, routes.to_vec()),
        );
        match self.rebuild(&mut inputs) {
            Ok(()) => {
                inputs.forget_stale();
                self.record_reload(true);
                Ok(())
            }
            Err(error) => {
                (inputs.pools, inputs.routes) = previous;
                self.record_reload(false);
                Err(error)
            }
        }
    }

    /// Hands the discovery watcher of `pool` at `target` its source number (see
    /// `discovered.rs`); a watcher started earlier for that pool can no longer write.
    pub fn attach_discovery(&self, pool: &str, target: &EtcdTarget) -> u64 {
        self.inputs.lock().attach(pool, target)
    }

    /// Makes `backends` the members of discovery pool `pool`, through the same swap a
    /// reload uses: requests in flight finish on the old table, and backends that stay
    /// keep their health and counters. Returns `Ok(false)`, changing nothing, when
    /// `source` is no longer the pool's watcher.
    pub fn set_discovered(
        &self,
        pool: &str,
        source: u64,
        backends: Vec<BackendSpec>,
    ) -> Result<bool, RoutingError> {
        let mut inputs = self.inputs.lock();
        if !inputs.set(pool, source, backends) {
            return Ok(false);
        }
        self.rebuild(&mut inputs).map(|()| true)
    }

    /// Builds a table from `inputs` and makes it current.
    fn rebuild(&self, inputs: &mut Inputs) -> Result<(), RoutingError> {
        let pools = inputs.resolved_pools();
        let routing = build::build(
            &pools,
            &inputs.routes,
            self.load_interval,
            &mut inputs.known,
            &self.series,
        )?;
        *self.current.write() = Arc::new(routing);
        Ok(())
    }

    /// Counts a reload attempt; also called for a file that failed its checks before
    /// any table was built.
    pub fn record_reload(&self, ok: bool) {
        let counter = if ok { &self.reloads } else { &self.failed_reloads };
        counter.fetch_add(1, Ordering::Relaxed);
        self.last_reload_ok.store(ok, Ordering::Relaxed);
    }

    /// The request counters of every route, pool and backend ever configured.
    pub fn series(&self) -> &RequestSeries {
        &self.series
    }
}

impl BackendSource for RoutingTable {
    fn backends(&self) -> Vec<Arc<Backend>> {
        self.current().all_backends().members().to_vec()
    }

    /// Only the backends of `least-load` pools are asked for their load.
    fn load_polled(&self) -> Vec<Arc<Backend>> {
        let routing = self.current();
        let mut polled: Vec<Arc<Backend>> = Vec::new();
        for pool in routing.pools() {
            if pool.strategy.name() != "least-load" {
                continue;
            }
            for backend in pool.backends.members() {
                if !polled.iter().any(|seen| Arc::ptr_eq(seen, backend)) {
                    polled.push(Arc::clone(backend));
                }
            }
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str, url: &str) -> PoolSpec {
        PoolSpec {
            name: name.into(),
            strategy: "round-robin".into(),
            backends: vec![url.parse().unwrap()],
            discovery: None,
        }
    }

    #[test]
    fn a_holder_of_the_old_routing_keeps_it_after_a_replace() {
        let table = RoutingTable::new(&[pool("default", "http://a:1")], &[], Duration::from_secs(1)).unwrap();
        let held = table.current();
        table
            .replace(&[pool("default", "http://a:1"), pool("api", "http://b:1")], &[])
            .unwrap();
        assert_eq!(held.pools().len(), 1, "the old table is unchanged");
        assert_eq!(table.current().pools().len(), 2);
        assert!(Arc::ptr_eq(
            &held.all_backends().members()[0],
            &table.current().all_backends().members()[0]
        ));
        assert!(table.replace(&[], &[]).is_err());
        assert_eq!(
            table.current().pools().len(),
            2,
            "a failed replace keeps the table"
        );
        assert_eq!(table.reloads.load(Ordering::Relaxed), 1);
        assert_eq!(table.failed_reloads.load(Ordering::Relaxed), 1);
        assert_eq!(table.backends().len(), 2);
        assert!(table.load_polled().is_empty(), "no least-load pool");
        let mut measured = pool("calc", "http://b:1");
        measured.strategy = "least-load".into();
        table
            .replace(&[pool("default", "http://a:1"), measured], &[])
            .unwrap();
        let polled = table.load_polled();
        assert_eq!(polled.len(), 1, "only the least-load pool's backends are polled");
        assert_eq!(polled[0].url, "http://b:1");
    }

    #[test]
    fn discovery_changes_swap_the_table_and_a_reload_keeps_them() {
        let web = PoolSpec {
            discovery: Some("etcd://e:1/web".parse().unwrap()),
            backends: Vec::new(),
            ..pool("default", "http://unused:1")
        };
        let table = RoutingTable::new(std::slice::from_ref(&web), &[], Duration::from_secs(1)).unwrap();
        assert!(
            table.current().all_backends().is_empty(),
            "a discovery pool starts empty"
        );
        let source = table.attach_discovery("default", web.discovery.as_ref().unwrap());
        let specs =
            |urls: &[&str]| -> Vec<BackendSpec> { urls.iter().map(|url| url.parse().unwrap()).collect() };
        assert!(
            table
                .set_discovered("default", source, specs(&["http://a:1"]))
                .unwrap()
        );
        let before = table.current();
        assert!(
            table
                .set_discovered("default", source, specs(&["http://a:1", "http://b:1"]))
                .unwrap()
        );
        let after = table.current();
        assert_eq!(
            before.all_backends().len(),
            1,
            "the holder of the old table keeps it"
        );
        assert!(
            Arc::ptr_eq(
                &before.all_backends().members()[0],
                &after.all_backends().members()[0]
            ),
            "a stays the same backend"
        );
        assert_eq!(table.reloads.load(Ordering::Relaxed), 0, "discovery is no reload");
        table.replace(std::slice::from_ref(&web), &[]).unwrap();
        assert_eq!(
            table.current().all_backends().len(),
            2,
            "a reload keeps what was found"
        );
        assert!(
            !table.set_discovered("default", source + 1, Vec::new()).unwrap(),
            "no such watcher"
        );
        // A new load address is a new backend (its load is asked elsewhere).
        let mut moved = specs(&["http://a:1"]);
        moved[0].load = Some("http://a:2/load".into());
        table.set_discovered("default", source, moved).unwrap();
        let current = table.current();
        let member = &current.all_backends().members()[0];
        assert!(!Arc::ptr_eq(member, &after.all_backends().members()[0]));
        assert_eq!(member.load_url(), "http://a:2/load");
    }
}
