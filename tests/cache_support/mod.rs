//! Helpers for the cache and access-log tests: a scriptable test backend built on the
//! front's own server, a balancer in front of it, and a small HTTP client.
#![allow(dead_code)]

pub mod raw;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode};
use parking_lot::Mutex;
use roundhouse::http1::{Request, Response};
use roundhouse::proxy::balancer::{Balancer, BalancerConfig};
use roundhouse::proxy::front::FrontKind;
use roundhouse::proxy::front::server::{self, Handler, ServerConfig, ServerHandle};

type Respond = dyn Fn(&Request) -> Response + Send + Sync;

/// A backend whose answers the test chooses, counting what it receives.
pub struct TestBackend {
    pub server: ServerHandle,
    pub state: Arc<BackendState>,
}

pub struct BackendState {
    respond: Box<Respond>,
    /// Requests received (health checks included, though none are sent here).
    pub requests: AtomicUsize,
    /// Headers of every request received, in order.
    pub seen: Mutex<Vec<HeaderMap>>,
}

struct StateHandler(Arc<BackendState>);

impl Handler for StateHandler {
    fn handle(&self, request: Request) -> Response {
        self.0.requests.fetch_add(1, Ordering::SeqCst);
        self.0.seen.lock().push(request.headers.clone());
        (self.0.respond)(&request)
    }
}

impl TestBackend {
    pub fn start(respond: impl Fn(&Request) -> Response + Send + Sync + 'static) -> TestBackend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let state = Arc::new(BackendState {
            respond: Box::new(respond),
            requests: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        });
        let config = ServerConfig {
            thread_name: "test-backend".into(),
            ..ServerConfig::default()
        };
        let server = server::start(listener, config, Arc::new(StateHandler(Arc::clone(&state)))).unwrap();
        TestBackend { server, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.server.local_addr())
    }

    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Headers of the last request the backend received.
    pub fn last_headers(&self) -> HeaderMap {
        self.state.seen.lock().last().cloned().unwrap_or_default()
    }
}

/// A balancer with one worker pool in front of `backend`, with `config`'s cache and log.
pub fn balancer(backend: &TestBackend, config: BalancerConfig) -> Balancer {
    balancer_at(&backend.url(), config)
}

thread_local! {
    /// The front the balancers of the running test use (`on_each_front`).
    static FRONT: std::cell::Cell<FrontKind> = const { std::cell::Cell::new(FrontKind::Threads) };
}

/// Runs `body` once with each front: every balancer it starts uses that front. The
/// cache sits behind both (the event loop answers fresh hits itself and hands misses
/// to a worker), so every cache test holds for both.
pub fn on_each_front(mut body: impl FnMut()) {
    for front in [FrontKind::Threads, FrontKind::Epoll] {
        FRONT.with(|current| current.set(front));
        let label = FrontLabel(front);
        body();
        drop(label);
    }
}

/// Names the front of a failing run (on the way out of a panic).
struct FrontLabel(FrontKind);

impl Drop for FrontLabel {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("(this failure was with --front {})", self.0);
        }
    }
}

/// A balancer in front of the backend at `url` (a raw backend, or one that is gone).
pub fn balancer_at(url: &str, config: BalancerConfig) -> Balancer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = BalancerConfig {
        backends: vec![url.parse().unwrap()],
        front: FRONT.with(|current| current.get()),
        ..config
    };
    // These tests count the backend's requests exactly: no health checks among them.
    config.check.interval = std::time::Duration::ZERO;
    Balancer::start(listener, &config).unwrap()
}

/// A text response with the given headers.
pub fn respond(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
    let mut response = Response::text(StatusCode::from_u16(status).unwrap(), body);
    for (name, value) in headers {
        response.headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

/// What the client saw.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    pub fn x_cache(&self) -> &str {
        self.header("x-cache")
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        // A 3xx is an answer to look at, not a hop to follow.
        .max_redirects(0)
        .timeout_recv_response(Some(Duration::from_secs(20)))
        .build()
        .new_agent()
}

/// Sends `method path` to `addr` with extra headers.
pub fn request(
    agent: &ureq::Agent,
    method: &str,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut response = agent.run(builder.body(()).unwrap()).unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    Answer {
        status,
        headers,
        body,
    }
}

pub fn get(addr: SocketAddr, path: &str) -> Answer {
    request(&agent(), "GET", addr, path, &[])
}

pub fn get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    request(&agent(), "GET", addr, path, headers)
}

/// The balancer's `/stats` document.
pub fn stats(addr: SocketAddr) -> serde_json::Value {
    serde_json::from_str(&get(addr, "/stats").body).unwrap()
}

/// Polls `condition` until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    condition()
}
