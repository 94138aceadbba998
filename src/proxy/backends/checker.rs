//! The active health checker: one thread asking every backend "are you alive?".
//!
//! OS concept: a periodic background thread, and waiting with a timeout. The thread
//! waits on a channel with `recv_timeout(interval)`: the timeout is its clock tick, and
//! the channel closing is its signal to stop, so shutdown never waits out a sleep (the
//! loop itself is `super::poller`, shared with the other pollers).
//! HAProxy's `check inter 2s rise 2 fall 2` is the model.
//!
//! Each round asks its `BackendSource` for the current backends, so after a
//! configuration reload the checker watches the new set; the counts of a backend that
//! stayed are kept (they are looked up by URL), those of a removed one are dropped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;

use super::health::now_ms;
use super::{BackendSource, poller};

/// Settings of the active checker.
#[derive(Debug, Clone)]
pub struct CheckPolicy {
    /// Path requested on each backend (`--health-path`).
    pub path: String,
    /// Time between rounds (`--health-interval`); zero turns checking off.
    pub interval: Duration,
    /// Successes in a row that bring a down backend up.
    pub rise: u32,
    /// Failures in a row that take an up backend down.
    pub fall: u32,
}

impl Default for CheckPolicy {
    fn default() -> Self {
        CheckPolicy {
            path: "/health".into(),
            interval: Duration::from_secs(2),
            rise: 2,
            fall: 2,
        }
    }
}

/// Starts the checker; it stops when `stop`'s sender is dropped. https backends are
/// checked against the CAs in `backend_ca`, else the system's roots, like forwarding.
pub fn start(
    source: Arc<dyn BackendSource>,
    policy: CheckPolicy,
    backend_ca: Option<PathBuf>,
    stop: Receiver<()>,
) -> std::io::Result<JoinHandle<()>> {
    // A check must not outlast its interval, or rounds would pile up.
    let mut agents = poller::Agents::new(policy.interval.min(Duration::from_secs(2)), backend_ca);
    // Per backend URL. Only this thread touches them, so no atomics are needed.
    let mut streaks: HashMap<String, Streak> = HashMap::new();
    poller::spawn("health-check", policy.interval, stop, move || {
        let backends = source.backends();
        streaks.retain(|url, _| backends.iter().any(|backend| &backend.url == url));
        for backend in &backends {
            let streak = streaks.entry(backend.url.clone()).or_default();
            let url = format!("{}{}", backend.url, policy.path);
            let agent = match agents.for_backend(backend.spec.tls) {
                Ok(agent) => agent,
                Err(error) => {
                    log::warn!("cannot check https backends: {error}");
                    continue;
                }
            };
            let verdict = match agent.get(&url).call() {
                Ok(mut response) if response.status().is_success() || response.status().is_redirection() => {
                    let _ = response.body_mut().read_to_vec();
                    Ok(())
                }
                Ok(response) => Err(format!("health check answered {}", response.status())),
                Err(error) => Err(format!("health check failed: {error}")),
            };
            let was_up = backend.health.check_up();
            match verdict {
                Ok(()) => {
                    let now = now_ms();
                    streak.failures = 0;
                    let recent = &mut streak.passes;
                    recent.push(now);
                    if recent.len() > policy.rise as usize {
                        recent.remove(0);
                    }
                    // Live failures may have taken it out meanwhile; `rise` checks
                    // passed since then bring it back, as with HAProxy's `observe` +
                    // `on-error mark-down`, where checks decide when a server returns.
                    let risen = recent.len() >= policy.rise as usize;
                    let passed_since_taken_out = backend
                        .health
                        .passive_out_since(now)
                        .is_some_and(|taken_out| recent[0] > taken_out);
                    if risen && (!was_up || passed_since_taken_out) {
                        backend.health.set_check_up(true, "");
                        log::warn!(
                            "backend {} is UP: {} health checks passed",
                            backend.url,
                            policy.rise
                        );
                    }
                }
                Err(reason) => {
                    streak.passes.clear();
                    streak.failures += 1;
                    if was_up && streak.failures >= policy.fall {
                        log::warn!(
                            "backend {} is DOWN: {reason} ({} in a row)",
                            backend.url,
                            streak.failures
                        );
                        backend.health.set_check_up(false, &reason);
                    }
                }
            }
        }
    })
}

/// What the checker remembers about one backend between rounds.
#[derive(Default)]
struct Streak {
    /// Failed checks in a row.
    failures: u32,
    /// The times of the latest passed checks in a row (at most `rise` of them).
    passes: Vec<u64>,
}
