//! Discovery through a real etcd: backends register themselves under a lease, and
//! every balancer instance follows the same pool, through backends coming and going,
//! etcd members dying, and etcd going away altogether. Without etcd installed
//! (Debian's `etcd-server`, which `.ci/run` installs), each test says so and passes.

mod common;
mod config_support;
mod discovery_support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{free_port, get, read_reply, wait_until};
use config_support::Balancer as Process;
use discovery_support::{Etcd, Relay};
use roundhouse::proxy::balancer::{Balancer, BalancerConfig};
use roundhouse::proxy::discovery::EtcdTarget;
use serde_json::Value;

/// The lease TTL the registering backends use here (the default is 5 s).
const TTL: Duration = Duration::from_secs(2);

/// Starts etcd, or says why the test skips.
fn etcd_or_skip(test: &str, members: usize) -> Option<Etcd> {
    match Etcd::start(members) {
        Ok(etcd) => Some(etcd),
        Err(reason) => {
            eprintln!("SKIPPED: {test}: {reason}");
            None
        }
    }
}

/// A `roundhouse backend` process registered at `url` with a lease of `ttl`, and the
/// URL balancers reach it at.
fn registered_backend(url: &str, ttl: Duration) -> (Process, String) {
    let port = free_port().to_string();
    let advertise = format!("http://127.0.0.1:{port}");
    let ttl = format!("{}s", ttl.as_secs());
    let process = Process::start(&[
        "backend",
        "--port",
        &port,
        "--latency",
        "1..3",
        "--register",
        url,
        "--advertise",
        &advertise,
        "--register-ttl",
        &ttl,
    ]);
    // On stdout when the first attempt worked; on stderr when a busy etcd made it
    // fail and the keeper registered in the background.
    assert!(
        wait_until(Duration::from_secs(10), || process
            .stdout
            .lock()
            .unwrap()
            .contains("registered")
            || process.stderr().contains("registered /")),
        "the backend registers: {}",
        process.stderr()
    );
    (process, advertise)
}

/// A balancer process whose `default` pool follows `url`.
fn balancer_following(url: &str) -> Process {
    Process::start(&[
        "--discovery",
        url,
        "--listen",
        "127.0.0.1:0",
        "--access-log",
        "off",
        "--health-interval",
        "500ms",
    ])
}

/// The `default` pool's backends as the balancer at `addr` lists them, sorted.
fn members(addr: SocketAddr) -> Vec<String> {
    let stats = get(addr, "/stats").json();
    let mut urls: Vec<String> = stats["pools"][0]["backends"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|url| url.as_str().unwrap().to_string())
        .collect();
    urls.sort();
    urls
}

/// What the balancer's watcher reports in `/stats`.
fn watcher(addr: SocketAddr) -> Value {
    get(addr, "/stats").json()["discovery"][0].clone()
}

fn sorted(urls: &[&String]) -> Vec<String> {
    let mut urls: Vec<String> = urls.iter().map(|url| url.to_string()).collect();
    urls.sort();
    urls
}

/// Which backend answered one GET through the balancer at `addr`.
fn answered_by(addr: SocketAddr) -> String {
    let reply = get(addr, "/who");
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.header("x-roundhouse-backend").unwrap().to_string()
}

/// Keep-alive clients sending GETs to each address until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<Vec<u16>>>,
}

impl Load {
    fn start(addrs: &[SocketAddr], per_addr: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for &addr in addrs {
            for _ in 0..per_addr {
                let stop = Arc::clone(&stop);
                clients.push(thread::spawn(move || {
                    let mut stream = TcpStream::connect(addr).unwrap();
                    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                    let mut statuses = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        stream
                            .write_all(b"GET /load HTTP/1.1\r\nHost: t\r\n\r\n")
                            .unwrap();
                        statuses.push(read_reply(&mut stream, false).map_or(0, |reply| reply.status));
                    }
                    statuses
                }));
            }
        }
        Load { stop, clients }
    }

    /// Stops the clients and returns every status they got (0: no answer).
    fn finish(self) -> Vec<u16> {
        self.stop.store(true, Ordering::Relaxed);
        self.clients
            .into_iter()
            .flat_map(|client| client.join().unwrap())
            .collect()
    }
}

