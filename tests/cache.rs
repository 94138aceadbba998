//! The response cache end to end: a balancer with `--cache` in front of a test backend
//! whose Cache-Control, ETag and Vary headers each test chooses.

mod cache_support;
mod common;

use std::fs;
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use cache_support::*;
use common::each_front;
use roundhouse::proxy::balancer::BalancerConfig;
use roundhouse::proxy::cache::CacheConfig;
use roundhouse::proxy::front::FrontKind;

fn cached(front: FrontKind, config: CacheConfig) -> BalancerConfig {
    BalancerConfig {
        cache: Some(config),
        front,
        ..BalancerConfig::default()
    }
}

/// A cache kept in `dir` too, so that it outlives the balancer.
fn cache_on_disk(front: FrontKind, dir: &std::path::Path) -> BalancerConfig {
    cached(
        front,
        CacheConfig {
            dir: Some(dir.to_path_buf()),
            ..CacheConfig::default()
        },
    )
}

fn cache_on(front: FrontKind) -> BalancerConfig {
    cached(front, CacheConfig::default())
}

#[test]
fn max_age_response_is_a_hit_the_second_time_with_age() {
    each_front(|front| {
        let backend = TestBackend::start(|_| respond(200, &[("cache-control", "max-age=60")], "hello"));
        let balancer = balancer(&backend, cache_on(front));
        let addr = balancer.local_addr();

        let first = get(addr, "/page");
        assert_eq!((first.status, first.x_cache()), (200, "MISS"));
        let second = get(addr, "/page");
        assert_eq!((second.status, second.x_cache()), (200, "HIT"));
        assert_eq!(second.body, "hello\n");
        assert!(
            second.header("age").parse::<u64>().is_ok(),
            "Age is a number of seconds"
        );
        assert_eq!(second.header("cache-control"), "max-age=60");
        assert_eq!(backend.requests(), 1);

        let stats = stats(addr);
        assert_eq!(stats["cache"]["hits"], 1);
        assert_eq!(stats["cache"]["misses"], 1);
        assert_eq!(stats["cache"]["entries"], 1);
        assert!(stats["cache"]["bytes"].as_u64().unwrap() > 5);
        assert_eq!(stats["requests"]["total"], 2, "hits are counted as requests too");
    });
}

#[test]
fn no_store_is_never_stored() {
    each_front(|front| {
        let backend = TestBackend::start(|_| respond(200, &[("cache-control", "no-store")], "secret"));
        let balancer = balancer(&backend, cache_on(front));
        for _ in 0..3 {
            assert_eq!(get(balancer.local_addr(), "/private").x_cache(), "MISS");
        }
        assert_eq!(backend.requests(), 3);
        assert_eq!(stats(balancer.local_addr())["cache"]["entries"], 0);
    });
}

#[test]
fn vary_accept_stores_variants_apart() {
    each_front(|front| {
        let backend = TestBackend::start(|request| {
            let accept = request.header("accept").unwrap_or("none").to_string();
            respond(
                200,
                &[("cache-control", "max-age=60"), ("vary", "Accept")],
                &accept,
            )
        });
        let balancer = balancer(&backend, cache_on(front));
        let addr = balancer.local_addr();
        let json = [("accept", "application/json")];
        let html = [("accept", "text/html")];

        assert_eq!(get_with(addr, "/v", &json).x_cache(), "MISS");
        assert_eq!(get_with(addr, "/v", &html).x_cache(), "MISS");
        let json_again = get_with(addr, "/v", &json);
        let html_again = get_with(addr, "/v", &html);
        assert_eq!(
            (json_again.x_cache(), json_again.body.as_str()),
            ("HIT", "application/json\n")
        );
        assert_eq!(
            (html_again.x_cache(), html_again.body.as_str()),
            ("HIT", "text/html\n")
        );
        assert_eq!(backend.requests(), 2);
        assert_eq!(stats(addr)["cache"]["entries"], 2);
    });
}

