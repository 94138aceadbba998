//! L4 mode: balance TCP connections, not HTTP requests (`roundhouse tcp`).
//!
//! The HTTP balancer (L7) reads every request and may send each one to a different
//! backend. An L4 balancer never looks inside the byte stream: it picks a backend when
//! a connection opens and then copies bytes both ways until the connection closes, so
//! every request on one connection goes to the same backend. nginx's `stream` module
//! and HAProxy's `mode tcp` work this way. docs/l4.md measures the difference.
//!
//! OS concept: the connection as the unit the kernel hands over. `accept(2)` gives the
//! balancer a connection, not a request, so at L4 a connection is all it can balance.
//! `TcpBalancer::start` refuses a zero timeout, since a zero socket timeout means "wait
//! forever" to the OS, and starts the acceptor last, so that no connection is taken
//! before the status poller and the admin port run.
//!
//! Read in this order: `backends` (where connections can go), `proxy` (accept, pick,
//! connect; the copy itself, one direction with half-close and an idle timeout, is
//! `crate::proxy::tunnel::copy`, shared with WebSocket tunnels), `status` (the seed's
//! `LOAD` probe for least-load), `counters` and `admin` (`/stats` on `--admin`). The first
//! seed's calculator, which runs behind it, lives in the lab (`src/lab/calc_tcp/`).

pub mod admin;
pub mod args;
pub mod backends;
pub mod counters;
pub mod proxy;
pub mod status;

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use thiserror::Error;

pub use args::TcpArgs;
use backends::{TcpBackendError, TcpBackendSpec, TcpBackends};
use counters::L4Stats;
use proxy::{Acceptor, Proxy, ProxySettings};

use crate::proxy::backends::health::PassivePolicy;
use crate::proxy::front::ServerHandle;
use crate::proxy::strategy::{self, UnknownStrategy};

/// Everything a TCP balancer needs to start.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    pub strategy: String,
    pub backends: Vec<TcpBackendSpec>,
    pub proxy: ProxySettings,
    /// How often status ports are asked `LOAD`.
    pub status_interval: Duration,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            strategy: "round-robin".into(),
            backends: Vec::new(),
            proxy: ProxySettings {
                connect_timeout: Duration::from_secs(2),
                idle_timeout: Duration::from_secs(600),
                max_connections: 1024,
                passive: PassivePolicy::default(),
            },
            status_interval: Duration::from_secs(1),
        }
    }
}

