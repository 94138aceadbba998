//! The backend set: where requests can go, and what each backend is doing now.
//!
//! OS concept: shared counters without locks. Every worker updates a backend's
//! in-flight and request counts at once; each is an atomic, so `/stats` and the
//! strategies read them without stopping anyone.

pub mod checker;
pub mod health;
pub mod load;
pub mod poller;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;

use crate::proxy::strategy::BackendsView;
use health::{Health, now_ms};
use load::LoadReport;

/// A backend as written on the command line: `http://host:port[,weight=N]`, or
/// `https://` for a backend reached over TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    /// `host:port`, what the proxy connects to.
    pub authority: String,
    pub weight: u32,
    /// Whether the backend speaks HTTPS (its certificate verified, see `proxy::tls`).
    pub tls: bool,
    /// Where `least-load` asks for this backend's load; `None` means `URL/load`. Only
    /// discovery sets it (an etcd entry's `load`, see src/proxy/discovery/entry.rs).
    pub load: Option<String>,
}

impl BackendSpec {
    /// The backend's base URL, `http://host:port` or `https://host:port`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }
}

impl fmt::Display for BackendSpec {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        write!(formatter, "{}", self.url())?;
        if self.weight != 1 {
            write!(formatter, ",weight={}", self.weight)?;
        }
        Ok(())
    }
}

/// A backend description that cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BackendSpecError {
    #[error("backend {0:?}: only http:// and https:// URLs are supported (write http://host:port)")]
    Scheme(String),
    #[error("backend {0:?}: missing host")]
    Host(String),
    #[error("backend {0:?}: bad port")]
    Port(String),
    #[error("backend {0:?}: a backend URL has no path; routes belong in the config file")]
    Path(String),
    #[error("backend {0:?}: bad option {1:?} (expected weight=N with N from 1 to 1000)")]
    Option(String, String),
}

impl std::str::FromStr for BackendSpec {
    type Err = BackendSpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.split(',');
        let url = parts.next().unwrap_or_default().trim();
        let (rest, tls) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (rest, false),
            (None, Some(rest)) => (rest, true),
            (None, None) => return Err(BackendSpecError::Scheme(text.to_string())),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('/') || authority.contains('?') {
            return Err(BackendSpecError::Path(text.to_string()));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => (host, Some(port)),
            _ => (authority, None),
        };
        if host.is_empty() {
            return Err(BackendSpecError::Host(text.to_string()));
        }
        let port: u16 = match port {
            Some(port) => port
                .parse()
                .ok()
                .filter(|&port| port != 0)
                .ok_or_else(|| BackendSpecError::Port(text.to_string()))?,
            None if tls => 443,
            None => 80,
        };
        let mut weight = 1;
        for option in parts {
            let option = option.trim();
            weight = option
                .strip_prefix("weight=")
                .and_then(|value| value.parse().ok())
                .filter(|weight| (1..=1000).contains(weight))
                .ok_or_else(|| BackendSpecError::Option(text.to_string(), option.to_string()))?;
        }
        Ok(BackendSpec {
            authority: format!("{host}:{port}"),
            weight,
            tls,
            load: None,
        })
    }
}

/// One backend and its live counters.
#[derive(Debug)]
pub struct Backend {
    pub spec: BackendSpec,
    /// The base URL, kept so the hot path never formats it.
    pub url: String,
    /// Requests sent and not yet answered (least-conn and p2c read this).
    pub in_flight: AtomicU64,
    /// Requests this backend answered (any status).
    pub requests: AtomicU64,
    /// Attempts that ended in a connect error, a timeout or a broken response.
    pub errors: AtomicU64,
    /// Passive and active failure detection.
    pub health: Health,
    /// The last load the backend reported (least-load).
    pub load: LoadReport,
    /// Microseconds spent waiting on this backend, summed over every attempt: busy
    /// time divided by attempts is its mean service time E[S] (`roundhouse bench`).
    pub busy_us: AtomicU64,
}

impl Backend {
    pub fn new(spec: BackendSpec) -> Self {
        Backend {
            url: spec.url(),
            spec,
            in_flight: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            health: Health::default(),
            load: LoadReport::default(),
            busy_us: AtomicU64::new(0),
        }
    }

    /// The URL the load poller asks (`least-load`).
    pub fn load_url(&self) -> String {
        self.spec
            .load
            .clone()
            .unwrap_or_else(|| format!("{}/load", self.url))
    }

    /// Counts a request as in flight until the returned guard is dropped, so every
    /// exit path (success, error, panic) gives the slot back.
    pub fn start_request(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight { backend: self }
    }
}

/// Decrements the backend's in-flight count when dropped.
pub struct InFlight<'a> {
    backend: &'a Backend,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.backend.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The backends of one pool (or of the whole balancer, for `/stats`).
