//! The TCP proxy: accept a client, pick a backend, connect, copy bytes both ways.
//!
//! OS concept: one thread per connection direction, bounded. The acceptor thread blocks
//! in `accept(2)`; each accepted connection gets a thread that picks a backend with the
//! configured strategy (at L4 "in flight" means connections open), connects with a
//! timeout (on failure: the next backend, as nginx's `proxy_next_upstream` does for
//! streams), and then copies the backend's bytes to the client while a second, scoped
//! thread copies the client's bytes to the backend (`crate::proxy::tunnel::copy` explains why two). The
//! connection ends when both directions have ended. At most `--max-connections` are
//! open at once; one more is closed at once, and counted.
//!
//! Nothing here looks inside the bytes: the same code carries the seed calculator's
//! protocol, HTTP with keep-alive, or anything else that runs over TCP. That is the
//! difference from the HTTP balancer, which parses every request and can send each
//! one to a different backend.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::backends::TcpBackends;
use super::counters::L4Stats;
use crate::proxy::backends::health::{PassivePolicy, Transition, now_ms};
use crate::proxy::strategy::{BackendsView, PickContext, Strategy};
use crate::proxy::tunnel::copy::{Activity, Direction, both_ways};
use crate::sys::listen::{accept_with_backoff, wake_acceptor};

/// Stack of each connection thread: the copy buffers live on the heap, so little is
/// needed, and 2048 threads at the default 2 MiB would reserve 4 GiB of address space.
const THREAD_STACK: usize = 128 * 1024;

/// How a proxy treats connections.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Longest wait for a backend to accept a connection before trying the next.
    pub connect_timeout: Duration,
    /// A connection on which neither direction moved a byte for this long is closed.
    pub idle_timeout: Duration,
    /// Client connections open at once; one more is closed at once.
    pub max_connections: usize,
    /// Failed connects in a row that take a backend out, and for how long.
    pub passive: PassivePolicy,
}

/// Everything the acceptor and the connection threads share.
pub struct Proxy {
    settings: ProxySettings,
    strategy: Box<dyn Strategy>,
    backends: Arc<TcpBackends>,
    stats: Arc<L4Stats>,
    stopping: AtomicBool,
    /// Protects the table of open connections: taken to add or remove one, and by
    /// shutdown to find them; never held while reading, writing or connecting.
    connections: Mutex<ConnectionTable>,
    /// Signalled when a connection closes, so a draining shutdown can wait for zero.
    connection_closed: Condvar,
}

#[derive(Default)]
struct ConnectionTable {
    next_id: u64,
    /// Clones of each connection's sockets (client, then backend once connected), so
    /// shutdown can end a connection that is still open after the drain time.
    open: HashMap<u64, Vec<TcpStream>>,
}

impl Proxy {
    pub fn new(
        settings: ProxySettings,
        strategy: Box<dyn Strategy>,
        backends: Arc<TcpBackends>,
        stats: Arc<L4Stats>,
    ) -> Self {
        Proxy {
            settings,
            strategy,
            backends,
            stats,
            stopping: AtomicBool::new(false),
            connections: Mutex::new(ConnectionTable::default()),
            connection_closed: Condvar::new(),
        }
    }

    /// Adds a client connection to the table, unless `--max-connections` are open.
    fn register(&self, stream: &TcpStream) -> Option<u64> {
        let clone = stream.try_clone().ok()?;
        let mut table = self.connections.lock();
        if table.open.len() >= self.settings.max_connections {
            return None;
        }
        table.next_id += 1;
        let id = table.next_id;
        table.open.insert(id, vec![clone]);
        Some(id)
    }

    /// Remembers the backend socket of connection `id` too.
    fn track(&self, id: u64, stream: &TcpStream) {
        if let Ok(clone) = stream.try_clone()
            && let Some(sockets) = self.connections.lock().open.get_mut(&id)
        {
            sockets.push(clone);
        }
    }

    fn unregister(&self, id: u64) {
        self.connections.lock().open.remove(&id);
        self.connection_closed.notify_all();
    }

    /// Picks backends until one accepts a connection; each is tried at most once.
    fn connect(&self, peer: SocketAddr) -> Option<(usize, TcpStream)> {
        let mut tried: Vec<usize> = Vec::new();
        let mut rng = rand::rng();
        loop {
            let mut context = PickContext {
                client: Some(peer.ip()),
                exclude: &tried,
                rng: &mut rng,
            };
            let index = self.strategy.pick(&*self.backends, &mut context)?;
            let target = self.backends.target(index);
            let counters = self.backends.counters(index);
            match TcpStream::connect_timeout(&target.addr, self.settings.connect_timeout) {
                Ok(stream) => {
                    if let Some(Transition::Up(reason)) = counters.health.record_success() {
                        log::warn!("backend {} is UP: {reason}", target.spec.address);
                    }
                    return Some((index, stream));
                }
                Err(error) => {
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                    let reason = format!("connect: {error}");
                    log::warn!("backend {}: {reason}; trying the next", target.spec.address);
                    if let Some(Transition::Down(why)) =
                        counters
                            .health
                            .record_failure(now_ms(), &self.settings.passive, &reason)
                    {
                        log::warn!("backend {} is DOWN: {why}", target.spec.address);
                    }
                    tried.push(index);
                }
            }
        }
    }

