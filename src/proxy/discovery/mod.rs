//! Discovery: pools whose backends come from etcd instead of a list, so that every
//! balancer instance follows the same pool (`--discovery etcd://HOST:PORT/PREFIX`, or
//! `discovery = "..."` on a pool in the configuration file). docs/discovery.md walks
//! through a set-up on several hosts.
//!
//! - the `etcd://HOST:PORT[,HOST:PORT...]/PREFIX` URL is pool configuration, so it is
//!   parsed beside the pools, in src/proxy/routing/target.rs.
//! - `wire.rs`: the JSON of etcd's HTTP gateway (base64 keys, 64-bit numbers as strings).
//! - `etcd.rs`: the client: calls, watches, failing over between members.
//! - `entry.rs`: one backend as the value of one key.
//! - `watcher.rs`: read the prefix, watch it, apply each change to the routing table.
//! - `register.rs`: a backend's own key, kept alive with a lease (`backend --register`).
//! - `status.rs`, `backoff.rs`: what `/stats` shows; how long to wait before a retry.
//!
//! OS concept: shared state kept by consensus, and the routing table as its local
//! cache. No balancer owns the membership: etcd keeps it, replicated on a majority of
//! its members (Raft), and each balancer keeps a copy it reads without asking anyone,
//! updated by a watch. Changes reach the workers the way a reload does (read-copy-update,
//! see `crate::proxy::routing`): a new table beside the old, swapped in at once, with backends
//! that stay keeping their health. Kubernetes keeps service endpoints in etcd the same
//! way; Traefik and confd+nginx read theirs from it.

pub mod backoff;
pub mod entry;
pub mod etcd;
pub mod register;
pub mod status;
pub mod watcher;
pub mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub use crate::proxy::routing::target::EtcdTarget;
use crate::proxy::routing::{PoolSpec, RoutingTable};
pub use status::Status;

/// How long start-up (or a reload) waits for new watchers' first read, so that the
/// pools are filled before the first request when etcd answers, and start-up is not
/// held up long when it does not (the watchers keep trying meanwhile).
const FIRST_READ_WAIT: Duration = Duration::from_secs(5);

/// The watchers of every discovery pool.
pub struct Discovery {
    table: Arc<RoutingTable>,
    /// One per pool that takes its backends from etcd. Locked to start or stop
    /// watchers (start-up, reload, shutdown) and to copy the statuses (`/stats`,
    /// `/metrics`); never while waiting for a watcher or talking to etcd.
    watchers: Mutex<Vec<watcher::Running>>,
}

impl Discovery {
    /// Starts a watcher for each pool of `pools` that names a discovery source.
    pub fn start(table: Arc<RoutingTable>, pools: &[PoolSpec]) -> std::io::Result<Self> {
        let discovery = Discovery {
            table,
            watchers: Mutex::new(Vec::new()),
        };
        discovery.sync(pools)?;
        Ok(discovery)
    }

    /// Makes the watchers match `pools` (after a reload): a watcher whose pool is gone
    /// or now names another source is stopped, and a pool without one gets one. A pool
    /// whose source did not change keeps its watcher, its position in etcd's history
    /// and its backends.
    pub fn sync(&self, pools: &[PoolSpec]) -> std::io::Result<()> {
        let mut first_reads = Vec::new();
        {
            let mut watchers = self.watchers.lock();
            watchers.retain(|running| {
                pools.iter().any(|pool| {
                    pool.name == running.status.pool
                        && pool.discovery.as_ref() == Some(&running.status.target)
                })
            });
            for pool in pools {
                let Some(target) = &pool.discovery else {
                    continue;
                };
                if watchers.iter().any(|running| running.status.pool == pool.name) {
                    continue;
                }
                let (running, first_read) = watcher::start(Arc::clone(&self.table), pool, target)?;
                watchers.push(running);
                first_reads.push(first_read);
            }
        }
        let deadline = Instant::now() + FIRST_READ_WAIT;
        for first_read in first_reads {
            // Disconnected when the first round is over; a timeout is fine too.
            let _ = first_read.recv_deadline(deadline);
        }
        Ok(())
    }

    /// What every watcher is doing, for `/stats` and `/metrics`.
    pub fn statuses(&self) -> Vec<Arc<Status>> {
        self.watchers
            .lock()
            .iter()
            .map(|running| Arc::clone(&running.status))
            .collect()
    }

    /// Tells every watcher to stop.
    pub fn stop(&self) {
        self.watchers.lock().clear();
    }
}

/// The `discovery` array of `/stats`: one object per discovery pool.
pub fn stats_json(statuses: &[Arc<Status>]) -> serde_json::Value {
    serde_json::Value::Array(statuses.iter().map(|status| status.to_json()).collect())
}