///
/// Each `Backend` sits behind an `Arc` so that a configuration reload can build a new
/// set that shares the backends that stay: their health and counters carry over, and
/// requests still in flight on the old set update the same atomics.
#[derive(Debug)]
pub struct BackendSet {
    backends: Vec<Arc<Backend>>,
    /// Each backend's weight in this set. It lives here, not in the shared `Backend`,
    /// because one backend may appear in two pools with different weights.
    weights: Vec<u32>,
    /// A load report older than this is stale (three load intervals).
    load_max_age_ms: u64,
}

impl BackendSet {
    pub fn new(specs: Vec<BackendSpec>) -> Self {
        BackendSet::from_members(
            specs
                .into_iter()
                .map(|spec| {
                    let weight = spec.weight;
                    (Arc::new(Backend::new(spec)), weight)
                })
                .collect(),
        )
    }

    /// A set of existing backends, each with its weight in this set.
    pub fn from_members(members: Vec<(Arc<Backend>, u32)>) -> Self {
        let (backends, weights) = members.into_iter().unzip();
        BackendSet {
            backends,
            weights,
            load_max_age_ms: 3000,
        }
    }

    /// The shared backends, for building another set that keeps them.
    pub fn members(&self) -> &[Arc<Backend>] {
        &self.backends
    }

    /// Sets how old a load report may be before it counts as unknown.
    pub fn with_load_interval(mut self, interval: std::time::Duration) -> Self {
        self.load_max_age_ms = 3 * interval.as_millis() as u64;
        self
    }

    pub fn get(&self, index: usize) -> &Backend {
        &self.backends[index]
    }

    pub fn iter(&self) -> impl Iterator<Item = &Backend> {
        self.backends.iter().map(Arc::as_ref)
    }

    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    pub fn len(&self) -> usize {
        self.backends.len()
    }
}

impl BackendsView for BackendSet {
    fn len(&self) -> usize {
        self.backends.len()
    }
    fn in_flight(&self, index: usize) -> u64 {
        self.backends[index].in_flight.load(Ordering::Relaxed)
    }
    fn weight(&self, index: usize) -> u32 {
        self.weights[index]
    }
    fn is_healthy(&self, index: usize) -> bool {
        self.backends[index].health.is_up(now_ms())
    }
    fn load(&self, index: usize) -> Option<f64> {
        self.backends[index].load.fresh(now_ms(), self.load_max_age_ms)
    }
    /// The address, hashed: `ip-hash` keeps each client's backend when another backend
    /// is added to or removed from the list and the indices shift.
    fn key(&self, index: usize) -> u64 {
        fnv1a(self.backends[index].spec.authority.as_bytes())
    }
}

/// FNV-1a, a tiny fixed hash: stable across Rust releases and runs, unlike std's
/// `DefaultHasher`, so a client's backend survives a restart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Where the health checker and the load poller find the backends to watch. A fixed
/// `BackendSet` is one; the routing table is another, whose answer changes when a
/// reload swaps in new pools, so the monitor threads follow without being restarted.
pub trait BackendSource: Send + Sync {
    /// Every backend to health-check now, each once.
    fn backends(&self) -> Vec<Arc<Backend>>;
    /// The backends whose load `least-load` needs now (by default: all of them).
    fn load_polled(&self) -> Vec<Arc<Backend>> {
        self.backends()
    }
}

impl BackendSource for BackendSet {
    fn backends(&self) -> Vec<Arc<Backend>> {
        self.backends.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_backend_specs() {
        let spec: BackendSpec = "http://127.0.0.1:9001,weight=5".parse().unwrap();
        assert_eq!(spec.authority, "127.0.0.1:9001");
        assert_eq!(spec.weight, 5);
        assert_eq!(
            "http://example.test/".parse::<BackendSpec>().unwrap().authority,
            "example.test:80"
        );
        let https: BackendSpec = "https://example.test".parse().unwrap();
        assert_eq!((https.authority.as_str(), https.tls), ("example.test:443", true));
        assert_eq!(https.url(), "https://example.test:443");
        assert!(matches!(
            "ftp://x:1".parse::<BackendSpec>(),
            Err(BackendSpecError::Scheme(_))
        ));
        assert!(matches!(
            "http://x:0".parse::<BackendSpec>(),
            Err(BackendSpecError::Port(_))
        ));
        assert!(matches!(
            "http://x:1/api".parse::<BackendSpec>(),
            Err(BackendSpecError::Path(_))
        ));
        assert!(matches!(
            "http://x:1,weight=0".parse::<BackendSpec>(),
            Err(BackendSpecError::Option(..))
        ));
        assert!(matches!(
            "127.0.0.1:9001".parse::<BackendSpec>(),
            Err(BackendSpecError::Scheme(_))
        ));
    }
}
