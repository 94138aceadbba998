//! Routes and pools end to end: the longest prefix wins, `strip_prefix` and `host`
//! rewrite what the backend sees, unmatched requests go to the default pool or get 404,
//! and `/stats` counts per pool and per route.

mod common;
mod config_support;

use std::time::Duration;

use roundhouse::proxy::balancer::{Balancer, BalancerConfig};
use roundhouse::proxy::routing::{PoolSpec, RouteSpec};

use common::{get, listener, raw};
use config_support::sims;

fn pool(name: &str, urls: &[String]) -> PoolSpec {
    PoolSpec {
        name: name.into(),
        strategy: "round-robin".into(),
        backends: urls.iter().map(|url| url.parse().unwrap()).collect(),
        discovery: None,
    }
}

fn route(prefix: &str, pool: &str) -> RouteSpec {
    RouteSpec {
        prefix: prefix.into(),
        pool: pool.into(),
        strip_prefix: false,
        host: None,
    }
}

fn start(default: &[String], pools: Vec<PoolSpec>, routes: Vec<RouteSpec>) -> Balancer {
    let config = BalancerConfig {
        backends: default.iter().map(|url| url.parse().unwrap()).collect(),
        pools,
        routes,
        check: roundhouse::proxy::backends::checker::CheckPolicy {
            interval: Duration::ZERO,
            ..Default::default()
        },
        ..BalancerConfig::default()
    };
    Balancer::start(listener(), &config).expect("balancer starts")
}

