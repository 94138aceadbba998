//! `GET /metrics`: the whole page parsed by a strict parser of the text exposition
//! format 0.0.4, its numbers checked against the traffic sent, and, when Debian's
//! `prometheus` package is installed, `promtool check metrics` run on it too.

mod common;
mod config_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use roundhouse::proxy::balancer::{Balancer, BalancerConfig};
use roundhouse::proxy::routing::{PoolSpec, RouteSpec};

use common::{get, listener};
use config_support::sims;

/// One sample line.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// One metric family: its TYPE and its samples.
#[derive(Debug, Default)]
struct Family {
    kind: String,
    help: bool,
    samples: Vec<Sample>,
}

fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == ':')
        && chars.all(|rest| rest.is_ascii_alphanumeric() || rest == '_' || rest == ':')
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|rest| rest.is_ascii_alphanumeric() || rest == '_')
        && !name.starts_with("__")
}

/// `{a="x",b="y\"z"}` → the labels, and the rest of the line after `}`.
fn parse_labels(text: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = text.strip_prefix('{').ok_or("no {")?;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (name, after) = rest
            .split_once("=\"")
            .ok_or_else(|| format!("no =\" in {rest:?}"))?;
        if !valid_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (index, char) = chars.next().ok_or("unterminated label value")?;
            match char {
                '"' => break index,
                '\\' => match chars.next().ok_or("dangling escape")?.1 {
                    'n' => value.push('\n'),
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    other => return Err(format!("bad escape \\{other}")),
                },
                '\n' => return Err("newline in a label value".into()),
                other => value.push(other),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        rest = &after[end + 1..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err(format!("expected , or }} at {rest:?}"));
        }
    }
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text.parse().map_err(|_| format!("bad value {text:?}")),
    }
}

/// The family a sample belongs to: itself, or a histogram's base name.
fn family_of<'a>(name: &'a str, families: &BTreeMap<String, Family>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && families
                .get(base)
                .is_some_and(|family| family.kind == "histogram")
        {
            return base;
        }
    }
    name
}

