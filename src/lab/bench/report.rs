//! The end of a run: the numbers, as text for people and as JSON for scripts.
//!
//! Both forms are made from one `Report` value, so they always agree. Little's law
//! appears twice: as the bound min(W, c) / E[S] the throughput is held against, and as
//! L = X · R, the mean number of requests in the system, which in a closed loop must
//! come out close to the number of clients.
//!
//! OS concept: Little's law, the queueing result an OS course uses to reason about
//! servers. `Report::new` holds only the throughput that went through the workers
//! against the bound (a 503 from a full queue was never served, so it is left out),
//! and `BalancerReport` keeps the ratio, so a run shows how close the pool came to
//! what W workers can do.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::load::{LoadOutcome, LoadPlan, StopRule, Tally};
use super::probe::{Bound, Limit, RunDelta};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub url: String,
    pub clients: usize,
    /// Seconds the run lasted (to the deadline, or to the last answer with `-n`).
    pub duration_s: f64,
    /// Requests finished: answered with any status, or failed without an answer.
    pub requests: u64,
    /// 4xx and 5xx answers plus transport errors.
    pub errors: u64,
    /// Answers by status code.
    pub status: BTreeMap<String, u64>,
    /// Failures without an answer, by kind.
    pub transport_errors: BTreeMap<String, u64>,
    /// `-d` runs: requests still waiting for an answer when the time was up.
    pub unfinished: u64,
    /// Requests per second: `requests / duration_s`.
    pub throughput_rps: f64,
    pub latency_ms: Latency,
    /// Present when the target is a roundhouse balancer.
    pub balancer: Option<BalancerReport>,
    /// The balancer's PIDs before and after, when an upgrade replaced it during the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balancer_replaced: Option<(u64, u64)>,
}

/// Latency of answered requests, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BalancerReport {
    #[serde(flatten)]
    pub run: RunDelta,
    /// None when E[S] could not be measured (no `busy_ms` in /stats, or no requests).
    pub bound: Option<Bound>,
    /// Requests per second that went through the workers (the run's worker counts).
    /// Queue-full 503s and cache hits never reach a worker, so only these are held
    /// against the bound.
    pub served_rps: f64,
    /// Served throughput over the bound.
    pub ratio: Option<f64>,
    /// Little's law L = X · R: requests in the system on average (close to `clients`).
    pub in_system: f64,
}

impl Latency {
    fn from_tally(tally: &Tally) -> Self {
        let histogram = &tally.latency_us;
        let ms = |micros: u64| micros as f64 / 1000.0;
        if histogram.is_empty() {
            return Latency {
                mean: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                max: 0.0,
            };
        }
        Latency {
            mean: histogram.mean() / 1000.0,
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            max: ms(histogram.max()),
        }
    }
}

impl Report {
    pub fn new(plan: &LoadPlan, outcome: &LoadOutcome, delta: Option<&RunDelta>) -> Report {
        let tally = &outcome.tally;
        let seconds = outcome.elapsed.as_secs_f64().max(1e-9);
        let throughput = tally.requests as f64 / seconds;
        let latency = Latency::from_tally(tally);
        let balancer = delta.map(|run| {
            let bound = run
                .mean_service_ms
                .and_then(|service| Bound::new(run.workers.len(), plan.clients, service));
            // Only requests a worker forwarded are bound by W / E[S]. A queue-full 503
            // or a cache hit is answered on the connection thread in microseconds, so a
            // closed loop gets thousands of them a second; counting them would put the
            // "achieved" throughput far above a bound they never met.
            let forwarded: u64 = run.workers.iter().sum();
            let served_rps = forwarded.min(tally.requests) as f64 / seconds;
            BalancerReport {
                run: run.clone(),
                bound,
                served_rps,
                ratio: bound.map(|bound| served_rps / bound.requests_per_s),
                in_system: throughput * latency.mean / 1000.0,
            }
        });
        Report {
            url: plan.url.clone(),
            clients: plan.clients,
            duration_s: seconds,
            requests: tally.requests,
            errors: tally.errors(),
            status: tally
                .by_status
                .iter()
                .map(|(status, count)| (status.to_string(), *count))
                .collect(),
            transport_errors: tally
                .transport_errors
                .iter()
                .map(|(kind, count)| (kind.to_string(), *count))
                .collect(),
            unfinished: match plan.stop {
                StopRule::Duration(_) => outcome.unfinished,
                StopRule::Requests(_) => 0,
            },
            throughput_rps: throughput,
            latency_ms: latency,
            balancer,
            balancer_replaced: None,
        }
    }

