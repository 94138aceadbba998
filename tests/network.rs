//! Ready for a real network: crash isolation, one Host, protected admin pages, request
//! IDs, real client addresses behind trusted proxies, log reopening, strict framing.
//! Each test is one row of docs/reliability.md's table.
//!
//! Clients other than loopback are played through a trusted proxy: the test's own
//! connection comes from 127.0.0.1, trusted with `--trust-proxy`, and says in
//! `X-Forwarded-For` that the request came from a documentation address (203.0.113.x).
//! No packet leaves loopback.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{cluster, get, raw, wait_until};
use roundhouse::proxy::clients::{ClientRules, NetList, parse_net};

fn net(text: &str) -> NetList {
    NetList::new(vec![parse_net(text).unwrap()])
}

/// Rules that trust 127.0.0.1 as a proxy, so a test can speak for any client.
fn trusting_loopback() -> ClientRules {
    ClientRules {
        trust_proxy: net("127.0.0.1"),
        ..ClientRules::default()
    }
}

fn get_as(addr: std::net::SocketAddr, path: &str, client: &str) -> common::Reply {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nX-Forwarded-For: {client}\r\nConnection: close\r\n\r\n"
    );
    raw(addr, request.as_bytes()).unwrap()
}

#[test]
fn a_panic_while_handling_a_request_is_a_500_and_the_worker_goes_on() {
    common::each_front(|front| {
        let cluster = cluster(1, 0..=0, |config| {
            config.front = front;
            config.front = front;
            config.workers = 1;
        });
        let request =
            b"GET /boom HTTP/1.1\r\nHost: test\r\nX-Roundhouse-Fault: panic\r\nConnection: close\r\n\r\n";
        let reply = raw(cluster.addr, request).unwrap();
        assert_eq!(reply.status, 500, "{}", reply.text());
        assert!(reply.header("x-request-id").is_some());
        // The only worker is still there.
        for _ in 0..3 {
            assert_eq!(get(cluster.addr, "/after").status, 200);
        }
        let stats = get(cluster.addr, "/stats").json();
        assert_eq!(stats["panics"], 1, "{stats}");
        assert_eq!(stats["workers"][0]["handled"], 4);
        let metrics = get(cluster.addr, "/metrics").text();
        assert!(metrics.contains("roundhouse_worker_panics_total 1"), "{metrics}");
    });
}

#[test]
fn a_panic_on_the_fronts_own_thread_ends_that_request_only() {
    common::each_front(|front| {
        let cluster = cluster(1, 0..=0, |config| {
            config.front = front;
            config.server.max_connections = 2;
        });
        // Before: the event loop died with every connection on it (nothing answered
        // after). Three panics against --max-connections 2 also show that no panicked
        // connection keeps its place in the table.
        let request = b"GET /boom HTTP/1.1\r\nHost: test\r\nX-Roundhouse-Fault: panic-in-front\r\n\r\n";
        for _ in 0..3 {
            // The threaded front catches a handler's panic and answers 500; the loop,
            // whose connection state a panic may have left half-changed, closes.
            let reply = raw(cluster.addr, request);
            assert!(
                reply.as_ref().map_or(true, |reply| reply.status == 500),
                "{front:?}: a 500 or the connection closed, not {:?}",
                reply.map(|reply| (reply.status, reply.text()))
            );
        }
        let mut answered = false;
        common::wait_until(Duration::from_secs(5), || {
            answered = get(cluster.addr, "/after").status == 200;
            answered
        });
        assert!(answered, "{front:?}: a new connection is served after the panics");
    });
}

