//! The TCP backends: where connections can go, and what each one is doing now.
//!
//! OS concept: shared counters without locks, as in the HTTP balancer. The counters,
//! health and load report of each backend are the HTTP balancer's own
//! (`crate::proxy::backends::Backend`), so every strategy works unchanged; at L4 "in flight"
//! means *connections open* to that backend, "requests" means connections made, and
//! "errors" means connections that could not be made. This file adds what only L4
//! needs: a resolved socket address, the optional status address of the seed's load
//! probe, and bytes copied each way.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use thiserror::Error;

use crate::proxy::backends::{Backend, BackendSet, BackendSpec};
use crate::proxy::strategy::BackendsView;

/// A backend as written on the command line: `host:port[,status=host:port][,weight=N]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpBackendSpec {
    /// `host:port` the balancer connects clients to.
    pub address: String,
    /// `host:port` answering the seed's `LOAD` probe, if any.
    pub status: Option<String>,
    pub weight: u32,
}

impl fmt::Display for TcpBackendSpec {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        write!(formatter, "{}", self.address)?;
        if let Some(status) = &self.status {
            write!(formatter, ",status={status}")?;
        }
        if self.weight != 1 {
            write!(formatter, ",weight={}", self.weight)?;
        }
        Ok(())
    }
}

/// A TCP backend description that cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TcpBackendError {
    #[error("backend {0:?}: write host:port (a TCP backend has no http:// scheme)")]
    Scheme(String),
    #[error("backend {0:?}: {1:?} is not host:port with a port from 1 to 65535")]
    Address(String, String),
    #[error("backend {0:?}: bad option {1:?} (expected status=host:port or weight=N, N from 1 to 1000)")]
    Option(String, String),
    #[error("cannot resolve {0:?}: {1}")]
    Resolve(String, String),
}

/// Checks `host:port` without resolving the host (that happens when the balancer starts).
fn check_address(text: &str, whole: &str) -> Result<String, TcpBackendError> {
    let bad = || TcpBackendError::Address(whole.to_string(), text.to_string());
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok(text.to_string())
}

impl FromStr for TcpBackendSpec {
    type Err = TcpBackendError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.contains("://") {
            return Err(TcpBackendError::Scheme(text.to_string()));
        }
        let mut parts = text.split(',').map(str::trim);
        let address = check_address(parts.next().unwrap_or_default(), text)?;
        let mut spec = TcpBackendSpec {
            address,
            status: None,
            weight: 1,
        };
        for option in parts {
            let bad = || TcpBackendError::Option(text.to_string(), option.to_string());
            if let Some(status) = option.strip_prefix("status=") {
                spec.status = Some(check_address(status, text)?);
            } else if let Some(weight) = option.strip_prefix("weight=") {
                spec.weight = weight
                    .parse()
                    .ok()
                    .filter(|weight| (1..=1000).contains(weight))
                    .ok_or_else(bad)?;
            } else {
                return Err(bad());
            }
        }
        Ok(spec)
    }
}

/// Resolves `host:port` to its first socket address.
fn resolve(address: &str) -> Result<SocketAddr, TcpBackendError> {
    address
        .to_socket_addrs()
        .map_err(|error| TcpBackendError::Resolve(address.to_string(), error.to_string()))?
        .next()
        .ok_or_else(|| TcpBackendError::Resolve(address.to_string(), "no address".into()))
}

/// What L4 knows about one backend beyond the shared counters.
#[derive(Debug)]
pub struct Target {
    pub spec: TcpBackendSpec,
    /// Resolved once at start, as nginx does for a `server` without `resolve`.
    pub addr: SocketAddr,
    pub status_addr: Option<SocketAddr>,
    /// Bytes copied from clients to this backend.
    pub bytes_up: AtomicU64,
    /// Bytes copied from this backend to clients.
    pub bytes_down: AtomicU64,
}

/// All backends of a TCP balancer.
#[derive(Debug)]
pub struct TcpBackends {
    /// Counters, health and load, shared with the HTTP balancer's code.
    set: BackendSet,
    /// The L4 extras, in the same order.
    targets: Vec<Target>,
}