#[test]
fn expired_entry_with_etag_is_revalidated() {
    each_front(|front| {
        // max-age=0: stored (it has a validator) but stale at once. A revalidation that
        // matches gets a 304 that makes the entry fresh for a minute.
        let backend = TestBackend::start(|request| match request.header("if-none-match") {
            Some("\"v1\"") => respond(304, &[("etag", "\"v1\""), ("cache-control", "max-age=60")], ""),
            _ => respond(
                200,
                &[("etag", "\"v1\""), ("cache-control", "max-age=0")],
                "body v1",
            ),
        });
        let balancer = balancer(&backend, cache_on(front));
        let addr = balancer.local_addr();

        assert_eq!(get(addr, "/doc").x_cache(), "MISS");
        assert!(!backend.last_headers().contains_key("if-none-match"));

        let revalidated = get(addr, "/doc");
        assert_eq!(revalidated.status, 200);
        assert_eq!(revalidated.x_cache(), "REVALIDATED");
        assert_eq!(
            revalidated.body, "body v1\n",
            "the stored body is served after a 304"
        );
        assert_eq!(backend.last_headers()["if-none-match"], "\"v1\"");
        assert_eq!(
            revalidated.header("cache-control"),
            "max-age=60",
            "the 304 refreshed the headers"
        );

        assert_eq!(get(addr, "/doc").x_cache(), "HIT");
        assert_eq!(backend.requests(), 2);
        assert_eq!(stats(addr)["cache"]["revalidated"], 1);
    });
}

#[test]
fn a_clients_if_none_match_gets_304_from_the_cache() {
    each_front(|front| {
        let backend = TestBackend::start(|_| {
            respond(
                200,
                &[("etag", "W/\"v7\""), ("cache-control", "max-age=60")],
                "seven",
            )
        });
        let balancer = balancer(&backend, cache_on(front));
        let addr = balancer.local_addr();

        // The client's condition is not passed on when filling the cache: a 304 from the
        // backend could not be stored.
        let first = get_with(addr, "/c", &[("if-none-match", "\"v7\"")]);
        assert_eq!((first.status, first.x_cache()), (304, "MISS"));
        assert!(!backend.last_headers().contains_key("if-none-match"));

        let second = get_with(addr, "/c", &[("if-none-match", "\"v7\"")]);
        assert_eq!(
            (second.status, second.x_cache(), second.body.as_str()),
            (304, "HIT", "")
        );
        assert_eq!(second.header("etag"), "W/\"v7\"");
        let other = get_with(addr, "/c", &[("if-none-match", "\"v6\"")]);
        assert_eq!(
            (other.status, other.x_cache(), other.body.as_str()),
            (200, "HIT", "seven\n")
        );
        assert_eq!(backend.requests(), 1);
    });
}

#[test]
fn concurrent_misses_on_one_key_make_one_backend_request() {
    each_front(|front| {
        const CLIENTS: usize = 20;
        let backend = TestBackend::start(|_| {
            thread::sleep(Duration::from_millis(300));
            respond(200, &[("cache-control", "max-age=60")], "slow")
        });
        let balancer = balancer(&backend, cache_on(front));
        let addr = balancer.local_addr();
        let start = Barrier::new(CLIENTS);
        let answers: Vec<Answer> = thread::scope(|scope| {
            let clients: Vec<_> = (0..CLIENTS)
                .map(|_| {
                    scope.spawn(|| {
                        let agent = agent();
                        start.wait();
                        request(&agent, "GET", addr, "/cold", &[])
                    })
                })
                .collect();
            clients.into_iter().map(|client| client.join().unwrap()).collect()
        });
        assert_eq!(backend.requests(), 1, "one fetch for all twenty clients");
        assert!(
            answers
                .iter()
                .all(|answer| answer.status == 200 && answer.body == "slow\n")
        );
        let misses = answers.iter().filter(|answer| answer.x_cache() == "MISS").count();
        assert_eq!(misses, 1);
    });
}