#[test]
fn two_balancers_follow_three_registered_backends_and_use_a_fourth_within_a_second() {
    let Some(etcd) = etcd_or_skip("discovery of registered backends", 1) else {
        return;
    };
    let url = etcd.url("roundhouse/web");
    let backends: Vec<(Process, String)> = (0..3).map(|_| registered_backend(&url, TTL)).collect();
    let urls: Vec<&String> = backends.iter().map(|(_, url)| url).collect();
    let balancers = [balancer_following(&url), balancer_following(&url)];
    for balancer in &balancers {
        assert!(
            wait_until(Duration::from_secs(5), || members(balancer.addr) == sorted(&urls)),
            "{:?}",
            members(balancer.addr)
        );
        let mut seen: Vec<String> = (0..9).map(|_| answered_by(balancer.addr)).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen, sorted(&urls), "requests reach all three");
    }
    let (_fourth, fourth_url) = registered_backend(&url, TTL);
    let registered_at = Instant::now();
    let mut used = [false, false];
    let both_use_it = wait_until(Duration::from_secs(1), || {
        for (balancer, used) in balancers.iter().zip(used.iter_mut()) {
            *used = *used || answered_by(balancer.addr) == fourth_url;
        }
        used == [true, true]
    });
    let elapsed = registered_at.elapsed();
    assert!(
        both_use_it,
        "both balancers use the fourth backend within 1 s: {used:?}"
    );
    eprintln!("a fourth backend got requests from both balancers {elapsed:?} after registering");
    for balancer in &balancers {
        let state = watcher(balancer.addr);
        assert_eq!(state["state"], "watching", "{state}");
        assert_eq!(state["backends"], 4);
        assert_eq!(state["endpoint"], etcd.endpoint(0));
        assert_eq!(state["reads"], 1, "one read, then the watch: {state}");
        assert!(state["revision"].as_i64().unwrap() >= 4, "{state}");
        let metrics = get(balancer.addr, "/metrics").text();
        assert!(
            metrics.contains("roundhouse_discovery_backends{pool=\"default\"} 4"),
            "{metrics}"
        );
        assert!(metrics.contains("roundhouse_discovery_connected{pool=\"default\"} 1"));
    }
}

#[test]
fn a_killed_backend_leaves_both_balancers_within_its_ttl_and_no_request_fails() {
    let Some(etcd) = etcd_or_skip("a killed backend's lease expires", 1) else {
        return;
    };
    let url = etcd.url("roundhouse/web");
    let mut backends: Vec<Option<(Process, String)>> =
        (0..3).map(|_| Some(registered_backend(&url, TTL))).collect();
    let balancers = [balancer_following(&url), balancer_following(&url)];
    for balancer in &balancers {
        assert!(wait_until(Duration::from_secs(5), || members(balancer.addr)
            .len()
            == 3));
    }
    let addrs: Vec<SocketAddr> = balancers.iter().map(|balancer| balancer.addr).collect();
    let load = Load::start(&addrs, 4);
    let (mut victim, victim_url) = backends[1].take().unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        get(addrs[0], "/stats").json()["requests"]["total"]
            .as_u64()
            .unwrap()
            > 100
    }));
    victim.child.kill().unwrap();
    let killed_at = Instant::now();
    let gone = wait_until(TTL + Duration::from_secs(1), || {
        addrs.iter().all(|&addr| !members(addr).contains(&victim_url))
    });
    let elapsed = killed_at.elapsed();
    // A little more traffic on the pool without it, then stop.
    let total_then = get(addrs[1], "/stats").json()["requests"]["total"]
        .as_u64()
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        get(addrs[1], "/stats").json()["requests"]["total"]
            .as_u64()
            .unwrap()
            > total_then + 50
    }));
    let statuses = load.finish();
    drop(victim);
    assert!(
        gone,
        "gone from both within TTL + 1 s; after {elapsed:?}: {:?}",
        members(addrs[0])
    );
    let failed = statuses.iter().filter(|&&status| status != 200).count();
    eprintln!(
        "kill -9 of a backend: gone from both balancers {elapsed:?} later (TTL {TTL:?}); {} GETs, {failed} not 200",
        statuses.len()
    );
    assert_eq!(failed, 0, "retries hide the dead backend from every client");
    for &addr in &addrs {
        assert_eq!(members(addr).len(), 2);
    }
}

