//! Forwarding: pick a backend, send it the request, turn its answer (or its failure)
//! into the response for the client.
//!
//! OS concept: timeouts as failure detection. A backend that refuses the connection is
//! known dead at once (502); one that accepts and says nothing can only be detected by a
//! clock (504). Either way the worker is free for the next request afterwards.

pub mod conn_pool;
pub mod headers;
pub mod response;
pub mod retry;
pub mod streamed;
pub mod upstream;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::{HeaderValue, StatusCode, header};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use thiserror::Error;

use crate::http1::{Request, Response};
use crate::proxy::backends::health::{PassivePolicy, Transition, now_ms};
use crate::proxy::backends::{Backend, BackendSet};
use crate::proxy::routing::{RoutingTable, Selection};
use crate::proxy::stats::Stats;
use crate::proxy::strategy::PickContext;
use crate::proxy::tls::BackendTls;
use crate::proxy::tunnel::{Slot, Tunnels};
use retry::RetryBudget;
pub use upstream::UpstreamTimeouts;
use upstream::{ForwardClient, OutgoingRequest, Target};

/// Why a backend did not give an answer.
#[derive(Debug, Error)]
pub enum UpstreamError {
    /// No TCP connection could be made (refused, unreachable): the request never left.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The TCP connection was not established in time: the request never left.
    #[error("connect timed out: {0}")]
    ConnectTimeout(String),
    /// The backend did not answer in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The connection broke before the response head arrived.
    #[error("connection broken: {0}")]
    Broken(String),
    /// The response began but broke off: part of it was received.
    #[error("response cut short: {0}")]
    Incomplete(String),
    /// The response head began (a first byte, an interim 1xx) and then stalled past the
    /// response timeout. A timeout still (504, as nginx's "upstream timed out while
    /// reading response header"), but never retried: the backend did act.
    #[error("response stalled: {0}")]
    Stalled(String),
    /// The backend's bytes were not a valid HTTP response.
    #[error("invalid response: {0}")]
    Protocol(String),
    /// No TLS session with an https backend: its certificate was not trusted, or the
    /// handshake failed. The request never left.
    #[error("{0}")]
    Tls(String),
}

impl UpstreamError {
    /// 504 for a backend that said nothing in time, 502 for every other failure
    /// (nginx answers a connect timeout with 504 too).
    pub fn status(&self) -> StatusCode {
        match self {
            UpstreamError::Timeout(_) | UpstreamError::ConnectTimeout(_) | UpstreamError::Stalled(_) => {
                StatusCode::GATEWAY_TIMEOUT
            }
            _ => StatusCode::BAD_GATEWAY,
        }
    }
}

/// The forwarding logic shared by all workers.
pub struct Proxy {
    /// Pools and routes; a reload swaps the table inside, never this `Arc`.
    routing: Arc<RoutingTable>,
    client: ForwardClient,
    stats: Arc<Stats>,
    /// `X-Roundhouse-Worker` values, made once: formatting a number allocates.
    worker_headers: Vec<HeaderValue>,
    policy: ForwardPolicy,
    budget: RetryBudget,
    /// The cap and counters of upgraded connections (WebSockets).
    tunnels: Arc<Tunnels>,
}

/// How hard the proxy tries.
#[derive(Debug, Clone, Copy)]
pub struct ForwardPolicy {
    pub timeouts: UpstreamTimeouts,
    /// Extra attempts on other backends after a retryable failure (`--retries`).
    pub retries: u32,
    /// When live failures take a backend out (`--max-fails`, `--fail-timeout`).
    pub passive: PassivePolicy,
}

impl Proxy {
    pub fn new(routing: Arc<RoutingTable>, policy: ForwardPolicy, workers: usize, stats: Arc<Stats>) -> Self {
        Proxy {
            routing,
            client: ForwardClient::new(policy.timeouts),
            stats,
            policy,
            budget: RetryBudget::default(),
            worker_headers: (0..workers).map(HeaderValue::from).collect(),
            tunnels: Arc::new(Tunnels::new(0, std::time::Duration::from_secs(60))),
        }
    }

    /// Lets upgrade requests through, up to the cap of `tunnels`.
    pub fn with_tunnels(mut self, tunnels: Arc<Tunnels>) -> Self {
        self.tunnels = tunnels;
        self
    }

    /// Verifies https backends with `tls` instead of the system's roots.
    pub fn with_backend_tls(mut self, tls: BackendTls) -> Self {
        self.client = self.client.with_backend_tls(tls);
        self
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn worker_header(&self, worker: usize) -> HeaderValue {
        self.worker_headers
            .get(worker)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from(worker))
    }