/// Parses a whole page strictly; any deviation from the format is an error.
fn parse_page(page: &str) -> Result<BTreeMap<String, Family>, String> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut finished: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut series: BTreeSet<String> = BTreeSet::new();
    if !page.ends_with('\n') {
        return Err("the page must end with a newline".into());
    }
    for (number, line) in page.lines().enumerate() {
        let fail = |message: String| format!("line {}: {message}: {line:?}", number + 1);
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let keyword = parts.next().unwrap_or_default();
            let name = parts.next().ok_or_else(|| fail("no metric name".into()))?;
            let text = parts.next().ok_or_else(|| fail("no text".into()))?;
            if !valid_metric_name(name) {
                return Err(fail(format!("bad metric name {name:?}")));
            }
            if current.as_deref() != Some(name) {
                if let Some(previous) = current.take() {
                    finished.insert(previous);
                }
                if finished.contains(name) {
                    return Err(fail(format!("family {name} appears twice")));
                }
                current = Some(name.to_string());
            }
            let family = families.entry(name.to_string()).or_default();
            match keyword {
                "HELP" => {
                    if family.help || !family.samples.is_empty() {
                        return Err(fail("HELP twice or after samples".into()));
                    }
                    family.help = true;
                }
                "TYPE" => {
                    if !family.kind.is_empty() || !family.samples.is_empty() {
                        return Err(fail("TYPE twice or after samples".into()));
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&text) {
                        return Err(fail(format!("unknown type {text}")));
                    }
                    family.kind = text.to_string();
                }
                _ => return Err(fail("a comment that is neither HELP nor TYPE".into())),
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            return Err(fail("empty line or stray comment".into()));
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| fail("no value".into()))?;
        let name = &line[..name_end];
        if !valid_metric_name(name) {
            return Err(fail(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(fail)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let value_text = rest
            .strip_prefix(' ')
            .ok_or_else(|| fail("no space before the value".into()))?;
        if value_text.contains(' ') {
            return Err(fail("timestamps are not expected here".into()));
        }
        let value = parse_value(value_text).map_err(fail)?;
        let family_name = family_of(name, &families).to_string();
        if current.as_deref() != Some(family_name.as_str()) {
            return Err(fail(format!(
                "sample of {family_name} outside its family's block"
            )));
        }
        let family = families.get_mut(&family_name).unwrap();
        if family.kind.is_empty() {
            return Err(fail(format!("{family_name} has no TYPE")));
        }
        if !family.help {
            return Err(fail(format!("{family_name} has no HELP")));
        }
        if family.kind == "counter" && !(name.ends_with("_total") && value >= 0.0) {
            return Err(fail("a counter is named *_total and is not negative".into()));
        }
        if !series.insert(format!("{name}{labels:?}")) {
            return Err(fail("the same series twice".into()));
        }
        family.samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    for (name, family) in &families {
        if family.kind == "histogram" {
            check_histogram(name, family)?;
        }
    }
    Ok(families)
}

/// Buckets cumulative with increasing `le`, ending in `+Inf` equal to `_count`, and a
/// `_sum`, for every label set.
fn check_histogram(name: &str, family: &Family) -> Result<(), String> {
    let mut groups: BTreeMap<String, Vec<&Sample>> = BTreeMap::new();
    for sample in &family.samples {
        let mut labels = sample.labels.clone();
        labels.remove("le");
        groups.entry(format!("{labels:?}")).or_default().push(sample);
    }
    for (labels, samples) in groups {
        let buckets: Vec<&&Sample> = samples
            .iter()
            .filter(|sample| sample.name == format!("{name}_bucket"))
            .collect();
        let mut previous_le = f64::NEG_INFINITY;
        let mut previous_count = 0.0;
        for bucket in &buckets {
            let le = parse_value(bucket.labels.get("le").ok_or("a bucket without le")?)?;
            if le <= previous_le || bucket.value < previous_count {
                return Err(format!("{name}{labels}: buckets not increasing/cumulative"));
            }
            previous_le = le;
            previous_count = bucket.value;
        }
        if previous_le != f64::INFINITY {
            return Err(format!("{name}{labels}: the last bucket is not +Inf"));
        }
        let find = |suffix: &str| {
            samples
                .iter()
                .find(|sample| sample.name == format!("{name}{suffix}"))
                .map(|sample| sample.value)
        };
        let count = find("_count").ok_or(format!("{name}{labels}: no _count"))?;
        find("_sum").ok_or(format!("{name}{labels}: no _sum"))?;
        if count != previous_count {
            return Err(format!(
                "{name}{labels}: +Inf bucket {previous_count} != _count {count}"
            ));
        }
    }
    Ok(())
}

fn value(families: &BTreeMap<String, Family>, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families
        .get(family_of(name, families))?
        .samples
        .iter()
        .find(|sample| {
            sample.name == name
                && labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(*value))
        })
        .map(|sample| sample.value)
}

#[test]
fn the_parser_refuses_what_the_format_forbids() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 2\n";
    assert!(parse_page(good).is_ok());
    for bad in [
        "a_total 1\n",                                                   // no TYPE
        "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1} 2\n", // unterminated
        "# HELP a A.\n# TYPE a counter\na 1\n",                          // counter without _total
        "# HELP a A.\n# TYPE a gauge\na 1\n\n",                          // empty line
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", // no +Inf
        "# HELP a A.\n# TYPE a gauge\n# HELP b B.\n# TYPE b gauge\na 1\n",             // not contiguous
        "# HELP 1a A.\n# TYPE 1a gauge\n1a 1\n",
    ] {
        assert!(parse_page(bad).is_err(), "accepted: {bad:?}");
    }
}

#[test]
fn the_metrics_page_parses_strictly_and_counts_the_traffic() {
    let (_web, web) = sims("web", 1, 0..=0);
    let (_api, api) = sims("api", 2, 0..=2);
    let (_refusing, dead) = common::refusing_addr();
    let dead = format!("http://{dead}");
    let pool = |name: &str, urls: &[String]| PoolSpec {
        name: name.into(),
        strategy: "round-robin".into(),
        backends: urls.iter().map(|url| url.parse().unwrap()).collect(),
        discovery: None,
    };
    let route = |prefix: &str, pool: &str| RouteSpec {
        prefix: prefix.into(),
        pool: pool.into(),
        strip_prefix: false,
        host: Some("a \"quoted\" \\ host".into()).filter(|_| prefix == "/api"),
    };
    let config = BalancerConfig {
        workers: 3,
        backends: vec![web[0].parse().unwrap()],
        pools: vec![pool("api", &api), pool("dead", std::slice::from_ref(&dead))],
        routes: vec![route("/api", "api"), route("/dead", "dead")],
        retries: 0,
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
    for _ in 0..4 {
        assert_eq!(get(addr, "/api/x").status, 200);
    }
    for _ in 0..2 {
        assert_eq!(get(addr, "/page").status, 200);
    }
    assert_eq!(get(addr, "/dead").status, 502);
    assert_eq!(get(addr, "/dead").status, 503, "marked down after one failure");

    let reply = get(addr, "/metrics");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let page = reply.text();
    let families = parse_page(&page).unwrap_or_else(|error| panic!("{error}\n{page}"));
    for (name, family) in &families {
        assert!(family.help && !family.kind.is_empty(), "{name}");
        assert!(name.starts_with("roundhouse_"), "{name}");
    }
    let requests = |route: &str, pool: &str, backend: &str, class: &str| {
        value(
            &families,
            "roundhouse_requests_total",
            &[
                ("route", route),
                ("pool", pool),
                ("backend", backend),
                ("class", class),
            ],
        )
    };
    let api_total =
        requests("/api", "api", &api[0], "2xx").unwrap() + requests("/api", "api", &api[1], "2xx").unwrap();
    assert_eq!(api_total, 4.0);
    assert_eq!(requests("/api", "api", &api[0], "2xx"), Some(2.0), "round-robin");
    assert_eq!(requests("none", "default", &web[0], "2xx"), Some(2.0));
    assert_eq!(requests("/dead", "dead", &dead, "5xx"), Some(1.0));
    assert_eq!(
        requests("/dead", "dead", "none", "5xx"),
        Some(1.0),
        "the 503 had no backend:\n{page}"
    );
    let workers: f64 = families["roundhouse_worker_requests_total"]
        .samples
        .iter()
        .map(|sample| sample.value)
        .sum();
    assert_eq!(workers, 8.0);
    assert_eq!(families["roundhouse_worker_requests_total"].samples.len(), 3);
    assert_eq!(
        value(&families, "roundhouse_request_duration_seconds_count", &[]),
        Some(8.0)
    );
    assert_eq!(
        value(
            &families,
            "roundhouse_request_duration_seconds_bucket",
            &[("le", "10")]
        ),
        Some(8.0)
    );
    assert!(
        value(
            &families,
            "roundhouse_request_duration_seconds_bucket",
            &[("le", "0.001")]
        )
        .is_some()
    );
    assert_eq!(families["roundhouse_request_duration_seconds"].kind, "histogram");
    assert_eq!(value(&families, "roundhouse_queue_depth", &[]), Some(0.0));
    assert_eq!(
        value(&families, "roundhouse_queue_rejected_total", &[]),
        Some(0.0)
    );
    assert_eq!(
        value(
            &families,
            "roundhouse_backend_up",
            &[("pool", "dead"), ("backend", &dead)]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &families,
            "roundhouse_backend_up",
            &[("pool", "api"), ("backend", &api[1])]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &families,
            "roundhouse_backend_in_flight",
            &[("pool", "default"), ("backend", &web[0])]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &families,
            "roundhouse_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&families, "roundhouse_cache_requests_total", &[("result", "hit")]),
        Some(0.0)
    );
    promtool_check(&page);
    balancer.shutdown(Duration::from_secs(5));
}

#[test]
fn the_discovery_families_parse_strictly_while_etcd_is_out_of_reach() {
    // Nothing listens on this port: the watcher retries, the pool stays empty, and
    // the page says so.
    let etcd = listener().local_addr().unwrap();
    let config = BalancerConfig {
        discovery: Some(format!("etcd://{etcd}/roundhouse/web").parse().unwrap()),
        ..BalancerConfig::default()
    };
    let balancer = Balancer::start(listener(), &config).unwrap();
    let addr = balancer.local_addr();
    let empty = get(addr, "/x");
    assert_eq!(empty.status, 503, "an empty pool answers 503");
    assert!(empty.text().contains("none is registered"), "{}", empty.text());
    let page = get(addr, "/metrics").text();
    let families = parse_page(&page).unwrap_or_else(|error| panic!("{error}\n{page}"));
    let pool = [("pool", "default")];
    assert_eq!(
        value(&families, "roundhouse_discovery_connected", &pool),
        Some(0.0)
    );
    assert_eq!(
        value(&families, "roundhouse_discovery_backends", &pool),
        Some(0.0)
    );
    assert!(value(&families, "roundhouse_discovery_errors_total", &pool).unwrap() >= 1.0);
    assert_eq!(
        value(&families, "roundhouse_discovery_reads_total", &pool),
        Some(0.0)
    );
    let endpoint = etcd.to_string();
    assert_eq!(
        value(
            &families,
            "roundhouse_discovery_endpoint_info",
            &[("pool", "default"), ("endpoint", endpoint.as_str())]
        ),
        Some(1.0)
    );
    assert_eq!(families["roundhouse_discovery_errors_total"].kind, "counter");
    promtool_check(&page);
    balancer.shutdown(Duration::from_secs(1));
}

/// Runs `promtool check metrics` on the page when Debian's `prometheus` package is
/// installed (`.ci/run` installs it); says why when it is not.
fn promtool_check(page: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            println!(
                "promtool check skipped: cannot run promtool ({error}); `apt-get install prometheus` provides it"
            );
            return;
        }
    };
    child.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{said}\n{page}"
    );
    println!("promtool check metrics: ok {said}");
}
