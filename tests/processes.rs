//! Supervised backend processes (`--sim-processes`, `[[processes]]`): the real binary,
//! real children, real signals.
//!
//! - `kill -9` of one backend under load: restarted within a second, no request fails
//!   (retries, and the socket the supervisor keeps open), no zombie; after Ctrl-C no
//!   child is left.
//! - `kill -9` of the balancer: the children die with it (the parent-death signal).
//! - A process that keeps crashing is restarted with a growing pause, then given up
//!   (the start limit).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::load::Load;
use common::{children_of, free_port, get, kill_pid, run_binary, signal, state_of, wait_until};

/// The balancer of `common::load`, with its simulated backends as child processes.
fn args() -> Vec<&'static str> {
    common::load::BALANCER
        .iter()
        .copied()
        .chain(["--sim-processes"])
        .collect()
}

/// `/stats`' `processes` array.
fn processes(addr: SocketAddr) -> Vec<serde_json::Value> {
    get(addr, "/stats").json()["processes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The PIDs of every supervised process, once all are running.
fn running_pids(addr: SocketAddr) -> Option<Vec<u32>> {
    let list = processes(addr);
    let pids: Vec<u32> = list
        .iter()
        .filter(|process| process["state"] == "running")
        .filter_map(|process| process["pid"].as_u64())
        .map(|pid| pid as u32)
        .collect();
    (!list.is_empty() && pids.len() == list.len()).then_some(pids)
}

/// Alive: in /proc and not a zombie.
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() && state_of(pid) != Some('Z')
}

#[test]
fn kill_9_of_a_supervised_backend_under_load_is_restarted_within_a_second_and_nothing_fails() {
    let mut running = run_binary(&args());
    let addr = running.addr;
    let balancer = running.child.id();
    let mut pids = None;
    assert!(wait_until(Duration::from_secs(10), || {
        pids = running_pids(addr);
        pids.is_some()
    }));
    let pids = pids.unwrap();
    assert_eq!(pids.len(), 3);
    // They are the balancer's children, in one process group that is not the
    // balancer's (so the terminal's Ctrl-C reaches the balancer alone).
    let children: Vec<u32> = children_of(balancer).iter().map(|(pid, _)| *pid).collect();
    for pid in &pids {
        assert!(
            children.contains(pid),
            "{pid} is a child of {balancer}: {children:?}"
        );
    }
    let group = |pid: u32| -> String {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        stat.rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .nth(2)
            .unwrap()
            .to_string()
    };
    assert_eq!(
        group(pids[1]),
        pids[0].to_string(),
        "the first child leads the group"
    );
    assert_eq!(group(pids[2]), pids[0].to_string());
    assert_ne!(group(balancer), pids[0].to_string());

    let load = Load::start(addr, 32);
    assert!(wait_until(Duration::from_secs(20), || load.answered() >= 300));
    let victim = pids[0];
    let killed = Instant::now();
    kill_pid(victim, "KILL");
    let mut restarted = None;
    assert!(wait_until(Duration::from_secs(10), || {
        let first = processes(addr)[0].clone();
        let replaced =
            first["state"] == "running" && first["pid"].as_u64().is_some_and(|pid| pid as u32 != victim);
        if replaced && restarted.is_none() {
            restarted = Some(killed.elapsed());
        }
        replaced
    }));
    let restarted = restarted.unwrap();
    let first = processes(addr)[0].clone();
    assert_eq!(first["restarts"], 1, "{first}");
    assert_eq!(first["last_exit"], "signal 9 (SIGKILL)", "{first}");
    let before = load.answered();
    assert!(wait_until(Duration::from_secs(20), || load.answered() >= before + 300));
    let tally = load.finish();
    eprintln!(
        "restarted {restarted:?} after kill -9; {} answered, {} refused, {} failed",
        tally.answered,
        tally.refused,
        tally.failed.len()
    );
    assert!(
        restarted < Duration::from_secs(1),
        "restarted after {restarted:?}"
    );
    assert_eq!(tally.refused, 0);
    assert!(
        tally.failed.is_empty(),
        "{:?}",
        &tally.failed[..tally.failed.len().min(5)]
    );
    // The killed child was reaped: no zombie among the balancer's children.
    let zombies: Vec<_> = children_of(balancer)
        .into_iter()
        .filter(|(_, state)| *state == 'Z')
        .collect();
    assert!(zombies.is_empty(), "zombies: {zombies:?}");
    assert!(
        !Path::new(&format!("/proc/{victim}")).exists(),
        "the killed child is gone, not a zombie"
    );

    let now_running = running_pids(addr).unwrap();
    signal(&running.child, "INT");
    assert_eq!(running.child.wait().unwrap().code(), Some(0));
    for pid in now_running {
        assert!(!alive(pid), "child {pid} outlived the balancer's Ctrl-C");
    }
}

#[test]
fn sigkill_of_the_balancer_takes_its_children_with_it() {
    let mut running = run_binary(&args());
    let addr = running.addr;
    let mut pids = None;
    assert!(wait_until(Duration::from_secs(10), || {
        pids = running_pids(addr);
        pids.is_some()
    }));
    // SIGKILL: the balancer runs no code at all; the kernel sends each child the
    // parent-death signal.
    running.child.kill().unwrap();
    running.child.wait().unwrap();
    let pids = pids.unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || pids.iter().all(|&pid| !alive(pid))),
        "children still alive: {:?}",
        pids.iter().filter(|&&pid| alive(pid)).collect::<Vec<_>>()
    );
}