#[test]
fn ctrl_c_revokes_the_lease_and_the_balancers_drop_the_backend_at_once() {
    let Some(etcd) = etcd_or_skip("Ctrl-C revokes the registration", 1) else {
        return;
    };
    let url = etcd.url("roundhouse/web");
    // The default TTL of 5 s: leaving within 1 s is the revocation, not the expiry.
    let (_stays, stays_url) = registered_backend(&url, Duration::from_secs(5));
    let (mut leaves, leaves_url) = registered_backend(&url, Duration::from_secs(5));
    let balancer = balancer_following(&url);
    assert!(wait_until(Duration::from_secs(5), || members(balancer.addr)
        .len()
        == 2));
    leaves.signal("INT");
    let stopped_at = Instant::now();
    assert!(
        wait_until(Duration::from_secs(1), || members(balancer.addr)
            == [stays_url.clone()]),
        "dropped within 1 s of Ctrl-C, well inside the 5 s lease: {:?}",
        members(balancer.addr)
    );
    eprintln!(
        "Ctrl-C: the backend left the pool {:?} later",
        stopped_at.elapsed()
    );
    let status = leaves.child.wait().unwrap();
    assert!(status.success(), "the backend exits cleanly: {}", leaves.stderr());
    assert!(
        leaves.stderr().contains("revoked the lease"),
        "{}",
        leaves.stderr()
    );
    let keys = etcd.client().range_prefix(b"/roundhouse/web/").unwrap().kvs;
    assert_eq!(keys.len(), 1, "only the other backend's key is left");
    assert_ne!(leaves_url, stays_url);
}

#[test]
fn a_three_member_cluster_loses_one_member_then_all_and_the_balancers_carry_on() {
    let Some(mut etcd) = etcd_or_skip("a three-member etcd cluster", 3) else {
        return;
    };
    let url = etcd.url("roundhouse/web");
    let mut backends: Vec<(Process, String)> = (0..3).map(|_| registered_backend(&url, TTL)).collect();
    let balancers = [balancer_following(&url), balancer_following(&url)];
    let addrs: Vec<SocketAddr> = balancers.iter().map(|balancer| balancer.addr).collect();
    for &addr in &addrs {
        assert!(wait_until(Duration::from_secs(5), || members(addr).len() == 3));
    }
    // Kill the member the first balancer reads from (both start on the first listed).
    let in_use = etcd.index_of(watcher(addrs[0])["endpoint"].as_str().unwrap());
    let changes_before: Vec<Value> = addrs
        .iter()
        .map(|&addr| watcher(addr)["changes"].clone())
        .collect();
    etcd.kill(in_use);
    for &addr in &addrs {
        assert!(
            wait_until(Duration::from_secs(5), || {
                let state = watcher(addr);
                state["state"] == "watching" && state["endpoint"] != etcd.endpoint(in_use).as_str()
            }),
            "the watch moves to a live member: {}",
            watcher(addr)
        );
    }
    // Nothing changed for the pools: same members, no change applied.
    for (index, &addr) in addrs.iter().enumerate() {
        assert_eq!(members(addr).len(), 3);
        assert_eq!(watcher(addr)["changes"], changes_before[index]);
    }
    // The resumed watches still see changes.
    backends.push(registered_backend(&url, TTL));
    for &addr in &addrs {
        assert!(wait_until(Duration::from_secs(3), || members(addr).len() == 4));
    }
    // Now every member.
    for index in 0..3 {
        etcd.kill(index);
    }
    for &addr in &addrs {
        assert!(
            wait_until(Duration::from_secs(10), || watcher(addr)["state"] == "retrying"),
            "{}",
            watcher(addr)
        );
        let mut seen: Vec<String> = (0..12).map(|_| answered_by(addr)).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 4, "all four still get requests while etcd is down");
        let state = watcher(addr);
        assert!(state["errors"].as_u64().unwrap() > 0);
        assert!(state["last_error"].is_string(), "{state}");
    }
    etcd.restart_killed();
    let (_fifth, fifth_url) = registered_backend(&url, TTL);
    for &addr in &addrs {
        assert!(
            wait_until(Duration::from_secs(10), || members(addr).contains(&fifth_url)),
            "a change after etcd is back is picked up: {:?} {}",
            members(addr),
            watcher(addr)
        );
        assert_eq!(members(addr).len(), 5, "and nothing was lost meanwhile");
        assert_eq!(watcher(addr)["state"], "watching");
    }
}

