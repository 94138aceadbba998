//! Backends failing under load: killed mid-run, or cut off the network. Every request
//! is answered, and the balancer's own counts match the clients' exactly.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use common::{cluster, free_port, get, read_reply, wait_until};

/// A `roundhouse backend` process, killed when dropped.
struct BackendProcess(Child);

impl BackendProcess {
    fn start(prefix: &[&str], host: &str, port: u16) -> Self {
        let mut command = Command::new(
            prefix
                .first()
                .copied()
                .unwrap_or(env!("CARGO_BIN_EXE_roundhouse")),
        );
        if !prefix.is_empty() {
            command.args(&prefix[1..]).arg(env!("CARGO_BIN_EXE_roundhouse"));
        }
        let child = command
            .args([
                "backend",
                "--host",
                host,
                "--port",
                &port.to_string(),
                "--latency",
                "1..3",
            ])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        BackendProcess(child)
    }
}

impl Drop for BackendProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `clients` keep-alive clients sending GETs until `total` have been sent or `stop` is
/// set; returns every status received, with the body of each that was not 200.
fn load(
    addr: std::net::SocketAddr,
    clients: usize,
    total: u64,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> Vec<(u16, String)> {
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
            thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let mut statuses = Vec::new();
                while !stop.load(Ordering::Relaxed) && sent.fetch_add(1, Ordering::Relaxed) < total {
                    stream
                        .write_all(b"GET /load HTTP/1.1\r\nHost: t\r\n\r\n")
                        .unwrap();
                    let reply = read_reply(&mut stream, false).unwrap();
                    let body = match reply.status {
                        200 => String::new(),
                        _ => String::from_utf8_lossy(&reply.body).into_owned(),
                    };
                    statuses.push((reply.status, body));
                }
                statuses
            })
        })
        .collect();
    workers
        .into_iter()
        .flat_map(|worker| worker.join().unwrap())
        .collect()
}

