//! Every setting of `roundhouse serve`, with its flag: the one schema of the
//! configuration. The command line fills it (clap reads these attributes), the file
//! fills it underneath (`merge.rs`), and `balancer_config` turns it into what the
//! balancer runs with.
//!
//! OS concept: none of its own; these are the knobs of the concepts shown elsewhere
//! (how many worker threads, how many slots in the bounded queue, how long a blocking
//! read may wait, how many descriptors the fronts may hold), written once so that the
//! flag, the file and `roundhouse check` cannot disagree about them.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ipnet::IpNet;

use crate::http1::head::Limits;
use crate::lab::sim_backend::apps::args::AppArgs;
use crate::proxy::access_log::AccessLogArgs;
use crate::proxy::backends::BackendSpec;
use crate::proxy::backends::checker::CheckPolicy;
use crate::proxy::backends::health::PassivePolicy;
use crate::proxy::balancer::BalancerConfig;
use crate::proxy::cache::CacheArgs;
use crate::proxy::clients::{ClientRules, NetList, parse_net};
use crate::proxy::discovery::EtcdTarget;
use crate::proxy::forward::UpstreamTimeouts;
use crate::proxy::front::{FrontKind, ServerConfig};
use crate::proxy::strategy;
use crate::proxy::tls::TlsFiles;
use crate::units::{parse_duration, parse_millis_range, parse_positive_duration, parse_size};

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Read settings, pools and routes from this TOML file (docs/config.md); flags given
    /// on the command line override it. SIGHUP re-reads it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    /// Address to accept clients on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Worker threads forwarding requests (the most requests in progress at once).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=4096), value_name = "N")]
    pub workers: u32,

    /// Capacity of the bounded queue between the front and the workers; when it is full
    /// new requests get 503 with Retry-After at once. Benchmarks want it at least the
    /// number of client connections.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1_000_000), value_name = "N")]
    pub queue: u32,

    /// Balancing strategy: how the next backend is chosen.
    #[arg(long, default_value = "round-robin", value_name = "NAME", value_parser = strategy::name_parser())]
    pub strategy: String,

    /// A backend to balance over, `http://host:port[,weight=N]`; repeat for more. When
    /// given, no simulated backends start.
    #[arg(long = "backend", value_name = "URL")]
    pub backends: Vec<BackendSpec>,

    /// Take the backends from etcd instead of --backend: every key under PREFIX is one
    /// backend (`roundhouse backend --register` writes them), followed as keys come and
    /// go; list several members to fail over between them (docs/discovery.md).
    #[arg(
        long,
        value_name = "etcd://HOST:PORT[,HOST:PORT...]/PREFIX",
        conflicts_with = "backends"
    )]
    pub discovery: Option<EtcdTarget>,

    /// Number of simulated backends to start in this process when no --backend is given.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(0..=256), value_name = "N")]
    pub sim_backends: u16,

    /// Port of the first simulated backend; the others follow (9001, 9002, ...). 0 lets
    /// the system choose free ports.
    #[arg(long, default_value_t = 9001, value_name = "PORT")]
    pub sim_base_port: u16,

    /// Delay of each simulated answer, a uniform random choice in MIN..MAX milliseconds.
    #[arg(long, default_value = "200..800", value_parser = parse_millis_range, value_name = "MIN..MAX")]
    pub sim_latency: RangeInclusive<u64>,

    /// Longest wait for a backend's answer before the client gets 504 (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Longest wait for a TCP connection to a backend.
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub connect_timeout: Duration,

    /// Longest a client may take to send a request head or to read our answer.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub client_timeout: Duration,

    /// How long an idle keep-alive connection is kept open waiting for its next request.
    #[arg(long, default_value = "15s", value_parser = parse_duration, value_name = "DURATION")]
    pub keepalive_timeout: Duration,

    /// How the front waits for clients: `threads` (a thread per connection blocking in
    /// read(2), the classic model) or `epoll` (a few event-loop threads wait on every
    /// socket at once: ten thousand idle clients cost memory, not threads). Everything
    /// behind the front is the same. See "I/O multiplexing" in docs/concepts.md.
    #[arg(long, default_value = "threads", value_name = "KIND")]
    pub front: FrontKind,

    /// Event-loop threads of `--front epoll` (each owns the connections it accepted);
    /// more than one only helps with more cores than busy workers.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64), value_name = "N")]
    pub front_threads: u32,

    /// Most client connections open at once; one more gets 503 and is closed.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000), value_name = "N")]
    pub max_connections: u32,

    /// Largest request body accepted (e.g. 10M, 512K); larger gets 413.
    #[arg(long, default_value = "10M", value_parser = parse_size, value_name = "SIZE")]
    pub max_body: u64,

    /// On Ctrl-C or SIGTERM, how long to let accepted requests finish before exiting.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub drain_timeout: Duration,

    /// Extra attempts on other backends after a connect error or timeout (idempotent
    /// methods; POST and PATCH only when the connection was never made).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=16), value_name = "N")]
    pub retries: u32,

    /// Connect errors or timeouts in a row that take a backend out (passive health,
    /// like nginx's max_fails); 0 turns passive health off.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub max_fails: u32,

    /// How long a backend taken out by --max-fails stays out before a trial request.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub fail_timeout: Duration,

    /// Path the active health checker requests on every backend.
    #[arg(long, default_value = "/health", value_name = "PATH")]
    pub health_path: String,

    /// Time between active health checks of each backend; 0 turns them off.
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub health_interval: Duration,

    /// Failed health checks in a row that mark a backend down.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100), value_name = "N")]
    pub health_fall: u32,

    /// Passed health checks in a row that mark a down backend up again.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100), value_name = "N")]
    pub health_rise: u32,

    /// How often least-load asks each backend for its load (GET /load).
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub load_interval: Duration,

    /// Options of the apps the simulated backends host (static site, currency rates).
    #[command(flatten)]
    pub apps: AppArgs,

    #[command(flatten)]
    pub cache: CacheArgs,

    #[command(flatten)]
    pub access_log: AccessLogArgs,

    /// Also let clients from this network see /stats, /metrics and /dashboard, the
    /// x-roundhouse-* headers and backend errors in 502/504 bodies (CIDR such as
    /// 10.0.0.0/8, or one address); repeat for more. Loopback always may.
    #[arg(long = "admin-allow", value_name = "CIDR", value_parser = parse_net)]
    pub admin_allow: Vec<IpNet>,

    /// Serve the admin pages on this address instead of --listen; the main port then
    /// forwards /stats, /metrics and /dashboard to the backends like any other path.
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,

    /// Believe X-Forwarded-For from peers in this network (another balancer in front):
    /// the client is then the rightmost untrusted address in it, for ip-hash, the
    /// access log, --admin-allow and Forwarded; repeat for more.
    #[arg(long = "trust-proxy", value_name = "CIDR", value_parser = parse_net)]
    pub trust_proxy: Vec<IpNet>,

    #[command(flatten)]
    pub processes: crate::process::args::ProcessArgs,

    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first);
    /// needs --tls-key. SIGHUP reads it again. `roundhouse cert --self-signed --out DIR`
    /// makes one for localhost.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Trust only the CA certificates in this PEM file for https:// backends, instead
    /// of the system's roots.
    #[arg(long, value_name = "FILE")]
    pub backend_ca: Option<PathBuf>,

    /// Most WebSocket (or other upgraded) tunnels open at once; upgrade requests past it
    /// get 503. Each tunnel costs two threads, none of them a worker.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(0..=1_000_000), value_name = "N")]
    pub max_tunnels: u32,

    /// Close a tunnel when nothing has moved either way for this long (nginx's
    /// proxy_read_timeout default).
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub tunnel_idle_timeout: Duration,
}

