//! The `roundhouse` program: parse the command line, start, wait for a signal, drain.
//!
//! OS concept: signals. Ctrl-C (SIGINT), SIGTERM and SIGHUP arrive asynchronously on
//! any thread; `signal-hook` turns them into messages on a channel (see
//! `roundhouse::sys::signals`, which also says why `ctrlc` is no longer used). The
//! main thread waits on that channel and then runs the orderly shutdown, or a reload,
//! so no real work happens inside a signal context.
//!
//! SIGUSR2 upgrades in place (`roundhouse::process::upgrade`): the program file is
//! started again with our listening sockets, and this process drains and exits once the
//! new one reports ready. The same start-up path, reading inherited sockets
//! (`roundhouse::process::listeners`), serves `systemd-socket-activate` and systemd.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches};

use roundhouse::cli::{BackendArgs, Cli, Command};
use roundhouse::config::ServeArgs;
use roundhouse::config::{Explicit, reload::Reloader};
use roundhouse::l4::{TcpArgs, TcpBalancer};
use roundhouse::lab::sim_backend;
use roundhouse::process::listeners::{self, Inherited};
use roundhouse::process::supervisor::{HealthHook, Supervisor};
use roundhouse::process::upgrade;
use roundhouse::proxy::backends::BackendSpec;
use roundhouse::proxy::balancer::{Balancer, BalancerConfig};
use roundhouse::proxy::routing::RoutingTable;
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
    // Before anything else: the path of our program file, while it still names the file
    // we run (see `upgrade::remember_executable`).
    upgrade::remember_executable();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    // Sockets passed by systemd, systemd-socket-activate or an upgrading roundhouse.
    let mut inherited = match Inherited::from_env() {
        Ok(inherited) => inherited,
        Err(error) => {
            eprintln!("roundhouse: inherited descriptors: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // The matches, not only the parsed values: a flag typed on the command line
    // overrides the configuration file, a flag's default does not.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let result = match cli.command {
        Some(Command::Serve(args)) => serve(
            &args,
            &Explicit::of(matches.subcommand_matches("serve")),
            &mut inherited,
        ),
        None => serve(&cli.serve, &Explicit::of(Some(&matches)), &mut inherited),
        Some(Command::Check(args)) => {
            let explicit = Explicit::of(matches.subcommand_matches("check"));
            return roundhouse::config::check::run(&args.serve, &explicit);
        }
        Some(Command::Backend(args)) if args.calc_tcp => calc_backend(&args, &mut inherited),
        Some(Command::Backend(args)) => run_backend(&args, &mut inherited),
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

/// Waits for Ctrl-C or SIGTERM; SIGHUP, SIGUSR1 and SIGUSR2 are logged and ignored
/// (`backend` and `tcp` have no configuration file to reload, no log file, and do not
/// upgrade in place).
fn wait_for_signal() -> Result<(), String> {
    let events = signals::listen().map_err(|error| error.to_string())?;
    loop {
        match events.recv() {
            Ok(Event::Reload) => {
                log::warn!("SIGHUP ignored: only `serve --config` has a configuration to reload")
            }
            Ok(Event::ReopenLogs) => log::warn!("SIGUSR1 ignored: there is no log file to reopen"),
            Ok(Event::Upgrade) => log::warn!("SIGUSR2 ignored: only `serve` upgrades in place"),
            Ok(Event::Stop) | Err(_) => return Ok(()),
        }
    }
}

/// An inherited socket could not be used: one line, like a port in use.
fn inherit_error(error: listeners::InheritError) -> String {
    format!("inherited descriptors: {error}")
}

/// A copy of `listener` (the same socket), kept to pass to a successor on SIGUSR2.
fn keep_copy(
    name: &str,
    listener: &TcpListener,
    kept: &mut Vec<(String, TcpListener)>,
) -> Result<(), String> {
    let copy = listener
        .try_clone()
        .map_err(|error| format!("cannot duplicate the listening socket: {error}"))?;
    kept.push((name.to_string(), copy));
    Ok(())
}

/// Marks the backend a supervised process serves down or up in the routing table in
/// force (looked up at each call, so it follows reloads).
fn process_health(routing: Arc<RoutingTable>) -> HealthHook {
    Box::new(move |url, up, reason| {
        let current = routing.current();
        for backend in current.all_backends().iter().filter(|backend| backend.url == url) {
            backend.health.set_check_up(up, reason);
        }
    })
}

fn serve(flags: &ServeArgs, explicit: &Explicit, inherited: &mut Inherited) -> Result<(), String> {
    // First, so that a SIGHUP during start-up cannot kill the process.
    let events = signals::listen().map_err(|error| error.to_string())?;
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
    // Bind everything first, so a port in use is reported before anything starts; a
    // socket inherited under the same name is used instead of binding.
    let listener = listeners::or_bind(
        inherited.take_listen().map_err(inherit_error)?,
        "the balancer",
        || bind(args.listen, "the balancer", "--listen"),
    )?;
    // Copies of every listening socket, for a successor (SIGUSR2). Dropped before a
    // plain stop, so that the sockets close and new connections are refused at once
    // rather than left waiting in a queue nobody takes from.
    let mut passable = Vec::new();
    keep_copy(listeners::LISTEN, &listener, &mut passable)?;
    let admin_listener = match args.admin_listen {
        Some(addr) => {
            let taken = inherited.take(listeners::ADMIN).map_err(inherit_error)?;
            let admin = listeners::or_bind(taken, "the admin pages", || {
                bind(addr, "the admin pages", "--admin-listen")
            })?;
            keep_copy(listeners::ADMIN, &admin, &mut passable)?;
            Some(admin)
        }
        None => None,
    };
    let mut simulated = Vec::new();
    // Child processes to supervise: the simulated backends with --sim-processes, and
    // the configuration's [[processes]].
    let mut supervised = Vec::new();
    let mut sim_started = false;
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
            let name = format!("backend-{}", number + 1);
            let taken = inherited.take(&name).map_err(inherit_error)?;
            let listener = listeners::or_bind(taken, &name, || {
                bind(addr, "a simulated backend", "--sim-base-port")
            })?;
            keep_copy(&name, &listener, &mut passable)?;
            listeners.push(listener);
        }
        let apps = args.apps.settings()?;
        for (number, listener) in listeners.into_iter().enumerate() {
            let port = listener.local_addr().map_err(|error| error.to_string())?.port();
            let name = format!("backend-{}", number + 1);
            sim_started = true;
            if args.processes.sim_processes {
                let spec = sim_backend::process::backend_process(
                    &name,
                    listener,
                    &apps,
                    &args.sim_latency,
                    args.max_body,
                )
                .map_err(|error| error.to_string())?;
                supervised.push(spec);
            } else {
                let mut config = apps.sim_config(name, args.sim_latency.clone());
                config.max_body = args.max_body;
                simulated.push(sim_backend::start(listener, config).map_err(|error| error.to_string())?);
            }
            backends.push(
                format!("http://127.0.0.1:{port}")
                    .parse()
                    .map_err(|error| format!("{error}"))?,
            );
        }
    }
    for process in &effective.processes {
        let socket = match process.listen {
            Some(addr) => {
                let taken = inherited.take(&process.name).map_err(inherit_error)?;
                let what = format!("process {}", process.name);
                let listener = listeners::or_bind(taken, &what, || bind(addr, &what, "processes.listen"))?;
                keep_copy(&process.name, &listener, &mut passable)?;
                Some(listener)
            }
            None => None,
        };
        supervised.push(process.spec(socket));
    }
    let mut config = effective.balancer_config(backends.clone());
    // Simulated backends in this process hold both ends of each backend connection.
    config.backends_in_process = !simulated.is_empty();
    let balancer =
        Balancer::start_with_admin(listener, admin_listener, &config).map_err(|error| error.to_string())?;
    inherited.close_unused();
    let supervisor = if supervised.is_empty() {
        None
    } else {
        let health = process_health(Arc::clone(balancer.routing()));
        let supervisor = Supervisor::start(supervised, Some(health)).map_err(|error| error.to_string())?;
        let _ = balancer.stats().processes.set(supervisor.table());
        Some(supervisor)
    };
    print_banner(&balancer, &config, sim_started, args);
    match inherited.report_ready() {
        Ok(true) => log::info!("reported ready to the process that started us"),
        Ok(false) => {}
        Err(error) => log::warn!("cannot report ready: {error}"),
    }
    let simulated_specs = if !sim_started { Vec::new() } else { backends };
    let mut reloader = Reloader::new(
        flags.clone(),
        explicit.clone(),
        effective.clone(),
        simulated_specs,
    );
    let mut successor = None;
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
            Ok(Event::Upgrade) => match upgrade::start_successor(&passable, args.processes.upgrade_timeout) {
                Ok(started) => {
                    successor = Some(started);
                    break;
                }
                Err(error) => eprintln!("roundhouse: upgrade failed, still serving: {error}"),
            },
            Ok(Event::Stop) | Err(_) => break,
        }
    }
    drop(passable);
    match &successor {
        Some(successor) => eprintln!(
            "roundhouse: upgraded: PID {} ({}) accepts now; finishing accepted requests (up to {:?})",
            successor.pid,
            successor.program.display(),
            args.drain_timeout
        ),
        None => eprintln!(
            "roundhouse: stopping; finishing accepted requests (up to {:?})",
            args.drain_timeout
        ),
    }
    // After an upgrade the sockets are shared with the new process: hand over, do not
    // take what is queued on them (see `ServerHandle::hand_over`).
    let handing_over = successor.is_some();
    let summary = if handing_over {
        balancer.hand_over(args.drain_timeout)
    } else {
        balancer.shutdown(args.drain_timeout)
    };
    // The backends last: the drain above still needed them.
    if let Some(supervisor) = supervisor {
        supervisor.shutdown(args.drain_timeout);
    }
    for mut backend in simulated {
        if handing_over {
            backend.hand_over(args.drain_timeout);
        } else {
            backend.shutdown(args.drain_timeout);
        }
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

fn print_banner(balancer: &Balancer, config: &BalancerConfig, simulated: bool, args: &ServeArgs) {
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
        "  {} workers, queue of {}, strategy {}, front {}",
        config.workers, config.queue, config.strategy, config.front
    ));
    for backend in &config.backends {
        let kind = if !simulated {
            String::new()
        } else {
            format!(
                " (simulated{}, {}..{} ms)",
                if args.processes.sim_processes {
                    " in a child process"
                } else {
                    ""
                },
                args.sim_latency.start(),
                args.sim_latency.end()
            )
        };
        say(format_args!("  backend {backend}{kind}"));
    }
    if let Some(target) = &config.discovery {
        let routing = balancer.routing().current();
        let found: Vec<String> = routing
            .default_pool()
            .map(|pool| pool.backends.iter().map(|backend| backend.url.clone()).collect())
            .unwrap_or_default();
        say(format_args!(
            "  backends from {target}: {}",
            if found.is_empty() {
                "none yet".to_string()
            } else {
                found.join(" ")
            }
        ));
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
            // Quoted: an unquoted `?` is a glob in zsh ("no matches found").
            "      curl 'http://{addr}/calc?expr=3%2B4'   curl http://{addr}/convertepradolareuro/15.0"
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

fn run_backend(args: &BackendArgs, inherited: &mut Inherited) -> Result<(), String> {
    let addr = SocketAddr::new(args.host, args.port);
    // A supervisor (or systemd) may pass the socket: then --port only names the backend.
    let taken = inherited.take_any().map_err(inherit_error)?;
    let shared_socket = taken.is_some();
    let listener = listeners::or_bind(taken, "the backend", || bind(addr, "the backend", "--port"))?;
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
    config.max_body = args.max_body;
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
    let registration = match (&args.register, &args.advertise) {
        (Some(target), Some(advertise)) => Some(register(target, advertise, args.register_ttl)?),
        _ => None,
    };
    wait_for_signal()?;
    // Leave the pool first, so balancers stop sending requests, then finish the
    // requests already here.
    if let Some(registration) = registration {
        registration.stop();
    }
    // An inherited socket may be shared with a sibling (the same backend of an upgraded
    // balancer): let it go as an upgrade does, without taking its connections.
    if shared_socket {
        server.hand_over(std::time::Duration::from_secs(10));
    } else {
        server.shutdown(std::time::Duration::from_secs(10));
    }
    Ok(())
}

/// `backend --register`: lists this backend in etcd under a lease kept alive until
/// `stop`. etcd out of reach at the start is not fatal: the keeper keeps trying.
fn register(
    target: &roundhouse::proxy::discovery::EtcdTarget,
    advertise: &BackendSpec,
    ttl: std::time::Duration,
) -> Result<roundhouse::proxy::discovery::register::Registration, String> {
    let (registration, first) = roundhouse::proxy::discovery::register::start(target, advertise, ttl)
        .map_err(|error| error.to_string())?;
    let etcd = format!("etcd://{}", target.endpoints.join(","));
    match first {
        Ok(()) => say(format_args!(
            "  registered {} as {etcd}{} (lease of {}s, renewed every {}ms)",
            advertise.url(),
            registration.key,
            registration.ttl.as_secs(),
            (registration.ttl / 3).as_millis()
        )),
        Err(error) => log::warn!(
            "cannot register {} yet ({error}); retrying in the background",
            advertise.url()
        ),
    }
    Ok(registration)
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
fn calc_backend(args: &BackendArgs, inherited: &mut Inherited) -> Result<(), String> {
    use roundhouse::lab::calc_tcp::server::{self as calc_server, CalcServerConfig};
    let taken = inherited.take_any().map_err(inherit_error)?;
    let service = listeners::or_bind(taken, "the calculator", || {
        bind(SocketAddr::new(args.host, args.port), "the calculator", "--port")
    })?;
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