/// An in-process balancer following `prefix` on the etcd behind `endpoint`.
fn in_process_balancer(
    endpoint: SocketAddr,
    prefix: &str,
    adjust: impl FnOnce(&mut BalancerConfig),
) -> Balancer {
    let mut config = BalancerConfig {
        discovery: Some(format!("etcd://{endpoint}/{prefix}").parse().unwrap()),
        ..BalancerConfig::default()
    };
    config.check.interval = Duration::ZERO;
    adjust(&mut config);
    Balancer::start(common::listener(), &config).expect("balancer starts")
}

/// The `default` pool's backends, in the pool's order.
fn pool_of(balancer: &Balancer) -> Vec<String> {
    let routing = balancer.routing().current();
    routing
        .default_pool()
        .map(|pool| pool.backends.iter().map(|backend| backend.url.clone()).collect())
        .unwrap_or_default()
}

fn put_backend(etcd: &Etcd, prefix: &str, name: &str, url: &str) {
    let key = format!("/{prefix}/{name}");
    etcd.client()
        .put(key.as_bytes(), format!("{{\"url\":\"{url}\"}}").as_bytes(), 0)
        .unwrap();
}

#[test]
fn a_broken_watch_resumes_at_its_revision_and_reads_again_after_a_compaction() {
    let Some(etcd) = etcd_or_skip("watch resumption and compaction", 1) else {
        return;
    };
    let relay = Relay::start(etcd.endpoint(0));
    put_backend(&etcd, "rh/pool", "a", "http://127.0.0.1:1001");
    put_backend(&etcd, "rh/pool", "b", "http://127.0.0.1:1002");
    let balancer = in_process_balancer(relay.addr, "rh/pool", |_| {});
    let status = balancer.discovery().statuses()[0].clone();
    assert_eq!(
        pool_of(&balancer),
        ["http://127.0.0.1:1001", "http://127.0.0.1:1002"],
        "start-up waits for the first read"
    );
    let watching = || wait_until(Duration::from_secs(5), || status.state().name() == "watching");
    assert!(watching());
    // The watch breaks; changes happen meanwhile; it comes back.
    relay.cut();
    assert!(wait_until(Duration::from_secs(5), || status.state().name() == "retrying"));
    put_backend(&etcd, "rh/pool", "c", "http://127.0.0.1:1003");
    etcd.client().delete(b"/rh/pool/a").unwrap();
    relay.restore();
    assert!(
        wait_until(Duration::from_secs(10), || pool_of(&balancer)
            == ["http://127.0.0.1:1002", "http://127.0.0.1:1003"]),
        "{:?}",
        pool_of(&balancer)
    );
    assert_eq!(status.reads.load(Ordering::Relaxed), 1, "resumed, not read again");
    assert!(
        status.watches.load(Ordering::Relaxed) >= 2,
        "{}",
        status.to_json()
    );
    // Again, but the history the watch needs is compacted away meanwhile.
    assert!(watching());
    relay.cut();
    assert!(wait_until(Duration::from_secs(5), || status.state().name() == "retrying"));
    put_backend(&etcd, "rh/pool", "d", "http://127.0.0.1:1004");
    etcd.client().delete(b"/rh/pool/b").unwrap();
    let revision = etcd.client().range_prefix(b"/rh/").unwrap().header.revision;
    etcd.client().compact(revision).unwrap();
    relay.restore();
    assert!(
        wait_until(Duration::from_secs(10), || pool_of(&balancer)
            == ["http://127.0.0.1:1003", "http://127.0.0.1:1004"]),
        "{:?}",
        pool_of(&balancer)
    );
    assert_eq!(status.reads.load(Ordering::Relaxed), 2, "compacted: read again");
    assert_eq!(status.revision.load(Ordering::Relaxed), revision);
    balancer.shutdown(Duration::from_secs(1));
}

