//! `GET /dashboard`: the page is served, and in a real (headless) Chromium it fills
//! itself from `/stats` while the balancer is under load.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{cluster, get, raw, wait_until};

const CHROMIUM: &str = "/usr/bin/chromium";

#[test]
fn the_dashboard_is_one_self_contained_html_page() {
    let cluster = cluster(1, 0..=0, |_| {});
    let page = get(cluster.addr, "/dashboard");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let html = page.text();
    assert!(html.contains("<title>roundhouse dashboard</title>"));
    assert!(html.contains(r#"fetch("/stats""#));
    let head = raw(
        cluster.addr,
        b"HEAD /dashboard HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    // The page is the balancer's own: it never reaches a backend or a worker.
    let stats = get(cluster.addr, "/stats").json();
    assert_eq!(stats["requests"]["total"], 0, "{stats}");
}

/// Keeps `clients` threads sending requests until dropped (at most `limit` each).
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: std::net::SocketAddr, clients: usize, limit: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..clients)
            .map(|_| {
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    for _ in 0..limit {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        get(addr, "/work");
                    }
                })
            })
            .collect();
        Load { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The numbers inside `<span class="value handled">N</span>` in a DOM dump.
fn handled_counts(dom: &str) -> Vec<u64> {
    dom.split(r#"class="value handled">"#)
        .skip(1)
        .filter_map(|rest| rest.split('<').next()?.parse().ok())
        .collect()
}

#[test]
fn headless_chromium_shows_workers_and_their_counts() {
    if !Path::new(CHROMIUM).exists() {
        println!(
            "skipped: {CHROMIUM} not found, so the dashboard was not loaded in a browser \
             (`apt-get install -y chromium` enables this test; .ci/run does it)"
        );
        return;
    }
    let cluster = cluster(2, 20..=40, |config| config.workers = 3);
    let addr = cluster.addr;
    let load = Load::start(addr, 4, 2_000);
    assert!(
        wait_until(Duration::from_secs(10), || {
            get(addr, "/stats").json()["requests"]["total"].as_u64() >= Some(6)
        }),
        "the load reaches the workers"
    );
    let profile = tempfile::tempdir().unwrap();
    let dom_path = profile.path().join("dom.html");
    let dom_file = std::fs::File::create(&dom_path).unwrap();
    let mut chromium = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().join("profile").display()),
            "--virtual-time-budget=3000",
            "--dump-dom",
            &format!("http://{addr}/dashboard"),
        ])
        .stdin(Stdio::null())
        .stdout(dom_file)
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = chromium.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = chromium.kill();
            let _ = chromium.wait();
            panic!("chromium did not finish within 90 s");
        }
        thread::sleep(Duration::from_millis(50));
    };
    drop(load);
    assert!(status.success(), "chromium exited with {status}");
    let dom = std::fs::read_to_string(&dom_path).unwrap();
    assert!(
        dom.contains(r#"<b id="worker-count">3</b>"#),
        "the page names 3 workers: {dom}"
    );
    let handled = handled_counts(&dom);
    assert_eq!(handled.len(), 3, "one bar per worker: {dom}");
    assert!(
        handled.iter().sum::<u64>() > 0,
        "the bars show handled requests: {handled:?}"
    );
    assert!(dom.contains("● live"), "the page reached /stats");
}
