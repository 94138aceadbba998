//! The admin pages on their own listener (`--admin-listen ADDR`), as HAProxy's stats
//! frontend and Envoy's admin port work: operators reach `/stats`, `/metrics` and
//! `/dashboard` on an address the public never sees, and the public port forwards those
//! paths like any others.
//!
//! OS concept: one process, two sockets. Each listener has its own acceptor thread; the
//! admin one shares nothing with the public one but read-only counters.

use std::sync::Arc;

use http::StatusCode;

use super::server::Handler;
use crate::http1::{Request, Response};
use crate::proxy::admin::{self, AdminPages};
use crate::proxy::clients::ClientRules;

/// Answers the admin pages, and 404 for anything else.
pub struct AdminHandler {
    pub pages: AdminPages,
    /// The allow-list still applies here: an admin port bound to a public address by
    /// mistake must not show the inside to everyone.
    pub rules: Arc<ClientRules>,
}

impl Handler for AdminHandler {
    fn handle(&self, request: Request) -> Response {
        let client = self.rules.client_of(request.peer.ip(), &request.headers);
        if !self.rules.is_admin(client) {
            return admin::forbidden();
        }
        self.pages.respond(&request).unwrap_or_else(|| {
            Response::text(
                StatusCode::NOT_FOUND,
                "this is the admin listener: /stats, /metrics and /dashboard",
            )
        })
    }
}
