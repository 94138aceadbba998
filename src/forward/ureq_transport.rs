//! Sending a request to a backend with ureq, the HTTP client the design card names.
//!
//! One `Agent` is shared by every worker; it keeps a pool of keep-alive connections
//! per backend (a mutex inside ureq guards that pool, taken only to check a connection
//! in or out). Timeouts are per phase (connect, send, receive), never ureq's global
//! timeout, which starts a resolver thread for every request.

use std::time::Duration;

use http::{HeaderMap, Method};
use ureq::config::AutoHeaderValue;

use std::io::Read;

use http::HeaderValue;
use ureq::SendBody;

use super::UpstreamError;
use crate::front::spool::{BodyStream, SPOOL_THRESHOLD};
use crate::front::{Request, Response};

/// Response bodies up to this size are read whole; larger ones are streamed.
const STREAM_THRESHOLD: usize = SPOOL_THRESHOLD;

/// Timeouts for talking to backends.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamTimeouts {
    /// Longest wait for a TCP connection to a backend (`--connect-timeout`).
    pub connect: Duration,
    /// Longest wait for the backend's answer, head and body (`--timeout`).
    pub response: Duration,
}

pub struct UreqTransport {
    agent: ureq::Agent,
}

impl UreqTransport {
    /// An agent that passes everything through untouched: no redirects followed,
    /// 4xx/5xx returned as responses, no proxy from the environment, no headers of its
    /// own, and (with `default-features = false`) no gzip decoding behind our back.
    pub fn new(timeouts: UpstreamTimeouts, idle_per_backend: usize) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .user_agent(AutoHeaderValue::None)
            .accept(AutoHeaderValue::None)
            .accept_encoding(AutoHeaderValue::None)
            .timeout_connect(Some(timeouts.connect))
            .timeout_send_request(Some(timeouts.response))
            .timeout_send_body(Some(timeouts.response))
            .timeout_recv_response(Some(timeouts.response))
            .timeout_recv_body(Some(timeouts.response))
            .max_idle_connections_per_host(idle_per_backend.max(3))
            .max_idle_connections(idle_per_backend.max(3) * 64)
            .max_idle_age(Duration::from_secs(30))
            .allow_non_standard_methods(true)
            .build();
        UreqTransport {
            agent: config.new_agent(),
        }
    }

    /// Sends one request to `base_url`. A small answer is read whole; a large one
    /// (over `STREAM_THRESHOLD`, or of unknown length and longer than that) comes back
    /// as a stream, so its size never matters to memory.
    pub fn send(
        &self,
        base_url: &str,
        request: &Request,
        mut headers: HeaderMap,
    ) -> Result<Response, UpstreamError> {
        let uri = format!("{base_url}{}", request.target);
        let method = &request.method;
        let response = if let Some(spooled) = &request.spooled {
            let reader = spooled
                .reader()
                .map_err(|error| UpstreamError::Connect(format!("cannot read the spooled body: {error}")))?;
            headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(spooled.length));
            self.run(method, &uri, headers, SendBody::from_owned_reader(reader))
        } else if request.body.is_empty() {
            // A request that came without a body goes on without one: an empty
            // `&[u8]` body would make ureq add `content-length: 0` to every GET.
            self.run(method, &uri, headers, ())
        } else {
            self.run(method, &uri, headers, request.body.as_slice())
        }?;
        let (parts, body) = response.into_parts();
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        let mut reader = body.into_reader();
        let mut prefix = Vec::new();
        let limit = STREAM_THRESHOLD as u64;
        (&mut reader)
            .take(limit + 1)
            .read_to_end(&mut prefix)
            .map_err(|error| UpstreamError::Incomplete(error.to_string()))?;
        let mut response = Response::new(parts.status);
        response.headers = parts.headers;
        if prefix.len() as u64 <= limit {
            // Whole. Reading to the end also returned the connection to ureq's pool.
            response.body = prefix;
        } else {
            let length = declared;
            let rest = std::io::Cursor::new(prefix).chain(reader);
            response.stream = Some(BodyStream::new(Box::new(rest), length));
        }
        Ok(response)
    }
}

impl UreqTransport {
    fn run(
        &self,
        method: &Method,
        uri: &str,
        headers: HeaderMap,
        body: impl ureq::AsSendBody,
    ) -> Result<http::Response<ureq::Body>, UpstreamError> {
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(uri)
            .body(body)
            .map_err(|error| UpstreamError::Protocol(error.to_string()))?;
        *request.headers_mut() = headers;
        self.agent.run(request).map_err(UpstreamError::from_ureq)
    }
}

impl UpstreamError {
    fn from_ureq(error: ureq::Error) -> Self {
        match error {
            // Part of the answer came, then it stalled: not the same as no answer at all.
            ureq::Error::Timeout(ureq::Timeout::RecvBody) => {
                UpstreamError::Incomplete("timed out reading the body".into())
            }
            ureq::Error::Timeout(ureq::Timeout::Connect) => {
                UpstreamError::ConnectTimeout("no TCP connection".into())
            }
            ureq::Error::Timeout(phase) => UpstreamError::Timeout(phase.to_string()),
            ureq::Error::Io(io)
                if io.kind() == std::io::ErrorKind::TimedOut
                    || io.kind() == std::io::ErrorKind::WouldBlock =>
            {
                UpstreamError::Timeout(io.to_string())
            }
            ureq::Error::Io(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::AddrNotAvailable
                        | std::io::ErrorKind::HostUnreachable
                        | std::io::ErrorKind::NetworkUnreachable
                ) =>
            {
                UpstreamError::Connect(io.to_string())
            }
            ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
                UpstreamError::Connect(error.to_string())
            }
            ureq::Error::Io(io) => UpstreamError::Broken(io.to_string()),
            other => UpstreamError::Protocol(other.to_string()),
        }
    }
}