#[test]
fn eviction_keeps_bytes_under_the_limit() {
    each_front(|front| {
        const LIMIT: u64 = 64 * 1024;
        let backend =
            TestBackend::start(|_| respond(200, &[("cache-control", "max-age=60")], &"x".repeat(8 * 1024)));
        let balancer = balancer(
            &backend,
            cached(
                front,
                CacheConfig {
                    max_bytes: LIMIT,
                    ..CacheConfig::default()
                },
            ),
        );
        let addr = balancer.local_addr();
        for number in 0..30 {
            assert_eq!(get(addr, &format!("/object/{number}")).x_cache(), "MISS");
            let bytes = stats(addr)["cache"]["bytes"].as_u64().unwrap();
            assert!(bytes <= LIMIT, "{bytes} bytes stored, limit {LIMIT}");
        }
        let cache = &stats(addr)["cache"];
        assert!(cache["evictions"].as_u64().unwrap() >= 20, "{cache}");
        assert!(cache["entries"].as_u64().unwrap() < 10, "{cache}");
        // The least recently used went first; the most recent is still there.
        assert_eq!(get(addr, "/object/29").x_cache(), "HIT");
        assert_eq!(get(addr, "/object/0").x_cache(), "MISS");
    });
}

#[test]
fn objects_over_the_size_limit_are_passed_through() {
    each_front(|front| {
        let backend =
            TestBackend::start(|_| respond(200, &[("cache-control", "max-age=60")], &"y".repeat(2048)));
        let balancer = balancer(
            &backend,
            cached(
                front,
                CacheConfig {
                    max_object: 1024,
                    ..CacheConfig::default()
                },
            ),
        );
        for _ in 0..2 {
            let answer = get(balancer.local_addr(), "/big");
            assert_eq!((answer.x_cache(), answer.body.len()), ("MISS", 2049));
        }
        assert_eq!(backend.requests(), 2);
    });
}

#[test]
fn a_bare_200_is_kept_for_the_ttl_and_head_is_answered_from_get() {
    each_front(|front| {
        let backend = TestBackend::start(|_| respond(200, &[], "plain"));
        let balancer = balancer(&backend, cache_on(front));
        let addr = balancer.local_addr();
        assert_eq!(get(addr, "/bare").x_cache(), "MISS");
        let head = request(&agent(), "HEAD", addr, "/bare", &[]);
        assert_eq!(
            (head.status, head.x_cache(), head.body.as_str()),
            (200, "HIT", "")
        );
        assert_eq!(head.header("content-length"), "6");
        assert_eq!(
            head.header("cache-control"),
            "",
            "the TTL is ours, not told to clients"
        );
        assert_eq!(backend.requests(), 1);
    });
}

#[test]
fn authorization_and_set_cookie_are_not_shared_unless_public() {
    each_front(|front| {
        let backend = TestBackend::start(|request| match request.path() {
            "/cookie" => respond(
                200,
                &[("cache-control", "max-age=60"), ("set-cookie", "id=1")],
                "c",
            ),
            "/public" => respond(200, &[("cache-control", "public, max-age=60")], "p"),
            _ => respond(200, &[("cache-control", "max-age=60")], "mine"),
        });
        let balancer = balancer(&backend, cache_on(front));
        let addr = balancer.local_addr();
        let token = [("authorization", "Bearer alice")];
        assert_eq!(get_with(addr, "/account", &token).x_cache(), "MISS");
        assert_eq!(get_with(addr, "/account", &token).x_cache(), "MISS");
        assert_eq!(get(addr, "/cookie").x_cache(), "MISS");
        assert_eq!(get(addr, "/cookie").x_cache(), "MISS");
        assert_eq!(backend.requests(), 4);
        assert_eq!(get_with(addr, "/public", &token).x_cache(), "MISS");
        assert_eq!(
            get_with(addr, "/public", &token).x_cache(),
            "HIT",
            "public may be shared"
        );
    });
}

