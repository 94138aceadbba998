//! Forwarding: pick a backend, send it the request, turn its answer (or its failure)
//! into the response for the client.
//!
//! OS concept: timeouts as failure detection. A backend that refuses the connection is
//! known dead at once (502); one that accepts and says nothing can only be detected by a
//! clock (504). Either way the worker is free for the next request afterwards.

pub mod client;
pub mod conn_pool;
pub mod headers;
pub mod response;

use std::sync::Arc;

use http::{HeaderValue, StatusCode};
use rand::rngs::StdRng;
use thiserror::Error;

use crate::backends::{Backend, BackendSet};
use crate::front::{Request, Response};
use crate::stats::Stats;
use crate::strategy::{PickContext, Strategy};
pub use client::UpstreamTimeouts;
use client::{ForwardClient, OutgoingRequest};

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
    /// The response began but broke off or stalled: part of it was received.
    #[error("response cut short: {0}")]
    Incomplete(String),
    /// The backend's bytes were not a valid HTTP response.
    #[error("invalid response: {0}")]
    Protocol(String),
}

impl UpstreamError {
    /// 504 for a backend that said nothing in time, 502 for every other failure
    /// (nginx answers a connect timeout with 504 too).
    pub fn status(&self) -> StatusCode {
        match self {
            UpstreamError::Timeout(_) | UpstreamError::ConnectTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
        }
    }
}

/// The forwarding logic shared by all workers.
pub struct Proxy {
    backends: Arc<BackendSet>,
    strategy: Box<dyn Strategy>,
    client: ForwardClient,
    stats: Arc<Stats>,
    /// `X-Roundhouse-Worker` values, made once: formatting a number allocates.
    worker_headers: Vec<HeaderValue>,
}

impl Proxy {
    pub fn new(
        backends: Arc<BackendSet>,
        strategy: Box<dyn Strategy>,
        timeouts: UpstreamTimeouts,
        workers: usize,
        stats: Arc<Stats>,
    ) -> Self {
        Proxy {
            backends,
            strategy,
            client: ForwardClient::new(timeouts),
            stats,
            worker_headers: (0..workers).map(HeaderValue::from).collect(),
        }
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

    /// Serves one request on worker `worker`.
    pub fn handle(&self, request: Request, worker: usize, rng: &mut StdRng) -> Response {
        let mut context = PickContext {
            client: Some(request.peer.ip()),
            exclude: &[],
            rng,
        };
        let mut response = match self.strategy.pick(&*self.backends, &mut context) {
            Some(index) => self.forward_to(self.backends.get(index), &request),
            None => Response::text(StatusCode::SERVICE_UNAVAILABLE, "no backend is available"),
        };
        response
            .headers
            .insert(headers::X_ROUNDHOUSE_WORKER, self.worker_header(worker));
        self.stats.record_status(response.status);
        response
    }

    fn forward_to(&self, backend: &Backend, request: &Request) -> Response {
        let mut outgoing = request.headers.clone();
        headers::remove_hop_by_hop(&mut outgoing);
        // The body we send is whole, so its length is ours to state.
        outgoing.remove(http::header::CONTENT_LENGTH);
        headers::add_forwarding_headers(&mut outgoing, request.peer.ip());
        let in_flight = backend.start_request();
        let outgoing = OutgoingRequest {
            method: &request.method,
            target: &request.target,
            headers: &outgoing,
            body: &request.body,
        };
        let result = self.client.send(&backend.spec.authority, &outgoing);
        drop(in_flight);
        let mut response = match result {
            Ok(mut response) => {
                backend
                    .requests
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                headers::remove_hop_by_hop(&mut response.headers);
                response
            }
            Err(error) => {
                backend.errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Response::text(error.status(), format!("backend {}: {error}", backend.url))
            }
        };
        if let Ok(value) = HeaderValue::from_str(&backend.url) {
            response.headers.insert(headers::X_ROUNDHOUSE_BACKEND, value);
        }
        response
    }
}
