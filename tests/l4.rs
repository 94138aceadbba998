//! L4 mode through the library: the TCP proxy, half-close, a large stream, failing
//! backends, the status probe with least-load, limits, /stats and shutdown.

mod common;
mod l4_support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

use common::wait_until;
use l4_support::*;
use roundhouse::proxy::strategy::BackendsView;

/// Counts of connections made to each backend.
fn made(balancer: &roundhouse::l4::TcpBalancer) -> Vec<u64> {
    let backends = balancer.backends();
    (0..backends.len())
        .map(|index| backends.connections_made(index))
        .collect()
}

#[test]
fn a_client_that_half_closes_still_gets_the_whole_answer() {
    let backend = answer_after_eof_server();
    let balancer = balancer(&[backend.to_string()], |_| {});
    // The backend answers only after it sees our FIN, so the answer proves the proxy
    // passed the half-close on and kept the other direction open.
    let answer = exchange(balancer.local_addr(), &[7u8; 100_000]).unwrap();
    assert_eq!(String::from_utf8_lossy(&answer), "got 100000 bytes");
    balancer.shutdown(Duration::from_secs(1));
}

#[test]
fn fifty_mebibytes_pass_byte_for_byte_in_both_directions() {
    const TOTAL: usize = 50 << 20;
    const BLOCK: usize = 64 * 1024;
    let balancer = balancer(&[echo_server().to_string()], |_| {});
    let stream = TcpStream::connect(balancer.local_addr()).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut sender = stream.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let mut pattern = Pattern::new(42);
        let mut block = vec![0u8; BLOCK];
        for _ in 0..TOTAL / BLOCK {
            pattern.fill(&mut block);
            sender.write_all(&block).unwrap();
        }
        sender.shutdown(Shutdown::Write).unwrap();
    });
    // The echo comes back through the proxy: compare it with the same pattern.
    let mut pattern = Pattern::new(42);
    let mut expected = vec![0u8; BLOCK];
    let mut used = BLOCK;
    let mut received = 0usize;
    let mut chunk = vec![0u8; BLOCK];
    let mut reader = &stream;
    loop {
        let read = reader.read(&mut chunk).unwrap();
        if read == 0 {
            break;
        }
        let mut data = &chunk[..read];
        while !data.is_empty() {
            if used == BLOCK {
                pattern.fill(&mut expected);
                used = 0;
            }
            let take = data.len().min(BLOCK - used);
            assert!(
                data[..take] == expected[used..used + take],
                "byte {received} differs"
            );
            used += take;
            received += take;
            data = &data[take..];
        }
    }
    writer.join().unwrap();
    assert_eq!(received, TOTAL);
    assert!(wait_until(PATIENCE, || balancer.open_connections() == 0));
    let stats = balancer.snapshot();
    assert_eq!(stats["backends"][0]["bytes"]["to_backend"], TOTAL as u64);
    assert_eq!(stats["backends"][0]["bytes"]["to_client"], TOTAL as u64);
    assert_eq!(stats["bytes"]["to_clients"], TOTAL as u64);
    balancer.shutdown(Duration::from_secs(1));
}

#[test]
fn a_refusing_backend_is_skipped_and_then_taken_out() {
    let dead = refusing_addr();
    let balancer = balancer(&[dead.to_string(), echo_server().to_string()], |config| {
        config.proxy.passive.max_fails = 2;
    });
    for number in 0..10 {
        let message = format!("message {number}");
        let answer = exchange(balancer.local_addr(), message.as_bytes()).unwrap();
        assert_eq!(answer, message.as_bytes());
    }
    assert_eq!(made(&balancer), [0, 10]);
    let stats = balancer.snapshot();
    let dead_stats = &stats["backends"][0];
    // Two refusals in a row took it out; after that it was not tried again.
    assert_eq!(dead_stats["connections"]["failed"], 2);
    assert_eq!(dead_stats["healthy"], false);
    assert!(
        dead_stats["last_error"].as_str().unwrap().contains("connect"),
        "{dead_stats}"
    );
    balancer.shutdown(Duration::from_secs(1));
}

#[test]
fn when_no_backend_answers_the_client_is_closed_not_left_hanging() {
    let balancer = balancer(
        &[refusing_addr().to_string(), refusing_addr().to_string()],
        |_| {},
    );
    // A hang would end in the read timeout (an error), not in end of file.
    let answer = exchange(balancer.local_addr(), b"anyone?").unwrap_or_else(|error| {
        assert_ne!(
            error.kind(),
            ErrorKind::WouldBlock,
            "the proxy left the client hanging"
        );
        Vec::new()
    });
    assert!(answer.is_empty());
    assert!(wait_until(
        PATIENCE,
        || balancer.snapshot()["connections"]["no_backend"] == 1
    ));
    balancer.shutdown(Duration::from_secs(1));
}

#[test]
fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let balancer = balancer(&[silent_server().to_string()], |config| {
        config.proxy.idle_timeout = Duration::from_millis(200);
    });
    let mut stream = TcpStream::connect(balancer.local_addr()).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buffer = [0u8; 16];
    // End of file (or a reset) from the proxy, well before our own read timeout.
    match stream.read(&mut buffer) {
        Ok(read) => assert_eq!(read, 0),
        Err(error) => assert_ne!(error.kind(), ErrorKind::WouldBlock, "never closed"),
    }
    assert!(wait_until(PATIENCE, || balancer.open_connections() == 0));
    balancer.shutdown(Duration::from_secs(1));
}