#[test]
fn discovered_backends_keep_their_health_and_a_reload_keeps_what_etcd_said() {
    let Some(etcd) = etcd_or_skip("discovery and reload", 1) else {
        return;
    };
    let endpoint: SocketAddr = etcd.endpoint(0).parse().unwrap();
    put_backend(&etcd, "rh/web", "a", "http://127.0.0.1:1001");
    put_backend(&etcd, "rh/other", "x", "http://127.0.0.1:2001");
    let balancer = in_process_balancer(endpoint, "rh/web", |_| {});
    let first = balancer.routing().current();
    let a = std::sync::Arc::clone(&first.default_pool().unwrap().backends.members()[0]);
    a.errors.fetch_add(7, Ordering::Relaxed);
    // A new entry, and one that describes no backend.
    put_backend(&etcd, "rh/web", "b", "http://127.0.0.1:1002");
    etcd.client().put(b"/rh/web/junk", b"{\"url\": 5}", 0).unwrap();
    assert!(wait_until(Duration::from_secs(3), || pool_of(&balancer).len() == 2));
    let second = balancer.routing().current();
    let kept = &second.default_pool().unwrap().backends.members()[0];
    assert!(
        std::sync::Arc::ptr_eq(&a, kept),
        "the same backend, counters and health"
    );
    assert_eq!(
        first.default_pool().unwrap().backends.len(),
        1,
        "the old table is untouched"
    );
    let status = balancer.discovery().statuses()[0].clone();
    assert!(wait_until(Duration::from_secs(3), || status
        .skipped
        .load(Ordering::Relaxed)
        == 1));
    // A reload adding a route keeps the discovered pool; one moving the pool to
    // another prefix follows the new prefix.
    let mut config = BalancerConfig {
        discovery: Some(format!("etcd://{endpoint}/rh/web").parse().unwrap()),
        ..BalancerConfig::default()
    };
    config.routes = vec![roundhouse::proxy::routing::RouteSpec {
        prefix: "/api".into(),
        pool: "default".into(),
        strip_prefix: true,
        host: None,
    }];
    balancer.reload(&config).unwrap();
    assert_eq!(pool_of(&balancer).len(), 2, "a reload keeps what etcd said");
    assert_eq!(balancer.routing().current().routes().len(), 1);
    config.discovery = Some(
        format!("etcd://{endpoint}/rh/other")
            .parse::<EtcdTarget>()
            .unwrap(),
    );
    balancer.reload(&config).unwrap();
    assert_eq!(
        pool_of(&balancer),
        ["http://127.0.0.1:2001"],
        "the new prefix, read at once"
    );
    assert_eq!(balancer.discovery().statuses().len(), 1, "one watcher per pool");
    put_backend(&etcd, "rh/web", "c", "http://127.0.0.1:1003");
    put_backend(&etcd, "rh/other", "y", "http://127.0.0.1:2002");
    assert!(wait_until(Duration::from_secs(3), || pool_of(&balancer).len() == 2));
    assert_eq!(
        pool_of(&balancer),
        ["http://127.0.0.1:2001", "http://127.0.0.1:2002"],
        "the old prefix's watcher no longer writes"
    );
    balancer.shutdown(Duration::from_secs(1));
}

/// `roundhouse ARGS` parsed as `main` parses it, then loaded.
fn load(args: &[&str]) -> Result<roundhouse::config::Effective, roundhouse::config::Problems> {
    use clap::CommandFactory;
    let matches = roundhouse::cli::Cli::command()
        .try_get_matches_from(std::iter::once("roundhouse").chain(args.iter().copied()))
        .expect("valid flags");
    let cli = <roundhouse::cli::Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap();
    roundhouse::config::load(&cli.serve, &roundhouse::config::Explicit::of(Some(&matches)))
}

