//! Wiring: the front, the bounded queue, the worker pool and the backends, started and
//! stopped together.
//!
//! Follow one request: `front::server` accepts and parses it, `front::dispatch` puts it
//! in the bounded channel, a `pool` worker takes it, `strategy` picks a backend,
//! `forward` sends it there, and the response travels back the same way.
//!
//! OS concept: graceful shutdown. Stopping is ordered so nothing accepted is lost:
//! stop accepting, let every connection with a request finish it (workers keep
//! serving the queue meanwhile), then close the channel so the workers exit, and
//! finally let the access logger write its last lines.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use crate::proxy::access_log::{AccessLog, AccessLogTarget};
use crate::proxy::admin::AdminPages;
use crate::proxy::backends::BackendSpec;
use crate::proxy::backends::checker::{self, CheckPolicy};
use crate::proxy::backends::health::PassivePolicy;
use crate::proxy::backends::load;
use crate::proxy::cache::{Cache, CacheConfig};
use crate::proxy::clients::ClientRules;
use crate::proxy::discovery::{Discovery, EtcdTarget};
use crate::proxy::forward::UpstreamTimeouts;
use crate::proxy::forward::{ForwardPolicy, Proxy};
use crate::proxy::front::admin_listener::AdminHandler;
use crate::proxy::front::dispatch::Dispatcher;
use crate::proxy::front::limit::{self, ConnectionLimit};
use crate::proxy::front::running::{self, FrontKind, RunningFront};
use crate::proxy::front::server::{self, ServerConfig, ServerHandle};
use crate::proxy::pool::WorkerPool;
use crate::proxy::routing::{DEFAULT_POOL, PoolSpec, RouteSpec, RoutingError, RoutingTable};
use crate::proxy::stats::Stats;
use crate::proxy::strategy::{self, UnknownStrategy};
use crate::proxy::tls::{BackendTls, CertError, TlsAcceptor, TlsFiles};
use crate::proxy::tunnel::Tunnels;
use std::path::PathBuf;

/// Everything a balancer needs to start.
#[derive(Debug, Clone)]
pub struct BalancerConfig {
    pub workers: usize,
    pub queue: usize,
    pub strategy: String,
    pub backends: Vec<BackendSpec>,
    /// Where the `default` pool finds its backends instead of `backends` (etcd).
    pub discovery: Option<EtcdTarget>,
    pub server: ServerConfig,
    /// How the front waits for clients (`--front`).
    pub front: FrontKind,
    /// Event-loop threads of the epoll front (`--front-threads`).
    pub front_threads: usize,
    /// The backends run in this process (the simulated ones): each backend connection
    /// then costs two descriptors here, both of its ends.
    pub backends_in_process: bool,
    pub upstream: UpstreamTimeouts,
    /// Extra attempts on other backends after a retryable failure.
    pub retries: u32,
    /// Passive health: live failures that take a backend out, and for how long.
    pub passive: PassivePolicy,
    /// Active health checks (interval zero: off).
    pub check: CheckPolicy,
    /// How often `least-load` asks backends for their load.
    pub load_interval: Duration,
    /// The response cache; `None` (the default) turns it off.
    pub cache: Option<CacheConfig>,
    /// Where the access log goes. The library default is `Off`; the command line's is `-`.
    pub access_log: AccessLogTarget,
    /// Named pools besides the `default` one that `strategy` and `backends` make.
    pub pools: Vec<PoolSpec>,
    /// Path prefixes sent to pools; requests matching none go to the `default` pool.
    pub routes: Vec<RouteSpec>,
    /// Trusted proxies and the admin allow-list.
    pub clients: ClientRules,
    /// Serve HTTPS with this certificate and key (`--tls-cert`, `--tls-key`).
    pub tls: Option<TlsFiles>,
    /// Trust only these CAs for https backends (`--backend-ca`); else the system's.
    pub backend_ca: Option<PathBuf>,
    /// Most tunnels (upgraded connections) open at once, and their idle timeout.
    pub max_tunnels: usize,
    pub tunnel_idle_timeout: Duration,
}