#[test]
fn a_backend_killed_during_5000_gets_loses_nothing_and_stats_agree() {
    let ports = [free_port(), free_port(), free_port()];
    let mut processes: Vec<Option<BackendProcess>> = ports
        .iter()
        .map(|&port| Some(BackendProcess::start(&[], "127.0.0.1", port)))
        .collect();
    for port in ports {
        assert!(wait_until(Duration::from_secs(10), || TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()));
    }
    let cluster = cluster(0, 0..=0, |config| {
        config.backends = ports
            .iter()
            .map(|port| format!("http://127.0.0.1:{port}").parse().unwrap())
            .collect();
        config.check.interval = Duration::from_millis(200);
        config.queue = 128;
    });
    let addr = cluster.addr;
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let killer_sent = Arc::clone(&sent);
    let killer = thread::spawn(move || {
        assert!(wait_until(Duration::from_secs(60), || killer_sent
            .load(Ordering::Relaxed)
            >= 1500));
        processes[1].take();
        processes
    });
    let statuses = load(addr, 64, 5000, stop, sent);
    let _processes = killer.join().unwrap();
    assert_eq!(statuses.len(), 5000, "a response for every request");
    let stats = get(addr, "/stats").json();
    let not_ok: Vec<_> = statuses.iter().filter(|(status, _)| *status != 200).collect();
    assert!(
        not_ok.is_empty(),
        "every GET got 200; these did not: {not_ok:?}\nretries {}, denied {}",
        stats["retries"],
        stats["retries_denied"]
    );
    assert_eq!(stats["requests"]["total"], 5000, "{stats}");
    assert_eq!(stats["requests"]["ok"], 5000);
    let handled: u64 = stats["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["handled"].as_u64().unwrap())
        .sum();
    assert_eq!(handled, 5000);
    let answered: u64 = stats["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(
        answered, 5000,
        "each request answered by exactly one backend: {stats}"
    );
    assert_eq!(stats["backends"][1]["healthy"], false);
    eprintln!(
        "5000 GETs, 64 clients, backend killed after 1500: 0 lost, {} retries",
        stats["retries"]
    );
}

/// Network namespaces and veth pairs made for one test, removed when dropped.
///
/// Traffic must never leave the machine: each test subnet also gets an `unreachable`
/// route with a low priority, so that if its veth route disappears, packets for the
/// test hosts are refused here instead of following the default route outward. Links
/// are cut on the namespace side, which keeps the veth route in place.
struct TestNetwork {
    namespaces: Vec<String>,
    links: Vec<String>,
    inside_links: Vec<String>,
    guard_routes: Vec<String>,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

impl TestNetwork {
    /// One namespace per host, each joined to this namespace by a veth pair on its own
    /// /24 (10.213.N.0/24: the test's own hosts, nothing else on the machine).
    fn create(hosts: usize) -> Result<Self, String> {
        let tag = std::process::id() % 100_000;
        let mut network = TestNetwork {
            namespaces: Vec::new(),
            links: Vec::new(),
            inside_links: Vec::new(),
            guard_routes: Vec::new(),
        };
        for host in 0..hosts {
            let guard = format!("10.213.{}.0/24", 10 + host);
            if !ip(&["route", "add", "unreachable", &guard, "metric", "4000"]) {
                return Err(format!(
                    "cannot add the guard route for {guard} (needs root and iproute2)"
                ));
            }
            network.guard_routes.push(guard);
            let namespace = format!("rh{tag}n{host}");
            let (outside, inside) = (format!("rh{tag}a{host}"), format!("rh{tag}b{host}"));
            if !ip(&["netns", "add", &namespace]) {
                return Err("`ip netns add` failed (needs root and iproute2)".into());
            }
            network.namespaces.push(namespace.clone());
            let subnet = 10 + host;
            let steps: Vec<Vec<String>> = vec![
                vec![
                    "link".into(),
                    "add".into(),
                    outside.clone(),
                    "type".into(),
                    "veth".into(),
                    "peer".into(),
                    "name".into(),
                    inside.clone(),
                ],
                vec![
                    "link".into(),
                    "set".into(),
                    inside.clone(),
                    "netns".into(),
                    namespace.clone(),
                ],
                vec![
                    "addr".into(),
                    "add".into(),
                    format!("10.213.{subnet}.1/24"),
                    "dev".into(),
                    outside.clone(),
                ],
                vec!["link".into(), "set".into(), outside.clone(), "up".into()],
                vec![
                    "-n".into(),
                    namespace.clone(),
                    "addr".into(),
                    "add".into(),
                    format!("10.213.{subnet}.2/24"),
                    "dev".into(),
                    inside.clone(),
                ],
                vec![
                    "-n".into(),
                    namespace.clone(),
                    "link".into(),
                    "set".into(),
                    inside.clone(),
                    "up".into(),
                ],
                vec![
                    "-n".into(),
                    namespace.clone(),
                    "link".into(),
                    "set".into(),
                    "lo".into(),
                    "up".into(),
                ],
            ];
            network.links.push(outside.clone());
            network.inside_links.push(inside.clone());
            for step in steps {
                let args: Vec<&str> = step.iter().map(String::as_str).collect();
                if !ip(&args) {
                    return Err(format!("`ip {}` failed", args.join(" ")));
                }
            }
        }
        // Make sure the test hosts are reached through our cables and nothing else.
        for (host, link) in network.links.iter().enumerate() {
            let route = Command::new("ip")
                .args(["route", "get", &Self::address(host)])
                .output()
                .map_err(|error| error.to_string())?;
            let route = String::from_utf8_lossy(&route.stdout);
            if !route.contains(link.as_str()) {
                return Err(format!(
                    "test host {host} would not be reached over {link}: {route}"
                ));
            }
        }
        Ok(network)
    }

    fn address(host: usize) -> String {
        format!("10.213.{}.2", 10 + host)
    }

    /// Cuts or restores a host's link, on the host's side of the cable.
    fn set_link(&self, host: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        assert!(ip(&[
            "-n",
            &self.namespaces[host],
            "link",
            "set",
            &self.inside_links[host],
            state
        ]));
    }
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        for link in &self.links {
            ip(&["link", "del", link]);
        }
        for namespace in &self.namespaces {
            ip(&["netns", "del", namespace]);
        }
        for guard in &self.guard_routes {
            ip(&["route", "del", "unreachable", guard, "metric", "4000"]);
        }
    }
}

#[test]
fn a_backend_on_another_host_cut_off_the_network_fails_over_and_returns() {
    let network = match TestNetwork::create(2) {
        Ok(network) => network,
        Err(reason) => {
            eprintln!("SKIPPED: network-namespace failover test: {reason}");
            return;
        }
    };
    let _backends: Vec<BackendProcess> = (0..2)
        .map(|host| {
            let namespace = network.namespaces[host].clone();
            BackendProcess::start(
                &["ip", "netns", "exec", &namespace],
                &TestNetwork::address(host),
                9000,
            )
        })
        .collect();
    for host in 0..2 {
        let address = format!("{}:9000", TestNetwork::address(host));
        assert!(wait_until(Duration::from_secs(10), || {
            TcpStream::connect_timeout(&address.parse().unwrap(), Duration::from_millis(200)).is_ok()
        }));
    }
    let cluster = cluster(0, 0..=0, |config| {
        config.backends = (0..2)
            .map(|host| {
                format!("http://{}:9000", TestNetwork::address(host))
                    .parse()
                    .unwrap()
            })
            .collect();
        config.upstream.connect = Duration::from_millis(300);
        config.upstream.response = Duration::from_millis(1000);
        config.check.interval = Duration::from_millis(200);
        // At the cut every worker may be waiting on the lost host, and all their
        // timeouts expire together. The retry budget allows at least 3 retries at once
        // (Envoy's floor), so with 3 workers every one of them may fail over; with more,
        // the budget would refuse some by design (see tests/health.rs and retry.rs).
        config.workers = 3;
    });
    let addr = cluster.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let load_stop = Arc::clone(&stop);
    let load_sent = Arc::clone(&sent);
    let clients = thread::spawn(move || load(addr, 8, u64::MAX, load_stop, load_sent));
    assert!(wait_until(Duration::from_secs(10), || sent
        .load(Ordering::Relaxed)
        > 200));
    network.set_link(1, false);
    assert!(wait_until(Duration::from_secs(5), || get(addr, "/stats").json()
        ["backends"][1]["healthy"]
        == false));
    let during = sent.load(Ordering::Relaxed);
    assert!(wait_until(Duration::from_secs(10), || sent
        .load(Ordering::Relaxed)
        > during + 200));
    network.set_link(1, true);
    let requests_before = get(addr, "/stats").json()["backends"][1]["requests"]
        .as_u64()
        .unwrap();
    let returned = wait_until(Duration::from_secs(10), || {
        get(addr, "/stats").json()["backends"][1]["requests"]
            .as_u64()
            .unwrap()
            > requests_before
    });
    stop.store(true, Ordering::Relaxed);
    let statuses = clients.join().unwrap();
    assert!(returned, "the backend gets traffic again once its link is back");
    let failed = statuses.iter().filter(|(status, _)| *status != 200).count();
    let mut by_status = std::collections::BTreeMap::new();
    for (status, _) in &statuses {
        *by_status.entry(status).or_insert(0) += 1;
    }
    eprintln!(
        "{} GETs while one of two hosts was cut off and restored; by status {by_status:?}",
        statuses.len()
    );
    assert_eq!(failed, 0, "requests fail over within the timeouts");
}
