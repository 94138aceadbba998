//! The seed apps (calculator, currency conversion, static site) through a running
//! balancer, as a client sees them.

mod apps_support;
mod common;

use std::fs;

use apps_support::{Stack, site_dir};
use serde_json::json;

/// Percent-encodes everything but letters and digits, so the expression arrives intact.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

#[test]
fn calculator_computes_a_table_of_expressions() {
    let stack = Stack::start(None);
    let table = [
        ("3 + 4", "3 + 4", json!(7)),
        ("3+4*2", "3 + 4 * 2", json!(11)),
        ("(3 + 4) * 2", "(3 + 4) * 2", json!(14)),
        ("10 - 4 - 3", "10 - 4 - 3", json!(3)),
        ("64 / 4 / 2", "64 / 4 / 2", json!(8)),
        ("7 / 2", "7 / 2", json!(3.5)),
        ("-3 * -(2 + 1)", "-3 * -(2 + 1)", json!(9)),
        ("2 - -3", "2 - -3", json!(5)),
        ("-2.5", "-2.5", json!(-2.5)),
        (" 1.5 + .25 ", "1.5 + 0.25", json!(1.75)),
    ];
    for (input, normalized, result) in table {
        let by_get = stack.get(&format!("/calc?expr={}", encode(input)));
        assert_eq!(by_get.status, 200, "GET {input}: {}", by_get.text());
        assert_eq!(
            by_get.json(),
            json!({"expr": normalized, "result": result}),
            "GET {input}"
        );
        let by_post = stack.send("POST", "/calc", &[], input.as_bytes());
        assert_eq!(by_post.status, 200, "POST {input}: {}", by_post.text());
        assert_eq!(
            by_post.json(),
            json!({"expr": normalized, "result": result}),
            "POST {input}"
        );
        assert!(by_post.header("x-roundhouse-backend").is_some());
    }
}

#[test]
fn calculator_errors_have_their_statuses() {
    let stack = Stack::start(None);
    let post = |body: &str| stack.send("POST", "/calc", &[], body.as_bytes());

    let syntax = post("3 + * 4");
    assert_eq!(syntax.status, 400);
    assert_eq!(syntax.json()["position"], 4);
    assert!(
        syntax.json()["error"]
            .as_str()
            .unwrap()
            .contains("expected a number")
    );

    let unclosed = post("2 * (3 + 4");
    assert_eq!(
        (unclosed.status, unclosed.json()["position"].clone()),
        (400, json!(4))
    );

    let zero = post("1 / (2 - 2)");
    assert_eq!(zero.status, 422);
    assert_eq!(zero.json()["error"], "division by zero");

    let long = post(&"1+".repeat(600));
    assert_eq!(long.status, 413);

    let deep = post(&format!("{}1{}", "(".repeat(65), ")".repeat(65)));
    assert_eq!(deep.status, 400);
    assert!(deep.json()["error"].as_str().unwrap().contains("nesting"));
    let very_deep = post(&"-".repeat(1000));
    assert_eq!(very_deep.status, 400);
    // The deepest input allowed, with a chain at every level (the most stack per
    // level), runs on a backend's connection thread without overflowing its stack.
    let deepest = post(&format!("{}1{}", "(1+1*".repeat(64), ")".repeat(64)));
    assert_eq!(deepest.status, 200, "{}", deepest.text());
    assert_eq!(deepest.json()["result"], 65);

    let missing = stack.get("/calc");
    assert_eq!(missing.status, 400);
    // `+` in a query is a space; the error says so.
    let plus = stack.get("/calc?expr=3+4");
    assert_eq!(plus.status, 400);
    assert!(plus.json()["error"].as_str().unwrap().contains("%2B"));

    let wrong_method = stack.send("DELETE", "/calc", &[], b"");
    assert_eq!(wrong_method.status, 405);

    // Every backend is still up after all that.
    assert_eq!(stack.get("/calc?expr=1%2B1").json()["result"], 2);
}

#[test]
fn currency_seed_route_answers_exactly_like_the_seed() {
    let stack = Stack::start(None);
    let reply = stack.get("/convertepradolareuro/15.0");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.text(),
        "{\"conversao\":{\"dolar\":2.9411764705882355,\"euro\":2.678571428571429,\"real\":15.0}}\n"
    );
    // Unlike the seed, an amount without a decimal point works too.
    assert_eq!(stack.get("/convertepradolareuro/15").text(), reply.text());
    for (amount, reason) in [
        ("abc", "not a number"),
        ("NaN", "NaN"),
        ("inf", "finite"),
        ("-1.0", "negative"),
        ("1%zz", "percent-encoded"),
    ] {
        let bad = stack.get(&format!("/convertepradolareuro/{amount}"));
        assert_eq!(bad.status, 400, "{amount}");
        assert!(
            bad.json()["error"].as_str().unwrap().contains(reason),
            "{amount}: {}",
            bad.text()
        );
    }
}