#[test]
fn configured_processes_serve_and_one_that_keeps_crashing_is_given_up() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("supervised.toml");
    std::fs::write(
        &config,
        format!(
            r#"
listen = "127.0.0.1:0"
access_log = "off"
backends = ["http://127.0.0.1:{port}"]

[[processes]]
name = "web"
command = ["{bin}", "backend", "--port", "{port}", "--latency", "1..2"]
listen = "127.0.0.1:{port}"
backend = "http://127.0.0.1:{port}"

[[processes]]
name = "crasher"
command = ["sh", "-c", "exit 3"]
restart_sec = "10ms"
start_limit_burst = 3
"#,
            bin = env!("CARGO_BIN_EXE_roundhouse"),
        ),
    )
    .unwrap();
    let mut running = run_binary(&["--config", config.to_str().unwrap()]);
    let addr = running.addr;
    let reply = get(addr, "/hello");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["backend"], format!("backend-{port}"));
    // 3 starts (the first and 2 restarts, 10 then 20 ms apart), then no more.
    let mut crasher = serde_json::Value::Null;
    assert!(
        wait_until(Duration::from_secs(10), || {
            crasher = processes(addr)[1].clone();
            crasher["state"] == "failed"
        }),
        "{crasher}"
    );
    assert_eq!(crasher["restarts"], 2, "{crasher}");
    assert_eq!(crasher["last_exit"], "code 3", "{crasher}");
    assert_eq!(crasher["pid"], serde_json::Value::Null);
    assert_eq!(processes(addr)[0]["state"], "running");
    let web = processes(addr)[0]["pid"].as_u64().unwrap() as u32;
    signal(&running.child, "TERM");
    assert_eq!(running.child.wait().unwrap().code(), Some(0));
    assert!(!alive(web), "the web process was stopped with the balancer");
}

#[test]
fn check_reports_every_bad_processes_entry_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        r#"backends = ["http://127.0.0.1:9001"]

[[processes]]
name = "a"
command = []
restart_sec = "soon"

[[processes]]
name = "a"
command = ["true"]
listen = "localhost"
start_limit_burst = 0
"#,
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_roundhouse"))
        .args(["check", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for expected in [
        ":5: processes[0].command: a command needs at least a program",
        ":6: processes[0].restart_sec:",
        ":9: processes[1].name: process \"a\" is already defined (processes[0])",
        ":11: processes[1].listen: \"localhost\" is not an address",
        ":12: processes[1].start_limit_burst: must be from 1 to 1000 (got 0)",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
}