#[test]
fn longest_prefix_strip_prefix_and_host_reach_the_backend() {
    let (_web, web) = sims("web", 1, 0..=0);
    let (_api, api) = sims("api", 1, 0..=0);
    let (_users, users) = sims("users", 1, 0..=0);
    let mut stripped = route("/api", "api");
    stripped.strip_prefix = true;
    stripped.host = Some("api.internal".into());
    let balancer = start(
        &web,
        vec![pool("api", &api), pool("users", &users)],
        vec![stripped, route("/api/users", "users")],
    );
    let addr = balancer.local_addr();

    let reply = get(addr, "/api/orders/7?full=1");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let echo = reply.json();
    assert_eq!(echo["backend"], "api-1");
    assert_eq!(
        echo["path"], "/orders/7?full=1",
        "the prefix is stripped, the query kept"
    );
    assert_eq!(echo["headers"]["host"], "api.internal");
    assert_eq!(
        echo["headers"]["x-forwarded-host"], "test",
        "the client's Host is kept here"
    );

    let echo = get(addr, "/api/users/3").json();
    assert_eq!(echo["backend"], "users-1", "the longer prefix wins");
    assert_eq!(echo["path"], "/api/users/3", "this route does not strip");
    assert_eq!(echo["headers"]["host"], "test");

    let echo = get(addr, "/apiary").json();
    assert_eq!(
        echo["backend"], "web-1",
        "prefixes match whole segments; the rest goes to default"
    );

    let stats = get(addr, "/stats").json();
    let pools = stats["pools"].as_array().unwrap();
    let names: Vec<&str> = pools.iter().map(|pool| pool["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["default", "api", "users"]);
    assert_eq!(pools[1]["requests"], 1);
    assert_eq!(pools[1]["backends"][0], api[0].as_str());
    let routes = stats["routes"].as_array().unwrap();
    assert_eq!(routes[0]["prefix"], "/api/users", "listed longest first");
    assert_eq!(routes[1]["prefix"], "/api");
    assert_eq!(routes[1]["pool"], "api");
    assert_eq!(routes[1]["requests"], 1);
    assert_eq!(routes[1]["strip_prefix"], true);
    assert_eq!(stats["unrouted"], 1);
    assert_eq!(
        stats["backends"].as_array().unwrap().len(),
        3,
        "every backend of every pool"
    );
    assert_eq!(stats["requests"]["total"], 3, "existing fields stay");
    balancer.shutdown(Duration::from_secs(5));
}

#[test]
fn without_a_default_pool_an_unmatched_request_gets_404_with_a_body() {
    let (_api, api) = sims("api", 1, 0..=0);
    let balancer = start(&[], vec![pool("api", &api)], vec![route("/api", "api")]);
    let addr = balancer.local_addr();
    let reply = get(addr, "/elsewhere");
    assert_eq!(reply.status, 404);
    assert!(
        reply
            .text()
            .contains("no route matches /elsewhere and there is no default pool"),
        "{}",
        reply.text()
    );
    assert_eq!(get(addr, "/api").status, 200);
    let reply = raw(
        addr,
        b"OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(reply.status, 404, "OPTIONS * matches no prefix");
    let stats = get(addr, "/stats").json();
    assert_eq!(stats["requests"]["client_errors"], 2);
    assert_eq!(stats["unrouted"], 2);
    balancer.shutdown(Duration::from_secs(5));
}

#[test]
fn a_backend_in_two_pools_is_one_backend_and_a_reload_keeps_its_health() {
    let (_shared, shared) = sims("shared", 1, 0..=0);
    // A port nothing listens on: the first request marks it down (max_fails 1).
    let (_refusing, dead) = common::refusing_addr();
    let dead = format!("http://{dead}");
    let config = BalancerConfig {
        backends: vec![dead.parse().unwrap(), shared[0].parse().unwrap()],
        pools: vec![pool("api", &shared)],
        routes: vec![route("/api", "api")],
        passive: roundhouse::proxy::backends::health::PassivePolicy {
            max_fails: 1,
            fail_timeout: Duration::from_secs(60),
        },
        check: roundhouse::proxy::backends::checker::CheckPolicy {
            interval: Duration::ZERO,
            ..Default::default()
        },
        ..BalancerConfig::default()
    };
    let balancer = Balancer::start(listener(), &config).unwrap();
    let addr = balancer.local_addr();
    for _ in 0..3 {
        assert_eq!(get(addr, "/x").status, 200, "retried on the live backend");
    }
    let stats = get(addr, "/stats").json();
    assert_eq!(stats["backends"].as_array().unwrap().len(), 2);
    assert_eq!(stats["backends"][0]["healthy"], false);

    // Reload: the dead backend stays (now alone in `api`), the default pool changes.
    let mut next = config.clone();
    next.backends = vec![shared[0].parse().unwrap()];
    next.pools = vec![PoolSpec {
        name: "api".into(),
        strategy: "round-robin".into(),
        backends: vec![dead.parse().unwrap(), shared[0].parse().unwrap()],
        discovery: None,
    }];
    balancer.reload(&next).unwrap();
    let stats = get(addr, "/stats").json();
    let dead_entry = stats["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|backend| backend["url"] == dead.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        dead_entry["healthy"], false,
        "still down: its health carried over"
    );
    assert_eq!(dead_entry["errors"], 1, "its counters carried over too");
    assert_eq!(get(addr, "/api/x").json()["backend"], "shared-1");
    // An invalid reload keeps the table.
    let mut broken = next.clone();
    broken.routes = vec![route("/api", "missing")];
    assert!(balancer.reload(&broken).is_err());
    assert_eq!(
        get(addr, "/stats").json()["pools"][1]["backends"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    balancer.shutdown(Duration::from_secs(5));
}

#[test]
fn the_health_checker_follows_a_reload_to_new_backends() {
    let (_live, live) = sims("live", 1, 0..=0);
    let config = BalancerConfig {
        backends: vec![live[0].parse().unwrap()],
        check: roundhouse::proxy::backends::checker::CheckPolicy {
            interval: Duration::from_millis(50),
            fall: 1,
            ..Default::default()
        },
        ..BalancerConfig::default()
    };
    let balancer = Balancer::start(listener(), &config).unwrap();
    let addr = balancer.local_addr();
    // Added by the reload, in a pool no request is routed to: only the checker can
    // find out that nothing listens there.
    let (_refusing, dead) = common::refusing_addr();
    let dead = format!("http://{dead}");
    let mut next = config.clone();
    next.pools = vec![pool("spare", std::slice::from_ref(&dead))];
    balancer.reload(&next).unwrap();
    let down = common::wait_until(Duration::from_secs(10), || {
        get(addr, "/stats").json()["backends"]
            .as_array()
            .unwrap()
            .iter()
            .any(|backend| backend["url"] == dead.as_str() && backend["healthy"] == false)
    });
    assert!(down, "{}", get(addr, "/stats").text());
    assert_eq!(get(addr, "/stats").json()["pools"][1]["requests"], 0);
    balancer.shutdown(Duration::from_secs(5));
}