#[test]
fn discovery_in_the_configuration_file_is_checked_rendered_and_overridden_by_flags() {
    let dir = tempfile::tempdir().unwrap();
    let good = config_support::write_config(
        dir.path(),
        "good.toml",
        r#"discovery = "etcd://127.0.0.1:2379/rh/web"

[[pools]]
name = "api"
strategy = "least-conn"
discovery = "etcd://10.0.0.1:2379,10.0.0.2:2379/rh/api"

[[routes]]
prefix = "/api"
pool = "api"
"#,
    );
    let good = good.to_str().unwrap();
    let effective = load(&["--config", good]).unwrap();
    assert_eq!(effective.args.discovery.as_ref().unwrap().prefix, "/rh/web/");
    assert!(effective.args.backends.is_empty());
    let api = &effective.pools[0];
    assert_eq!(api.discovery.as_ref().unwrap().endpoints.len(), 2);
    assert!(api.backends.is_empty());
    assert!(effective.names_backends(), "no simulated backends start");
    let (code, stdout, stderr) = config_support::run(&["check", "--config", good]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("discovery = \"etcd://127.0.0.1:2379/rh/web/\""),
        "{stdout}"
    );
    assert!(stdout.contains("discovery = \"etcd://10.0.0.1:2379,10.0.0.2:2379/rh/api/\""));
    // What check prints is itself a valid file, with the same meaning.
    let again = config_support::write_config(dir.path(), "again.toml", &stdout);
    let reloaded = load(&["--config", again.to_str().unwrap()]).unwrap();
    assert_eq!(reloaded.args.discovery, effective.args.discovery);
    assert_eq!(reloaded.pools, effective.pools);
    // A typed --backend replaces the file's discovery for the default pool.
    let flagged = load(&["--config", good, "--backend", "http://127.0.0.1:9001"]).unwrap();
    assert!(flagged.args.discovery.is_none());
    assert_eq!(flagged.args.backends.len(), 1);
    // And a typed --discovery replaces the file's backends.
    let listed = config_support::write_config(
        dir.path(),
        "listed.toml",
        "backends = [\"http://127.0.0.1:9001\"]\n",
    );
    let flagged = load(&[
        "--config",
        listed.to_str().unwrap(),
        "--discovery",
        "etcd://a:1/web",
    ])
    .unwrap();
    assert!(flagged.args.backends.is_empty());
    assert!(flagged.args.discovery.is_some());

    let bad = config_support::write_config(
        dir.path(),
        "bad.toml",
        r#"backends = ["http://127.0.0.1:9001"]
discovery = "etcd://127.0.0.1:2379/rh/web"

[[pools]]
name = "both"
backends = ["http://127.0.0.1:9002"]
discovery = "etcd://127.0.0.1:2379/rh/both"

[[pools]]
name = "neither"

[[pools]]
name = "wrong"
discovery = "http://127.0.0.1:2379/rh/wrong"
"#,
    );
    let (code, _, stderr) = config_support::run(&["check", "--config", bad.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    let expect = [
        ":2: discovery: the `default` pool takes its backends from `backends` or from `discovery`, not both",
        ":7: pools[0].discovery: pool \"both\" takes its backends",
        ":10: pools[1].backends: pool \"neither\" has no backends: list some, or set `discovery`",
        ":14: pools[2].discovery: \"http://127.0.0.1:2379/rh/wrong\": a discovery source starts with etcd://",
    ];
    for line in expect {
        assert!(stderr.contains(line), "{line:?} missing from:\n{stderr}");
    }
}

#[test]
fn the_command_line_refuses_discovery_and_registration_it_cannot_use() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["--discovery", "etcd://a:1/web", "--backend", "http://b:1"],
            "cannot be used with",
        ),
        (&["--discovery", "etcd://a:1"], "give a key prefix"),
        (
            &["backend", "--port", "1", "--register", "etcd://a:1/web"],
            "--advertise",
        ),
        (
            &[
                "backend",
                "--port",
                "1",
                "--register",
                "etcd://a:1/web",
                "--advertise",
                "http://b:1",
                "--register-ttl",
                "1500ms",
            ],
            "whole seconds",
        ),
        (
            &["backend", "--port", "1", "--advertise", "http://b:1"],
            "--register",
        ),
    ];
    for (args, said) in cases {
        let (code, _, stderr) = config_support::run(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(said), "{args:?}: {said:?} not in {stderr}");
    }
    let (code, help, _) = config_support::run(&["backend", "--help"]);
    assert_eq!(code, Some(0));
    for option in ["--register", "--advertise", "--register-ttl"] {
        assert!(help.contains(option), "{option} explained in --help");
    }
    let (_, help, _) = config_support::run(&["--help"]);
    assert!(help.contains("--discovery"));
}