    /// Serves one request on worker `worker`: choose the pool by route, then pick,
    /// send, and on a retryable failure pick again among the backends not tried yet.
    ///
    /// `details`: whether the client may see the `x-roundhouse-*` headers and the
    /// backends' errors in a 502/504 body (admin clients only; others get a short body).
    pub fn handle(&self, request: Request, worker: usize, details: bool, rng: &mut StdRng) -> Response {
        #[cfg(feature = "fault-injection")]
        if request
            .headers
            .get("x-roundhouse-fault")
            .is_some_and(|fault| fault == "panic")
        {
            panic!("fault injected by a test while handling {}", request.target);
        }
        let received_at = request.received_at;
        // This request keeps this routing to the end, even if a reload swaps it now.
        let routing = self.routing.current();
        // An upgrade takes its tunnel place before it goes anywhere, so the cap holds.
        let tunnel = match request.wants_upgrade() {
            true => self.tunnels.reserve().map(|slot| Mutex::new(Some(slot))),
            false => None,
        };
        let mut response = match routing.select(request.path()) {
            _ if request.wants_upgrade() && tunnel.is_none() => Response::text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "too many tunnels open (--max-tunnels {}), try again",
                    self.tunnels.max
                ),
            )
            .with_header(header::RETRY_AFTER, "1"),
            Some(selection) => self.forward(&selection, request, details, rng, tunnel.as_ref()),
            None => {
                let response = Response::text(
                    StatusCode::NOT_FOUND,
                    format!("no route matches {} and there is no default pool", request.path()),
                );
                routing.record_not_found(response.status);
                response
            }
        };
        if details {
            response
                .headers
                .insert(headers::X_ROUNDHOUSE_WORKER, self.worker_header(worker));
        } else {
            response.headers.remove(headers::X_ROUNDHOUSE_BACKEND);
        }
        response.meta.worker = Some(worker);
        self.stats.record_status(response.status);
        self.stats.durations.observe(received_at.elapsed());
        response
    }

    /// Sends the request to the selected pool, retrying on other backends of it.
    fn forward(
        &self,
        selection: &Selection,
        mut request: Request,
        details: bool,
        rng: &mut StdRng,
        tunnel: Option<&Mutex<Option<Slot>>>,
    ) -> Response {
        // The request is ours (it was moved to this worker), so the rewrite changes
        // nothing the access log or the cache saw.
        if let Some(target) = selection.target(&request.target) {
            request.target = target;
        }
        // Every attempt sends the same headers, so they are rewritten once, in place,
        // rather than copied for each attempt.
        let hop = request_hop(&request);
        let upgrade = tunnel.and_then(|_| request.headers.get(header::UPGRADE).cloned());
        outgoing_headers(&mut request.headers, &hop, selection.host());
        if let Some(upgrade) = upgrade {
            // Hop-by-hop, but the one the backend must see to switch protocols.
            request.headers.insert(header::UPGRADE, upgrade);
        }
        let pool = selection.pool;
        let _active = self.budget.start_request();
        let mut tried: Vec<usize> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        let mut last_status = StatusCode::BAD_GATEWAY;
        let mut tls_failed = false;
        // Holds the retry budget's slot for as long as a retry is in progress.
        let mut _retry_permit = None;
        let answered = loop {
            let mut context = PickContext {
                client: Some(request.client),
                exclude: &tried,
                rng,
            };
            let Some(index) = pool.strategy.pick(&pool.backends, &mut context) else {
                break None;
            };
            let backend = pool.backends.get(index);
            match self.attempt(backend, &request, tunnel) {
                Ok(response) => break Some((index, response)),
                Err(error) => {
                    self.record_failure(backend, &error);
                    failures.push(format!("{}: {error}", backend.url));
                    last_status = error.status();
                    tls_failed = matches!(error, UpstreamError::Tls(_));
                    tried.push(index);
                    if !retry::may_retry(&request.method, &error)
                        || tried.len() > self.policy.retries as usize
                    {
                        break None;
                    }
                    if retry::repeats_work(&error) {
                        match self.budget.try_retry() {
                            Some(permit) => _retry_permit = Some(permit),
                            None => {
                                self.stats.retries_denied.fetch_add(1, Ordering::Relaxed);
                                break None;
                            }
                        }
                    }
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                }
            }
        };
        match answered {
            Some((index, response)) => {
                selection.record(Some(index), response.status);
                response
            }
            None => {
                let response = failure_response(&pool.backends, &failures, last_status, details, tls_failed);
                // A 502/504 is counted against the last backend that failed; a 503
                // (none available) against no backend.
                selection.record(tried.last().copied(), response.status);
                response
            }
        }
    }

    /// One attempt on one backend, with the headers `outgoing_headers` made.
    fn attempt(
        &self,
        backend: &Backend,
        request: &Request,
        tunnel: Option<&Mutex<Option<Slot>>>,
    ) -> Result<Response, UpstreamError> {
        let in_flight = backend.start_request();
        let outgoing = OutgoingRequest {
            method: &request.method,
            target: &request.target,
            headers: &request.headers,
            body: &request.body,
            spooled: request.spooled.as_ref(),
            interim: request.interim.as_deref(),
            tunnel,
        };
        let sent_at = std::time::Instant::now();
        let target = Target {
            authority: &backend.spec.authority,
            tls: backend.spec.tls,
        };
        let result = self.client.send_to(target, &outgoing);
        let upstream_time = sent_at.elapsed();
        drop(in_flight);
        // Busy time over attempts is the backend's mean service time E[S] (`bench`).
        let busy_us = u64::try_from(upstream_time.as_micros()).unwrap_or(u64::MAX);
        backend.busy_us.fetch_add(busy_us, Ordering::Relaxed);
        let mut response = result?;
        backend.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(Transition::Up(reason)) = backend.health.record_success() {
            log::warn!("backend {} is UP: {reason}", backend.url);
        }
        let switched = (response.status == StatusCode::SWITCHING_PROTOCOLS)
            .then(|| response.headers.get(header::UPGRADE).cloned())
            .flatten();
        headers::remove_hop_by_hop(&mut response.headers);
        if let Some(protocol) = switched {
            // The client must learn which protocol the connection now speaks.
            response.headers.insert(header::UPGRADE, protocol);
            response
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
        if let Ok(value) = HeaderValue::from_str(&backend.url) {
            response.headers.insert(headers::X_ROUNDHOUSE_BACKEND, value);
        }
        response.meta.upstream = Some(backend.spec.authority.clone());
        response.meta.upstream_time = Some(upstream_time);
        Ok(response)
    }

    /// Counts a failed attempt and feeds passive health. Every kind of failure counts:
    /// refused, timed out, cut short, or not HTTP at all (nginx counts `error` and
    /// `timeout` by default and more with `proxy_next_upstream`; a backend that sends
    /// garbage is no more useful than one that is down).
    fn record_failure(&self, backend: &Backend, error: &UpstreamError) {
        backend.errors.fetch_add(1, Ordering::Relaxed);
        let transition = backend
            .health
            .record_failure(now_ms(), &self.policy.passive, &error.to_string());
        if let Some(Transition::Down(reason)) = transition {
            log::warn!("backend {} is DOWN: {reason}", backend.url);
        }
    }
}