#[test]
fn currency_query_form_converts_between_currencies() {
    let stack = Stack::start(None);
    let reply = stack.get("/convert?amount=15&from=BRL&to=USD,EUR");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["amount"], 15.0);
    assert_eq!(body["from"], "BRL");
    assert_eq!(body["results"][0]["currency"], "USD");
    assert_eq!(body["results"][0]["amount"], 15.0 / 5.10);
    assert_eq!(body["results"][1]["currency"], "EUR");
    assert_eq!(body["results"][1]["amount"], 15.0 / 5.60);

    let back = stack.get("/convert?amount=10&from=usd&to=brl").json();
    assert_eq!(back["results"][0]["amount"], 51.0);

    for query in ["amount=x", "amount=-5", "amount=10&to=XYZ", "from=USD"] {
        let bad = stack.get(&format!("/convert?{query}"));
        assert_eq!(bad.status, 400, "{query}");
        assert!(bad.json()["error"].is_string());
    }
}

#[test]
fn static_site_serves_index_css_and_image() {
    let stack = Stack::start(Some(site_dir()));
    let index = stack.get("/site/");
    assert_eq!(index.status, 200);
    assert_eq!(index.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(index.body, fs::read(site_dir().join("index.html")).unwrap());
    assert_eq!(index.header("cache-control"), Some("max-age=60"));

    let css = stack.get("/site/style.css");
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));

    let image = stack.get("/site/roundhouse.png");
    assert_eq!(image.status, 200);
    assert_eq!(image.header("content-type"), Some("image/png"));
    assert_eq!(image.body, fs::read(site_dir().join("roundhouse.png")).unwrap());

    let redirect = stack.get("/site");
    assert_eq!(
        (redirect.status, redirect.header("location")),
        (301, Some("/site/"))
    );
    assert_eq!(stack.get("/site/missing.html").status, 404);
}

#[test]
fn static_site_revalidates_with_304() {
    let stack = Stack::start(Some(site_dir()));
    let first = stack.get("/site/style.css");
    let etag = first.header("etag").unwrap().to_string();
    let modified = first.header("last-modified").unwrap().to_string();

    let again = stack.send("GET", "/site/style.css", &[("if-none-match", &etag)], b"");
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));

    let since = stack.send("GET", "/site/style.css", &[("if-modified-since", &modified)], b"");
    assert_eq!(since.status, 304);

    let changed = stack.send("GET", "/site/style.css", &[("if-none-match", "\"other\"")], b"");
    assert_eq!(changed.status, 200);
    assert_eq!(changed.body, first.body);
    // If-None-Match wins over If-Modified-Since when both are sent.
    let both = stack.send(
        "GET",
        "/site/style.css",
        &[("if-none-match", "\"other\""), ("if-modified-since", &modified)],
        b"",
    );
    assert_eq!(both.status, 200);
}

#[test]
fn static_site_head_has_headers_and_no_body() {
    let stack = Stack::start(Some(site_dir()));
    let size = fs::metadata(site_dir().join("roundhouse.png")).unwrap().len();
    let head = stack.send("HEAD", "/site/roundhouse.png", &[], b"");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), Some(size.to_string().as_str()));
    assert_eq!(head.header("content-type"), Some("image/png"));
    assert!(head.header("etag").is_some());
}

#[test]
fn static_site_refuses_traversal() {
    let outside = tempfile::tempdir().unwrap();
    let root = outside.path().join("site");
    fs::create_dir(&root).unwrap();
    fs::write(root.join("index.html"), "inside").unwrap();
    fs::write(outside.path().join("secret.txt"), "SECRET").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), root.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("up")).unwrap();
    let stack = Stack::start(Some(root));
    assert_eq!(stack.get("/site/").text(), "inside");
    for attempt in [
        "/site/../secret.txt",
        "/site/%2e%2e/secret.txt",
        "/site/%2E%2E/secret.txt",
        "/site/..%2fsecret.txt",
        "/site/..%2Fsecret.txt",
        "/site/..%5csecret.txt",
        "/site/./../secret.txt",
        "/site//etc/passwd",
        "/site/%2fetc%2fpasswd",
        "/site/link.txt",
        "/site/up/secret.txt",
        "/site/index.html%00",
    ] {
        let reply = stack.get(attempt);
        assert_eq!(reply.status, 404, "{attempt}");
        assert!(!reply.text().contains("SECRET"), "{attempt}");
    }
}

#[test]
fn static_site_missing_says_how_to_configure() {
    let stack = Stack::start(None);
    let reply = stack.get("/site/");
    assert_eq!(reply.status, 404);
    assert!(reply.text().contains("--static"));
}

#[test]
fn health_load_and_echo_still_answer() {
    let stack = Stack::start(None);
    let load = send_to_backend(&stack, "/load");
    assert!(load["cpu_percent"].as_f64().unwrap() >= 0.0);
    assert_eq!(load["in_flight"], 0);
    assert_eq!(send_to_backend(&stack, "/health")["status"], "ok");
    let echo = stack.get("/hello").json();
    assert_eq!(echo["path"], "/hello");
}

/// Asks the first backend directly (not through the balancer).
fn send_to_backend(stack: &Stack, path: &str) -> serde_json::Value {
    apps_support::send_raw(stack.backends[0].local_addr(), "GET", path, &[], b"").json()
}