/// The lab of docs/discovery.md (`scripts/discovery_lab.sh`), under names and a subnet
/// of this test's own; taken down when dropped, even if the test fails.
struct Lab {
    env: Vec<(&'static str, String)>,
}

impl Lab {
    fn run(&self, action: &str) -> std::process::Output {
        let root = env!("CARGO_MANIFEST_DIR");
        std::process::Command::new("bash")
            .arg(format!("{root}/scripts/discovery_lab.sh"))
            .args([action, env!("CARGO_BIN_EXE_roundhouse")])
            .envs(self.env.iter().map(|(key, value)| (*key, value.as_str())))
            .output()
            .expect("run the lab script")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.run("down");
    }
}

#[test]
fn the_multi_host_lab_of_the_docs_comes_up_and_both_balancers_follow_the_pool() {
    if let Some(reason) = discovery_support::etcd_missing() {
        eprintln!("SKIPPED: the multi-host lab: {reason}");
        return;
    }
    let tag = std::process::id() % 100_000;
    let net = format!("10.213.{}", 150 + tag % 100);
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab {
        env: vec![
            ("LAB", format!("rht{tag}")),
            ("LAB_NET", net.clone()),
            ("LAB_DIR", dir.path().join("lab").display().to_string()),
            ("TTL", "2s".into()),
        ],
    };
    // Namespaces need root; the script's own checks say what is missing.
    let probe = std::process::Command::new("ip").args(["netns", "list"]).output();
    let root = std::process::Command::new("id").arg("-u").output();
    let is_root = root.is_ok_and(|output| output.stdout.starts_with(b"0\n"));
    if !is_root || !probe.is_ok_and(|output| output.status.success()) {
        eprintln!("SKIPPED: the multi-host lab: network namespaces need root and iproute2");
        return;
    }
    let up = lab.run("up");
    let said = String::from_utf8_lossy(&up.stdout).into_owned() + &String::from_utf8_lossy(&up.stderr);
    assert!(up.status.success(), "the lab comes up: {said}");
    let web: Vec<String> = (1..=3).map(|n| format!("http://{net}.3{n}:9000")).collect();
    for n in 1..=2 {
        let addr: SocketAddr = format!("{net}.2{n}:8080").parse().unwrap();
        assert!(
            wait_until(Duration::from_secs(5), || members(addr) == web),
            "lb{n}: {:?}\n{said}",
            members(addr)
        );
        let mut seen: Vec<String> = (0..6).map(|_| answered_by(addr)).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen, web, "lb{n} sends requests to every host");
    }
    let down = lab.run("down");
    assert!(down.status.success());
    let links = std::process::Command::new("ip").args(["link"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&links.stdout).contains(&format!("rht{tag}")),
        "down removes every link"
    );
}

#[test]
fn sighup_moves_a_pool_to_another_prefix_through_the_real_binary() {
    let Some(etcd) = etcd_or_skip("SIGHUP and discovery", 1) else {
        return;
    };
    let (_sims, urls) = config_support::sims("sim", 2, 0..=1);
    put_backend(&etcd, "rh/a", "one", &urls[0]);
    put_backend(&etcd, "rh/b", "two", &urls[1]);
    let dir = tempfile::tempdir().unwrap();
    let file = |prefix: &str| {
        format!(
            "listen = \"127.0.0.1:0\"\naccess_log = \"off\"\n\n[[pools]]\nname = \"web\"\ndiscovery = \"{}\"\n\n[[routes]]\nprefix = \"/\"\npool = \"web\"\n",
            etcd.url(prefix)
        )
    };
    let path = config_support::write_config(dir.path(), "site.toml", &file("rh/a"));
    let balancer = Process::start(&["--config", path.to_str().unwrap()]);
    assert_eq!(members(balancer.addr), [urls[0].clone()]);
    assert_eq!(answered_by(balancer.addr), urls[0]);
    config_support::write_config(dir.path(), "site.toml", &file("rh/b"));
    balancer.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(5), || members(balancer.addr)
            == [urls[1].clone()]),
        "{:?}\n{}",
        members(balancer.addr),
        balancer.stderr()
    );
    assert_eq!(answered_by(balancer.addr), urls[1]);
    let stderr = balancer.stderr();
    assert!(stderr.contains("reloaded"), "{stderr}");
    assert!(
        !stderr.contains("needs a restart"),
        "discovery is applied live: {stderr}"
    );
    let state = watcher(balancer.addr);
    assert_eq!(state["source"], etcd.url("rh/b") + "/");
    assert_eq!(state["pool"], "web");
}