    /// The report for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_text(&mut out);
        out
    }

    fn write_text(&self, out: &mut String) -> std::fmt::Result {
        let latency = &self.latency_ms;
        writeln!(out, "\n{} clients against {}", self.clients, self.url)?;
        writeln!(
            out,
            "requests      {} in {:.2} s = {:.1} req/s",
            self.requests, self.duration_s, self.throughput_rps
        )?;
        let statuses: Vec<String> = self
            .status
            .iter()
            .map(|(status, count)| format!("{status}: {count}"))
            .collect();
        writeln!(out, "answers       {}", or_none(&statuses))?;
        let failures: Vec<String> = self
            .transport_errors
            .iter()
            .map(|(kind, count)| format!("{kind}: {count}"))
            .collect();
        writeln!(
            out,
            "errors        {} (4xx/5xx answers and failures without an answer: {})",
            self.errors,
            or_none(&failures)
        )?;
        writeln!(
            out,
            "latency       mean {:.1} ms   p50 {:.1}   p90 {:.1}   p99 {:.1}   max {:.1} ms",
            latency.mean, latency.p50, latency.p90, latency.p99, latency.max
        )?;
        if self.unfinished > 0 {
            writeln!(
                out,
                "in flight     {} requests were still waiting for an answer when time was up (not counted)",
                self.unfinished
            )?;
        }
        match &self.balancer {
            Some(balancer) => self.write_balancer(out, balancer),
            None if let Some((before, after)) = self.balancer_replaced => writeln!(
                out,
                "(the balancer was replaced during the run, PID {before} -> {after} (an upgrade): \
                 its counters started again, so there is no per-worker view or bound)"
            ),
            None => writeln!(
                out,
                "(the target has no roundhouse /stats, so there is no per-worker view or bound)"
            ),
        }
    }

    fn write_balancer(&self, out: &mut String, balancer: &BalancerReport) -> std::fmt::Result {
        let run = &balancer.run;
        writeln!(
            out,
            "\nthe balancer during the run (its /stats after minus before):"
        )?;
        for (id, handled) in run.workers.iter().enumerate() {
            writeln!(out, "  worker {id:<3} {handled:>8} requests")?;
        }
        for backend in &run.backends {
            let service = backend
                .mean_service_ms
                .map_or(String::new(), |ms| format!(", mean service {ms:.1} ms"));
            writeln!(
                out,
                "  backend {}  {} requests, {} errors{service}",
                backend.url, backend.requests, backend.errors
            )?;
        }
        if run.rejected > 0 {
            writeln!(
                out,
                "  {} requests refused with 503 (queue full): give the balancer --queue {} or more",
                run.rejected, self.clients
            )?;
        }
        let Some(bound) = balancer.bound else {
            return writeln!(
                out,
                "\nLittle's law: no bound (E[S] unknown: /stats has no busy_ms, or nothing was served)"
            );
        };
        let why = match bound.limit {
            Limit::Workers => "fewer workers than clients: the workers are the limit",
            Limit::Clients => "fewer clients than workers: the clients are the limit",
            Limit::Both => "as many clients as workers",
        };
        writeln!(
            out,
            "\nLittle's law  bound = min(W, c) / E[S] = min({}, {}) / {:.1} ms = {:.1} req/s ({why})",
            bound.workers, bound.clients, bound.mean_service_ms, bound.requests_per_s
        )?;
        if let Some(ratio) = balancer.ratio {
            if balancer.served_rps < self.throughput_rps * 0.99 {
                writeln!(
                    out,
                    "              achieved {:.1} req/s through the workers (answers without a worker, 503s or cache hits, not counted) = {:.2} of the bound",
                    balancer.served_rps, ratio
                )?;
            } else {
                writeln!(
                    out,
                    "              achieved {:.1} req/s = {:.2} of the bound",
                    balancer.served_rps, ratio
                )?;
            }
        }
        writeln!(
            out,
            "              L = X * R = {:.1} req/s * {:.3} s = {:.1} requests in the system ({} clients)",
            self.throughput_rps,
            self.latency_ms.mean / 1000.0,
            balancer.in_system,
            self.clients
        )
    }
}