#[test]
fn a_worker_thread_that_dies_is_replaced_and_the_pool_keeps_its_size() {
    common::each_front(|front| {
        let cluster = cluster(1, 0..=0, |config| {
            config.front = front;
            config.front = front;
            config.workers = 2;
        });
        for _ in 0..2 {
            // Dies outside the per-request catch: the thread itself ends. The client is
            // still told (the answer's drop writes a 500), and a new worker takes its place.
            let request =
                b"GET /die HTTP/1.1\r\nHost: test\r\nX-Roundhouse-Fault: kill-worker\r\nConnection: close\r\n\r\n";
            let reply = raw(cluster.addr, request).unwrap();
            assert_eq!(reply.status, 500, "{}", reply.text());
        }
        assert!(wait_until(Duration::from_secs(5), || {
            get(cluster.addr, "/stats").json()["worker_restarts"] == 2
        }));
        // Both original threads are gone; without replacements the queue would have no
        // consumer left and every request would get "503 shutting down".
        let addr = cluster.addr;
        let threads: Vec<_> = (0..8)
            .map(|_| std::thread::spawn(move || get(addr, "/x").status))
            .collect();
        for thread in threads {
            assert_eq!(thread.join().unwrap(), 200);
        }
    });
}

#[test]
fn two_host_fields_are_refused_and_connection_cannot_remove_host() {
    common::each_front(|front| {
        let cluster = cluster(1, 0..=0, |config| config.front = front);
        let reply = raw(
            cluster.addr,
            b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        assert_eq!(reply.status, 400, "{}", reply.text());
        let reply = raw(
            cluster.addr,
            b"GET / HTTP/1.1\r\nHost: client.test\r\nConnection: close, host, x-forwarded-for, via\r\n\r\n",
        )
        .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
        let seen = &reply.json()["headers"];
        assert_eq!(seen["host"], "client.test", "{seen}");
        assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
        assert_eq!(seen["via"], "1.1 roundhouse");
    });
}

#[test]
fn admin_pages_and_debug_details_are_for_allowed_clients_only() {
    common::each_front(|front| {
        // A backend that refuses connections, for a 502 with details to hide.
        let refused = common::free_port();
        let cluster = cluster(1, 0..=0, |config| {
            config.front = front;
            config.clients = trusting_loopback();
            config.pools = vec![roundhouse::proxy::routing::PoolSpec {
                name: "dead".into(),
                strategy: "round-robin".into(),
                backends: vec![format!("http://127.0.0.1:{refused}").parse().unwrap()],
                discovery: None,
            }];
            config.routes = vec![roundhouse::proxy::routing::RouteSpec {
                prefix: "/dead".into(),
                pool: "dead".into(),
                strip_prefix: false,
                host: None,
            }];
            config.retries = 0;
            config.check.interval = Duration::ZERO;
        });
        // Loopback, as the design card's `curl localhost:8080/stats`: allowed.
        assert_eq!(get(cluster.addr, "/stats").status, 200);
        let local = get(cluster.addr, "/hello");
        assert!(local.header("x-roundhouse-backend").is_some());
        assert!(local.header("x-roundhouse-worker").is_some());
        let local_502 = get(cluster.addr, "/dead");
        assert!(
            local_502.text().contains(&refused.to_string()),
            "{}",
            local_502.text()
        );

        for page in ["/stats", "/metrics", "/dashboard"] {
            let reply = get_as(cluster.addr, page, "203.0.113.7");
            assert_eq!(reply.status, 403, "{page}");
            assert!(reply.text().contains("--admin-allow"), "{}", reply.text());
        }
        let remote = get_as(cluster.addr, "/hello", "203.0.113.7");
        assert_eq!(remote.status, 200);
        assert!(
            remote.header("x-roundhouse-backend").is_none(),
            "{:?}",
            remote.headers
        );
        assert!(remote.header("x-roundhouse-worker").is_none());
        let remote_502 = get_as(cluster.addr, "/dead", "203.0.113.7");
        assert_eq!(remote_502.status, 502);
        assert!(!remote_502.text().contains("127.0.0.1"), "{}", remote_502.text());
    });
}

#[test]
fn admin_allow_widens_the_list() {
    common::each_front(|front| {
        let cluster = cluster(1, 0..=0, |config| {
            config.front = front;
            config.clients = trusting_loopback();
            config.clients.admin_allow = NetList::new(vec![
                parse_net("127.0.0.0/8").unwrap(),
                parse_net("203.0.113.0/24").unwrap(),
            ]);
        });
        assert_eq!(get_as(cluster.addr, "/stats", "203.0.113.7").status, 200);
        assert_eq!(get_as(cluster.addr, "/stats", "198.51.100.7").status, 403);
    });
}

#[test]
fn admin_listen_moves_the_pages_and_the_main_port_forwards_their_paths() {
    common::each_front(|front| {
        let backends = cluster(1, 0..=0, |_| {});
        let config = roundhouse::proxy::balancer::BalancerConfig {
            front,
            backends: vec![
                format!("http://{}", backends.backends[0].local_addr())
                    .parse()
                    .unwrap(),
            ],
            ..Default::default()
        };
        let balancer = roundhouse::proxy::balancer::Balancer::start_with_admin(
            common::listener(),
            Some(common::listener()),
            &config,
        )
        .unwrap();
        let admin = balancer.admin_addr().unwrap();
        let stats = get(admin, "/stats").json();
        assert!(stats["workers"].is_array(), "{stats}");
        assert_eq!(get(admin, "/hello").status, 404);
        // On the main port /stats is just a path: the simulated backend echoes it.
        let forwarded = get(balancer.local_addr(), "/stats").json();
        assert_eq!(forwarded["path"], "/stats", "{forwarded}");
        balancer.shutdown(Duration::from_secs(2));
    });
}

#[test]
fn every_request_has_an_id_sent_to_the_backend_and_back_and_logged() {
    common::each_front(|front| {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        let cluster = cluster(1, 0..=0, |config| {
            config.front = front;
            config.access_log = roundhouse::proxy::access_log::AccessLogTarget::File(log.clone());
        });
        let reply = get(cluster.addr, "/id");
        let id = reply.header("x-request-id").expect("an id").to_string();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert_eq!(reply.json()["headers"]["x-request-id"], id.as_str());
        let other = get(cluster.addr, "/id")
            .header("x-request-id")
            .unwrap()
            .to_string();
        assert_ne!(id, other);
        // The client's own sane ID is kept; a bad one is replaced.
        let kept = raw(
            cluster.addr,
            b"GET /id HTTP/1.1\r\nHost: t\r\nX-Request-Id: trace-42\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        assert_eq!(kept.header("x-request-id"), Some("trace-42"));
        assert_eq!(kept.json()["headers"]["x-request-id"], "trace-42");
        let replaced = raw(
            cluster.addr,
            b"GET /id HTTP/1.1\r\nHost: t\r\nX-Request-Id: has space\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        assert_eq!(replaced.header("x-request-id").unwrap().len(), 32);
        // Answers the balancer gives itself carry one too.
        assert!(get(cluster.addr, "/stats").header("x-request-id").is_some());
        assert!(wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(&log)
                .is_ok_and(|text| text.contains(&format!(" id={id}")) && text.contains(" id=trace-42"))
        }));
    });
}

#[test]
fn backends_get_forwarded_and_trusted_proxies_name_the_client() {
    common::each_front(|front| {
        let cluster = cluster(3, 0..=0, |config| {
            config.front = front;
            config.clients = trusting_loopback();
            config.strategy = "ip-hash".into();
        });
        let direct = get(cluster.addr, "/f").json();
        assert_eq!(
            direct["headers"]["forwarded"],
            "for=127.0.0.1;host=test;proto=http"
        );
        // Through a trusted proxy: the client is the rightmost untrusted entry, for
        // Forwarded and for ip-hash; X-Forwarded-For keeps the chain and gets our peer.
        let reply = get_as(cluster.addr, "/f", "198.51.100.1, 203.0.113.9");
        let seen = &reply.json()["headers"];
        assert_eq!(seen["forwarded"], "for=203.0.113.9;host=test;proto=http");
        assert_eq!(seen["x-forwarded-for"], "198.51.100.1, 203.0.113.9, 127.0.0.1");
        let v6 = get_as(cluster.addr, "/f", "2001:db8::5").json();
        assert_eq!(
            v6["headers"]["forwarded"],
            "for=\"[2001:db8::5]\";host=test;proto=http"
        );
        // ip-hash sees many clients now, not one: each client keeps its backend, and the
        // clients spread over more than one backend.
        let mut used = HashSet::new();
        for client in 1..=30 {
            let address = format!("203.0.113.{client}");
            let first = get_as(cluster.addr, "/f", &address).json()["port"].clone();
            let again = get_as(cluster.addr, "/f", &address).json()["port"].clone();
            assert_eq!(first, again, "{address} moved");
            used.insert(first.to_string());
        }
        assert!(used.len() > 1, "every client went to one backend: {used:?}");
    });
}

#[test]
fn an_untrusted_peer_cannot_choose_its_address() {
    common::each_front(|front| {
        let cluster = cluster(1, 0..=0, |config| {
            config.front = front;
            config.clients.trust_proxy = net("10.0.0.0/8");
        });
        let reply = get_as(cluster.addr, "/f", "203.0.113.9");
        let seen = &reply.json()["headers"];
        assert_eq!(seen["forwarded"], "for=127.0.0.1;host=test;proto=http");
        assert_eq!(seen["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    });
}

#[test]
fn sigusr1_reopens_the_access_log_without_losing_a_line() {
    common::each_front(|front| {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        let rotated = dir.path().join("access.log.1");
        let mut running = common::run_binary(&[
            "--front",
            common::front_flag(front),
            "--listen",
            "127.0.0.1:0",
            "--sim-base-port",
            "0",
            "--sim-latency",
            "0..0",
            "--access-log",
            log.to_str().unwrap(),
        ]);
        for _ in 0..20 {
            assert_eq!(get(running.addr, "/before").status, 200);
        }
        assert!(wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(&log).is_ok_and(|text| text.lines().count() == 20)
        }));
        std::fs::rename(&log, &rotated).unwrap();
        common::signal(&running.child, "USR1");
        assert!(
            wait_until(Duration::from_secs(5), || log.exists()),
            "no new file after SIGUSR1"
        );
        for _ in 0..10 {
            assert_eq!(get(running.addr, "/after").status, 200);
        }
        common::signal(&running.child, "TERM");
        assert!(running.child.wait().unwrap().success());
        let old = std::fs::read_to_string(&rotated).unwrap();
        let new = std::fs::read_to_string(&log).unwrap();
        assert_eq!(old.lines().count(), 20, "{old}");
        assert!(old.lines().all(|line| line.contains("/before")));
        assert_eq!(new.lines().count(), 10, "{new}");
        assert!(new.lines().all(|line| line.contains("/after")));
    });
}

#[test]
fn framing_is_strict_where_it_matters_and_tolerant_where_the_rfc_says() {
    common::each_front(|front| {
        let cluster = cluster(1, 0..=0, |config| config.front = front);
        // A chunk-size line ended by a bare LF: 400, as HAProxy answers.
        let bare_lf = b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\nhello\r\n0\r\n\r\n";
        assert_eq!(raw(cluster.addr, bare_lf).unwrap().status, 400);
        let crlf = b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let reply = raw(cluster.addr, crlf).unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["body_bytes"], 5);
        // HTTP/1.2 is served as HTTP/1.1 (RFC 9110 section 2.5).
        let newer = raw(
            cluster.addr,
            b"GET /v HTTP/1.2\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        assert_eq!(newer.status, 200, "{}", newer.text());
        // Content-Length: 5, 5 is one length (RFC 9110 section 8.6 allows it; HAProxy
        // merges it too); the backend receives a single Content-Length.
        let repeated =
            b"POST /l HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 5\r\nConnection: close\r\n\r\nhello";
        let reply = raw(cluster.addr, repeated).unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.json()["body_bytes"], 5);
        assert_eq!(reply.json()["headers"]["content-length"], "5");
        let differing =
            b"POST /l HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 6\r\nConnection: close\r\n\r\nhello";
        assert_eq!(raw(cluster.addr, differing).unwrap().status, 400);
    });
}