/// Who sent a request, for the forwarding headers: the peer (the hop we received it
/// from, appended to X-Forwarded-For) and the client (as far as trusted proxies say).
pub struct Hop {
    pub peer: std::net::IpAddr,
    pub client: std::net::IpAddr,
    /// Whether the request reached us over TLS: the scheme the backend is told.
    pub tls: bool,
}

fn request_hop(request: &Request) -> Hop {
    Hop {
        peer: request.peer.ip(),
        client: request.client,
        tls: request.tls,
    }
}

/// Turns the client's request headers into the backend's: hop-by-hop headers out, the
/// forwarding headers in, and the pool's Host if it sets one.
fn outgoing_headers(headers: &mut http::HeaderMap, hop: &Hop, host: Option<&HeaderValue>) {
    headers::remove_hop_by_hop(headers);
    // The body we send is whole, so its length is ours to state.
    headers.remove(http::header::CONTENT_LENGTH);
    headers::add_forwarding_headers(headers, hop);
    // After the forwarding headers, so X-Forwarded-Host keeps the client's Host
    // (nginx's `proxy_set_header Host` behaves the same).
    if let Some(host) = host {
        headers.insert(http::header::HOST, host.clone());
    }
}

/// The answer when no backend answered. Admin clients are told which backends were
/// tried and why, so a student (or an operator) can see what happened without reading
/// logs; anyone else gets one line, since backend addresses and their errors are the
/// inside of the system (nginx's error pages say no more than the status either).
fn failure_response(
    backends: &BackendSet,
    failures: &[String],
    status: StatusCode,
    details: bool,
    tls_failed: bool,
) -> Response {
    if failures.is_empty() {
        let count = backends.len();
        if count == 0 {
            // Only a discovery pool can be empty: nothing registered, or all left.
            return Response::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "no backend is available: the pool has none (none is registered under its etcd prefix)",
            );
        }
        let text = if details {
            format!("no backend is available: all {count} are marked down by health checks")
        } else {
            "no backend is available".to_string()
        };
        return Response::text(StatusCode::SERVICE_UNAVAILABLE, text);
    }
    if !details {
        let text = if status == StatusCode::GATEWAY_TIMEOUT {
            "gateway timeout: the backend did not answer in time"
        } else if tls_failed {
            "bad gateway: no trusted TLS connection to the backend"
        } else {
            "bad gateway: the backend did not give a valid answer"
        };
        return Response::text(status, text);
    }
    let tried = if failures.len() == 1 {
        "backend"
    } else {
        "backends"
    };
    Response::text(
        status,
        format!("{} {tried} tried; {}", failures.len(), failures.join("; ")),
    )
}
