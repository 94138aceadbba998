//! A simulated backend: an HTTP server that answers after a random delay.
//!
//! OS concept: processes versus threads. `cargo run` starts simulated backends as
//! threads inside the balancer's process; `roundhouse backend` runs one as its own
//! process, as the seed projects did in separate terminals. The code is the same: the
//! front's HTTP server with a different `Handler`. Each connection has its own thread,
//! so a request sleeping out its delay does not hold up the next one.

use std::net::TcpListener;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use http::StatusCode;
use rand::RngExt;
use serde_json::{Map, Value, json};

pub mod service;

use crate::front::server::{self, Handler, ServerConfig, ServerHandle};
use crate::front::{Request, Response};
use service::{LatencyDist, Servers, ServiceOptions};

/// How one simulated backend behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub name: String,
    /// Delay before each answer, in milliseconds, drawn uniformly from this range.
    pub latency_ms: RangeInclusive<u64>,
}

/// The simulated backend's handler.
pub struct SimBackend {
    config: SimConfig,
    port: u16,
    requests: AtomicU64,
    /// Replaces `config.latency_ms` when set.
    latency: Option<LatencyDist>,
    /// The limit on requests in service at once, if any.
    servers: Option<Servers>,
}

impl SimBackend {
    pub fn new(config: SimConfig, port: u16) -> Self {
        Self::with_service(config, port, ServiceOptions::default())
    }

    pub fn with_service(config: SimConfig, port: u16, service: ServiceOptions) -> Self {
        SimBackend {
            config,
            port,
            requests: AtomicU64::new(0),
            latency: service.latency,
            servers: (service.servers > 0).then(|| Servers::new(service.servers)),
        }
    }
}

impl Handler for SimBackend {
    fn handle(&self, request: Request) -> Response {
        if request.path() == "/health" {
            // Health checks are answered at once: they measure liveness, not the
            // simulated work.
            return Response::json(
                StatusCode::OK,
                &json!({"status": "ok", "backend": self.config.name}),
            );
        }
        let count = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let delay = match &self.latency {
            Some(latency) => latency.sample(&mut rand::rng()),
            None => Duration::from_millis(rand::rng().random_range(self.config.latency_ms.clone())),
        };
        // With a server limit, wait for a free server first: the wait is the queue.
        let server = self.servers.as_ref().map(Servers::acquire);
        thread::sleep(delay);
        drop(server);
        let delay = delay.as_millis() as u64;
        let headers: Map<String, Value> = request
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.to_string(),
                    Value::from(String::from_utf8_lossy(value.as_bytes())),
                )
            })
            .collect();
        Response::json(
            StatusCode::OK,
            &json!({
                "backend": self.config.name,
                "port": self.port,
                "method": request.method.as_str(),
                "path": request.target,
                "delay_ms": delay,
                "request_count": count,
                "body_bytes": request.body_length(),
                "headers": headers,
            }),
        )
    }
}

/// Starts a simulated backend on `listener`.
pub fn start(listener: TcpListener, config: SimConfig) -> std::io::Result<ServerHandle> {
    start_with(listener, config, ServiceOptions::default())
}

/// Starts a simulated backend with service options (latency distribution, servers).
pub fn start_with(
    listener: TcpListener,
    config: SimConfig,
    service: ServiceOptions,
) -> std::io::Result<ServerHandle> {
    let port = listener.local_addr()?.port();
    let server_config = ServerConfig {
        thread_name: format!("{}-conn", config.name),
        ..ServerConfig::default()
    };
    let handler = Arc::new(SimBackend::with_service(config, port, service));
    server::start(listener, server_config, handler)
}
