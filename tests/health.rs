//! Failure detection and retries: dead backends are skipped, retried around, and
//! welcomed back.

mod common;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{cluster, free_port, get, raw, wait_until};

/// A `roundhouse backend` process on `port`, ready when this returns.
fn backend_process(port: u16) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_roundhouse"))
        .args(["backend", "--port", &port.to_string(), "--latency", "1..3"])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = wait_until(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(ready, "backend on {port} did not start");
    child
}

fn backend_healthy(addr: std::net::SocketAddr, index: usize) -> bool {
    get(addr, "/stats").json()["backends"][index]["healthy"] == true
}

#[test]
fn a_killed_backend_is_retried_around_marked_down_and_welcomed_back() {
    let ports = [free_port(), free_port(), free_port()];
    let mut processes: Vec<Child> = ports.iter().map(|&port| backend_process(port)).collect();
    let interval = Duration::from_millis(200);
    let cluster = cluster(0, 0..=0, |config| {
        config.backends = ports
            .iter()
            .map(|port| format!("http://127.0.0.1:{port}").parse().unwrap())
            .collect();
        config.check.interval = interval;
        config.check.fall = 2;
        config.check.rise = 2;
    });
    let addr = cluster.addr;
    // Steady load from four clients until told to stop; every answer must be 200.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
            thread::spawn(move || {
                let mut statuses = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    statuses.push(get(addr, "/steady").status);
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                statuses
            })
        })
        .collect();
    assert!(wait_until(Duration::from_secs(10), || sent
        .load(Ordering::Relaxed)
        > 50));
    processes[1].kill().unwrap();
    processes[1].wait().unwrap();
    let killed = Instant::now();
    assert!(wait_until(Duration::from_secs(5), || !backend_healthy(addr, 1)));
    let down_after = killed.elapsed();
    // fall x interval, plus one check round that may have been under way.
    assert!(
        down_after <= interval * 3 + Duration::from_millis(300),
        "down after {down_after:?}"
    );
    let before_restart = get(addr, "/stats").json()["backends"][1]["requests"]
        .as_u64()
        .unwrap();
    processes[1] = backend_process(ports[1]);
    let restarted = Instant::now();
    let back = wait_until(Duration::from_secs(5), || {
        get(addr, "/stats").json()["backends"][1]["requests"]
            .as_u64()
            .unwrap()
            > before_restart
    });
    assert!(back, "{}", get(addr, "/stats").json());
    let back_after = restarted.elapsed();
    assert!(
        back_after <= interval * 3 + Duration::from_millis(300),
        "traffic again after {back_after:?}"
    );
    stop.store(true, Ordering::Relaxed);
    let statuses: Vec<u16> = clients
        .into_iter()
        .flat_map(|client| client.join().unwrap())
        .collect();
    assert!(
        statuses.iter().all(|&status| status == 200),
        "every GET got 200 despite the kill"
    );
    let stats = get(addr, "/stats").json();
    assert!(
        stats["retries"].as_u64().unwrap() >= 1,
        "the kill was retried around: {stats}"
    );
    assert!(stats["backends"][1]["last_error"].is_string());
    eprintln!(
        "{} GETs, all 200; down {down_after:?} after the kill, traffic {back_after:?} after the restart",
        statuses.len()
    );
    for mut process in processes {
        let _ = process.kill();
        let _ = process.wait();
    }
}

#[test]
fn all_backends_down_gives_a_quick_503_that_says_why() {
    let ports = [free_port(), free_port()];
    let cluster = cluster(0, 0..=0, |config| {
        config.backends = ports
            .iter()
            .map(|port| format!("http://127.0.0.1:{port}").parse().unwrap())
            .collect();
        config.check.interval = Duration::from_millis(100);
    });
    // Before the checks notice, requests fail with 502 naming both backends tried.
    let first = get(cluster.addr, "/x");
    if first.status == 502 {
        let body = first.text();
        assert!(body.contains("2 backends tried"), "{body}");
        assert!(
            ports.iter().all(|port| body.contains(&port.to_string())),
            "{body}"
        );
    }
    assert!(wait_until(Duration::from_secs(5), || !backend_healthy(
        cluster.addr,
        0
    ) && !backend_healthy(
        cluster.addr,
        1
    )));
    let started = Instant::now();
    let reply = get(cluster.addr, "/x");
    assert_eq!(reply.status, 503);
    assert!(
        reply.text().contains("no backend is available"),
        "{}",
        reply.text()
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    // The balancer itself keeps serving.
    assert_eq!(get(cluster.addr, "/stats").status, 200);
}

#[test]
fn a_post_is_retried_only_when_it_never_left() {
    // A silent backend (accepts, never answers) and a live one.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let dead_port = free_port();
    let live = cluster(1, 0..=0, |_| {});
    let live_backend_port = live.backends[0].local_addr().port();
    let make = |first: u16| {
        cluster(0, 0..=0, move |config| {
            config.backends = vec![
                format!("http://127.0.0.1:{first}").parse().unwrap(),
                format!("http://127.0.0.1:{live_backend_port}").parse().unwrap(),
            ];
            // Long enough that a loaded machine does not time out the live backend.
            config.upstream.response = Duration::from_millis(1000);
            config.check.interval = Duration::ZERO;
            config.passive.max_fails = 0;
        })
    };
    let post = b"POST /order HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi";
    // Refused connection: the POST never left, so it goes to the live backend.
    let refused = make(dead_port);
    for _ in 0..4 {
        assert_eq!(raw(refused.addr, post).unwrap().status, 200);
    }
    // Silent backend: the POST may have arrived, so it is not repeated: 504.
    let silent = make(silent_port);
    let statuses: Vec<u16> = (0..4).map(|_| raw(silent.addr, post).unwrap().status).collect();
    assert!(statuses.contains(&504), "{statuses:?}");
    // A GET in the same situation is retried on the live backend.
    for _ in 0..4 {
        assert_eq!(get(silent.addr, "/safe").status, 200);
    }
    let stats = get(silent.addr, "/stats").json();
    assert!(stats["retries"].as_u64().unwrap() >= 2);
}

#[test]
fn a_refused_connection_is_moved_on_without_spending_the_retry_budget() {
    // Half the picks land on a port nobody listens on. Each such request is moved to the
    // live backend, which holds it 20 ms, so with 8 workers about four of these moves
    // are in progress at once: more than the budget's floor of 3. They repeat no work,
    // so none may be refused.
    let live = cluster(1, 20..=20, |_| {});
    let live_port = live.backends[0].local_addr().port();
    let dead_port = free_port();
    let balancer = cluster(0, 0..=0, |config| {
        config.backends = vec![
            format!("http://127.0.0.1:{dead_port}").parse().unwrap(),
            format!("http://127.0.0.1:{live_port}").parse().unwrap(),
        ];
        config.workers = 8;
        config.check.interval = Duration::ZERO;
        config.passive.max_fails = 0;
    });
    let addr = balancer.addr;
    let clients: Vec<_> = (0..16)
        .map(|_| thread::spawn(move || (0..10).map(|_| get(addr, "/x").status).collect::<Vec<_>>()))
        .collect();
    let statuses: Vec<u16> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    let stats = get(addr, "/stats").json();
    let not_ok: Vec<_> = statuses.iter().filter(|&&status| status != 200).collect();
    assert!(not_ok.is_empty(), "{not_ok:?}; {stats}");
    assert_eq!(stats["retries_denied"], 0, "{stats}");
    assert!(
        stats["retries"].as_u64().unwrap() >= 40,
        "half of 160 were moved on: {stats}"
    );
}
