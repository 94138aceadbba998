//! `roundhouse bench` through the real binary, against a balancer started with the
//! library on an OS-chosen port.

mod common;

use std::process::{Command, Output};

use common::cluster;

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_roundhouse"))
        .arg("bench")
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run roundhouse bench")
}

#[test]
fn two_hundred_requests_are_counted_by_the_bench_and_by_the_balancer() {
    let cluster = cluster(3, 5..=5, |_| {});
    let url = format!("http://{}/", cluster.addr);
    let output = bench(&[&url, "-n", "200", "--json"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"));
    assert_eq!(report["requests"], 200, "{report}");
    assert_eq!(report["errors"], 0);
    assert_eq!(report["status"]["200"], 200);
    assert_eq!(report["clients"], 64, "the default");
    assert!(report["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    let balancer = &report["balancer"];
    let workers = balancer["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 4, "the default pool has 4 workers");
    let handled: u64 = workers.iter().map(|count| count.as_u64().unwrap()).sum();
    assert_eq!(
        handled, 200,
        "the workers handled exactly the run's requests: {balancer}"
    );
    let backend_requests: u64 = balancer["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|backend| backend["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(backend_requests, 200);
    // The simulated backends sleep 5 ms, so E[S] is at least that.
    assert!(balancer["mean_service_ms"].as_f64().unwrap() >= 5.0, "{balancer}");
    let bound = &balancer["bound"];
    assert!(bound["requests_per_s"].as_f64().unwrap() > 0.0, "{bound}");
    assert_eq!(bound["limit"], "workers", "4 workers and 64 clients");
    let ratio = balancer["ratio"].as_f64().unwrap();
    assert!(ratio > 0.0 && ratio <= 1.2, "achieved/bound = {ratio}");
}

#[test]
fn the_text_output_names_the_bound_and_its_limit() {
    let cluster = cluster(2, 5..=5, |_| {});
    let url = format!("http://{}/", cluster.addr);
    let output = bench(&[&url, "-c", "16", "-n", "200"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("16 clients"), "{stdout}");
    assert!(stdout.contains("requests      200 in"), "{stdout}");
    assert!(stdout.contains("min(4, 16)"), "{stdout}");
    assert!(stdout.contains("the workers are the limit"), "{stdout}");
    assert!(stdout.contains("of the bound"), "{stdout}");
}

#[test]
fn a_target_that_is_not_roundhouse_gets_numbers_but_no_bound() {
    // A simulated backend answers /stats with its echo document, not the balancer's.
    let listener = common::listener();
    let addr = listener.local_addr().unwrap();
    let config = roundhouse::lab::sim_backend::SimConfig {
        name: "plain".into(),
        latency_ms: 1..=1,
        ..Default::default()
    };
    let _backend = roundhouse::lab::sim_backend::start(listener, config).unwrap();
    let output = bench(&[&format!("http://{addr}/"), "-c", "2", "-n", "10", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["requests"], 10);
    assert!(report["balancer"].is_null(), "{report}");
}

#[test]
fn bad_input_and_an_unreachable_target_are_one_line_and_exit_2() {
    for args in [vec!["https://x/"], vec!["-c", "0"], vec!["-n", "5", "-d", "1s"]] {
        let output = bench(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
    }
    // Nothing listens on a port we bound and released.
    let addr = common::listener().local_addr().unwrap();
    let output = bench(&[&format!("http://{addr}/"), "-n", "5"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot reach"), "{stderr}");
}