impl ServeArgs {
    /// Trusted proxies as given; the admin allow-list is loopback plus what is given.
    pub fn client_rules(&self) -> ClientRules {
        let mut admin_allow = NetList::loopback().nets().to_vec();
        admin_allow.extend(self.admin_allow.iter().copied());
        ClientRules {
            trust_proxy: NetList::new(self.trust_proxy.clone()),
            admin_allow: NetList::new(admin_allow),
        }
    }

    /// The listener's certificate and key, when both are set.
    pub fn tls_files(&self) -> Option<TlsFiles> {
        Some(TlsFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
        })
    }

    /// The balancer's configuration from these flags, balancing over `backends`.
    pub fn balancer_config(&self, backends: Vec<BackendSpec>) -> BalancerConfig {
        BalancerConfig {
            workers: self.workers as usize,
            queue: self.queue as usize,
            strategy: self.strategy.clone(),
            backends,
            discovery: self.discovery.clone(),
            server: ServerConfig {
                limits: Limits {
                    max_body: self.max_body,
                    ..Limits::default()
                },
                max_connections: self.max_connections as usize,
                client_timeout: self.client_timeout,
                keepalive_timeout: self.keepalive_timeout,
                thread_name: "conn".into(),
                tls: None,
            },
            front: self.front,
            front_threads: self.front_threads as usize,
            backends_in_process: false,
            upstream: UpstreamTimeouts {
                connect: self.connect_timeout,
                response: self.timeout,
            },
            retries: self.retries,
            passive: PassivePolicy {
                max_fails: self.max_fails,
                fail_timeout: self.fail_timeout,
            },
            check: CheckPolicy {
                path: self.health_path.clone(),
                interval: self.health_interval,
                rise: self.health_rise,
                fall: self.health_fall,
            },
            load_interval: self.load_interval,
            cache: self.cache.config(),
            access_log: self.access_log.access_log.clone(),
            pools: Vec::new(),
            routes: Vec::new(),
            clients: self.client_rules(),
            tls: self.tls_files(),
            backend_ca: self.backend_ca.clone(),
            max_tunnels: self.max_tunnels as usize,
            tunnel_idle_timeout: self.tunnel_idle_timeout,
        }
    }
}
