//! The request and response values that travel between threads.
//!
//! OS concept: message passing. A connection thread parses bytes into a `Request`,
//! moves it (ownership and all) down a channel to a worker, and gets a `Response`
//! back. Nothing is shared, so nothing needs a lock.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};

use super::interim::Interim;
use super::spool::{BodyStream, SpooledBody};
use super::upgrade::Upgrade;
use std::sync::Arc;

/// One parsed HTTP request with its whole body.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// The request target exactly as the client sent it (origin form: path and query).
    pub target: String,
    pub version: Version,
    pub headers: HeaderMap,
    /// The body when it is small enough to keep in memory (empty when `spooled`).
    pub body: Vec<u8>,
    /// A large body, kept in a temporary file (see `spool.rs`).
    pub spooled: Option<SpooledBody>,
    /// The socket address of the peer: the client, or the last proxy before us.
    pub peer: SocketAddr,
    /// The client's address: the peer's, or the one a trusted proxy reported (the
    /// front sets the peer's; the balancer's dispatcher applies `--trust-proxy`).
    pub client: IpAddr,
    /// When the request head was complete: the start of the request's time in the proxy.
    pub received_at: Instant,
    /// Where a backend's interim responses (103 Early Hints...) go, for HTTP/1.1
    /// clients of the front (`interim`); `None` for requests nobody is waiting on.
    pub interim: Option<Arc<Interim>>,
    /// Whether the request came over TLS (`X-Forwarded-Proto: https`).
    pub tls: bool,
}

impl Request {
    /// The path without the query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The query string without the `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, query)| query)
    }

    /// A header's value as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Whether the client asks to switch protocols (`Upgrade`, RFC 9110 section 7.8),
    /// with `upgrade` among its Connection options as the RFC requires. An HTTP/1.0
    /// request's Upgrade is ignored, as the same section says a server must.
    pub fn wants_upgrade(&self) -> bool {
        self.version == Version::HTTP_11
            && self.headers.contains_key(header::UPGRADE)
            && super::fields::list_items(&self.headers, header::CONNECTION)
                .any(|option| option.eq_ignore_ascii_case("upgrade"))
    }

    /// The body's length, wherever it is kept.
    pub fn body_length(&self) -> u64 {
        self.spooled
            .as_ref()
            .map_or(self.body.len() as u64, |spooled| spooled.length)
    }
}

/// One response, built by a handler and written by the connection thread.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// A large body to be streamed instead of `body` (see `spool.rs`).
    pub stream: Option<BodyStream>,
    /// For a `101 Switching Protocols`: what takes the connection over after it.
    pub upgrade: Option<Upgrade>,
    /// How the response was produced; never written to the wire.
    pub meta: ResponseMeta,
}

/// Facts about how a response was produced, carried beside it for the access log. nginx
/// keeps the same facts in variables (`$upstream_addr`, `$upstream_response_time`,
/// `$upstream_cache_status`) rather than in headers the client would see.
#[derive(Debug, Clone, Default)]
pub struct ResponseMeta {
    /// The backend that answered, as `host:port`.
    pub upstream: Option<String>,
    /// The worker thread that forwarded the request.
    pub worker: Option<usize>,
    /// Time spent waiting on the backend, from sending the request to the last byte.
    pub upstream_time: Option<Duration>,
    /// The cache's verdict (`HIT`, `MISS`, `REVALIDATED`, `BYPASS`) when the cache is on.
    pub cache: Option<&'static str>,
}

impl Response {
    /// An empty response with the given status.
    pub fn new(status: StatusCode) -> Self {
        Response {
            status,
            headers: HeaderMap::new(),
            body: Vec::new(),
            stream: None,
            upgrade: None,
            meta: ResponseMeta::default(),
        }
    }

    /// A plain-text response; a newline is added so `curl` output ends cleanly.
    pub fn text(status: StatusCode, text: impl Into<String>) -> Self {
        let mut body = text.into();
        if !body.ends_with('\n') {
            body.push('\n');
        }
        Response::new(status)
            .with_header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .with_body(body.into_bytes())
    }

    /// A JSON response, pretty-printed because students read it with `curl`.
    pub fn json(status: StatusCode, value: &serde_json::Value) -> Self {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
        body.push(b'\n');
        Response::new(status)
            .with_header(header::CONTENT_TYPE, "application/json")
            .with_body(body)
    }

    /// Sets (replaces) a header; values that are not valid header text are ignored.
    pub fn with_header(mut self, name: header::HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.insert(name, value);
        }
        self
    }

    pub fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }
}
