//! The services a simulated backend hosts, one file per app, each a seed project of
//! roundhouse: `calc` (a distributed calculator), `currency` (a currency-conversion
//! API), `static_site` (a static web server). `percent` decodes URLs for all three, and
//! `args` holds their command-line options. `websocket` (`/ws/echo`) is the tunnel
//! demo's other end.
//!
//! OS concept: none of its own; these are the work the balancer spreads. The one with
//! an OS lesson, the file system namespace and path traversal, is `static_site.rs`.

pub mod args;
pub mod calc;
pub mod currency;
pub mod percent;
pub mod static_site;
pub mod websocket;

use http::StatusCode;
use serde_json::json;

use crate::http1::Response;

/// The apps' error shape: `{"error": "..."}` with the status.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    Response::json(status, &json!({ "error": message }))
}
