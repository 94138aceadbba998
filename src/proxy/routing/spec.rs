//! Pools and routes as configured: plain data, checked by the configuration
//! (`src/config/`) and built into a live `Routing` by `build.rs`.
//!
//! OS concept: none of its own; kept apart from the live table so that a reload can
//! build and check a new one from these while the old one keeps serving.

use super::target::EtcdTarget;
use crate::proxy::backends::BackendSpec;

/// The pool that gets requests no route matches, and the name of the pool made from
/// `--backend` (or the simulated backends) when the configuration has no pools.
pub const DEFAULT_POOL: &str = "default";

/// A named group of backends with its own strategy (an nginx `upstream`, an HAProxy
/// `backend`, an Envoy cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    pub name: String,
    pub strategy: String,
    /// The backends listed in the configuration; empty when `discovery` finds them.
    pub backends: Vec<BackendSpec>,
    /// Where the backends are found instead of listed: an etcd prefix that
    /// discovery watches (src/proxy/discovery/; the pool then starts empty and follows etcd).
    pub discovery: Option<EtcdTarget>,
}

/// A path prefix sent to a pool (an nginx `location` with `proxy_pass`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// Starts with `/`; matches itself and everything below it (`/api` matches `/api`
    /// and `/api/users`, not `/apis`).
    pub prefix: String,
    /// The pool's name.
    pub pool: String,
    /// Remove the prefix before forwarding: `/api/users` reaches the backend as `/users`.
    pub strip_prefix: bool,
    /// The `Host` header the backend receives instead of the client's.
    pub host: Option<String>,
}
