//! Reading the balancer's `/stats` before and after a run, and what the difference
//! says: how each worker and backend shared the run, the mean service time E[S], and
//! the Little's-law bound on throughput.
//!
//! OS concept: queueing and Little's law. In a closed loop with c clients and W
//! workers, at most min(W, c) requests are being served at once, each for E[S] on
//! average, so the throughput cannot exceed min(W, c) / E[S]. The balancer measures
//! E[S] itself: every backend sums the time its requests took (`busy_ms`).

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// The parts of one `/stats` document the bench uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// `handled` of each worker.
    pub workers: Vec<u64>,
    pub backends: Vec<BackendSnapshot>,
    /// Requests refused with 503 because the queue was full.
    pub rejected: u64,
    /// The balancer's process; another one after an upgrade (SIGUSR2).
    pub pid: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BackendSnapshot {
    pub url: String,
    pub requests: u64,
    pub errors: u64,
    /// Absent on a balancer older than the field.
    pub busy_ms: Option<f64>,
}

impl Snapshot {
    /// Reads a `/stats` document; `None` when it does not have the roundhouse schema
    /// (workers, backends, queue).
    pub fn parse(stats: &Value) -> Option<Snapshot> {
        let workers = stats
            .get("workers")?
            .as_array()?
            .iter()
            .map(|worker| worker.get("handled")?.as_u64())
            .collect::<Option<Vec<u64>>>()?;
        let backends = stats
            .get("backends")?
            .as_array()?
            .iter()
            .map(|backend| {
                Some(BackendSnapshot {
                    url: backend.get("url")?.as_str()?.to_string(),
                    requests: backend.get("requests")?.as_u64()?,
                    errors: backend.get("errors").and_then(Value::as_u64).unwrap_or(0),
                    busy_ms: backend.get("busy_ms").and_then(Value::as_f64),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let rejected = stats.get("queue")?.get("rejected")?.as_u64()?;
        if workers.is_empty() {
            return None;
        }
        Some(Snapshot {
            workers,
            backends,
            rejected,
            pid: stats.get("pid").and_then(Value::as_u64),
        })
    }
}

/// Fetches `/stats`. `Err` when nothing answers at that address at all; `Ok(None)` when
/// something answers but it is not a roundhouse balancer.
pub fn fetch(stats_url: &str, timeout: Duration) -> Result<Option<Snapshot>, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_connect(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_recv_body(Some(timeout))
        .build()
        .new_agent();
    let mut response = agent.get(stats_url).call().map_err(|error| error.to_string())?;
    if !response.status().is_success() {
        return Ok(None);
    }
    let body = response
        .body_mut()
        .read_to_vec()
        .map_err(|error| error.to_string())?;
    Ok(serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|stats| Snapshot::parse(&stats)))
}

/// What the balancer did during the run: the `after` counts minus the `before` ones.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDelta {
    /// Requests each worker handled during the run.
    pub workers: Vec<u64>,
    pub backends: Vec<BackendDelta>,
    /// Requests refused with 503 (queue full) during the run.
    pub rejected: u64,
    /// Mean time a backend took per attempt during the run, in milliseconds: E[S].
    pub mean_service_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendDelta {
    pub url: String,
    pub requests: u64,
    pub errors: u64,
    pub mean_service_ms: Option<f64>,
}

/// Busy time over attempts, or `None` without attempts or without `busy_ms`.
fn mean_ms(busy_ms: Option<f64>, attempts: u64) -> Option<f64> {
    busy_ms
        .filter(|_| attempts > 0)
        .map(|busy| busy / attempts as f64)
}

impl RunDelta {
    pub fn between(before: &Snapshot, after: &Snapshot) -> RunDelta {
        let workers = after
            .workers
            .iter()
            .enumerate()
            .map(|(id, handled)| handled.saturating_sub(before.workers.get(id).copied().unwrap_or(0)))
            .collect();
        let mut total_busy = Some(0.0);
        let mut total_attempts = 0;
        let backends = after
            .backends
            .iter()
            .map(|now| {
                // Match by URL, not position: the set may differ in a later version.
                let then = before.backends.iter().find(|then| then.url == now.url);
                let requests = now.requests.saturating_sub(then.map_or(0, |then| then.requests));
                let errors = now.errors.saturating_sub(then.map_or(0, |then| then.errors));
                let busy = match (now.busy_ms, then.map_or(Some(0.0), |then| then.busy_ms)) {
                    (Some(now), Some(then)) => Some((now - then).max(0.0)),
                    _ => None,
                };
                total_busy = total_busy.zip(busy).map(|(sum, busy)| sum + busy);
                total_attempts += requests + errors;
                BackendDelta {
                    url: now.url.clone(),
                    requests,
                    errors,
                    mean_service_ms: mean_ms(busy, requests + errors),
                }
            })
            .collect();
        RunDelta {
            workers,
            backends,
            rejected: after.rejected.saturating_sub(before.rejected),
            mean_service_ms: mean_ms(total_busy, total_attempts),
        }
    }
}

/// Which resource caps the throughput.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Limit {
    /// Fewer workers than clients: the worker pool is the bottleneck.
    Workers,
    /// Fewer clients than workers: the clients cannot send more.
    Clients,
    /// As many clients as workers.
    Both,
}

/// The Little's-law bound min(W, c) / E[S].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bound {
    pub workers: usize,
    pub clients: usize,
    pub mean_service_ms: f64,
    /// The most requests per second the run could have achieved.
    pub requests_per_s: f64,
    pub limit: Limit,
}

impl Bound {
    /// `None` when E[S] is unknown or zero.
    pub fn new(workers: usize, clients: usize, mean_service_ms: f64) -> Option<Bound> {
        if mean_service_ms.is_nan() || mean_service_ms <= 0.0 || workers == 0 || clients == 0 {
            return None;
        }
        let limit = match workers.cmp(&clients) {
            std::cmp::Ordering::Less => Limit::Workers,
            std::cmp::Ordering::Greater => Limit::Clients,
            std::cmp::Ordering::Equal => Limit::Both,
        };
        let servers = workers.min(clients) as f64;
        Some(Bound {
            workers,
            clients,
            mean_service_ms,
            requests_per_s: servers / (mean_service_ms / 1000.0),
            limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stats(handled: [u64; 2], requests: u64, busy_ms: f64, rejected: u64) -> Value {
        json!({
            "workers": [{"id": 0, "handled": handled[0], "busy": false},
                        {"id": 1, "handled": handled[1], "busy": true}],
            "backends": [{"url": "http://b:1", "requests": requests, "errors": 0,
                          "in_flight": 0, "busy_ms": busy_ms}],
            "queue": {"capacity": 64, "depth": 0, "rejected": rejected},
        })
    }

    #[test]
    fn the_delta_of_two_snapshots_gives_counts_and_mean_service_time() {
        let before = Snapshot::parse(&stats([5, 5], 10, 1000.0, 1)).unwrap();
        let after = Snapshot::parse(&stats([55, 45], 100, 46_000.0, 3)).unwrap();
        let delta = RunDelta::between(&before, &after);
        assert_eq!(delta.workers, vec![50, 40]);
        assert_eq!(delta.backends[0].requests, 90);
        assert_eq!(delta.rejected, 2);
        assert_eq!(
            delta.mean_service_ms,
            Some(500.0),
            "45 s of busy time over 90 requests"
        );
    }

    #[test]
    fn other_json_is_not_a_balancer() {
        assert_eq!(Snapshot::parse(&json!({"status": "ok"})), None);
        assert_eq!(
            Snapshot::parse(&json!({"workers": [], "backends": [], "queue": {"rejected": 0}})),
            None
        );
        let mut old = stats([1, 1], 2, 0.0, 0);
        old["backends"][0].as_object_mut().unwrap().remove("busy_ms");
        let old = Snapshot::parse(&old).unwrap();
        assert_eq!(
            RunDelta::between(&old, &old).mean_service_ms,
            None,
            "no busy_ms, no E[S]"
        );
    }

    #[test]
    fn the_bound_uses_the_smaller_of_workers_and_clients() {
        let bound = Bound::new(4, 64, 500.0).unwrap();
        assert_eq!(bound.requests_per_s, 8.0);
        assert_eq!(bound.limit, Limit::Workers);
        let bound = Bound::new(128, 64, 500.0).unwrap();
        assert_eq!(bound.requests_per_s, 128.0);
        assert_eq!(bound.limit, Limit::Clients);
        assert_eq!(Bound::new(8, 8, 250.0).unwrap().limit, Limit::Both);
        assert!(Bound::new(4, 64, 0.0).is_none());
    }
}
