//! The first seed's calculator system over L4: `--calc-tcp` servers behind
//! `roundhouse tcp`, through the library and through the real binary.

mod common;
mod l4_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::thread;
use std::time::Duration;

use l4_support::*;
use roundhouse::lab::calc_tcp::client as calc_client;
use roundhouse::lab::calc_tcp::server::{self as calc_server, CalcServer, CalcServerConfig};

fn calc_servers(count: usize) -> Vec<CalcServer> {
    (0..count)
        .map(|_| calc_server::start(listener(), Some(listener()), &CalcServerConfig::default()).unwrap())
        .collect()
}

#[test]
fn a_hundred_concurrent_sessions_get_right_answers_spread_round_robin() {
    let servers = calc_servers(3);
    let backends: Vec<String> = servers
        .iter()
        .map(|server| server.service_addr().to_string())
        .collect();
    let balancer = balancer(&backends, |_| {});
    let addr = balancer.local_addr().to_string();
    let sessions: Vec<_> = (0..100i64)
        .map(|number| {
            let addr = addr.clone();
            thread::spawn(move || {
                let answer = calc_client::ask(&addr, &format!("{number} * 3 + (1 - 2) / 4")).unwrap();
                assert_eq!(
                    answer,
                    calc_format(number as f64 * 3.0 - 0.25),
                    "session {number}"
                );
            })
        })
        .collect();
    for session in sessions {
        session.join().unwrap();
    }
    let view = balancer.backends();
    let made: Vec<u64> = (0..3).map(|index| view.connections_made(index)).collect();
    // Round-robin hands out tickets 0..99 in turn: backend 0 gets one more.
    assert_eq!(made, [34, 33, 33]);
    // Every connection the balancer made was one expression answered by that server.
    let served: Vec<u64> = servers.iter().map(CalcServer::served).collect();
    assert_eq!(served, made);
    balancer.shutdown(Duration::from_secs(1));
}

/// The expected answer text for `value` (the server's formatting).
fn calc_format(value: f64) -> String {
    roundhouse::lab::calc::format_number(value)
}

#[test]
fn the_seed_client_style_works_without_a_half_close() {
    // The seed's client wrote the expression with a newline and read until the server
    // closed, never shutting down its own sending side.
    let servers = calc_servers(1);
    let balancer = balancer(&[servers[0].service_addr().to_string()], |_| {});
    let mut stream = TcpStream::connect(balancer.local_addr()).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(b"2 * (3 + 4)\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "14");
    assert_eq!(
        calc_client::ask(&balancer.local_addr().to_string(), "1 / 0").unwrap(),
        "Erro: division by zero (at position 2)"
    );
    balancer.shutdown(Duration::from_secs(1));
}

#[test]
fn the_status_port_reports_cpu_load_with_the_seed_protocol() {
    let servers = calc_servers(1);
    let status = servers[0].status_addr().unwrap();
    let load = roundhouse::l4::status::probe(status, PATIENCE).unwrap();
    assert!(load >= 0.0, "{load}");
    let answer = exchange(status, b"HELLO").unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("Erro: unknown command"));
}

#[test]
fn the_three_terminal_demo_runs_through_the_binary() {
    let mut calcs = Vec::new();
    let mut specs = Vec::new();
    for _ in 0..3 {
        let mut calc = Process::start(&["backend", "--calc-tcp", "--port", "0", "--status-port", "0"]);
        let service = calc.address_after("listening on tcp://");
        let status = calc.address_after("status port tcp://");
        specs.push(format!("{service},status={status}"));
        calcs.push(calc);
    }
    let mut args = vec![
        "tcp",
        "--listen",
        "127.0.0.1:0",
        "--status-interval",
        "100ms",
        "--strategy",
        "least-load",
    ];
    for spec in &specs {
        args.extend(["--backend", spec]);
    }
    let mut balancer = Process::start(&args);
    let addr = balancer.address_after("listening on tcp://");
    let mut client = std::process::Command::new(env!("CARGO_BIN_EXE_roundhouse"))
        .args(["client", "calc", "--tcp", &addr.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    client
        .stdin
        .take()
        .unwrap()
        .write_all(b"3 + 4\n1/0\n10 / 4\n")
        .unwrap();
    let output = client.wait_with_output().unwrap();
    let transcript = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{transcript}");
    for expected in [
        "calc> 3 + 4\nResultado: 7\n",
        "calc> 1/0\nResultado: Erro: division by zero (at position 1)\n",
        "calc> 10 / 4\nResultado: 2.5\n",
    ] {
        assert!(
            transcript.contains(expected),
            "{expected:?} not in:\n{transcript}"
        );
    }
    // SIGTERM: the balancer stops as `serve` does and reports what it did.
    common::signal(&balancer.child, "TERM");
    let status = balancer.child.wait().unwrap();
    assert!(status.success());
    let summary = balancer.rest_of_output();
    assert!(summary.contains("drained; served 3 connections"), "{summary}");
}

#[test]
fn bad_command_lines_exit_2_with_one_line() {
    for args in [
        vec!["tcp"],
        vec!["tcp", "--backend", "http://127.0.0.1:6001"],
        vec!["tcp", "--backend", "127.0.0.1:6001,status=nowhere"],
        vec!["tcp", "--backend", "127.0.0.1:6001", "--strategy", "fastest"],
        vec!["backend", "--port", "0", "--status-port", "0"],
        vec![
            "client",
            "calc",
            "--tcp",
            "127.0.0.1:5000",
            "http://127.0.0.1:8080",
        ],
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_roundhouse"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(!output.stderr.is_empty(), "{args:?}");
    }
}