#[test]
fn connections_over_the_limit_are_closed_and_counted() {
    let balancer = balancer(&[echo_server().to_string()], |config| {
        config.proxy.max_connections = 2;
    });
    let mut first = TcpStream::connect(balancer.local_addr()).unwrap();
    let _second = TcpStream::connect(balancer.local_addr()).unwrap();
    assert!(wait_until(PATIENCE, || balancer.open_connections() == 2));
    let answer = exchange(balancer.local_addr(), b"one too many").unwrap_or_default();
    assert!(answer.is_empty(), "the third connection was served");
    assert_eq!(balancer.snapshot()["connections"]["refused"], 1);
    // The first two are untouched.
    first.set_read_timeout(Some(PATIENCE)).unwrap();
    first.write_all(b"still here").unwrap();
    let mut echoed = [0u8; 10];
    first.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"still here");
    balancer.shutdown(Duration::from_secs(1));
}

#[test]
fn least_load_follows_the_status_ports() {
    let statuses = [
        FakeStatus::start("80"),
        FakeStatus::start("10"),
        FakeStatus::start("50"),
    ];
    let backends: Vec<String> = statuses
        .iter()
        .map(|status| format!("{},status={}", echo_server(), status.addr))
        .collect();
    let balancer = balancer(&backends, |config| {
        config.strategy = "least-load".into();
        config.status_interval = Duration::from_millis(20);
    });
    let view = balancer.backends();
    assert!(wait_until(PATIENCE, || (0..3).all(|index| view.load(index).is_some())));
    for _ in 0..10 {
        assert_eq!(exchange(balancer.local_addr(), b"x").unwrap(), b"x");
    }
    assert_eq!(made(&balancer), [0, 10, 0], "all to the backend reporting 10");

    statuses[1].set("90");
    assert!(wait_until(PATIENCE, || view.load(1) == Some(90.0)));
    for _ in 0..10 {
        assert_eq!(exchange(balancer.local_addr(), b"x").unwrap(), b"x");
    }
    assert_eq!(made(&balancer), [0, 10, 10], "moved to the one reporting 50");

    // A garbled answer counts as the busiest: 80 is now the least loaded.
    statuses[2].set("not a number");
    assert!(wait_until(PATIENCE, || view.load(2) == Some(f64::INFINITY)));
    for _ in 0..5 {
        assert_eq!(exchange(balancer.local_addr(), b"x").unwrap(), b"x");
    }
    assert_eq!(made(&balancer), [5, 10, 10]);
    let stats = balancer.snapshot();
    assert_eq!(stats["backends"][0]["load"], 80.0);
    assert!(stats["backends"][2]["load"].is_null());
    // The probe spoke the seed's protocol.
    assert_eq!(statuses[0].commands.lock()[0], b"LOAD");
    balancer.shutdown(Duration::from_secs(1));
}

#[test]
fn round_robin_spreads_concurrent_connections_evenly() {
    let backends: Vec<String> = (0..3).map(|_| echo_server().to_string()).collect();
    let balancer = balancer(&backends, |_| {});
    let addr = balancer.local_addr();
    let clients: Vec<_> = (0..90)
        .map(|number| {
            thread::spawn(move || {
                let message = format!("client {number}");
                assert_eq!(exchange(addr, message.as_bytes()).unwrap(), message.as_bytes());
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    assert_eq!(made(&balancer), [30, 30, 30]);
    balancer.shutdown(Duration::from_secs(1));
}

#[test]
fn stats_and_the_dashboard_are_served_on_the_admin_port() {
    let balancer = balancer(&[echo_server().to_string()], |_| {});
    assert_eq!(exchange(balancer.local_addr(), b"hello").unwrap(), b"hello");
    assert!(wait_until(PATIENCE, || balancer.open_connections() == 0));
    let reply = common::get(balancer.admin_addr().unwrap(), "/stats");
    assert_eq!(reply.status, 200);
    let stats = reply.json();
    assert_eq!(stats["mode"], "tcp");
    assert_eq!(stats["strategy"], "round-robin");
    assert_eq!(stats["connections"]["accepted"], 1);
    let backend = &stats["backends"][0];
    assert_eq!(backend["connections"]["total"], 1);
    assert_eq!(backend["connections"]["open"], 0);
    assert_eq!(backend["bytes"]["to_backend"], 5);
    assert_eq!(backend["bytes"]["to_client"], 5);
    assert_eq!(backend["healthy"], true);
    // What the dashboard reads, under the HTTP balancer's names.
    assert_eq!(stats["requests"]["total"], 1);
    assert_eq!(stats["queue"]["rejected"], 0);
    assert_eq!(backend["requests"], 1);
    assert_eq!(stats["workers"].as_array().map(Vec::len), Some(0));
    let dashboard = common::get(balancer.admin_addr().unwrap(), "/dashboard");
    assert_eq!(dashboard.status, 200);
    assert!(dashboard.text().contains("fetch(\"/stats\""));
    assert_eq!(
        common::get(balancer.admin_addr().unwrap(), "/nothing").status,
        404
    );
    balancer.shutdown(Duration::from_secs(1));
}

#[test]
fn shutdown_waits_for_open_connections_then_closes_them() {
    let balancer = balancer(&[echo_server().to_string()], |_| {});
    let mut held = TcpStream::connect(balancer.local_addr()).unwrap();
    assert!(wait_until(PATIENCE, || balancer.open_connections() == 1));
    let addr = balancer.local_addr();
    let summary = balancer.shutdown(Duration::from_millis(100));
    assert!(!summary.drained, "the held connection outlived the drain time");
    assert_eq!(summary.accepted, 1);
    held.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buffer = [0u8; 8];
    match held.read(&mut buffer) {
        Ok(read) => assert_eq!(read, 0),
        Err(error) => assert_ne!(error.kind(), ErrorKind::WouldBlock, "left open"),
    }
    // Nothing accepts any more.
    assert!(TcpStream::connect(addr).is_err());
}