fn or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::lab::bench::probe::BackendDelta;

    #[test]
    fn a_report_computes_throughput_bound_and_ratio() {
        let mut tally = Tally::new();
        for _ in 0..40 {
            tally.latency_us.record(500_000).unwrap();
        }
        tally.requests = 40;
        tally.by_status.insert(200, 40);
        let plan = LoadPlan {
            url: "http://x/".into(),
            clients: 4,
            stop: StopRule::Duration(Duration::from_secs(10)),
            timeout: Duration::from_secs(1),
        };
        let outcome = LoadOutcome {
            tally,
            elapsed: Duration::from_secs(10),
            unfinished: 4,
        };
        let delta = RunDelta {
            workers: vec![20, 20],
            backends: vec![BackendDelta {
                url: "http://b".into(),
                requests: 40,
                errors: 0,
                mean_service_ms: Some(500.0),
            }],
            rejected: 0,
            mean_service_ms: Some(500.0),
        };
        let report = Report::new(&plan, &outcome, Some(&delta));
        assert_eq!(report.throughput_rps, 4.0);
        let balancer = report.balancer.as_ref().unwrap();
        let bound = balancer.bound.unwrap();
        assert_eq!(bound.requests_per_s, 4.0, "two workers, 0.5 s each");
        assert_eq!(bound.limit, Limit::Workers);
        assert_eq!(balancer.ratio, Some(1.0));
        assert!((balancer.in_system - 2.0).abs() < 0.01, "{}", balancer.in_system);
        let text = report.to_text();
        assert!(text.contains("min(2, 4)"), "{text}");
        assert!(text.contains("1.00 of the bound"), "{text}");
        assert!(text.contains("4 requests were still waiting"), "{text}");
        assert!(text.contains("/ 500.0 ms = 4.0 req/s"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["balancer"]["workers"], serde_json::json!([20, 20]));
        assert_eq!(json["balancer"]["bound"]["limit"], "workers");
        assert_eq!(json["status"]["200"], 40);
    }

    #[test]
    fn refused_requests_are_not_held_against_the_bound() {
        // A full queue: 4 requests forwarded, 996 refused at once with 503, in 2 s.
        let mut tally = Tally::new();
        for _ in 0..1000 {
            tally.latency_us.record(100).unwrap();
        }
        tally.requests = 1000;
        tally.by_status.insert(200, 4);
        tally.by_status.insert(503, 996);
        let plan = LoadPlan {
            url: "http://x/".into(),
            clients: 16,
            stop: StopRule::Duration(Duration::from_secs(2)),
            timeout: Duration::from_secs(1),
        };
        let outcome = LoadOutcome {
            tally,
            elapsed: Duration::from_secs(2),
            unfinished: 0,
        };
        let delta = RunDelta {
            workers: vec![4],
            backends: vec![BackendDelta {
                url: "http://b".into(),
                requests: 4,
                errors: 0,
                mean_service_ms: Some(500.0),
            }],
            rejected: 996,
            mean_service_ms: Some(500.0),
        };
        let report = Report::new(&plan, &outcome, Some(&delta));
        assert_eq!(report.throughput_rps, 500.0, "every answer, 503s included");
        let balancer = report.balancer.as_ref().unwrap();
        assert_eq!(balancer.served_rps, 2.0);
        assert_eq!(balancer.ratio, Some(1.0), "one worker, 0.5 s each: 2 req/s");
        let text = report.to_text();
        assert!(text.contains("achieved 2.0 req/s through the workers"), "{text}");
        assert!(text.contains("1.00 of the bound"), "{text}");
    }
}
