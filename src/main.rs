//! The `roundhouse` program: parse the command line, start, wait for a signal, drain.
//!
//! OS concept: signals. Ctrl-C (SIGINT), SIGTERM and SIGHUP arrive asynchronously on
//! any thread; `signal-hook` turns them into messages on a channel (see
//! `roundhouse::sys::signals`, which also says why `ctrlc` is no longer used). The
//! main thread waits on that channel and then runs the orderly shutdown, or a reload,
//! so no real work happens inside a signal context.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use roundhouse::cli::{BackendArgs, Cli, Command};
use roundhouse::config::ServeArgs;
use roundhouse::config::{Explicit, reload::Reloader};
use roundhouse::l4::{TcpArgs, TcpBalancer};
use roundhouse::lab::sim_backend;
use roundhouse::proxy::backends::BackendSpec;
use roundhouse::proxy::balancer::{Balancer, BalancerConfig};
use roundhouse::sys::signals::{self, Event};

/// Prints one line to stdout. A closed stdout (`roundhouse | head -1`) must not stop
/// the balancer, so write errors are ignored instead of panicking like `println!`.
fn say(line: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Exit code for bad configuration, the same as clap's for bad arguments.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    // The matches, not only the parsed values: a flag typed on the command line
    // overrides the configuration file, a flag's default does not.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let result = match cli.command {
        Some(Command::Serve(args)) => serve(&args, &Explicit::of(matches.subcommand_matches("serve"))),
        None => serve(&cli.serve, &Explicit::of(Some(&matches))),
        Some(Command::Check(args)) => {
            let explicit = Explicit::of(matches.subcommand_matches("check"));
            return roundhouse::config::check::run(&args.serve, &explicit);
        }
        Some(Command::Backend(args)) if args.calc_tcp => calc_backend(&args),
        Some(Command::Backend(args)) => run_backend(&args),
        Some(Command::Tcp(args)) => tcp(&args),
        Some(Command::Client(args)) => return roundhouse::lab::client::run(&args),
        Some(Command::Bench(args)) => roundhouse::lab::bench::run(&args),
        Some(Command::Experiment(args)) => roundhouse::lab::bench::experiment::run(&args),
        Some(Command::Simulate(args)) => roundhouse::lab::simulator::command(&args),
        Some(Command::Cert(args)) => cert(&args),
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
    roundhouse::sys::listen::bind(addr).map_err(|error| match error.kind() {
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

/// Waits for Ctrl-C or SIGTERM; a SIGHUP is logged and ignored (`backend` and `tcp`
/// have no configuration file to reload).
fn wait_for_signal() -> Result<(), String> {
    let events = signals::listen()?;
    loop {
        match events.recv() {
            Ok(Event::Reload) => {
                log::warn!("SIGHUP ignored: only `serve --config` has a configuration to reload")
            }
            Ok(Event::ReopenLogs) => log::warn!("SIGUSR1 ignored: there is no log file to reopen"),
            Ok(Event::Stop) | Err(_) => return Ok(()),
        }
    }
}

fn serve(flags: &ServeArgs, explicit: &Explicit) -> Result<(), String> {
    // First, so that a SIGHUP during start-up cannot kill the process.
    let events = signals::listen()?;
    let effective = roundhouse::config::load(flags, explicit).map_err(|problems| {
        for line in problems.lines() {
            eprintln!("{line}");
        }
        let count = problems.list.len();
        format!(
            "invalid configuration ({count} problem{})",
            if count == 1 { "" } else { "s" }
        )
    })?;
    let args = &effective.args;
    // Bind everything first, so a port in use is reported before anything starts.
    let listener = bind(args.listen, "the balancer", "--listen")?;
    let admin_listener = match args.admin_listen {
        Some(addr) => Some(bind(addr, "the admin pages", "--admin-listen")?),
        None => None,
    };
    let mut simulated = Vec::new();
    let mut backends: Vec<BackendSpec> = args.backends.clone();
    if !effective.names_backends() {
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
        let apps = args.apps.settings()?;
        for (number, listener) in listeners.into_iter().enumerate() {
            let port = listener.local_addr().map_err(|error| error.to_string())?.port();
            let config = apps.sim_config(format!("backend-{}", number + 1), args.sim_latency.clone());
            simulated.push(sim_backend::start(listener, config).map_err(|error| error.to_string())?);
            backends.push(
                format!("http://127.0.0.1:{port}")
                    .parse()
                    .map_err(|error| format!("{error}"))?,
            );
        }
    }
    let config = effective.balancer_config(backends.clone());
    let balancer =
        Balancer::start_with_admin(listener, admin_listener, &config).map_err(|error| error.to_string())?;
    print_banner(&balancer, &config, &simulated, args);
    let simulated_specs = if simulated.is_empty() {
        Vec::new()
    } else {
        backends
    };
    let mut reloader = Reloader::new(
        flags.clone(),
        explicit.clone(),
        effective.clone(),
        simulated_specs,
    );
    loop {
        match events.recv() {
            Ok(Event::Reload) => {
                // SIGHUP re-reads the certificate as nginx does, with or without --config.
                reload_certificate(&balancer);
                if flags.config.is_some() || balancer.tls().is_none() {
                    reloader.reload(&balancer);
                }
            }
            Ok(Event::ReopenLogs) => balancer.reopen_logs(),
            Ok(Event::Stop) | Err(_) => break,
        }
    }
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
    say(format_args!(
        "roundhouse: {} {total} requests ({}), {} rejected with 503",
        if summary.drained {
            "drained; served"
        } else {
            "drain timed out; served"
        },
        per_worker.join(", "),
        summary.rejected
    ));
    Ok(())
}

/// Reads the TLS certificate and key again, and says what happened.
fn reload_certificate(balancer: &Balancer) {
    let Some(result) = balancer.reload_tls() else {
        return;
    };
    let tls = balancer.tls().expect("a balancer that reloaded TLS has it");
    match result {
        Ok(()) => log::info!(
            "reloaded the TLS certificate {} (expires {}); open connections keep the one they started with",
            tls.files().cert.display(),
            tls.expires()
        ),
        Err(error) => {
            log::error!("reload of the TLS certificate failed: {error}; the old certificate stays in force")
        }
    }
}

/// `roundhouse cert --self-signed --out DIR`.
fn cert(args: &roundhouse::cli::CertArgs) -> Result<(), String> {
    let (cert, key) = roundhouse::proxy::tls::self_signed::write_self_signed(&args.out)?;
    say(format_args!(
        "wrote {} and {} (self-signed, for localhost, 127.0.0.1 and ::1)",
        cert.display(),
        key.display()
    ));
    say(format_args!(
        "try:  roundhouse --tls-cert {} --tls-key {}",
        cert.display(),
        key.display()
    ));
    say(format_args!(
        "      curl --cacert {} https://localhost:8080/hello",
        cert.display()
    ));
    Ok(())
}

fn print_banner(
    balancer: &Balancer,
    config: &BalancerConfig,
    simulated: &[roundhouse::proxy::front::ServerHandle],
    args: &ServeArgs,
) {
    let addr = balancer.local_addr();
    let scheme = if balancer.tls().is_some() { "https" } else { "http" };
    say(format_args!("roundhouse listening on {scheme}://{addr}"));
    if let Some(tls) = balancer.tls() {
        say(format_args!(
            "  TLS 1.2/1.3 with {} (expires {}); SIGHUP reloads it",
            tls.files().cert.display(),
            tls.expires()
        ));
    }
    say(format_args!(
        "  {} workers, queue of {}, strategy {}",
        config.workers, config.queue, config.strategy
    ));
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
        say(format_args!("  backend {backend}{kind}"));
    }
    for line in roundhouse::config::describe_routing(config) {
        say(format_args!("  {line}"));
    }
    if let Some(cache) = &config.cache {
        say(format_args!("  {}", cache.summary()));
    }
    let admin = balancer.admin_addr().unwrap_or(addr);
    say(format_args!(
        "  admin pages on {}://{admin}/stats for {}",
        if balancer.admin_addr().is_none() {
            scheme
        } else {
            "http"
        },
        config.clients.admin_allow
    ));
    if !config.clients.trust_proxy.is_empty() {
        say(format_args!(
            "  X-Forwarded-For believed from {}",
            config.clients.trust_proxy
        ));
    }
    if let Some(tls) = balancer.tls() {
        let cert = tls.files().cert.display();
        say(format_args!(
            "try:  curl -i --cacert {cert} https://localhost:{}/hello",
            addr.port()
        ));
        match balancer.admin_addr() {
            Some(admin) => say(format_args!("      curl http://{admin}/stats")),
            None => say(format_args!(
                "      curl --cacert {cert} https://localhost:{}/stats",
                admin.port()
            )),
        }
    } else {
        say(format_args!("try:  curl -i http://{addr}/hello"));
        say(format_args!("      curl http://{admin}/stats"));
        say(format_args!(
            "      curl http://{addr}/calc?expr=3%2B4   curl http://{addr}/convertepradolareuro/15.0"
        ));
        say(format_args!(
            "      http://{addr}/site/ in a browser     cargo run -- client calc"
        ));
        say(format_args!(
            "      open http://{addr}/dashboard in a browser; load it with: roundhouse bench http://{addr}/"
        ));
    }
    say(format_args!(
        "stop: Ctrl-C (finishes accepted requests, then exits)"
    ));
}

fn run_backend(args: &BackendArgs) -> Result<(), String> {
    let addr = SocketAddr::new(args.host, args.port);
    let listener = bind(addr, "the backend", "--port")?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("backend-{}", args.port));
    let mut config = args
        .apps
        .settings()?
        .sim_config(name.clone(), args.latency.clone());
    // A backend in its own process reports its real CPU use, as the seed's servers did.
    config.process_cpu = true;
    config.cpu_work = std::time::Duration::from_millis(args.cpu_work);
    let service = sim_backend::service::ServiceOptions {
        latency: args.latency_dist.clone(),
        servers: args.servers as usize,
    };
    let mut server = sim_backend::start_with(listener, config, service).map_err(|error| error.to_string())?;
    let latency = match &args.latency_dist {
        Some(dist) => dist.to_string(),
        None => format!("{}..{} ms", args.latency.start(), args.latency.end()),
    };
    let servers = match args.servers {
        0 => "all at once".to_string(),
        limit => format!("{limit} at a time"),
    };
    say(format_args!(
        "{name} listening on http://{} (answers after {latency}, {servers})",
        server.local_addr()
    ));
    wait_for_signal()?;
    server.shutdown(std::time::Duration::from_secs(10));
    Ok(())
}

/// `roundhouse tcp`: the L4 balancer, stopped by Ctrl-C or SIGTERM like `serve`.
fn tcp(args: &TcpArgs) -> Result<(), String> {
    let listener = bind(args.listen, "the TCP balancer", "--listen")?;
    let admin = args
        .admin
        .map(|addr| bind(addr, "the admin port", "--admin"))
        .transpose()?;
    let balancer = TcpBalancer::start(listener, admin, &args.config()).map_err(|error| error.to_string())?;
    print!("{}", balancer.banner());
    wait_for_signal()?;
    eprintln!(
        "roundhouse: stopping; open connections may go on for up to {:?}",
        args.drain_timeout
    );
    println!("roundhouse: {}", balancer.shutdown(args.drain_timeout));
    Ok(())
}

/// `roundhouse backend --calc-tcp`: the first seed's calculator server.
fn calc_backend(args: &BackendArgs) -> Result<(), String> {
    use roundhouse::lab::calc_tcp::server::{self as calc_server, CalcServerConfig};
    let service = bind(SocketAddr::new(args.host, args.port), "the calculator", "--port")?;
    let status = args
        .status_port
        .map(|port| {
            bind(
                SocketAddr::new(args.host, port),
                "the status port",
                "--status-port",
            )
        })
        .transpose()?;
    let config = CalcServerConfig {
        cpu_work: std::time::Duration::from_millis(args.cpu_work),
        ..CalcServerConfig::default()
    };
    let server = calc_server::start(service, status, &config).map_err(|error| error.to_string())?;
    println!(
        "calculator listening on tcp://{} (send an expression, get the result or Erro: ...)",
        server.service_addr()
    );
    if let Some(status) = server.status_addr() {
        println!("  status port tcp://{status} answers LOAD with this process's CPU percent");
    }
    if args.cpu_work > 0 {
        println!("  spends {} ms of CPU on every expression", args.cpu_work);
    }
    wait_for_signal()?;
    server.shutdown();
    Ok(())
}
