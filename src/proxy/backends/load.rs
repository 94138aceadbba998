//! Backend load reports for the `least-load` strategy.
//!
//! OS concept: sharing a measurement between threads with atomics. A poller thread
//! asks each backend `GET /load` every `--load-interval` and stores the answer; every
//! worker reads it on every pick. An `f64` has no atomic type, but its 64 bits fit an
//! `AtomicU64` (`to_bits`/`from_bits`). A report older than three intervals is stale:
//! a backend that stopped answering must not look idle forever, so stale counts as
//! busiest (the seed calculator used +infinity for the same reason).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;

use super::health::now_ms;
use super::{BackendSource, poller};

/// The last load a backend reported.
#[derive(Debug, Default)]
pub struct LoadReport {
    cpu_percent_bits: AtomicU64,
    /// When it was reported (`now_ms`), 0 if never.
    reported_at_ms: AtomicU64,
}

impl LoadReport {
    pub fn store(&self, cpu_percent: f64, now: u64) {
        self.cpu_percent_bits
            .store(cpu_percent.to_bits(), Ordering::Relaxed);
        self.reported_at_ms.store(now, Ordering::Relaxed);
    }

    /// The CPU percentage, if reported within `max_age_ms` of `now`.
    pub fn fresh(&self, now: u64, max_age_ms: u64) -> Option<f64> {
        let at = self.reported_at_ms.load(Ordering::Relaxed);
        (at != 0 && now.saturating_sub(at) <= max_age_ms)
            .then(|| f64::from_bits(self.cpu_percent_bits.load(Ordering::Relaxed)))
    }
}

/// Parses `{"cpu_percent": 12.5, ...}`; anything else is no report.
pub fn parse_load(body: &[u8]) -> Option<f64> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value["cpu_percent"]
        .as_f64()
        .filter(|percent| percent.is_finite() && *percent >= 0.0)
}

/// Starts the poller; it stops when `stop`'s sender is dropped. Each round asks
/// `source` which backends need polling (those of `least-load` pools), so a reload that
/// adds or removes such a pool takes effect at the next round.
pub fn start(
    source: Arc<dyn BackendSource>,
    interval: Duration,
    backend_ca: Option<std::path::PathBuf>,
    stop: Receiver<()>,
) -> std::io::Result<JoinHandle<()>> {
    let mut agents = poller::Agents::new(interval.min(Duration::from_secs(1)), backend_ca);
    poller::spawn("load-poller", interval, stop, move || {
        for backend in source.load_polled() {
            let url = backend.load_url();
            let Ok(agent) = agents.for_backend(backend.spec.tls) else {
                continue;
            };
            let report = agent
                .get(&url)
                .call()
                .ok()
                .filter(|response| response.status().is_success())
                .and_then(|mut response| response.body_mut().read_to_vec().ok())
                .and_then(|body| parse_load(&body));
            if let Some(percent) = report {
                backend.load.store(percent, now_ms());
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_go_stale() {
        let report = LoadReport::default();
        assert_eq!(report.fresh(10, 3000), None, "never reported");
        report.store(42.5, 100);
        assert_eq!(report.fresh(3100, 3000), Some(42.5));
        assert_eq!(report.fresh(3101, 3000), None);
    }

    #[test]
    fn parses_only_sane_reports() {
        assert_eq!(
            parse_load(br#"{"cpu_percent": 12.5, "in_flight": 3}"#),
            Some(12.5)
        );
        assert_eq!(parse_load(br#"{"cpu_percent": -1}"#), None);
        assert_eq!(parse_load(b"12.5"), None);
        assert_eq!(parse_load(b"garbage"), None);
    }
}
