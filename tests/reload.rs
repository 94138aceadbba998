//! Reload on SIGHUP through the real binary: under steady load, a new route takes
//! effect with zero failed requests; an invalid file keeps the old configuration and
//! logs every problem; without --config a SIGHUP is logged and ignored.

mod common;
mod config_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use common::{each_front, front_flag, get, wait_until};
use config_support::{Balancer, sims, toml_list, write_config};

/// Counts of the load generator's answers.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    /// Answers from the api pool's backend.
    from_api: AtomicU64,
    first_failure: std::sync::Mutex<Option<String>>,
}

#[test]
fn sighup_under_load_swaps_in_a_new_route_with_zero_failed_requests() {
    each_front(|front| {
        let (_web, web) = sims("web", 2, 1..=3);
        let (_api, api) = sims("api", 1, 1..=3);
        let dir = tempfile::tempdir().unwrap();
        let config = |workers: u32, extra: &str| {
            format!(
                "listen = \"127.0.0.1:0\"\nworkers = {workers}\nqueue = 512\naccess_log = \"off\"\nfront = \"{}\"\nbackends = {}\n\n[health]\ninterval = \"200ms\"\n{extra}",
                front_flag(front),
                toml_list(&web)
            )
        };
        let path = write_config(dir.path(), "site.toml", &config(4, ""));
        let mut balancer = Balancer::start(&["--config", path.to_str().unwrap()]);
        let addr = balancer.addr;

        let tally = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..4)
            .map(|client| {
                let tally = Arc::clone(&tally);
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    let mut sent = 0u64;
                    // Bounded in count as well as by the stop flag.
                    while !stop.load(Ordering::Relaxed) && sent < 200_000 {
                        sent += 1;
                        let reply = get(addr, &format!("/api/items/{client}-{sent}"));
                        if reply.status == 200 {
                            tally.ok.fetch_add(1, Ordering::Relaxed);
                            if reply.text().contains("\"backend\": \"api-1\"") {
                                tally.from_api.fetch_add(1, Ordering::Relaxed);
                            }
                        } else {
                            tally.failed.fetch_add(1, Ordering::Relaxed);
                            let mut first = tally.first_failure.lock().unwrap();
                            first.get_or_insert_with(|| format!("{}: {}", reply.status, reply.text()));
                        }
                    }
                })
            })
            .collect();
        let ok_at_least = |count: u64| {
            wait_until(Duration::from_secs(60), || {
                tally.ok.load(Ordering::Relaxed) >= count
            })
        };
        assert!(ok_at_least(100), "load is flowing");
        assert_eq!(tally.from_api.load(Ordering::Relaxed), 0, "no api pool yet");

        // A new pool and route, and a setting that cannot change live.
        let route = format!(
            "\n[[pools]]\nname = \"api\"\nbackends = {}\n\n[[routes]]\nprefix = \"/api\"\npool = \"api\"\nstrip_prefix = true\n",
            toml_list(&api)
        );
        write_config(dir.path(), "site.toml", &config(8, &route));
        balancer.signal("HUP");
        assert!(
            wait_until(Duration::from_secs(10), || balancer
                .stderr()
                .contains("reloaded ")),
            "{}",
            balancer.stderr()
        );
        let after_reload = tally.ok.load(Ordering::Relaxed);
        assert!(ok_at_least(after_reload + 200));
        assert!(
            wait_until(Duration::from_secs(10), || tally.from_api.load(Ordering::Relaxed)
                > 50),
            "the new route takes traffic"
        );
        let echo = get(addr, "/api/users").json();
        assert_eq!(echo["backend"], "api-1");
        assert_eq!(echo["path"], "/users");
        let log = balancer.stderr();
        assert!(
            log.contains("workers (4 -> 8) changed but needs a restart"),
            "{log}"
        );

        // An invalid file: every problem logged with its line, the old table kept.
        let broken = format!(
            "strategy = \"fastest\"\n{}\n[[routes]]\nprefix = \"/x\"\npool = \"nowhere\"\n",
            config(8, &route)
        );
        let nowhere_line = broken.lines().count();
        let broken_path = write_config(dir.path(), "site.toml", &broken);
        balancer.signal("HUP");
        assert!(
            wait_until(Duration::from_secs(10), || balancer
                .stderr()
                .contains("the old configuration stays")),
            "{}",
            balancer.stderr()
        );
        let log = balancer.stderr();
        let file = broken_path.display().to_string();
        assert!(
            log.contains(&format!("{file}:1: strategy: unknown strategy \"fastest\"")),
            "{log}"
        );
        let missing_pool = format!("{file}:{nowhere_line}: routes[1].pool: no pool is named \"nowhere\"");
        assert!(log.contains(&missing_pool), "{log}");
        let from_api = tally.from_api.load(Ordering::Relaxed);
        assert!(ok_at_least(tally.ok.load(Ordering::Relaxed) + 100));
        assert!(
            tally.from_api.load(Ordering::Relaxed) > from_api,
            "the route still works"
        );

        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.join().unwrap();
        }
        let failed = tally.failed.load(Ordering::Relaxed);
        assert_eq!(
            failed,
            0,
            "{failed} of {} requests failed; first: {:?}",
            tally.ok.load(Ordering::Relaxed) + failed,
            tally.first_failure.lock().unwrap()
        );
        let metrics = get(addr, "/metrics").text();
        assert!(
            metrics.contains("roundhouse_config_reloads_total{result=\"success\"} 1\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("roundhouse_config_reloads_total{result=\"failure\"} 1\n"),
            "{metrics}"
        );
        assert!(metrics.contains("roundhouse_config_last_reload_successful 0\n"));
        let stats = get(addr, "/stats").json();
        assert_eq!(stats["routes"][0]["prefix"], "/api");
        assert!(stats["routes"][0]["requests"].as_u64().unwrap() >= 50);

        balancer.signal("TERM");
        let status = balancer.child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "SIGTERM still drains and exits 0");
        assert!(!balancer.alive());
    });
}

#[test]
fn without_a_config_file_sighup_is_logged_and_ignored() {
    let mut balancer = Balancer::start(&[
        "--listen",
        "127.0.0.1:0",
        "--sim-base-port",
        "0",
        "--sim-latency",
        "0..0",
        "--access-log",
        "off",
    ]);
    balancer.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(10), || balancer
            .stderr()
            .contains("SIGHUP ignored")),
        "{}",
        balancer.stderr()
    );
    assert!(balancer.alive(), "SIGHUP never stops the process");
    assert_eq!(get(balancer.addr, "/hello").status, 200);
    balancer.signal("HUP");
    assert_eq!(get(balancer.addr, "/hello").status, 200);
    balancer.signal("INT");
    assert_eq!(balancer.child.wait().unwrap().code(), Some(0));
}
