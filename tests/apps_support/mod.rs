//! Shared by tests/apps.rs and tests/client.rs: a balancer in front of simulated
//! backends that host the seed apps, all on OS-chosen ports, and a raw HTTP client that
//! sends exactly the bytes it is given (no path normalisation, which traversal tests
//! need).

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use roundhouse::lab::sim_backend::{self, SimConfig};
use roundhouse::proxy::balancer::{Balancer, BalancerConfig};
use roundhouse::proxy::front::ServerHandle;

pub use super::common::Reply;
use super::common::raw;

/// The repository's shipped site.
pub fn site_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("site")
}

/// A running balancer and its simulated backends; dropped at the end of a test.
pub struct Stack {
    pub balancer: Balancer,
    pub backends: Vec<ServerHandle>,
}

impl Stack {
    /// Two backends (0..2 ms latency) serving `static_dir` under /site/.
    pub fn start(static_dir: Option<PathBuf>) -> Stack {
        let mut backends = Vec::new();
        let mut specs = Vec::new();
        for number in 1..=2 {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let config = SimConfig {
                name: format!("backend-{number}"),
                latency_ms: 0..=2,
                static_dir: static_dir.clone(),
                ..SimConfig::default()
            };
            let server = sim_backend::start(listener, config).unwrap();
            specs.push(format!("http://{}", server.local_addr()).parse().unwrap());
            backends.push(server);
        }
        let config = BalancerConfig {
            workers: 2,
            backends: specs,
            ..BalancerConfig::default()
        };
        let balancer = Balancer::start(TcpListener::bind("127.0.0.1:0").unwrap(), &config).unwrap();
        Stack { balancer, backends }
    }

    pub fn addr(&self) -> SocketAddr {
        self.balancer.local_addr()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    /// `method target` with `extra` header lines and `body`, on a fresh connection.
    pub fn send(&self, method: &str, target: &str, extra: &[(&str, &str)], body: &[u8]) -> Reply {
        send_raw(self.addr(), method, target, extra, body)
    }

    pub fn get(&self, target: &str) -> Reply {
        self.send("GET", target, &[], b"")
    }
}

/// Sends one request with `Connection: close` and reads the whole answer.
pub fn send_raw(addr: SocketAddr, method: &str, target: &str, extra: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut request = format!("{method} {target} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n");
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    raw(addr, &bytes).unwrap_or_else(|error| panic!("{method} {target}: {error}"))
}