    /// One client connection, from picking a backend to both directions closed.
    fn serve(&self, id: u64, client: TcpStream, peer: SocketAddr) {
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        let Some((index, upstream)) = self.connect(peer) else {
            self.stats.no_backend.fetch_add(1, Ordering::Relaxed);
            log::warn!("client {peer}: no backend could be connected; closing");
            return;
        };
        self.track(id, &upstream);
        // Small writes (a calculator's `3 + 4`) must not wait for Nagle's algorithm to
        // gather more; HAProxy sets TCP_NODELAY on both sides too.
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let counters = self.backends.counters(index);
        let target = self.backends.target(index);
        counters.requests.fetch_add(1, Ordering::Relaxed);
        let _open = counters.start_request();
        // The load the strategy saw, for the log line (least-load's reason).
        let load = self.backends.load(index);
        let started = Instant::now();
        let activity = Activity::default();
        let (sent, received) = (AtomicU64::new(0), AtomicU64::new(0));
        let upward = Direction {
            from: &client,
            to: &upstream,
            idle_timeout: self.settings.idle_timeout,
            activity: &activity,
            counters: &[&sent, &target.bytes_up, &self.stats.bytes_up],
        };
        let downward = Direction {
            from: &upstream,
            to: &client,
            idle_timeout: self.settings.idle_timeout,
            activity: &activity,
            counters: &[&received, &target.bytes_down, &self.stats.bytes_down],
        };
        let (up, down) = both_ways(format!("tcp-{id}-up"), THREAD_STACK, upward, downward);
        // One line per connection, like HAProxy's tcplog: who, where, how much, how
        // long. `RUST_LOG=warn` silences it.
        let load = match (target.status_addr, load) {
            (None, _) => String::new(),
            (Some(_), Some(load)) if load.is_finite() => format!(" (load {load:.1}%)"),
            (Some(_), _) => " (load unknown)".into(),
        };
        log::info!(
            "{peer} -> {}{load}: {} bytes up, {} down, {} ms",
            target.spec.address,
            sent.load(Ordering::Relaxed),
            received.load(Ordering::Relaxed),
            started.elapsed().as_millis()
        );
        log::debug!("{peer}: client to backend ended {up:?}; backend to client ended {down:?}");
    }
}

/// A running acceptor and the way to stop it.
pub struct Acceptor {
    local_addr: SocketAddr,
    proxy: Arc<Proxy>,
    thread: Option<JoinHandle<()>>,
}

/// Starts accepting on `listener` on a new thread.
pub fn start(listener: TcpListener, proxy: Arc<Proxy>) -> io::Result<Acceptor> {
    let local_addr = listener.local_addr()?;
    let accept_proxy = Arc::clone(&proxy);
    let thread = thread::Builder::new()
        .name("tcp-accept".into())
        .spawn(move || accept_loop(&listener, &accept_proxy))?;
    Ok(Acceptor {
        local_addr,
        proxy,
        thread: Some(thread),
    })
}

/// A connection's place in the table, given back when its thread ends, by return or by
/// panic: a bug in one connection must not keep its slot against `--max-connections`
/// (nor make a drain wait for it).
struct Registered {
    proxy: Arc<Proxy>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.proxy.stats.open.fetch_sub(1, Ordering::Relaxed);
        self.proxy.unregister(self.id);
    }
}

fn accept_loop(listener: &TcpListener, proxy: &Arc<Proxy>) {
    // Out of file descriptors or similar: back off (5 ms doubling to 1 s) instead of
    // spinning, as the HTTP front does.
    while let Some((stream, peer)) = accept_with_backoff(listener, &proxy.stopping) {
        if proxy.stopping.load(Ordering::SeqCst) {
            break; // the wake-up connection of `wake_acceptor`, or one that came with it
        }
        let Some(id) = proxy.register(&stream) else {
            // nginx's `limit_conn` closes too; HAProxy's `maxconn` stops accepting and
            // lets the kernel's backlog queue. A counted, visible refusal is the lesson.
            proxy.stats.refused.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "{peer}: {} connections already open (--max-connections); closing",
                proxy.settings.max_connections
            );
            continue;
        };
        proxy.stats.open.fetch_add(1, Ordering::Relaxed);
        let thread_proxy = Arc::clone(proxy);
        let spawned = thread::Builder::new()
            .name(format!("tcp-{id}"))
            .stack_size(THREAD_STACK)
            .spawn(move || {
                let registered = Registered {
                    proxy: thread_proxy,
                    id,
                };
                registered.proxy.serve(id, stream, peer);
            });
        if let Err(error) = spawned {
            log::warn!("cannot start a connection thread: {error}");
            proxy.stats.open.fetch_sub(1, Ordering::Relaxed);
            proxy.unregister(id);
        }
    }
}

impl Acceptor {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Client connections open right now.
    pub fn open_connections(&self) -> usize {
        self.proxy.connections.lock().open.len()
    }

    /// Stops accepting and waits up to `drain` for open connections to end by
    /// themselves; then closes the rest. Returns true when none had to be closed.
    pub fn shutdown(&mut self, drain: Duration) -> bool {
        self.proxy.stopping.store(true, Ordering::SeqCst);
        // accept(2) has no timeout: see `wake_acceptor`.
        wake_acceptor(self.local_addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if self.wait_for_no_connections(drain) {
            return true;
        }
        // Still open after the drain time: end them. Shutting a socket down wakes the
        // thread blocked reading it, so every copier returns promptly.
        let sockets: Vec<TcpStream> = {
            let table = self.proxy.connections.lock();
            table
                .open
                .values()
                .flatten()
                .filter_map(|stream| stream.try_clone().ok())
                .collect()
        };
        for stream in sockets {
            let _ = stream.shutdown(Shutdown::Both);
        }
        self.wait_for_no_connections(Duration::from_secs(1));
        false
    }

    /// Waits until the table is empty or `limit` passed; true when it emptied.
    fn wait_for_no_connections(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut table = self.proxy.connections.lock();
        while !table.open.is_empty() {
            if self
                .proxy
                .connection_closed
                .wait_until(&mut table, deadline)
                .timed_out()
            {
                return table.open.is_empty();
            }
        }
        true
    }
}