/// Why a TCP balancer could not start.
#[derive(Debug, Error)]
pub enum TcpStartError {
    #[error(transparent)]
    Strategy(#[from] UnknownStrategy),
    #[error(transparent)]
    Backend(#[from] TcpBackendError),
    #[error("no backends: give at least one --backend host:port")]
    NoBackends,
    #[error("--{0} must be longer than zero")]
    ZeroDuration(&'static str),
    #[error("cannot start threads: {0}")]
    Threads(#[from] std::io::Error),
}

/// A running TCP balancer: the acceptor, the status poller and the admin port.
pub struct TcpBalancer {
    acceptor: Acceptor,
    admin: Option<ServerHandle>,
    stats: Arc<L4Stats>,
    backends: Arc<TcpBackends>,
    /// The status poller, and the channel whose closing tells it to stop.
    poller: Option<(JoinHandle<()>, Sender<()>)>,
}

impl TcpBalancer {
    /// Starts accepting on `listener`, and serving `/stats` on `admin` if given.
    pub fn start(
        listener: TcpListener,
        admin: Option<TcpListener>,
        config: &TcpConfig,
    ) -> Result<Self, TcpStartError> {
        if config.backends.is_empty() {
            return Err(TcpStartError::NoBackends);
        }
        // A zero socket timeout means "no timeout" to the OS; refuse it rather than
        // silently wait forever.
        for (value, flag) in [
            (config.proxy.connect_timeout, "connect-timeout"),
            (config.proxy.idle_timeout, "idle-timeout"),
            (config.status_interval, "status-interval"),
        ] {
            if value.is_zero() {
                return Err(TcpStartError::ZeroDuration(flag));
            }
        }
        let strategy = strategy::by_name(&config.strategy)?;
        let stats = Arc::new(L4Stats::new(strategy.name()));
        let backends = Arc::new(TcpBackends::resolve(&config.backends, config.status_interval)?);
        // The poller runs whenever a backend names a status port: the operator asked
        // for the numbers, and /stats shows them whatever the strategy.
        let poller = if (0..backends.len()).any(|index| backends.target(index).status_addr.is_some()) {
            let (stop, stopped) = crossbeam_channel::bounded(0);
            let thread = status::start(Arc::clone(&backends), config.status_interval, stopped)?;
            Some((thread, stop))
        } else {
            None
        };
        let admin = admin
            .map(|listener| {
                let handler = admin::AdminHandler {
                    stats: Arc::clone(&stats),
                    backends: Arc::clone(&backends),
                };
                admin::start(listener, handler)
            })
            .transpose()?;
        // Last, so that nothing is accepted before everything else is running.
        let proxy = Arc::new(Proxy::new(
            config.proxy.clone(),
            strategy,
            Arc::clone(&backends),
            Arc::clone(&stats),
        ));
        let acceptor = proxy::start(listener, proxy)?;
        Ok(TcpBalancer {
            acceptor,
            admin,
            stats,
            backends,
            poller,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.acceptor.local_addr()
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(ServerHandle::local_addr)
    }

    pub fn stats(&self) -> &Arc<L4Stats> {
        &self.stats
    }

    pub fn backends(&self) -> &Arc<TcpBackends> {
        &self.backends
    }

    /// The `/stats` document.
    pub fn snapshot(&self) -> serde_json::Value {
        self.stats.snapshot(&self.backends)
    }

    /// Client connections open right now.
    pub fn open_connections(&self) -> usize {
        self.acceptor.open_connections()
    }

    /// What `roundhouse tcp` prints when it starts.
    pub fn banner(&self) -> String {
        let addr = self.local_addr();
        let mut text = format!(
            "roundhouse tcp listening on tcp://{addr} (L4: each connection to one backend), strategy {}\n",
            self.stats.strategy
        );
        for index in 0..self.backends.len() {
            let spec = &self.backends.target(index).spec;
            text += &format!("  backend {}", spec.address);
            if let Some(status) = &spec.status {
                text += &format!(" (load from {status})");
            }
            if spec.weight != 1 {
                text += &format!(" weight {}", spec.weight);
            }
            text += "\n";
        }
        if let Some(admin) = self.admin_addr() {
            text += &format!("stats: curl http://{admin}/stats   (live: http://{admin}/dashboard)\n");
        }
        text += &format!("try:  roundhouse client calc --tcp {addr}\n");
        text += "stop: Ctrl-C (open connections may finish, then exits)\n";
        text
    }

    /// Stops accepting, lets open connections go on for up to `drain`, closes the
    /// rest, stops the poller and the admin port, and reports what was done.
    pub fn shutdown(mut self, drain: Duration) -> TcpSummary {
        let drained = self.acceptor.shutdown(drain);
        if let Some((thread, stop)) = self.poller.take() {
            drop(stop);
            let _ = thread.join();
        }
        if let Some(mut admin) = self.admin.take() {
            admin.shutdown(Duration::from_secs(1));
        }
        let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        TcpSummary {
            drained,
            accepted: load(&self.stats.accepted),
            refused: load(&self.stats.refused),
            no_backend: load(&self.stats.no_backend),
            per_backend: (0..self.backends.len())
                .map(|index| {
                    (
                        self.backends.target(index).spec.address.clone(),
                        self.backends.connections_made(index),
                    )
                })
                .collect(),
        }
    }
}

/// What a stopped TCP balancer reports.
#[derive(Debug, Clone)]
pub struct TcpSummary {
    /// False when connections were still open at the end of the drain time.
    pub drained: bool,
    pub accepted: u64,
    pub refused: u64,
    pub no_backend: u64,
    /// Connections made to each backend.
    pub per_backend: Vec<(String, u64)>,
}

impl fmt::Display for TcpSummary {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        let per_backend: Vec<String> = self
            .per_backend
            .iter()
            .map(|(address, connections)| format!("{address}: {connections}"))
            .collect();
        write!(
            formatter,
            "{} {} connections ({}), {} refused over --max-connections, {} found no backend",
            if self.drained {
                "drained; served"
            } else {
                "drain timed out, the rest were closed; served"
            },
            self.accepted,
            per_backend.join(", "),
            self.refused,
            self.no_backend
        )
    }
}
