//! The TCP balancer's admin port: `/stats` and the live `/dashboard` over HTTP.
//!
//! OS concept: reuse of one server for two jobs. An L4 balancer cannot answer `/stats`
//! on its own port, because it does not parse what flows through it: every byte
//! belongs to a backend. So the numbers get a port of their own (`--admin`), served by
//! the project's own HTTP server (`front::server`) with a three-line handler, the way
//! HAProxy serves its stats page on a separate `listen stats` section.

use std::net::TcpListener;
use std::sync::Arc;

use http::{Method, StatusCode, header};

use super::backends::TcpBackends;
use super::counters::L4Stats;
use crate::http1::{Request, Response};
use crate::proxy::admin::dashboard;
use crate::proxy::front::server::{self, Handler, ServerConfig, ServerHandle};

/// Answers `/stats` and `/dashboard` (the HTTP balancer's page, which reads this
/// `/stats` just as well); everything else is 404 with a pointer to them.
pub struct AdminHandler {
    pub stats: Arc<L4Stats>,
    pub backends: Arc<TcpBackends>,
}

impl Handler for AdminHandler {
    fn handle(&self, request: Request) -> Response {
        if request.method != Method::GET && request.method != Method::HEAD {
            return Response::text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD here")
                .with_header(header::ALLOW, "GET, HEAD");
        }
        match request.path() {
            "/stats" => Response::json(StatusCode::OK, &self.stats.snapshot(&self.backends))
                .with_header(header::CACHE_CONTROL, "no-store"),
            "/dashboard" => dashboard::response(),
            _ => Response::text(
                StatusCode::NOT_FOUND,
                "this is the TCP balancer's admin port; try /stats or /dashboard",
            ),
        }
    }
}

/// Starts serving the admin port on `listener`.
pub fn start(listener: TcpListener, handler: AdminHandler) -> std::io::Result<ServerHandle> {
    let config = ServerConfig {
        max_connections: 64,
        thread_name: "admin".into(),
        ..ServerConfig::default()
    };
    server::start(listener, config, Arc::new(handler))
}
