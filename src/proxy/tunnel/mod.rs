//! Tunnels: after a `101 Switching Protocols` (a WebSocket, or any upgrade the backend
//! accepts), the client's connection and the backend's become one two-way byte
//! stream, copied as the L4 mode copies (`copy`).
//!
//! OS concept: a thread that waits must not be one the pool needs. A WebSocket may
//! stay open for hours and send a byte a minute; if a worker copied it, four such
//! clients would stop the balancer. So the worker only forwards the upgrade request
//! and gets the `101`; the tunnel then runs on the client connection's own thread
//! (which HTTP no longer needs; with the event loop, a thread started for it) plus one
//! more for the other direction, like the L4
//! mode's thread pair: with blocking sockets each direction needs its own waiting
//! thread. Threads, not workers, are what a tunnel costs, and `--max-tunnels` bounds
//! them (nginx bounds the same thing with `worker_connections`).

pub mod copy;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::http1::transport::Duplex;
use crate::http1::upgrade::OnUpgrade;
use copy::{Activity, Direction, Ended, both_ways};

/// Stack of a tunnel's second copier thread: its buffer lives on the heap.
const COPIER_STACK: usize = 128 * 1024;

/// The balancer's tunnels: the cap, the idle timeout and the counters.
#[derive(Debug)]
pub struct Tunnels {
    /// Most tunnels open at once (`--max-tunnels`); upgrade requests past it get 503.
    pub max: usize,
    /// A tunnel in which nothing moved either way for this long is closed
    /// (`--tunnel-idle-timeout`, like nginx's `proxy_read_timeout` on a WebSocket).
    pub idle_timeout: Duration,
    /// Tunnels open now, counting upgrade requests still waiting for their `101`.
    pub open: AtomicUsize,
    /// Tunnels started (a `101` came back) since start.
    pub opened: AtomicU64,
    /// Upgrade requests refused because `max` tunnels were open.
    pub refused: AtomicU64,
    /// Tunnels closed because nothing moved for the idle timeout.
    pub idle_closed: AtomicU64,
    /// Bytes copied client to backend, and backend to client.
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
}

impl Tunnels {
    pub fn new(max: usize, idle_timeout: Duration) -> Self {
        Tunnels {
            max,
            idle_timeout,
            open: AtomicUsize::new(0),
            opened: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            idle_closed: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
        }
    }

    /// A place for one more tunnel, or `None` (counted) when `max` are open. Taken
    /// before the upgrade request is forwarded, so the cap holds however many upgrade
    /// requests race for it; the slot is given back when its holder is dropped.
    pub fn reserve(self: &Arc<Self>) -> Option<Slot> {
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            });
        match taken {
            Ok(_) => Some(Slot(Arc::clone(self))),
            Err(_) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

/// One reserved place among the tunnels, given back on drop.
#[derive(Debug)]
pub struct Slot(Arc<Tunnels>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The backend's side of an upgraded connection, ready to be joined to the client's.
pub struct Tunnel {
    pub backend: Arc<dyn Duplex>,
    /// What the backend sent after its `101` head, already read with it.
    pub from_backend: Vec<u8>,
    pub slot: Slot,
}

impl OnUpgrade for Tunnel {
    /// Copies both ways until both directions end, then closes both connections (they
    /// close when the last `Arc` of each goes, which is here).
    fn run(self: Box<Self>, client: Arc<dyn Duplex>, from_client: Vec<u8>) {
        let tunnels = Arc::clone(&self.slot.0);
        tunnels.opened.fetch_add(1, Ordering::Relaxed);
        let backend = self.backend;
        // Bytes that arrived with the HTTP heads go first, in their own direction.
        if client.write_all(&self.from_backend).is_err() || backend.write_all(&from_client).is_err() {
            return;
        }
        let _ = client.socket().set_nodelay(true);
        let _ = backend.socket().set_nodelay(true);
        let activity = Activity::default();
        let upward = Direction {
            from: &*client,
            to: &*backend,
            idle_timeout: tunnels.idle_timeout,
            activity: &activity,
            counters: &[&tunnels.bytes_up],
        };
        let downward = Direction {
            from: &*backend,
            to: &*client,
            idle_timeout: tunnels.idle_timeout,
            activity: &activity,
            counters: &[&tunnels.bytes_down],
        };
        let (up, down) = both_ways("tunnel".into(), COPIER_STACK, upward, downward);
        if matches!(up, Ended::Idle) || matches!(down, Ended::Idle) {
            tunnels.idle_closed.fetch_add(1, Ordering::Relaxed);
        }
        log::debug!("tunnel ended: client to backend {up:?}, backend to client {down:?}");
    }
}
