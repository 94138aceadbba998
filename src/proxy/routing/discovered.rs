//! What a routing table is built from: the pools and routes as configured, and, for
//! pools that take their backends from etcd, the backends discovery found last.
//!
//! Two writers change these inputs: a reload (SIGHUP) replaces the configured pools and
//! routes, and a discovery watcher replaces one pool's backends. Both rebuild the
//! table from all the inputs, so neither undoes the other: a reload keeps what
//! discovery found, and a discovery change keeps the reloaded routes.
//!
//! Each watcher writes with a source number it was given when it started. A reload
//! that changes a pool's etcd prefix starts a new watcher; the old one may still be
//! finishing a read, and its late answer, carrying the old number, is ignored instead
//! of overwriting the new prefix's backends.
//!
//! OS concept: lost updates between two writers. `Inputs` sits behind one mutex (in
//! `table.rs`), so a reload and a watcher take turns, and the source number that
//! `Inputs::attach` hands out is a generation count: `Inputs::set` refuses a write
//! from a writer that has been replaced.

use std::collections::HashMap;

use super::build::KnownBackends;
use super::spec::{PoolSpec, RouteSpec};
use super::target::EtcdTarget;
use crate::proxy::backends::BackendSpec;

/// Everything a table is built from, behind the table's build lock.
#[derive(Default)]
pub struct Inputs {
    /// Every backend ever configured or discovered, by address (see `build.rs`).
    pub known: KnownBackends,
    pub pools: Vec<PoolSpec>,
    pub routes: Vec<RouteSpec>,
    /// By pool name.
    discovered: HashMap<String, Discovered>,
    /// The last source number handed out.
    last_source: u64,
}

/// One pool's discovered backends.
struct Discovered {
    /// The prefix they were found under.
    target: EtcdTarget,
    /// The only watcher allowed to change them.
    source: u64,
    backends: Vec<BackendSpec>,
}

impl Inputs {
    /// The inputs of a first table: `pools` and `routes`, nothing discovered yet.
    pub fn new(pools: &[PoolSpec], routes: &[RouteSpec]) -> Self {
        Inputs {
            pools: pools.to_vec(),
            routes: routes.to_vec(),
            ..Inputs::default()
        }
    }

    /// A new source number for the watcher of `pool` at `target`; older watchers of
    /// that pool can no longer write. The backends found so far stay if the target is
    /// the same (a restarted watcher keeps serving the last known set).
    pub fn attach(&mut self, pool: &str, target: &EtcdTarget) -> u64 {
        self.last_source += 1;
        let source = self.last_source;
        let entry = self
            .discovered
            .entry(pool.to_string())
            .or_insert_with(|| Discovered {
                target: target.clone(),
                source,
                backends: Vec::new(),
            });
        if &entry.target != target {
            entry.target = target.clone();
            entry.backends.clear();
        }
        entry.source = source;
        source
    }

    /// Records `backends` for `pool` if `source` is still its watcher; says whether it is.
    pub fn set(&mut self, pool: &str, source: u64, backends: Vec<BackendSpec>) -> bool {
        match self.discovered.get_mut(pool) {
            Some(entry) if entry.source == source => {
                entry.backends = backends;
                true
            }
            _ => false,
        }
    }

    /// The configured pools with each discovery pool's backends filled in (none yet,
    /// if its watcher has found none).
    pub fn resolved_pools(&self) -> Vec<PoolSpec> {
        self.pools
            .iter()
            .map(|pool| {
                let mut pool = pool.clone();
                if let Some(target) = &pool.discovery {
                    pool.backends = self
                        .discovered
                        .get(&pool.name)
                        .filter(|found| &found.target == target)
                        .map(|found| found.backends.clone())
                        .unwrap_or_default();
                }
                pool
            })
            .collect()
    }

    /// Forgets the discovered backends of pools that no longer take them from the
    /// same place (after a reload).
    pub fn forget_stale(&mut self) {
        let pools = &self.pools;
        self.discovered.retain(|name, found| {
            pools
                .iter()
                .any(|pool| &pool.name == name && pool.discovery.as_ref() == Some(&found.target))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discovery_pool(name: &str, target: &str) -> PoolSpec {
        PoolSpec {
            name: name.into(),
            strategy: "round-robin".into(),
            backends: Vec::new(),
            discovery: Some(target.parse().unwrap()),
        }
    }

    fn specs(urls: &[&str]) -> Vec<BackendSpec> {
        urls.iter().map(|url| url.parse().unwrap()).collect()
    }

    #[test]
    fn only_the_current_watcher_writes_and_a_new_prefix_starts_empty() {
        let mut inputs = Inputs::new(&[discovery_pool("web", "etcd://e:1/web")], &[]);
        let web: EtcdTarget = "etcd://e:1/web".parse().unwrap();
        let first = inputs.attach("web", &web);
        assert!(inputs.set("web", first, specs(&["http://a:1"])));
        assert_eq!(inputs.resolved_pools()[0].backends, specs(&["http://a:1"]));
        let second = inputs.attach("web", &web);
        assert_eq!(
            inputs.resolved_pools()[0].backends.len(),
            1,
            "a restarted watcher keeps the last set"
        );
        assert!(
            !inputs.set("web", first, Vec::new()),
            "the old watcher is ignored"
        );
        assert!(inputs.set("web", second, specs(&["http://b:1"])));
        // A reload moves the pool to another prefix: the old set is not served there.
        inputs.pools = vec![discovery_pool("web", "etcd://e:1/web2")];
        assert!(inputs.resolved_pools()[0].backends.is_empty());
        inputs.forget_stale();
        assert!(!inputs.set("web", second, specs(&["http://c:1"])), "forgotten");
        let third = inputs.attach("web", &"etcd://e:1/web2".parse().unwrap());
        assert!(inputs.set("web", third, specs(&["http://c:1"])));
        assert_eq!(inputs.resolved_pools()[0].backends, specs(&["http://c:1"]));
    }
}
