//! The `roundhouse` program: parse the command line, start, wait for a signal, drain.
//!
//! OS concept: signals. Ctrl-C (SIGINT) and SIGTERM arrive asynchronously on any
//! thread; the `ctrlc` crate turns them into a call of our handler on its own thread,
//! which only sends a message on a channel. The main thread waits on that channel and
//! then runs the orderly shutdown, so no real work happens inside a signal context.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;

use clap::Parser;

use roundhouse::backend::{self, SimConfig};
use roundhouse::backends::BackendSpec;
use roundhouse::balancer::{Balancer, BalancerConfig};
use roundhouse::cli::{BackendArgs, Cli, Command, ServeArgs};
use roundhouse::forward::UpstreamTimeouts;
use roundhouse::front::ServerConfig;
use roundhouse::front::parse::Limits;

/// Exit code for bad configuration, the same as clap's for bad arguments.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Serve(args)) => serve(&args),
        None => serve(&cli.serve),
        Some(Command::Backend(args)) => run_backend(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("roundhouse: {message}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// Binds `addr`, turning "address in use" into a sentence that names the flag to change.
fn bind(addr: SocketAddr, what: &str, flag: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr).map_err(|error| match error.kind() {
        ErrorKind::AddrInUse => {
            format!(
                "port {} ({what}) is already in use; choose another with {flag}",
                addr.port()
            )
        }
        ErrorKind::PermissionDenied => {
            format!(
                "no permission to listen on port {} ({what}); use a port above 1023 with {flag}",
                addr.port()
            )
        }
        _ => format!("cannot listen on {addr} ({what}): {error}"),
    })
}

/// Waits for Ctrl-C or SIGTERM. `set_handler` may be called once per process, so only
/// `main`'s code path calls it.
fn wait_for_signal() -> Result<(), String> {
    let (sender, receiver) = crossbeam_channel::bounded(1);
    ctrlc::set_handler(move || {
        let _ = sender.try_send(());
    })
    .map_err(|error| format!("cannot install the signal handler: {error}"))?;
    let _ = receiver.recv();
    Ok(())
}

fn serve(args: &ServeArgs) -> Result<(), String> {
    // Bind everything first, so a port in use is reported before anything starts.
    let listener = bind(args.listen, "the balancer", "--listen")?;
    let mut simulated = Vec::new();
    let mut backends: Vec<BackendSpec> = args.backends.clone();
    if backends.is_empty() {
        let mut listeners = Vec::new();
        for number in 0..args.sim_backends {
            let port = if args.sim_base_port == 0 {
                0
            } else {
                args.sim_base_port
                    .checked_add(number)
                    .ok_or("--sim-base-port is too high")?
            };
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            listeners.push(bind(addr, "a simulated backend", "--sim-base-port")?);
        }
        for (number, listener) in listeners.into_iter().enumerate() {
            let port = listener.local_addr().map_err(|error| error.to_string())?.port();
            let config = SimConfig {
                name: format!("backend-{}", number + 1),
                latency_ms: args.sim_latency.clone(),
            };
            simulated.push(backend::start(listener, config).map_err(|error| error.to_string())?);
            backends.push(
                format!("http://127.0.0.1:{port}")
                    .parse()
                    .map_err(|error| format!("{error}"))?,
            );
        }
    }
    let config = BalancerConfig {
        workers: args.workers as usize,
        queue: args.queue as usize,
        strategy: args.strategy.clone(),
        backends: backends.clone(),
        server: ServerConfig {
            limits: Limits {
                max_body: args.max_body,
                ..Limits::default()
            },
            max_connections: args.max_connections as usize,
            client_timeout: args.client_timeout,
            keepalive_timeout: args.keepalive_timeout,
            thread_name: "conn".into(),
        },
        upstream: UpstreamTimeouts {
            connect: args.connect_timeout,
            response: args.timeout,
        },
    };
    let balancer = Balancer::start(listener, &config).map_err(|error| error.to_string())?;
    print_banner(&balancer, &config, &simulated, args);
    wait_for_signal()?;
    eprintln!(
        "roundhouse: stopping; finishing accepted requests (up to {:?})",
        args.drain_timeout
    );
    let summary = balancer.shutdown(args.drain_timeout);
    for mut backend in simulated {
        backend.shutdown(args.drain_timeout);
    }
    let total: u64 = summary.per_worker.iter().sum();
    let per_worker: Vec<String> = summary
        .per_worker
        .iter()
        .enumerate()
        .map(|(id, handled)| format!("worker {id}: {handled}"))
        .collect();
    println!(
        "roundhouse: {} {total} requests ({}), {} rejected with 503",
        if summary.drained {
            "drained; served"
        } else {
            "drain timed out; served"
        },
        per_worker.join(", "),
        summary.rejected
    );
    Ok(())
}

fn print_banner(
    balancer: &Balancer,
    config: &BalancerConfig,
    simulated: &[roundhouse::front::ServerHandle],
    args: &ServeArgs,
) {
    let addr = balancer.local_addr();
    println!("roundhouse listening on http://{addr}");
    println!(
        "  {} workers, queue of {}, strategy {}",
        config.workers, config.queue, config.strategy
    );
    for backend in &config.backends {
        let kind = if simulated.is_empty() {
            String::new()
        } else {
            format!(
                " (simulated, {}..{} ms)",
                args.sim_latency.start(),
                args.sim_latency.end()
            )
        };
        println!("  backend {backend}{kind}");
    }
    println!("try:  curl -i http://{addr}/hello");
    println!("      curl http://{addr}/stats");
    println!("stop: Ctrl-C (finishes accepted requests, then exits)");
}

fn run_backend(args: &BackendArgs) -> Result<(), String> {
    let addr = SocketAddr::new(args.host, args.port);
    let listener = bind(addr, "the backend", "--port")?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("backend-{}", args.port));
    let config = SimConfig {
        name: name.clone(),
        latency_ms: args.latency.clone(),
    };
    let mut server = backend::start(listener, config).map_err(|error| error.to_string())?;
    println!(
        "{name} listening on http://{} (answers after {}..{} ms)",
        server.local_addr(),
        args.latency.start(),
        args.latency.end()
    );
    wait_for_signal()?;
    server.shutdown(std::time::Duration::from_secs(10));
    Ok(())
}
