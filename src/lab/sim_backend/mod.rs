//! A simulated backend: an HTTP server that answers after a random delay.
//!
//! OS concept: processes versus threads. `cargo run` starts simulated backends as
//! threads inside the balancer's process; `roundhouse backend` runs one as its own
//! process, as the seed projects did in separate terminals. The code is the same: the
//! front's HTTP server with a different `Handler`. Each connection has its own thread,
//! so a request sleeping out its delay does not hold up the next one.
//!
//! Routes: `/health`, `/load` and the WebSocket echo's handshake (`/ws/echo`) answer at
//! once; `/calc`, `/convertepradolareuro/..`,
//! `/convert` and `/site/..` are the seed apps in `apps/`; anything else is echoed back
//! as JSON. The simulated latency is spent before each app's (and the echo's) answer.

use std::net::TcpListener;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use std::path::PathBuf;

use http::StatusCode;
use rand::RngExt;
use serde_json::{Map, Value, json};

use crate::http1::head::Limits;
use crate::http1::{Request, Response};
use crate::proxy::front::server::{self, Handler, ServerConfig, ServerHandle};

pub mod apps;
pub mod load;
pub mod process;
pub mod service;

use crate::sys::cpu::CpuMeter;
use apps::currency::Rates;
use apps::static_site::{self, StaticSite};
use load::LoadMeter;
use service::{LatencyDist, Servers, ServiceOptions};

/// How one simulated backend behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub name: String,
    /// Delay before each answer, in milliseconds, drawn uniformly from this range.
    pub latency_ms: RangeInclusive<u64>,
    /// Exchange rates for the currency app.
    pub rates: Rates,
    /// Directory served under `/site/`; `None` answers 404 saying how to set one.
    pub static_dir: Option<PathBuf>,
    /// `Cache-Control: max-age` of static files, in seconds.
    pub static_max_age: u64,
    /// CPU burnt per request before the latency is slept (`--cpu-work`), so a
    /// least-load balancer has something to see.
    pub cpu_work: Duration,
    /// Report this process's real CPU use at `/load` (a backend in its own process);
    /// otherwise the busy fraction of this backend's requests (in-process backends share
    /// one process, so its CPU would not tell them apart).
    pub process_cpu: bool,
    /// Largest request body accepted (413 above). The balancer gives its in-process
    /// backends its own `--max-body`, so what the front lets through is not refused
    /// behind it (the front's 10 MiB default otherwise).
    pub max_body: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            name: "backend".into(),
            latency_ms: 0..=0,
            rates: Rates::default(),
            static_dir: None,
            static_max_age: 60,
            cpu_work: Duration::ZERO,
            process_cpu: false,
            max_body: Limits::default().max_body,
        }
    }
}

/// The simulated backend's handler.
pub struct SimBackend {
    config: SimConfig,
    port: u16,
    requests: AtomicU64,
    load: LoadMeter,
    site: StaticSite,
    /// Replaces `config.latency_ms` when set.
    latency: Option<LatencyDist>,
    /// The limit on requests in service at once, if any.
    servers: Option<Servers>,
    /// This process's CPU meter, when `/load` reports real process CPU.
    cpu: Option<CpuMeter>,
}

impl SimBackend {
    pub fn new(config: SimConfig, port: u16) -> Self {
        Self::with_service(config, port, ServiceOptions::default())
    }

    pub fn with_service(config: SimConfig, port: u16, service: ServiceOptions) -> Self {
        let site = StaticSite::new(config.static_dir.as_deref(), config.static_max_age);
        let cpu = config.process_cpu.then(CpuMeter::default);
        SimBackend {
            config,
            port,
            requests: AtomicU64::new(0),
            load: LoadMeter::default(),
            site,
            latency: service.latency,
            servers: (service.servers > 0).then(|| Servers::new(service.servers)),
            cpu,
        }
    }

    /// The seed apps by path; `None` for paths no app owns.
    fn route_app(&self, request: &Request) -> Option<Response> {
        let path = request.path();
        if path == "/calc" {
            Some(apps::calc::handle(request))
        } else if let Some(amount) = path.strip_prefix("/convertepradolareuro/") {
            Some(apps::currency::handle_seed(request, &self.config.rates, amount))
        } else if path == "/convert" {
            Some(apps::currency::handle_convert(request, &self.config.rates))
        } else if path == static_site::PREFIX || path.starts_with("/site/") {
            Some(self.site.handle(request))
        } else {
            None
        }
    }

    fn echo(&self, request: &Request, count: u64, delay: u64) -> Response {
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
        let response = Response::json(
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
        );
        // `?cache=N` asks for a response that caches may keep N seconds (for the cache demo).
        match request
            .query()
            .and_then(|query| query.split('&').find_map(|pair| pair.strip_prefix("cache=")))
            .and_then(|seconds| seconds.parse::<u32>().ok())
        {
            Some(seconds) => {
                response.with_header(http::header::CACHE_CONTROL, &format!("public, max-age={seconds}"))
            }
            None => response,
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
        if request.path() == apps::websocket::PATH {
            // The handshake is answered at once; the echo itself is the slow part.
            return apps::websocket::handle(&request);
        }
        if request.path() == "/load" {
            // Also at once: a balancer asks it to decide where to send work.
            let reading = self.load.read();
            let cpu_percent = match &self.cpu {
                Some(meter) => meter.read(),
                None => reading.cpu_percent,
            };
            return Response::json(
                StatusCode::OK,
                &json!({"cpu_percent": cpu_percent, "in_flight": reading.in_flight}),
            )
            .with_header(http::header::CACHE_CONTROL, "no-store");
        }
        let _working = self.load.start();
        let count = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        crate::sys::cpu::burn(self.config.cpu_work);
        let delay = match &self.latency {
            Some(latency) => latency.sample(&mut rand::rng()),
            None => Duration::from_millis(rand::rng().random_range(self.config.latency_ms.clone())),
        };
        // With a server limit, wait for a free server first: the wait is the queue.
        let server = self.servers.as_ref().map(Servers::acquire);
        thread::sleep(delay);
        drop(server);
        let delay = delay.as_millis() as u64;
        self.route_app(&request)
            .unwrap_or_else(|| self.echo(&request, count, delay))
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
        limits: Limits {
            max_body: config.max_body,
            ..Limits::default()
        },
        ..ServerConfig::default()
    };
    let handler = Arc::new(SimBackend::with_service(config, port, service));
    server::start(listener, server_config, handler)
}
