//! Forwarding: pick a backend, send it the request, turn its answer (or its failure)
//! into the response for the client.
//!
//! OS concept: timeouts as failure detection. A backend that refuses the connection is
//! known dead at once (502); one that accepts and says nothing can only be detected by a
//! clock (504). Either way the worker is free for the next request afterwards.

pub mod headers;
pub mod ureq_transport;

use std::sync::Arc;

use http::{HeaderValue, StatusCode};
use rand::rngs::StdRng;
use thiserror::Error;

use crate::backends::{Backend, BackendSet};
use crate::front::{Request, Response};
use crate::stats::Stats;
use crate::strategy::{PickContext, Strategy};
use ureq_transport::{UpstreamTimeouts, UreqTransport};

/// Why a backend did not give an answer.
#[derive(Debug, Error)]
pub enum UpstreamError {
    /// No TCP connection could be made (refused, unreachable, connect timeout).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The backend did not answer in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The connection broke while the request or response was in transit.
    #[error("connection broken: {0}")]
    Broken(String),
    /// The backend's bytes were not a valid HTTP response.
    #[error("invalid response: {0}")]
    Protocol(String),
}

impl UpstreamError {
    /// 504 for a backend that said nothing in time, 502 for every other failure.
    pub fn status(&self) -> StatusCode {
        match self {
            UpstreamError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
        }
    }
}

/// The forwarding logic shared by all workers.
pub struct Proxy {
    backends: Arc<BackendSet>,
    strategy: Box<dyn Strategy>,
    transport: UreqTransport,
    stats: Arc<Stats>,
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
            transport: UreqTransport::new(timeouts, workers),
            stats,
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
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
            .insert("x-roundhouse-worker", HeaderValue::from(worker));
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
        let started = std::time::Instant::now();
        let result = self.transport.send(
            &backend.url,
            &request.method,
            &request.target,
            outgoing,
            &request.body,
        );
        drop(in_flight);
        let busy_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        backend
            .busy_us
            .fetch_add(busy_us, std::sync::atomic::Ordering::Relaxed);
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
            response.headers.insert("x-roundhouse-backend", value);
        }
        response
    }
}
