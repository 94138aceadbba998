//! The command line: `roundhouse [serve]`, `roundhouse backend`, `roundhouse client`,
//! and the other subcommands. The settings of `serve` are the configuration's own
//! schema (`crate::config::args::ServeArgs`); this file only names the subcommands.
//!
//! OS concept: the argument vector. `execve(2)` gives a program its words as `argv`
//! and nothing else; `Cli` is what they mean. One binary plays every role by its first
//! word, so the supervisor can start a simulated backend as `roundhouse backend` from
//! the very file it runs (src/lab/sim_backend/process.rs).

use std::ops::RangeInclusive;

use clap::{Args, Parser, Subcommand};

use std::time::Duration;

use crate::config::ServeArgs;
use crate::l4::TcpArgs;
use crate::lab::client::ClientArgs;
use crate::lab::sim_backend::apps::args::AppArgs;
use crate::proxy::backends::BackendSpec;
use crate::proxy::discovery::EtcdTarget;
use crate::units::{parse_millis_range, parse_size};

#[derive(Debug, Parser)]
#[command(
    name = "roundhouse",
    version,
    about = "A thread-based HTTP load balancer for learning how servers work",
    long_about = "roundhouse accepts HTTP requests, queues them in a bounded channel, and lets a \
                  fixed pool of worker threads forward each one to a backend chosen by a \
                  balancing strategy. With no subcommand it runs `serve` with three simulated \
                  backends, so `cargo run` followed by `curl localhost:8080/stats` shows it working.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the balancer (the default when no subcommand is given).
    Serve(Box<ServeArgs>),
    /// Run one simulated backend as its own process.
    Backend(BackendArgs),
    /// Balance TCP connections (L4): pick a backend per connection, copy bytes both ways.
    Tcp(Box<TcpArgs>),
    /// Send a request through the balancer, or `client calc` for the calculator loop.
    Client(ClientArgs),
    /// Load-test a URL with a closed loop of clients; against a roundhouse balancer,
    /// also report per-worker counts and the Little's-law bound.
    Bench(crate::lab::bench::BenchArgs),
    /// Measure throughput and latency for several worker counts and plot them
    /// (`make experiment`).
    #[command(hide = true)]
    Experiment(crate::lab::bench::experiment::ExperimentArgs),
    /// Simulate a strategy with many backends in virtual time and compare with theory.
    Simulate(crate::lab::simulator::SimulateArgs),
    /// Check a configuration (like `nginx -t`): print the effective settings, or every
    /// problem found, one per line; exit 0 when valid, 2 otherwise.
    Check(Box<crate::config::check::CheckArgs>),
    /// Make a development certificate: `cert --self-signed --out DIR` writes
    /// DIR/cert.pem and DIR/key.pem for localhost, 127.0.0.1 and ::1.
    Cert(CertArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CertArgs {
    /// Sign the certificate with its own key (the only kind this command makes): for
    /// development, trusted by clients told to (`curl --cacert DIR/cert.pem`).
    #[arg(long, required = true)]
    pub self_signed: bool,

    /// Directory to write cert.pem and key.pem into (made if missing).
    #[arg(long, value_name = "DIR")]
    pub out: std::path::PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// Port to listen on.
    #[arg(long, value_name = "PORT")]
    pub port: u16,

    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub host: std::net::IpAddr,

    /// Delay of each answer, a uniform random choice in MIN..MAX milliseconds.
    #[arg(long, default_value = "200..800", value_parser = parse_millis_range, value_name = "MIN..MAX")]
    pub latency: RangeInclusive<u64>,

    /// Name reported in each answer (default: backend-PORT).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Speak the first seed's calculator protocol over plain TCP instead of HTTP: read
    /// an expression, answer the result or `Erro: <message>`, close.
    #[arg(long)]
    pub calc_tcp: bool,

    /// With --calc-tcp: answer the seed's `LOAD` probe (this process's CPU percent) here.
    #[arg(long, value_name = "PORT", requires = "calc_tcp")]
    pub status_port: Option<u16>,

    /// Spin the CPU for MS milliseconds on every request (or expression, with
    /// --calc-tcp), so the load a least-load balancer reads has something to show.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub cpu_work: u64,

    /// Largest request body accepted (e.g. 10M, 512K); larger gets 413. A balancer that
    /// supervises this backend passes its own --max-body.
    #[arg(long, default_value = "10M", value_parser = parse_size, value_name = "SIZE")]
    pub max_body: u64,

    #[command(flatten)]
    pub apps: AppArgs,

    /// Service-time distribution, replacing --latency: `exp:MEAN` (exponential, mean in
    /// ms, the model of `roundhouse simulate`) or `uniform:MIN..MAX`.
    #[arg(long, value_name = "DIST")]
    pub latency_dist: Option<crate::lab::sim_backend::service::LatencyDist>,

    /// Register in etcd under this prefix while running, so balancers started with
    /// `--discovery` and the same URL send requests here: the key is held by a lease
    /// that Ctrl-C revokes (balancers drop this backend at once) and that expires
    /// --register-ttl after a crash.
    #[arg(
        long,
        value_name = "etcd://HOST:PORT[,HOST:PORT...]/PREFIX",
        requires = "advertise",
        conflicts_with = "calc_tcp"
    )]
    pub register: Option<EtcdTarget>,

    /// With --register: the URL balancers reach this backend at,
    /// `http://HOST:PORT[,weight=N]` (the address other hosts know, not 0.0.0.0).
    #[arg(long, value_name = "URL", requires = "register")]
    pub advertise: Option<BackendSpec>,

    /// With --register: the lease's lifetime, the longest a crashed backend stays
    /// listed; renewed every third of it (whole seconds).
    #[arg(long, default_value = "5s", value_parser = crate::proxy::discovery::register::parse_ttl, value_name = "DURATION")]
    pub register_ttl: Duration,

    /// Requests served at once; the others wait in line (1 makes the backend a
    /// single-server queue, as in `roundhouse simulate`). 0: no limit.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100_000), value_name = "N")]
    pub servers: u32,
}