impl TcpBackends {
    /// Resolves every address. A load report older than three `status_interval`s, and
    /// at least three seconds, is stale: a failed probe already stores +infinity, so
    /// staleness only catches a stalled poller, and must not fire on a busy machine
    /// just because a short interval was chosen.
    pub fn resolve(specs: &[TcpBackendSpec], status_interval: Duration) -> Result<Self, TcpBackendError> {
        let mut targets = Vec::with_capacity(specs.len());
        for spec in specs {
            targets.push(Target {
                addr: resolve(&spec.address)?,
                status_addr: spec.status.as_deref().map(resolve).transpose()?,
                spec: spec.clone(),
                bytes_up: AtomicU64::new(0),
                bytes_down: AtomicU64::new(0),
            });
        }
        // The shared `Backend` wants an HTTP-style spec; only its weight and counters
        // are used at L4 (its `url` is never requested).
        let shared = targets
            .iter()
            .map(|target| BackendSpec {
                authority: target.addr.to_string(),
                weight: target.spec.weight,
                tls: false,
                load: None,
            })
            .collect();
        Ok(TcpBackends {
            set: BackendSet::new(shared).with_load_interval(status_interval.max(Duration::from_secs(1))),
            targets,
        })
    }

    /// The shared counters of backend `index`: `in_flight` = open connections,
    /// `requests` = connections made, `errors` = connections that failed.
    pub fn counters(&self, index: usize) -> &Backend {
        self.set.get(index)
    }

    pub fn target(&self, index: usize) -> &Target {
        &self.targets[index]
    }

    /// Connections made to backend `index` so far.
    pub fn connections_made(&self, index: usize) -> u64 {
        self.set.get(index).requests.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    pub fn len(&self) -> usize {
        self.targets.len()
    }
}

impl BackendsView for TcpBackends {
    fn len(&self) -> usize {
        self.set.len()
    }
    fn in_flight(&self, index: usize) -> u64 {
        self.set.in_flight(index)
    }
    fn weight(&self, index: usize) -> u32 {
        self.set.weight(index)
    }
    fn is_healthy(&self, index: usize) -> bool {
        self.set.is_healthy(index)
    }
    fn load(&self, index: usize) -> Option<f64> {
        self.set.load(index)
    }
    fn key(&self, index: usize) -> u64 {
        self.set.key(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcp_backend_specs() {
        let spec: TcpBackendSpec = "127.0.0.1:6001,status=127.0.0.1:6000,weight=3".parse().unwrap();
        assert_eq!(spec.address, "127.0.0.1:6001");
        assert_eq!(spec.status.as_deref(), Some("127.0.0.1:6000"));
        assert_eq!(spec.weight, 3);
        assert_eq!(spec.to_string(), "127.0.0.1:6001,status=127.0.0.1:6000,weight=3");
        let plain: TcpBackendSpec = "localhost:6001".parse().unwrap();
        assert_eq!((plain.status, plain.weight), (None, 1));
        assert!(matches!(
            "http://127.0.0.1:6001".parse::<TcpBackendSpec>(),
            Err(TcpBackendError::Scheme(_))
        ));
        for bad in ["127.0.0.1", "127.0.0.1:0", ":6001", "127.0.0.1:99999"] {
            assert!(
                matches!(bad.parse::<TcpBackendSpec>(), Err(TcpBackendError::Address(..))),
                "{bad}"
            );
        }
        assert!(matches!(
            "127.0.0.1:6001,status=nowhere".parse::<TcpBackendSpec>(),
            Err(TcpBackendError::Address(..))
        ));
        assert!(matches!(
            "127.0.0.1:6001,weight=0".parse::<TcpBackendSpec>(),
            Err(TcpBackendError::Option(..))
        ));
        assert!(matches!(
            "127.0.0.1:6001,fast".parse::<TcpBackendSpec>(),
            Err(TcpBackendError::Option(..))
        ));
    }

    #[test]
    fn resolves_and_reads_through_the_shared_view() {
        let specs: Vec<TcpBackendSpec> = ["127.0.0.1:6001,weight=2", "localhost:6002"]
            .iter()
            .map(|text| text.parse().unwrap())
            .collect();
        let backends = TcpBackends::resolve(&specs, Duration::from_secs(1)).unwrap();
        assert_eq!(backends.target(0).addr, "127.0.0.1:6001".parse().unwrap());
        assert_eq!(backends.target(1).addr.port(), 6002);
        assert_eq!(BackendsView::len(&backends), 2);
        assert_eq!(backends.weight(0), 2);
        let _open = backends.counters(1).start_request();
        assert_eq!(backends.in_flight(1), 1);
        assert!(backends.is_healthy(0));
        assert_eq!(backends.load(0), None);
    }
}