impl BalancerConfig {
    /// Every pool: `default` from `strategy` and `backends` or `discovery` (when
    /// either names backends), then the named ones.
    pub fn all_pools(&self) -> Vec<PoolSpec> {
        let default = (!self.backends.is_empty() || self.discovery.is_some()).then(|| PoolSpec {
            name: DEFAULT_POOL.to_string(),
            strategy: self.strategy.clone(),
            backends: self.backends.clone(),
            discovery: self.discovery.clone(),
        });
        default.into_iter().chain(self.pools.iter().cloned()).collect()
    }
}

impl Default for BalancerConfig {
    fn default() -> Self {
        BalancerConfig {
            workers: 4,
            queue: 64,
            strategy: "round-robin".into(),
            backends: Vec::new(),
            discovery: None,
            server: ServerConfig::default(),
            front: FrontKind::default(),
            front_threads: 1,
            backends_in_process: false,
            upstream: UpstreamTimeouts {
                connect: Duration::from_secs(2),
                response: Duration::from_secs(10),
            },
            retries: 2,
            passive: PassivePolicy::default(),
            check: CheckPolicy::default(),
            load_interval: Duration::from_secs(1),
            cache: None,
            access_log: AccessLogTarget::Off,
            pools: Vec::new(),
            routes: Vec::new(),
            clients: ClientRules::default(),
            tls: None,
            backend_ca: None,
            max_tunnels: 512,
            tunnel_idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Why a balancer could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Strategy(#[from] UnknownStrategy),
    #[error(transparent)]
    Routing(#[from] RoutingError),
    #[error("no backends: give at least one --backend URL, or leave --sim-backends above 0")]
    NoBackends,
    #[error("--workers must be at least 1")]
    NoWorkers,
    #[error("--queue must be at least 1")]
    NoQueue,
    #[error("cannot start threads: {0}")]
    Threads(#[from] std::io::Error),
    #[error("cannot use the cache directory: {0}")]
    CacheDir(std::io::Error),
    #[error("cannot open the access log {0}")]
    AccessLog(std::io::Error),
    #[error(transparent)]
    Tls(#[from] CertError),
}

/// A running balancer.
pub struct Balancer {
    server: RunningFront,
    limit: ConnectionLimit,
    /// The admin pages' own listener, with `--admin-listen`.
    admin_server: Option<ServerHandle>,
    pool: WorkerPool,
    stats: Arc<Stats>,
    routing: Arc<RoutingTable>,
    /// The etcd watchers of discovery pools (none without `discovery`).
    discovery: Arc<Discovery>,
    /// Background threads (health checker, load poller) and the channel whose closing
    /// tells them to stop.
    monitors: Vec<JoinHandle<()>>,
    stop_monitors: Sender<()>,
    access_log: Option<AccessLog>,
    /// The listener's TLS, reloaded on SIGHUP.
    tls: Option<Arc<TlsAcceptor>>,
}

/// What a finished balancer reports.
#[derive(Debug)]
pub struct Summary {
    /// Requests each worker handled.
    pub per_worker: Vec<u64>,
    pub rejected: u64,
    /// False when connections were still busy at the end of the drain timeout.
    pub drained: bool,
}

impl Balancer {
    /// Starts serving on `listener` with `config`, the admin pages on the same port.
    pub fn start(listener: TcpListener, config: &BalancerConfig) -> Result<Self, StartError> {
        Balancer::start_with_admin(listener, None, config)
    }

    /// Starts serving on `listener`; with `admin`, the admin pages are served there
    /// instead of on `listener` (`--admin-listen`).
    pub fn start_with_admin(
        listener: TcpListener,
        admin: Option<TcpListener>,
        config: &BalancerConfig,
    ) -> Result<Self, StartError> {
        if config.workers == 0 {
            return Err(StartError::NoWorkers);
        }
        if config.queue == 0 {
            return Err(StartError::NoQueue);
        }
        let pools = config.all_pools();
        if pools.is_empty() {
            return Err(StartError::NoBackends);
        }
        let strategy = strategy::by_name(&config.strategy)?;
        let stats = Arc::new(Stats::new(strategy.name(), config.workers));
        let routing = Arc::new(RoutingTable::new(&pools, &config.routes, config.load_interval)?);
        // Before the monitors and the front, so discovery pools are filled (if etcd
        // answers) when the first check and the first request come.
        let discovery = Arc::new(Discovery::start(Arc::clone(&routing), &pools)?);
        // Both monitors ask the routing table for its backends every round, so they
        // follow reloads. The load poller idles while no pool uses least-load.
        let (stop_monitors, stop) = crossbeam_channel::bounded(0);
        let mut monitors = Vec::new();
        if !config.check.interval.is_zero() {
            monitors.push(checker::start(
                Arc::clone(&routing) as _,
                config.check.clone(),
                config.backend_ca.clone(),
                stop.clone(),
            )?);
        }
        monitors.push(load::start(
            Arc::clone(&routing) as _,
            config.load_interval,
            config.backend_ca.clone(),
            stop,
        )?);
        let policy = ForwardPolicy {
            timeouts: config.upstream,
            retries: config.retries,
            passive: config.passive,
        };
        let tls = match &config.tls {
            Some(files) => Some(Arc::new(TlsAcceptor::new(files.clone())?)),
            None => None,
        };
        let tunnels = Arc::new(Tunnels::new(config.max_tunnels, config.tunnel_idle_timeout));
        let mut proxy = Proxy::new(Arc::clone(&routing), policy, config.workers, Arc::clone(&stats))
            .with_tunnels(Arc::clone(&tunnels));
        if let Some(ca) = &config.backend_ca {
            proxy = proxy.with_backend_tls(BackendTls::new(Some(ca))?);
        }
        let proxy = Arc::new(proxy);
        let access_log = AccessLog::start(&config.access_log).map_err(StartError::AccessLog)?;
        let cache = match &config.cache {
            // A follower waits for its leader at most as long as a fetch may take.
            Some(cache) => Some(Arc::new(
                Cache::new(
                    cache.clone(),
                    config.upstream.connect + config.upstream.response,
                    Arc::clone(&stats),
                )
                .map_err(StartError::CacheDir)?,
            )),
            None => None,
        };
        let (jobs, queue) = crossbeam_channel::bounded(config.queue);
        let rules = Arc::new(config.clients.clone());
        let admin_server = match admin {
            Some(admin) => {
                let handler = AdminHandler {
                    pages: AdminPages {
                        stats: Arc::clone(&stats),
                        routing: Arc::clone(&routing),
                        cache: cache.clone(),
                        jobs: queue.clone(),
                        capacity: config.queue,
                        tls: tls.clone(),
                        tunnels: Arc::clone(&tunnels),
                        discovery: Some(Arc::clone(&discovery)),
                    },
                    rules: Arc::clone(&rules),
                };
                let settings = ServerConfig {
                    thread_name: "admin".into(),
                    ..config.server.clone()
                };
                Some(server::start(admin, settings, Arc::new(handler))?)
            }
            None => None,
        };
        let dispatcher = Dispatcher::new(
            jobs,
            queue.clone(),
            config.queue,
            Arc::clone(&stats),
            Arc::clone(&routing),
        )
        .with_cache(cache)
        .with_access_log(access_log.as_ref().map(AccessLog::sender))
        .with_discovery(Arc::clone(&discovery))
        .with_clients(rules, admin_server.is_none())
        .with_admin_extras(tls.clone(), tunnels);
        // Unbounded, but holding at most one resume per connection (`pool::relay`).
        let (resumes, resumed) = crossbeam_channel::unbounded();
        let pool = WorkerPool::start(config.workers, queue, resumed, proxy)?;
        let limit = connection_limit(config, &pools);
        let mut server_config = config.server.clone();
        server_config.max_connections = limit.effective;
        server_config.tls.clone_from(&tls);
        let server = running::start(
            config.front,
            config.front_threads,
            listener,
            server_config,
            Arc::new(dispatcher),
            resumes,
        )?;
        Ok(Balancer {
            admin_server,
            server,
            limit,
            pool,
            stats,
            routing,
            discovery,
            monitors,
            stop_monitors,
            access_log,
            tls,
        })
    }

    /// Reads the listener's certificate and key again (SIGHUP). New connections get
    /// the new pair; open ones keep theirs; a bad pair changes nothing. `None` when
    /// the balancer serves plain HTTP.
    pub fn reload_tls(&self) -> Option<Result<(), CertError>> {
        self.tls.as_ref().map(|tls| tls.reload())
    }

    /// The listener's TLS, if it serves HTTPS.
    pub fn tls(&self) -> Option<&Arc<TlsAcceptor>> {
        self.tls.as_ref()
    }

    /// Swaps in the pools and routes of `config` (everything else in it is ignored:
    /// it needs a restart). Requests in flight finish on the old table; backends that
    /// stay keep their health, and discovery pools keep what etcd said. On error the
    /// old table stays.
    pub fn reload(&self, config: &BalancerConfig) -> Result<(), RoutingError> {
        let pools = config.all_pools();
        self.routing.replace(&pools, &config.routes)?;
        // The new table is in force; now start and stop watchers to match it.
        if let Err(error) = self.discovery.sync(&pools) {
            log::error!("reload: cannot start a discovery watcher: {error}");
        }
        Ok(())
    }

    /// The etcd watchers of the discovery pools.
    pub fn discovery(&self) -> &Arc<Discovery> {
        &self.discovery
    }

    /// The pools and routes in force.
    pub fn routing(&self) -> &Arc<RoutingTable> {
        &self.routing
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    /// Reopens the access log file (SIGUSR1), for log rotation.
    pub fn reopen_logs(&self) {
        if let Some(access_log) = &self.access_log {
            access_log.reopen();
        }
    }

    /// Where the admin pages are served, when they have their own listener.
    pub fn admin_addr(&self) -> Option<std::net::SocketAddr> {
        self.admin_server.as_ref().map(ServerHandle::local_addr)
    }

    /// The client connections the front holds, after the descriptor limit.
    pub fn connection_limit(&self) -> ConnectionLimit {
        self.limit
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Client connections open right now.
    pub fn open_connections(&self) -> usize {
        self.server.open_connections()
    }

    /// Stops accepting, finishes every accepted request (up to `drain`), stops the
    /// workers, and reports what was done.
    pub fn shutdown(self, drain: Duration) -> Summary {
        self.finish(drain, false)
    }

    /// The same, once a new process accepts on the listening socket (an upgrade): see
    /// `ServerHandle::hand_over` for how idle keep-alive connections are let go.
    pub fn hand_over(self, drain: Duration) -> Summary {
        self.finish(drain, true)
    }

    fn finish(self, drain: Duration, handing_over: bool) -> Summary {
        let Balancer {
            mut server,
            admin_server,
            pool,
            stats,
            discovery,
            monitors,
            stop_monitors,
            access_log,
            ..
        } = self;
        discovery.stop();
        drop(stop_monitors);
        if let Some(mut admin_server) = admin_server {
            if handing_over {
                admin_server.hand_over(Duration::ZERO);
            } else {
                admin_server.shutdown(Duration::ZERO);
            }
        }
        for monitor in monitors {
            let _ = monitor.join();
        }
        let drained = if handing_over {
            server.hand_over(drain)
        } else {
            server.shutdown(drain)
        };
        // Dropping the server drops the dispatcher and with it the channel's sender;
        // the workers' `recv` then fails and they exit. If connections are still busy
        // after the drain timeout they hold the sender, so we do not wait for workers.
        drop(server);
        if drained {
            pool.join();
        }
        // Last: every connection has sent its record by now (or the drain timed out),
        // and `finish` writes each queued line before it returns.
        if let Some(access_log) = access_log {
            access_log.finish();
        }
        let load =
            |counter: &std::sync::atomic::AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
        Summary {
            per_worker: stats.workers.iter().map(|worker| load(&worker.handled)).collect(),
            rejected: load(&stats.rejected),
            drained,
        }
    }
}

/// Raises the descriptor limit as far as it goes and fits `--max-connections` under it.
/// Each worker keeps at most one idle connection to each backend it used (it answers
/// one request at a time, `forward::conn_pool`), so backends take about workers x
/// backends descriptors.
fn connection_limit(config: &BalancerConfig, pools: &[PoolSpec]) -> ConnectionLimit {
    let descriptors = crate::sys::limits::raise_descriptor_limit();
    let backends: usize = pools.iter().map(|pool| pool.backends.len()).sum();
    let ends = if config.backends_in_process { 2 } else { 1 };
    let backend_connections = (config.workers * backends * ends) as u64;
    let limit = limit::fit(config.server.max_connections, backend_connections, descriptors);
    if let Some(line) = limit.shortfall() {
        log::warn!("{line}");
    }
    limit
}
