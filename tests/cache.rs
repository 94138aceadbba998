//! The response cache end to end: a balancer with `--cache` in front of a test backend
//! whose Cache-Control, ETag and Vary headers each test chooses.

mod cache_support;

use std::fs;
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use cache_support::raw;
use cache_support::*;
use std::io::Write;
use roundhouse::balancer::BalancerConfig;
use roundhouse::cache::CacheConfig;

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
}

#[test]
fn no_store_is_never_stored() {
    let backend = TestBackend::start(|_| respond(200, &[("cache-control", "no-store")], "secret"));
    let balancer = balancer(&backend, cache_on());
    for _ in 0..3 {
        assert_eq!(get(balancer.local_addr(), "/private").x_cache(), "MISS");
    }
    assert_eq!(backend.requests(), 3);
    assert_eq!(stats(balancer.local_addr())["cache"]["entries"], 0);
}

#[test]
fn vary_accept_stores_variants_apart() {
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
}

#[test]
fn expired_entry_with_etag_is_revalidated() {
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
}

#[test]
fn a_clients_if_none_match_gets_304_from_the_cache() {
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
}

#[test]
fn concurrent_misses_on_one_key_make_one_backend_request() {
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
}

#[test]
fn eviction_keeps_bytes_under_the_limit() {
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
}

#[test]
fn objects_over_the_size_limit_are_passed_through() {
    let backend = TestBackend::start(|_| respond(200, &[("cache-control", "max-age=60")], &"y".repeat(2048)));
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
}

#[test]
fn a_bare_200_is_kept_for_the_ttl_and_head_is_answered_from_get() {
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
}

#[test]
fn authorization_is_not_shared_unless_public_and_set_cookie_not_on_the_ttl() {
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
}

#[test]
fn unsafe_methods_bypass_and_invalidate() {
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
}

#[test]
fn only_if_cached_never_reaches_the_backend() {
    let backend = TestBackend::start(|_| respond(200, &[("cache-control", "max-age=60")], "v"));
    let balancer = balancer(&backend, cache_on());
    let addr = balancer.local_addr();
    let only = [("cache-control", "only-if-cached")];
    assert_eq!(get_with(addr, "/o", &only).status, 504);
    assert_eq!(backend.requests(), 0);
    get(addr, "/o");
    assert_eq!(get_with(addr, "/o", &only).x_cache(), "HIT");
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
}

#[test]
fn a_corrupted_cache_file_is_skipped() {
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
        let etag = fields.iter().find(|(name, _)| *name == "etag").map(|(_, tag)| *tag);
        if etag.is_some() && request.header("if-none-match") == etag {
            return respond(304, fields, "");
        }
        respond(200, fields, request.path())
    })
}

#[test]
fn directive_names_are_case_insensitive() {
    // RFC 9111 section 5.2: `No-Store` is `no-store`. It used to be stored and served.
    const TABLE: &[(&str, &[(&str, &str)])] = &[
        ("/no-store", &[("cache-control", "No-Store, Max-Age=60")]),
        ("/max-age", &[("cache-control", "MAX-AGE=60")]),
        ("/no-cache", &[("cache-control", "No-Cache, max-age=60"), ("etag", "\"1\"")]),
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
}

#[test]
fn cdn_cache_control_rules_this_cache_and_cache_control_goes_to_the_client() {
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
            &[("cache-control", "max-age=600"), ("cdn-cache-control", "max-age=0")],
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
            &[("cache-control", "no-store"), ("cdn-cache-control", "max-age=60, &&&&&")],
        ),
        (
            "/cdn-wrong-type",
            &[("cache-control", "no-store"), ("cdn-cache-control", "max-age=\"60\"")],
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
    for path in ["/cdn-no-store", "/cdn-private", "/cdn-short", "/cdn-invalid", "/cdn-wrong-type"] {
        assert_eq!(twice(addr, path), ("MISS".into(), "MISS".into()), "{path}");
    }
    assert_eq!(twice(addr, "/cdn-no-cache").1, "REVALIDATED");
    assert_eq!(twice(addr, "/cdn-must-revalidate").1, "REVALIDATED");
    assert_eq!(twice(addr, "/cdn-s-maxage").1, "HIT", "Expires is ignored");
}

#[test]
fn age_has_one_reading_for_each_odd_form() {
    // RFC 9111 section 5.1: the first member of a list counts; a value that is not a
    // non-negative integer is ignored. max-age=60: Age 100 makes it stale, Age 0 not.
    const TABLE: &[(&str, &[(&str, &str)])] = &[
        ("/suffix", &[("cache-control", "max-age=60"), ("age", "10a")]),
        ("/float", &[("cache-control", "max-age=60"), ("age", "100.5")]),
        ("/negative", &[("cache-control", "max-age=60"), ("age", "-100")]),
        ("/list-old-first", &[("cache-control", "max-age=60"), ("age", "100, 0")]),
        ("/list-young-first", &[("cache-control", "max-age=60"), ("age", "0, 100")]),
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
}

#[test]
fn expires_is_read_in_every_http_date_form_and_anything_else_is_the_past() {
    // RFC 9110 section 5.6.7: IMF-fixdate, RFC 850 and asctime are all dates; RFC 9111
    // section 5.3: an Expires that is not a date means already expired.
    const TABLE: &[(&str, &[(&str, &str)])] = &[
        ("/imf", &[("expires", "Thu, 18 Aug 2050 02:01:18 GMT")]),
        ("/imf-padded", &[("expires", "   Thu, 18 Aug 2050 02:01:18 GMT  ")]),
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
}

#[test]
fn max_age_with_odd_syntax_has_one_reading_each() {
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
        ("/in-quotes", &[("cache-control", "ext=\"max-age=60\", max-age=0")]),
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
}

#[test]
fn every_end_to_end_field_is_stored_and_no_hop_by_hop_one() {
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
}

#[test]
fn qualified_no_cache_and_private_keep_only_the_named_fields_out() {
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
    assert_eq!((hit.header("x-a"), hit.header("x-b"), hit.header("x-c")), ("", "", "3"));
}

#[test]
fn set_cookie_is_stored_only_with_explicit_freshness() {
    // Section 3.1 stores Set-Cookie like any field; our rule: never on the TTL.
    const TABLE: &[(&str, &[(&str, &str)])] = &[
        ("/explicit", &[("cache-control", "max-age=60"), ("set-cookie", "id=1")]),
        ("/ttl-only", &[("set-cookie", "id=1")]),
    ];
    let backend = backend_of(TABLE);
    let balancer = balancer(&backend, cache_on());
    let addr = balancer.local_addr();
    let (_, hit) = (get(addr, "/explicit"), get(addr, "/explicit"));
    assert_eq!((hit.x_cache(), hit.header("set-cookie")), ("HIT", "id=1"));
    assert_eq!(twice(addr, "/ttl-only").1, "MISS");
}

#[test]
fn proxy_revalidate_and_s_maxage_allow_fresh_hits_but_no_stale_ones() {
    // Sections 5.2.2.8 and 5.2.2.10: for a shared cache they mean must-revalidate: fresh
    // answers are fine, stale ones need the backend (max-stale cannot override them).
    const TABLE: &[(&str, &[(&str, &str)])] = &[
        ("/proxy-revalidate", &[("cache-control", "max-age=60, proxy-revalidate")]),
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
    assert_ne!(get_with(addr, "/stale-proxy-revalidate", &stale_ok).x_cache(), "HIT");
}

#[test]
fn heuristic_freshness_only_for_heuristically_cacheable_statuses() {
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
}