#[test]
fn unsafe_methods_bypass_and_invalidate() {
    each_front(|front| {
        let backend = TestBackend::start(|_| respond(200, &[("cache-control", "max-age=60")], "v"));
        let balancer = balancer(&backend, cache_on(front));
        let addr = balancer.local_addr();
        assert_eq!(get(addr, "/item").x_cache(), "MISS");
        assert_eq!(get(addr, "/item").x_cache(), "HIT");
        assert_eq!(request(&agent(), "POST", addr, "/item", &[]).x_cache(), "BYPASS");
        assert_eq!(
            get(addr, "/item").x_cache(),
            "MISS",
            "the POST made the entry stale"
        );
        assert_eq!(stats(addr)["cache"]["bypass"], 1);
    });
}

#[test]
fn only_if_cached_never_reaches_the_backend() {
    each_front(|front| {
        let backend = TestBackend::start(|_| respond(200, &[("cache-control", "max-age=60")], "v"));
        let balancer = balancer(&backend, cache_on(front));
        let addr = balancer.local_addr();
        let only = [("cache-control", "only-if-cached")];
        assert_eq!(get_with(addr, "/o", &only).status, 504);
        assert_eq!(backend.requests(), 0);
        get(addr, "/o");
        assert_eq!(get_with(addr, "/o", &only).x_cache(), "HIT");
    });
}

#[test]
fn the_cache_is_off_by_default() {
    let backend = TestBackend::start(|_| respond(200, &[("cache-control", "max-age=60")], "v"));
    let balancer = balancer(&backend, BalancerConfig::default());
    assert_eq!(get(balancer.local_addr(), "/x").x_cache(), "");
    assert_eq!(get(balancer.local_addr(), "/x").x_cache(), "");
    assert_eq!(backend.requests(), 2);
}

#[test]
fn a_restart_with_cache_dir_serves_what_was_stored_before() {
    each_front(|front| {
        let dir = tempfile::tempdir().unwrap();
        let backend = TestBackend::start(|_| respond(200, &[("cache-control", "max-age=600")], "kept"));
        let config = || cache_on_disk(front, dir.path());
        // The key includes the Host, which would otherwise name the new port.
        let host = [("host", "example.test")];
        let first = balancer(&backend, config());
        assert_eq!(get_with(first.local_addr(), "/persist", &host).x_cache(), "MISS");
        first.shutdown(Duration::from_secs(5));

        let second = balancer(&backend, config());
        let answer = get_with(second.local_addr(), "/persist", &host);
        assert_eq!((answer.x_cache(), answer.body.as_str()), ("HIT", "kept\n"));
        assert_eq!(backend.requests(), 1);
    });
}

#[test]
fn a_corrupted_cache_file_is_skipped() {
    each_front(|front| {
        let dir = tempfile::tempdir().unwrap();
        let backend =
            TestBackend::start(|request| respond(200, &[("cache-control", "max-age=600")], request.path()));
        let config = || cache_on_disk(front, dir.path());
        let host = [("host", "example.test")];
        let first = balancer(&backend, config());
        get_with(first.local_addr(), "/damaged", &host);
        get_with(first.local_addr(), "/intact", &host);
        first.shutdown(Duration::from_secs(5));

        // Truncate /damaged's file, and add a file that is not a cache file at all.
        let files: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert_eq!(files.len(), 2);
        let damaged = files
            .iter()
            .find(|path| String::from_utf8_lossy(&fs::read(path).unwrap()).contains("target /damaged"))
            .unwrap();
        let bytes = fs::read(damaged).unwrap();
        fs::write(damaged, &bytes[..bytes.len() - 4]).unwrap();
        fs::write(
            dir.path().join("ffffffffffffffff.cache"),
            b"\x00\x01 not a cache file",
        )
        .unwrap();

        let second = balancer(&backend, config());
        let addr = second.local_addr();
        assert_eq!(get_with(addr, "/intact", &host).x_cache(), "HIT");
        assert_eq!(get_with(addr, "/damaged", &host).x_cache(), "MISS");
        assert_eq!(backend.requests(), 3);
    });
}
