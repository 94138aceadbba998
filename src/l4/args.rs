//! The command line of `roundhouse tcp`.
//!
//! OS concept: none of its own; the knobs of `proxy.rs` and `copy.rs`: how long a
//! `connect(2)` may take, how long a copying thread may sit in `read(2)` with no byte
//! moving, and how many connections (two threads and two descriptors each) may be
//! open at once.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::TcpConfig;
use super::backends::TcpBackendSpec;
use super::proxy::ProxySettings;
use crate::proxy::backends::health::PassivePolicy;
use crate::proxy::strategy;
use crate::units::parse_duration;

#[derive(Debug, Clone, Args)]
#[command(after_help = "Example (the seed calculator, least loaded server first):\n  \
    roundhouse tcp --strategy least-load \\\n    \
    --backend 127.0.0.1:6001,status=127.0.0.1:6000 \\\n    \
    --backend 127.0.0.1:6011,status=127.0.0.1:6010")]
pub struct TcpArgs {
    /// Address to accept client connections on.
    #[arg(long, default_value = "127.0.0.1:5000", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// A backend, `host:port[,status=host:port][,weight=N]`; repeat for more. `status=`
    /// names the port answering the seed's `LOAD` probe (for least-load).
    #[arg(long = "backend", required = true, value_name = "HOST:PORT[,OPTIONS]")]
    pub backends: Vec<TcpBackendSpec>,

    /// Balancing strategy for each new connection (at L4, "in flight" counts open
    /// connections).
    #[arg(long, default_value = "round-robin", value_name = "NAME", value_parser = strategy::name_parser())]
    pub strategy: String,

    /// Serve /stats over HTTP on this address (e.g. 127.0.0.1:8081).
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<SocketAddr>,

    /// Longest wait for a backend to accept a connection before trying the next.
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub connect_timeout: Duration,

    /// Close a connection when neither direction moved a byte for this long (nginx's
    /// proxy_timeout, also 10 minutes by default).
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub idle_timeout: Duration,

    /// Most client connections open at once; one more is closed at once.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=100_000), value_name = "N")]
    pub max_connections: u32,

    /// How often each backend's status port is asked `LOAD`.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub status_interval: Duration,

    /// Failed connects in a row that take a backend out (nginx's max_fails); 0 never.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub max_fails: u32,

    /// How long a backend taken out by --max-fails stays out before a trial connection.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub fail_timeout: Duration,

    /// On Ctrl-C or SIGTERM, how long open connections may go on before being closed.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub drain_timeout: Duration,
}

impl TcpArgs {
    /// The balancer's configuration from these flags.
    pub fn config(&self) -> TcpConfig {
        TcpConfig {
            strategy: self.strategy.clone(),
            backends: self.backends.clone(),
            proxy: ProxySettings {
                connect_timeout: self.connect_timeout,
                idle_timeout: self.idle_timeout,
                max_connections: self.max_connections as usize,
                passive: PassivePolicy {
                    max_fails: self.max_fails,
                    fail_timeout: self.fail_timeout,
                },
            },
            status_interval: self.status_interval,
        }
    }
}
