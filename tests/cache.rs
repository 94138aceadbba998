//! The response cache end to end: a balancer with `--cache` in front of a test backend
//! whose Cache-Control, ETag and Vary headers each test chooses.

mod cache_support;

use std::fs;
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use cache_support::raw;
use cache_support::*;
use roundhouse::proxy::balancer::BalancerConfig;
use roundhouse::proxy::cache::CacheConfig;
use std::io::Write;

fn cached(config: CacheConfig) -> BalancerConfig {
    BalancerConfig {
        cache: Some(config),
        ..BalancerConfig::default()
    }
}

/// A cache kept in `dir` too, so that it outlives the balancer.
fn cache_on_disk(dir: &std::path::Path) -> BalancerConfig {
    cached(CacheConfig {
        dir: Some(dir.to_path_buf()),
        ..CacheConfig::default()
    })
}

fn cache_on() -> BalancerConfig {
    cached(CacheConfig::default())
}

#[test]
fn max_age_response_is_a_hit_the_second_time_with_age() {
    on_each_front(|| {
        let backend = TestBackend::start(|_| respond(200, &[("cache-control", "max-age=60")], "hello"));
        let balancer = balancer(&backend, cache_on());
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
    on_each_front(|| {
        let backend = TestBackend::start(|_| respond(200, &[("cache-control", "no-store")], "secret"));
        let balancer = balancer(&backend, cache_on());
        for _ in 0..3 {
            assert_eq!(get(balancer.local_addr(), "/private").x_cache(), "MISS");
        }
        assert_eq!(backend.requests(), 3);
        assert_eq!(stats(balancer.local_addr())["cache"]["entries"], 0);
    });
}

#[test]
fn vary_accept_stores_variants_apart() {
    on_each_front(|| {
        let backend = TestBackend::start(|request| {
            let accept = request.header("accept").unwrap_or("none").to_string();
            respond(
                200,
                &[("cache-control", "max-age=60"), ("vary", "Accept")],
                &accept,
            )
        });
        let balancer = balancer(&backend, cache_on());
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
    on_each_front(|| {
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
        let balancer = balancer(&backend, cache_on());
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
    on_each_front(|| {
        let backend = TestBackend::start(|_| {
            respond(
                200,
                &[("etag", "W/\"v7\""), ("cache-control", "max-age=60")],
                "seven",
            )
        });
        let balancer = balancer(&backend, cache_on());
        let addr = balancer.local_addr();

        // Nothing stored: the client's condition goes to the backend; this one ignores it,
        // and its 200 is stored, while the client, whose tag matches, gets a 304.
        let first = get_with(addr, "/c", &[("if-none-match", "\"v7\"")]);
        assert_eq!((first.status, first.x_cache()), (304, "MISS"));
        assert_eq!(backend.last_headers()["if-none-match"], "\"v7\"");

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
    on_each_front(|| {
        const CLIENTS: usize = 20;
        let backend = TestBackend::start(|_| {
            thread::sleep(Duration::from_millis(300));
            respond(200, &[("cache-control", "max-age=60")], "slow")
        });
        let balancer = balancer(&backend, cache_on());
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
    on_each_front(|| {
        const LIMIT: u64 = 64 * 1024;
        let backend =
            TestBackend::start(|_| respond(200, &[("cache-control", "max-age=60")], &"x".repeat(8 * 1024)));
        let balancer = balancer(
            &backend,
            cached(CacheConfig {
                max_bytes: LIMIT,
                ..CacheConfig::default()
            }),
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
    on_each_front(|| {
        let backend =
            TestBackend::start(|_| respond(200, &[("cache-control", "max-age=60")], &"y".repeat(2048)));
        let balancer = balancer(
            &backend,
            cached(CacheConfig {
                max_object: 1024,
                ..CacheConfig::default()
            }),
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
    on_each_front(|| {
        let backend = TestBackend::start(|_| respond(200, &[], "plain"));
        let balancer = balancer(&backend, cache_on());
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
fn authorization_is_not_shared_unless_public_and_set_cookie_not_on_the_ttl() {
    on_each_front(|| {
        let backend = TestBackend::start(|request| match request.path() {
            "/cookie" => respond(200, &[("set-cookie", "id=1")], "c"),
            "/public" => respond(200, &[("cache-control", "public, max-age=60")], "p"),
            _ => respond(200, &[("cache-control", "max-age=60")], "mine"),
        });
        let balancer = balancer(&backend, cache_on());
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
    on_each_front(|| {
        let backend = TestBackend::start(|_| respond(200, &[("cache-control", "max-age=60")], "v"));
        let balancer = balancer(&backend, cache_on());
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
    on_each_front(|| {
        let backend = TestBackend::start(|_| respond(200, &[("cache-control", "max-age=60")], "v"));
        let balancer = balancer(&backend, cache_on());
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
    on_each_front(|| {
        let backend = TestBackend::start(|_| respond(200, &[("cache-control", "max-age=60")], "v"));
        let balancer = balancer(&backend, BalancerConfig::default());
        assert_eq!(get(balancer.local_addr(), "/x").x_cache(), "");
        assert_eq!(get(balancer.local_addr(), "/x").x_cache(), "");
        assert_eq!(backend.requests(), 2);
    });
}

#[test]
fn a_restart_with_cache_dir_serves_what_was_stored_before() {
    on_each_front(|| {
        let dir = tempfile::tempdir().unwrap();
        let backend = TestBackend::start(|_| respond(200, &[("cache-control", "max-age=600")], "kept"));
        let config = || cache_on_disk(dir.path());
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
    on_each_front(|| {
        let dir = tempfile::tempdir().unwrap();
        let backend =
            TestBackend::start(|request| respond(200, &[("cache-control", "max-age=600")], request.path()));
        let config = || cache_on_disk(dir.path());
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

// ---------------------------------------------------------------------------------------
// RFC 9111 conformance: one test per behaviour, each against a backend that sends exactly
// the fields in question (docs/cache.md has the table).
// ---------------------------------------------------------------------------------------

/// A cache with no `--cache-ttl`, so only what the backend says (or the RFC's heuristic)
/// makes a response fresh.
fn cache_without_ttl() -> BalancerConfig {
    cached(CacheConfig {
        ttl: Duration::ZERO,
        ..CacheConfig::default()
    })
}

/// The X-Cache verdicts of two GETs in a row for `path`.
fn twice(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let first = get(addr, path).x_cache().to_string();
    let second = get(addr, path).x_cache().to_string();
    (first, second)
}

/// A backend answering each path with the fields `table` gives it (body: the path).
fn backend_of(table: &'static [(&'static str, &'static [(&'static str, &'static str)])]) -> TestBackend {
    TestBackend::start(move |request| {
        let fields = table
            .iter()
            .find(|(path, _)| *path == request.path())
            .map_or(&[][..], |(_, fields)| *fields);
        // A revalidation with the path's own ETag is answered 304, with the same fields.
        let etag = fields
            .iter()
            .find(|(name, _)| *name == "etag")
            .map(|(_, tag)| *tag);
        if etag.is_some() && request.header("if-none-match") == etag {
            return respond(304, fields, "");
        }
        respond(200, fields, request.path())
    })
}

#[test]
fn directive_names_are_case_insensitive() {
    on_each_front(|| {
        // RFC 9111 section 5.2: `No-Store` is `no-store`. It used to be stored and served.
        const TABLE: &[(&str, &[(&str, &str)])] = &[
            ("/no-store", &[("cache-control", "No-Store, Max-Age=60")]),
            ("/max-age", &[("cache-control", "MAX-AGE=60")]),
            (
                "/no-cache",
                &[("cache-control", "No-Cache, max-age=60"), ("etag", "\"1\"")],
            ),
            ("/private", &[("cache-control", "Private, Max-Age=60")]),
        ];
        let backend = backend_of(TABLE);
        let balancer = balancer(&backend, cache_without_ttl());
        let addr = balancer.local_addr();
        assert_eq!(twice(addr, "/no-store"), ("MISS".into(), "MISS".into()));
        assert_eq!(twice(addr, "/private"), ("MISS".into(), "MISS".into()));
        assert_eq!(twice(addr, "/max-age"), ("MISS".into(), "HIT".into()));
        assert_eq!(
            twice(addr, "/no-cache"),
            ("MISS".into(), "REVALIDATED".into()),
            "No-Cache forces a revalidation"
        );
        assert_eq!(backend.requests(), 7);
    });
}

#[test]
fn cdn_cache_control_rules_this_cache_and_cache_control_goes_to_the_client() {
    on_each_front(|| {
        // RFC 9213: a gateway cache takes its directives from CDN-Cache-Control instead of
        // Cache-Control (and Expires); an invalid CDN-Cache-Control is ignored.
        const TABLE: &[(&str, &[(&str, &str)])] = &[
            (
                "/cdn-fresh",
                &[("cache-control", "no-store"), ("cdn-cache-control", "max-age=60")],
            ),
            (
                "/cdn-no-store",
                &[("cache-control", "max-age=60"), ("cdn-cache-control", "no-store")],
            ),
            (
                "/cdn-private",
                &[
                    ("cache-control", "max-age=60"),
                    ("expires", "Thu, 01 Jan 2099 00:00:00 GMT"),
                    ("cdn-cache-control", "private"),
                ],
            ),
            (
                "/cdn-no-cache",
                &[
                    ("cache-control", "max-age=60"),
                    ("etag", "\"1\""),
                    ("cdn-cache-control", "no-cache"),
                ],
            ),
            (
                "/cdn-short",
                &[
                    ("cache-control", "max-age=600"),
                    ("cdn-cache-control", "max-age=0"),
                ],
            ),
            (
                "/cdn-s-maxage",
                &[("cdn-cache-control", "s-maxage=60"), ("expires", "0")],
            ),
            (
                "/cdn-must-revalidate",
                &[
                    ("cdn-cache-control", "max-age=10, must-revalidate"),
                    ("age", "20"),
                    ("etag", "\"1\""),
                ],
            ),
            (
                "/cdn-invalid",
                &[
                    ("cache-control", "no-store"),
                    ("cdn-cache-control", "max-age=60, &&&&&"),
                ],
            ),
            (
                "/cdn-wrong-type",
                &[
                    ("cache-control", "no-store"),
                    ("cdn-cache-control", "max-age=\"60\""),
                ],
            ),
        ];
        let backend = backend_of(TABLE);
        let balancer = balancer(&backend, cache_without_ttl());
        let addr = balancer.local_addr();
        let first = get(addr, "/cdn-fresh");
        let second = get(addr, "/cdn-fresh");
        assert_eq!((first.x_cache(), second.x_cache()), ("MISS", "HIT"));
        assert_eq!(
            (second.header("cache-control"), second.header("cdn-cache-control")),
            ("no-store", "max-age=60"),
            "both fields reach the client unchanged"
        );
        for path in [
            "/cdn-no-store",
            "/cdn-private",
            "/cdn-short",
            "/cdn-invalid",
            "/cdn-wrong-type",
        ] {
            assert_eq!(twice(addr, path), ("MISS".into(), "MISS".into()), "{path}");
        }
        assert_eq!(twice(addr, "/cdn-no-cache").1, "REVALIDATED");
        assert_eq!(twice(addr, "/cdn-must-revalidate").1, "REVALIDATED");
        assert_eq!(twice(addr, "/cdn-s-maxage").1, "HIT", "Expires is ignored");
    });
}

#[test]
fn age_has_one_reading_for_each_odd_form() {
    on_each_front(|| {
        // RFC 9111 section 5.1: the first member of a list counts; a value that is not a
        // non-negative integer is ignored. max-age=60: Age 100 makes it stale, Age 0 not.
        const TABLE: &[(&str, &[(&str, &str)])] = &[
            ("/suffix", &[("cache-control", "max-age=60"), ("age", "10a")]),
            ("/float", &[("cache-control", "max-age=60"), ("age", "100.5")]),
            ("/negative", &[("cache-control", "max-age=60"), ("age", "-100")]),
            (
                "/list-old-first",
                &[("cache-control", "max-age=60"), ("age", "100, 0")],
            ),
            (
                "/list-young-first",
                &[("cache-control", "max-age=60"), ("age", "0, 100")],
            ),
            (
                "/two-lines-old-first",
                &[("cache-control", "max-age=60"), ("age", "100"), ("age", "0")],
            ),
            ("/too-old", &[("cache-control", "max-age=60"), ("age", "100")]),
        ];
        let backend = backend_of(TABLE);
        let balancer = balancer(&backend, cache_without_ttl());
        let addr = balancer.local_addr();
        for path in ["/suffix", "/float", "/negative", "/list-young-first"] {
            assert_eq!(twice(addr, path).1, "HIT", "{path}: Age ignored or 0");
        }
        for path in ["/list-old-first", "/two-lines-old-first", "/too-old"] {
            assert_eq!(twice(addr, path).1, "MISS", "{path}: Age 100 > max-age 60");
        }
        let answer = get(addr, "/list-young-first");
        assert!(answer.header("age").parse::<u64>().unwrap() < 60);
    });
}

#[test]
fn expires_is_read_in_every_http_date_form_and_anything_else_is_the_past() {
    on_each_front(|| {
        // RFC 9110 section 5.6.7: IMF-fixdate, RFC 850 and asctime are all dates; RFC 9111
        // section 5.3: an Expires that is not a date means already expired.
        const TABLE: &[(&str, &[(&str, &str)])] = &[
            ("/imf", &[("expires", "Thu, 18 Aug 2050 02:01:18 GMT")]),
            (
                "/imf-padded",
                &[("expires", "   Thu, 18 Aug 2050 02:01:18 GMT  ")],
            ),
            ("/rfc850", &[("expires", "Thursday, 18-Aug-50 02:01:18 GMT")]),
            ("/asctime", &[("expires", "Thu Aug 18 02:01:18 2050")]),
            ("/inner-spaces", &[("expires", "Thu, 18  Aug  2050 02:01:18 GMT")]),
            ("/utc", &[("expires", "Thu, 18 Aug 2050 02:01:18 UTC")]),
            ("/zero", &[("expires", "0")]),
            ("/past", &[("expires", "Thu, 01 Jan 2004 00:00:00 GMT")]),
        ];
        let backend = backend_of(TABLE);
        // With the TTL on: an invalid Expires is still explicit ("expired"), no TTL.
        let balancer = balancer(&backend, cache_on());
        let addr = balancer.local_addr();
        for path in ["/imf", "/imf-padded", "/rfc850", "/asctime"] {
            assert_eq!(twice(addr, path).1, "HIT", "{path}");
        }
        for path in ["/inner-spaces", "/utc", "/zero", "/past"] {
            assert_eq!(twice(addr, path).1, "MISS", "{path}");
        }
    });
}

#[test]
fn max_age_with_odd_syntax_has_one_reading_each() {
    on_each_front(|| {
        // Quoted values and leading zeros are max-age; anything else that claims to be
        // max-age is invalid freshness information, so stale (RFC 9111 section 4.2.1), and
        // never falls back to the TTL. A quoted "max-age=" inside another directive is not one.
        const TABLE: &[(&str, &[(&str, &str)])] = &[
            ("/quoted", &[("cache-control", "max-age=\"60\"")]),
            ("/zeros", &[("cache-control", "max-age=0060")]),
            ("/huge", &[("cache-control", "max-age=99999999999")]),
            ("/extension", &[("cache-control", "foo, max-age=60")]),
            ("/suffix", &[("cache-control", "max-age=60a")]),
            ("/single-quoted", &[("cache-control", "max-age='60'")]),
            ("/space-before", &[("cache-control", "max-age =60")]),
            ("/space-after", &[("cache-control", "max-age= 60")]),
            (
                "/in-quotes",
                &[("cache-control", "ext=\"max-age=60\", max-age=0")],
            ),
            ("/first-wins", &[("cache-control", "max-age=0, max-age=60")]),
        ];
        let backend = backend_of(TABLE);
        let balancer = balancer(&backend, cache_on());
        let addr = balancer.local_addr();
        for path in ["/quoted", "/zeros", "/huge", "/extension"] {
            assert_eq!(twice(addr, path).1, "HIT", "{path}");
        }
        for path in [
            "/suffix",
            "/single-quoted",
            "/space-before",
            "/space-after",
            "/in-quotes",
            "/first-wins",
        ] {
            assert_eq!(twice(addr, path).1, "MISS", "{path}");
        }
    });
}

#[test]
fn every_end_to_end_field_is_stored_and_no_hop_by_hop_one() {
    on_each_front(|| {
        // RFC 9111 section 3.1: store every field, Set-Cookie included, but not Connection,
        // the fields it names, the other hop-by-hop fields or the proxy authentication ones.
        let backend = raw::RawBackend::start(|_, stream| {
            let body = "stored";
            let head = "HTTP/1.1 200 OK\r\ncache-control: max-age=60\r\nset-cookie: a=b\r\n\
                 x-frame-options: deny\r\ncontent-type: text/plain\r\nx-test-header: kept\r\n\
                 connection: x-named, keep-alive\r\nx-named: secret\r\nkeep-alive: timeout=5\r\n\
                 proxy-authenticate: Basic\r\nproxy-connection: keep-alive\r\nte: trailers\r\n\
                 upgrade: h2c\r\ntransfer-encoding: chunked";
            let bytes = format!("{head}\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
            stream.write_all(bytes.as_bytes()).unwrap();
        });
        let balancer = balancer_at(&backend.url(), cache_without_ttl());
        let addr = balancer.local_addr();
        assert_eq!(get(addr, "/fields").x_cache(), "MISS");
        let hit = get(addr, "/fields");
        assert_eq!((hit.x_cache(), hit.body.as_str()), ("HIT", "stored"));
        for (name, value) in [
            ("set-cookie", "a=b"),
            ("x-frame-options", "deny"),
            ("content-type", "text/plain"),
            ("x-test-header", "kept"),
        ] {
            assert_eq!(hit.header(name), value, "{name} is stored");
        }
        for name in [
            "x-named",
            "keep-alive",
            "proxy-authenticate",
            "proxy-connection",
            "te",
            "upgrade",
            "transfer-encoding",
        ] {
            assert!(!hit.headers.contains_key(name), "{name} is not stored");
        }
        assert_eq!(backend.requests(), 1);
    });
}

#[test]
fn qualified_no_cache_and_private_keep_only_the_named_fields_out() {
    on_each_front(|| {
        // RFC 9111 sections 5.2.2.4 and 5.2.2.7: no-cache="f" and private="f" concern the
        // field f only; the response is stored and served without it.
        const TABLE: &[(&str, &[(&str, &str)])] = &[(
            "/q",
            &[
                ("cache-control", "max-age=60, no-cache=\"X-A\", private=\"x-b\""),
                ("x-a", "1"),
                ("x-b", "2"),
                ("x-c", "3"),
            ],
        )];
        let backend = backend_of(TABLE);
        let balancer = balancer(&backend, cache_without_ttl());
        let addr = balancer.local_addr();
        assert_eq!(get(addr, "/q").header("x-a"), "1", "the first answer is whole");
        let hit = get(addr, "/q");
        assert_eq!(hit.x_cache(), "HIT");
        assert_eq!(
            (hit.header("x-a"), hit.header("x-b"), hit.header("x-c")),
            ("", "", "3")
        );
    });
}

#[test]
fn set_cookie_is_stored_only_with_explicit_freshness() {
    on_each_front(|| {
        // Section 3.1 stores Set-Cookie like any field; our rule: never on the TTL.
        const TABLE: &[(&str, &[(&str, &str)])] = &[
            (
                "/explicit",
                &[("cache-control", "max-age=60"), ("set-cookie", "id=1")],
            ),
            ("/ttl-only", &[("set-cookie", "id=1")]),
        ];
        let backend = backend_of(TABLE);
        let balancer = balancer(&backend, cache_on());
        let addr = balancer.local_addr();
        let (_, hit) = (get(addr, "/explicit"), get(addr, "/explicit"));
        assert_eq!((hit.x_cache(), hit.header("set-cookie")), ("HIT", "id=1"));
        assert_eq!(twice(addr, "/ttl-only").1, "MISS");
    });
}

#[test]
fn proxy_revalidate_and_s_maxage_allow_fresh_hits_but_no_stale_ones() {
    on_each_front(|| {
        // Sections 5.2.2.8 and 5.2.2.10: for a shared cache they mean must-revalidate: fresh
        // answers are fine, stale ones need the backend (max-stale cannot override them).
        const TABLE: &[(&str, &[(&str, &str)])] = &[
            (
                "/proxy-revalidate",
                &[("cache-control", "max-age=60, proxy-revalidate")],
            ),
            ("/s-maxage", &[("cache-control", "s-maxage=60")]),
            (
                "/stale-proxy-revalidate",
                &[
                    ("cache-control", "max-age=10, proxy-revalidate"),
                    ("age", "20"),
                    ("etag", "\"1\""),
                ],
            ),
        ];
        let backend = backend_of(TABLE);
        let balancer = balancer(&backend, cache_without_ttl());
        let addr = balancer.local_addr();
        assert_eq!(twice(addr, "/proxy-revalidate").1, "HIT");
        assert_eq!(twice(addr, "/s-maxage").1, "HIT");
        get(addr, "/stale-proxy-revalidate");
        let stale_ok = [("cache-control", "max-stale=3600")];
        assert_ne!(
            get_with(addr, "/stale-proxy-revalidate", &stale_ok).x_cache(),
            "HIT"
        );
    });
}

#[test]
fn heuristic_freshness_only_for_heuristically_cacheable_statuses() {
    on_each_front(|| {
        // RFC 9111 section 4.2.2 and RFC 9110 section 15.1: with a Last-Modified a day old
        // and nothing explicit, these statuses are fresh for a while (10 % of a day, at most
        // a day here), the others never; `public` makes any status heuristically cacheable.
        let backend = TestBackend::start(|request| {
            let day_ago = httpdate::fmt_http_date(std::time::SystemTime::now() - Duration::from_secs(86_400));
            let mut parts = request.path().trim_start_matches('/').split('/');
            let status: u16 = parts.next().unwrap().parse().unwrap();
            let mut fields = vec![("last-modified", day_ago.as_str()), ("location", "/elsewhere")];
            if parts.next() == Some("public") {
                fields.push(("cache-control", "public"));
            }
            respond(status, &fields, "heuristic")
        });
        let balancer = balancer(&backend, cache_without_ttl());
        let addr = balancer.local_addr();
        for status in [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501] {
            let path = format!("/{status}");
            assert_eq!(twice(addr, &path).1, "HIT", "{status} is heuristically cacheable");
        }
        for status in [201, 202, 302, 403, 500, 502, 503, 504, 599] {
            let path = format!("/{status}");
            assert_eq!(twice(addr, &path).1, "MISS", "{status} is not");
        }
        assert_eq!(twice(addr, "/599/public").1, "HIT", "public makes it so");
        // Without Last-Modified there is nothing to base a heuristic on.
        let plain = TestBackend::start(|_| respond(404, &[], "gone"));
        let without = cache_support::balancer(&plain, cache_without_ttl());
        assert_eq!(twice(without.local_addr(), "/x").1, "MISS");
    });
}

#[test]
fn a_successful_unsafe_request_invalidates_its_uri_location_and_content_location() {
    on_each_front(|| {
        // RFC 9111 section 4.4: POST, PUT, DELETE, PATCH and any unknown method; the URIs in
        // Location and Content-Location too, on the same origin only; not after an error.
        let backend = TestBackend::start(|request| match (request.method.as_str(), request.path()) {
            ("GET", path) => respond(200, &[("cache-control", "max-age=60")], path),
            (_, "/fails") => respond(500, &[], "no"),
            (_, "/elsewhere") => respond(201, &[("location", "http://other.test/keep")], "made"),
            _ => respond(
                201,
                &[
                    ("location", "loc"),
                    ("content-location", "http://raw.test/dir/../cl"),
                ],
                "made",
            ),
        });
        let balancer = balancer(&backend, cache_on());
        let addr = balancer.local_addr();
        let host = [("host", "raw.test")];
        let other = [("host", "other.test")];
        let warm = |paths: &[&str]| {
            for path in paths {
                get_with(addr, path, &host);
                assert_eq!(get_with(addr, path, &host).x_cache(), "HIT", "{path} is stored");
            }
        };
        for method in ["POST", "PUT", "DELETE", "PATCH", "M-SEARCH"] {
            warm(&["/item", "/loc", "/cl", "/unrelated"]);
            let mut client = raw::RawClient::connect(addr);
            client.send(method, "/item", &[], "abc");
            let answer = client.read();
            assert_eq!((answer.status, answer.header("x-cache")), (201, Some("BYPASS")));
            for path in ["/item", "/loc", "/cl"] {
                assert_eq!(
                    get_with(addr, path, &host).x_cache(),
                    "MISS",
                    "{method} invalidated {path}"
                );
            }
            assert_eq!(get_with(addr, "/unrelated", &host).x_cache(), "HIT");
        }
        // Another origin's URI is left alone, and a failed request invalidates nothing.
        get_with(addr, "/keep", &other);
        let post = request(&agent(), "POST", addr, "/elsewhere", &host);
        assert_eq!(post.status, 201);
        assert_eq!(get_with(addr, "/keep", &other).x_cache(), "HIT");
        warm(&["/fails"]);
        assert_eq!(request(&agent(), "POST", addr, "/fails", &host).status, 500);
        assert_eq!(get_with(addr, "/fails", &host).x_cache(), "HIT");
    });
}

#[test]
fn on_a_miss_the_clients_validators_reach_the_backend_and_its_304_comes_back() {
    on_each_front(|| {
        let backend = TestBackend::start(|request| match request.header("if-none-match") {
            Some("\"v1\"") => respond(304, &[("etag", "\"v1\"")], ""),
            _ => respond(200, &[("etag", "\"v1\""), ("cache-control", "max-age=60")], "v1"),
        });
        let balancer = balancer(&backend, cache_on());
        let addr = balancer.local_addr();
        let answer = get_with(addr, "/v", &[("if-none-match", "\"v1\"")]);
        assert_eq!(
            (answer.status, answer.x_cache(), answer.body.as_str()),
            (304, "MISS", "")
        );
        assert_eq!(backend.last_headers()["if-none-match"], "\"v1\"");
        let since = [("if-modified-since", "Mon, 01 Jan 2024 00:00:00 GMT")];
        get_with(addr, "/v", &since);
        assert_eq!(
            backend.last_headers()["if-modified-since"],
            "Mon, 01 Jan 2024 00:00:00 GMT"
        );
        // The 200 that answered If-Modified-Since was stored; now the cache answers itself.
        let stored = get_with(addr, "/v", &[("if-none-match", "\"v1\"")]);
        assert_eq!((stored.status, stored.x_cache()), (304, "HIT"));
        assert_eq!(backend.requests(), 2);
    });
}

#[test]
fn a_304_updates_the_stored_fields_it_carries_and_only_if_it_is_about_our_copy() {
    on_each_front(|| {
        // RFC 9111 section 4.3.4: the fields of a 304 replace the stored ones, the others
        // stay; a 304 whose strong ETag is not the stored one updates nothing, so the cache
        // asks for the whole response instead.
        let backend = TestBackend::start(
            |request| match (request.path(), request.header("if-none-match")) {
                ("/update", Some("\"v1\"")) => respond(
                    304,
                    &[
                        ("etag", "\"v1\""),
                        ("cache-control", "max-age=60"),
                        ("x-a", "new"),
                    ],
                    "",
                ),
                ("/update", _) => respond(
                    200,
                    &[
                        ("etag", "\"v1\""),
                        ("cache-control", "max-age=0"),
                        ("x-a", "old"),
                        ("x-b", "kept"),
                    ],
                    "body",
                ),
                ("/other-tag", Some(_)) => {
                    respond(304, &[("etag", "\"v9\""), ("cache-control", "max-age=60")], "")
                }
                ("/other-tag", None) => {
                    let count = request.header("x-count").unwrap_or("");
                    respond(
                        200,
                        &[("etag", "\"v1\""), ("cache-control", "max-age=0")],
                        &format!("whole{count}"),
                    )
                }
                _ => respond(404, &[], ""),
            },
        );
        let balancer = balancer(&backend, cache_on());
        let addr = balancer.local_addr();
        get(addr, "/update");
        let revalidated = get(addr, "/update");
        assert_eq!(revalidated.x_cache(), "REVALIDATED");
        assert_eq!(
            (revalidated.header("x-a"), revalidated.header("x-b")),
            ("new", "kept")
        );
        let hit = get(addr, "/update");
        assert_eq!(
            (hit.x_cache(), hit.header("x-a"), hit.body.as_str()),
            ("HIT", "new", "body\n")
        );

        get(addr, "/other-tag");
        let before = backend.requests();
        let answer = get(addr, "/other-tag");
        assert_eq!((answer.status, answer.x_cache()), (200, "MISS"));
        assert_eq!(backend.requests(), before + 2, "the 304, then the whole response");
        assert!(!backend.last_headers().contains_key("if-none-match"));
    });
}

#[test]
fn stale_while_revalidate_serves_stale_inside_its_window_and_refreshes_in_the_background() {
    on_each_front(|| {
        // RFC 5861 section 3. Age makes the responses stale on arrival: max-age=1, Age 5.
        let backend = TestBackend::start(
            |request| match (request.path(), request.header("if-none-match")) {
                ("/swr", Some(_)) => {
                    respond(200, &[("etag", "\"v2\""), ("cache-control", "max-age=60")], "new")
                }
                ("/swr", None) => respond(
                    200,
                    &[
                        ("etag", "\"v1\""),
                        ("cache-control", "max-age=1, stale-while-revalidate=30"),
                        ("age", "5"),
                    ],
                    "old",
                ),
                (_, _) => respond(
                    200,
                    &[
                        ("etag", "\"v1\""),
                        ("cache-control", "max-age=1, stale-while-revalidate=3"),
                        ("age", "10"),
                    ],
                    "late",
                ),
            },
        );
        let balancer = balancer(&backend, cache_on());
        let addr = balancer.local_addr();
        assert_eq!(get(addr, "/swr").x_cache(), "MISS");
        // A client that wants a fresh answer is not given a stale one.
        let fresh_only = get_with(addr, "/swr", &[("cache-control", "max-age=0")]);
        assert_ne!(fresh_only.x_cache(), "STALE");
        assert_eq!(fresh_only.body, "new\n");

        let backend_again = TestBackend::start(|request| match request.header("if-none-match") {
            Some(_) => respond(200, &[("etag", "\"v2\""), ("cache-control", "max-age=60")], "new"),
            None => respond(
                200,
                &[
                    ("etag", "\"v1\""),
                    ("cache-control", "max-age=1, stale-while-revalidate=30"),
                    ("age", "5"),
                ],
                "old",
            ),
        });
        let balancer = cache_support::balancer(&backend_again, cache_on());
        let addr = balancer.local_addr();
        assert_eq!(get(addr, "/swr").x_cache(), "MISS");
        let stale = get(addr, "/swr");
        assert_eq!((stale.x_cache(), stale.body.as_str()), ("STALE", "old\n"));
        assert!(
            wait_until(Duration::from_secs(10), || backend_again.requests() == 2
                && stats(addr)["cache"]["misses"] == 2),
            "a background revalidation reached the backend and was stored"
        );
        assert_eq!(backend_again.last_headers()["if-none-match"], "\"v1\"");
        let refreshed = get(addr, "/swr");
        assert_eq!((refreshed.x_cache(), refreshed.body.as_str()), ("HIT", "new\n"));
        assert_eq!(stats(addr)["cache"]["stale"], 1);

        // Outside the window (stale for 9 s, window 3 s) the client waits for the backend.
        let late = balancer_with_backend(&backend);
        get(late.local_addr(), "/late");
        assert_eq!(get(late.local_addr(), "/late").x_cache(), "MISS");
    });
}

/// A balancer with the default cache in front of `backend`.
fn balancer_with_backend(backend: &TestBackend) -> roundhouse::proxy::balancer::Balancer {
    cache_support::balancer(backend, cache_on())
}

#[test]
fn stale_if_error_serves_stale_when_the_backend_fails_or_is_gone() {
    on_each_front(|| {
        // RFC 5861 section 4: on 500, 502, 503, 504 inside the window, unless must-revalidate
        // (RFC 9111 section 4.2.4) forbids serving stale; the request may ask for it too.
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = std::sync::Arc::clone(&calls);
        let mut backend = TestBackend::start(move |request| {
            let first = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 4;
            let control = match request.path() {
                "/sie" => "max-age=1, stale-if-error=60",
                "/strict" => "max-age=1, stale-if-error=60, must-revalidate",
                _ => "max-age=1",
            };
            if first {
                respond(
                    200,
                    &[("cache-control", control), ("age", "5"), ("etag", "\"1\"")],
                    "old",
                )
            } else {
                respond(503, &[], "down")
            }
        });
        let balancer = balancer(&backend, cache_on());
        let addr = balancer.local_addr();
        for path in ["/sie", "/strict", "/asks", "/plain"] {
            assert_eq!(get(addr, path).x_cache(), "MISS");
        }
        let stale = get(addr, "/sie");
        assert_eq!(
            (stale.status, stale.x_cache(), stale.body.as_str()),
            (200, "STALE", "old\n")
        );
        assert_eq!(get(addr, "/strict").status, 503, "must-revalidate forbids it");
        assert_eq!(
            get(addr, "/plain").status,
            503,
            "no stale-if-error, no stale answer"
        );
        let asked = get_with(addr, "/asks", &[("cache-control", "stale-if-error=60")]);
        assert_eq!(
            (asked.status, asked.x_cache()),
            (200, "STALE"),
            "the request's own window"
        );
        // The backend goes away: the 502 that follows is an error too.
        backend.server.shutdown(Duration::from_secs(2));
        let gone = get(addr, "/sie");
        assert_eq!(
            (gone.status, gone.x_cache(), gone.body.as_str()),
            (200, "STALE", "old\n")
        );
    });
}

#[test]
fn max_stale_counts_the_age_the_response_arrived_with() {
    on_each_front(|| {
        // RFC 9111 section 5.2.1.2: stale by (Age 15 + time here) - max-age 10, about 5 s.
        let backend = TestBackend::start(|_| {
            respond(
                200,
                &[("cache-control", "max-age=10"), ("age", "15"), ("etag", "\"1\"")],
                "aged",
            )
        });
        let balancer = balancer(&backend, cache_on());
        let addr = balancer.local_addr();
        get(addr, "/aged");
        let within = get_with(addr, "/aged", &[("cache-control", "max-stale=60")]);
        assert_eq!(within.x_cache(), "HIT");
        assert!(
            within.header("age").parse::<u64>().unwrap() >= 15,
            "Age goes on from 15"
        );
        let beyond = get_with(addr, "/aged", &[("cache-control", "max-stale=2")]);
        assert_ne!(beyond.x_cache(), "HIT", "5 s stale is more than max-stale=2");
        assert_eq!(backend.requests(), 2);
    });
}

/// A response whose body is exactly `body` (no newline added).
fn respond_exact(status: u16, fields: &[(&str, &str)], body: &str) -> roundhouse::http1::Response {
    let mut response = respond(status, fields, "");
    response.body = body.as_bytes().to_vec();
    response
}

#[test]
fn a_range_request_is_answered_from_a_complete_stored_response() {
    on_each_front(|| {
        // RFC 9110 section 14: 206 with the stored fields and Content-Range; 416 past the
        // end; the whole 200 for ranges not served and for an If-Range that does not match.
        let backend = TestBackend::start(|_| {
            respond_exact(
                200,
                &[("cache-control", "max-age=60"), ("etag", "\"r1\""), ("x-a", "1")],
                "0123456789",
            )
        });
        let balancer = balancer(&backend, cache_on());
        let addr = balancer.local_addr();
        // A range that misses is forwarded with its Range; this backend sends it all, which
        // is stored, and the client gets its range.
        let first = get_with(addr, "/r", &[("range", "bytes=0-1")]);
        assert_eq!(
            (first.status, first.x_cache(), first.body.as_str()),
            (206, "MISS", "01")
        );
        assert_eq!(backend.last_headers()["range"], "bytes=0-1");
        for (range, body, content_range) in [
            ("bytes=0-1", "01", "bytes 0-1/10"),
            ("bytes=1-", "123456789", "bytes 1-9/10"),
            ("bytes=-1", "9", "bytes 9-9/10"),
        ] {
            let answer = get_with(addr, "/r", &[("range", range)]);
            assert_eq!(
                (answer.status, answer.x_cache(), answer.body.as_str()),
                (206, "HIT", body)
            );
            assert_eq!(answer.header("content-range"), content_range);
            assert_eq!(answer.header("x-a"), "1", "the stored fields come along");
        }
        let past = get_with(addr, "/r", &[("range", "bytes=50-")]);
        assert_eq!((past.status, past.header("content-range")), (416, "bytes */10"));
        let several = get_with(addr, "/r", &[("range", "bytes=0-1,4-5")]);
        assert_eq!((several.status, several.body.as_str()), (200, "0123456789"));
        let changed = get_with(addr, "/r", &[("range", "bytes=0-1"), ("if-range", "\"r0\"")]);
        assert_eq!((changed.status, changed.body.as_str()), (200, "0123456789"));
        let same = get_with(addr, "/r", &[("range", "bytes=0-1"), ("if-range", "\"r1\"")]);
        assert_eq!((same.status, same.body.as_str()), (206, "01"));
        assert_eq!(backend.requests(), 1);
    });
}

#[test]
fn a_stored_206_answers_only_ranges_inside_it() {
    on_each_front(|| {
        // RFC 9111 section 3.3: an incomplete response answers only requests for ranges it
        // holds, never one for the whole representation.
        let backend = TestBackend::start(|request| match request.header("range") {
            Some(_) => respond_exact(
                206,
                &[("cache-control", "max-age=60"), ("content-range", "bytes 4-9/10")],
                "456789",
            ),
            None => respond_exact(200, &[("cache-control", "max-age=60")], "0123456789"),
        });
        let balancer = balancer(&backend, cache_on());
        let addr = balancer.local_addr();
        let part = get_with(addr, "/p", &[("range", "bytes=-6")]);
        assert_eq!(
            (part.status, part.x_cache(), part.body.as_str()),
            (206, "MISS", "456789")
        );
        let inside = get_with(addr, "/p", &[("range", "bytes=6-8")]);
        assert_eq!(
            (inside.status, inside.x_cache(), inside.body.as_str()),
            (206, "HIT", "678")
        );
        assert_eq!(inside.header("content-range"), "bytes 6-8/10");
        let suffix = get_with(addr, "/p", &[("range", "bytes=-2")]);
        assert_eq!((suffix.x_cache(), suffix.body.as_str()), ("HIT", "89"));
        assert_eq!(backend.requests(), 1);
        let outside = get_with(addr, "/p", &[("range", "bytes=0-1")]);
        assert_eq!(outside.x_cache(), "MISS", "bytes 0-1 are not in the part");
        let whole = get(addr, "/p");
        assert_eq!(
            (whole.status, whole.x_cache(), whole.body.as_str()),
            (200, "MISS", "0123456789")
        );
        assert_eq!(backend.requests(), 3);
    });
}

/// A raw backend that sends `interim` heads, waits until the test has seen them (at most
/// 10 s), then sends a cacheable final answer.
fn early_hints_backend(
    interim: &'static str,
    seen: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> raw::RawBackend {
    raw::RawBackend::start(move |_, stream| {
        stream.write_all(interim.as_bytes()).unwrap();
        stream.flush().unwrap();
        wait_until(Duration::from_secs(10), || {
            seen.load(std::sync::atomic::Ordering::SeqCst)
        });
        seen.store(false, std::sync::atomic::Ordering::SeqCst);
        let final_answer = raw::raw_response("HTTP/1.1 200 OK\r\ncache-control: max-age=60", "final");
        stream.write_all(&final_answer).unwrap();
    })
}

#[test]
fn early_hints_reach_the_client_before_the_final_answer_and_are_never_cached() {
    on_each_front(|| {
        // RFC 9110 section 15.2: a proxy forwards 1xx responses; RFC 9111 section 3: only a
        // final response is stored, and an interim one's fields never join it.
        const HINTS: &str = "HTTP/1.1 102 Processing\r\n\r\n\
            HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload; as=style\r\nx-hint: 1\r\n\r\n";
        for (config, cached) in [(cache_on(), true), (BalancerConfig::default(), false)] {
            let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let backend = early_hints_backend(HINTS, std::sync::Arc::clone(&seen));
            let balancer = balancer_at(&backend.url(), config);
            let mut client = raw::RawClient::connect(balancer.local_addr());
            client.send("GET", "/hinted", &[], "");
            // These arrive while the backend is still holding back its answer.
            let processing = client.read();
            let hints = client.read();
            assert_eq!((processing.status, hints.status), (102, 103));
            assert_eq!(hints.header("link"), Some("</style.css>; rel=preload; as=style"));
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
            let answer = client.read();
            assert_eq!((answer.status, answer.body.as_slice()), (200, &b"final"[..]));
            assert_eq!(
                answer.header("x-hint"),
                None,
                "hint fields stay out of the answer"
            );
            if cached {
                client.send("GET", "/hinted", &[], "");
                let again = client.read_until_final();
                assert_eq!(again.len(), 1, "no interim response from the cache: {again:?}");
                assert_eq!(
                    (again[0].header("x-cache"), again[0].header("x-hint")),
                    (Some("HIT"), None)
                );
                assert_eq!(backend.requests(), 1);
            }
        }
    });
}

#[test]
fn a_date_in_the_past_counts_as_age() {
    on_each_front(|| {
        // RFC 9111 section 4.2.3: the apparent age, response time minus Date, counts when it
        // is more than Age says: sent 100 s ago with max-age=60, it arrives stale.
        let backend = TestBackend::start(|request| {
            let seconds = if request.path() == "/old" { 100 } else { 0 };
            let date = httpdate::fmt_http_date(std::time::SystemTime::now() - Duration::from_secs(seconds));
            respond(200, &[("cache-control", "max-age=60"), ("date", &date)], "dated")
        });
        let balancer = balancer(&backend, cache_without_ttl());
        let addr = balancer.local_addr();
        assert_eq!(twice(addr, "/old").1, "MISS");
        let recent = (get(addr, "/recent"), get(addr, "/recent"));
        assert_eq!(recent.1.x_cache(), "HIT");
        assert!(recent.1.header("age").parse::<u64>().unwrap() < 60);
    });
}

#[test]
fn a_head_served_stale_is_refreshed_with_a_get() {
    on_each_front(|| {
        // The background revalidation asks for the GET the entry stands for, without the
        // client's own validators, so the refreshed entry keeps a body.
        let backend = TestBackend::start(|request| {
            assert_eq!(request.method, http::Method::GET, "refreshes are GETs");
            match request.header("if-none-match") {
                Some("\"v1\"") => respond(200, &[("etag", "\"v2\""), ("cache-control", "max-age=60")], "new"),
                Some(other) => panic!("the client's validator {other} reached the backend"),
                None => respond(
                    200,
                    &[
                        ("etag", "\"v1\""),
                        ("cache-control", "max-age=1, stale-while-revalidate=30"),
                        ("age", "5"),
                    ],
                    "old",
                ),
            }
        });
        let balancer = balancer(&backend, cache_on());
        let addr = balancer.local_addr();
        get(addr, "/h");
        let head = request(&agent(), "HEAD", addr, "/h", &[("if-none-match", "\"mine\"")]);
        assert_eq!((head.status, head.x_cache()), (200, "STALE"));
        assert!(wait_until(
            Duration::from_secs(10),
            || stats(addr)["cache"]["misses"] == 2
        ));
        let refreshed = get(addr, "/h");
        assert_eq!((refreshed.x_cache(), refreshed.body.as_str()), ("HIT", "new\n"));
    });
}
