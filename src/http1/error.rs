//! Typed errors of the HTTP front, each mapped to the status a client should see.
//!
//! OS concept: blocking I/O can fail in many ways (timeouts, resets, hostile bytes);
//! naming each way lets the connection thread answer with the right status and close,
//! instead of crashing a thread or leaving a client waiting.

use http::StatusCode;
use thiserror::Error;

/// Why a request could not be read from a client connection.
#[derive(Debug, Error)]
pub enum RequestError {
    /// The bytes are not an HTTP/1.x request (bad request line, bad header syntax).
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The peer closed the connection in the middle of a message (`what`: head, line,
    /// body). Told apart from `Malformed` so the forwarding client can say "cut short".
    #[error("connection closed mid-{0}")]
    Truncated(&'static str),
    /// The request target (path and query) is longer than the limit.
    #[error("request target longer than {0} bytes")]
    TargetTooLong(usize),
    /// The header section is larger than the limit, or has too many fields.
    #[error("request header section too large: {0}")]
    HeadersTooLarge(String),
    /// The declared or streamed body is larger than `--max-body`.
    #[error("request body larger than {0} bytes")]
    BodyTooLarge(u64),
    /// Framing that two parsers could read differently (request smuggling).
    #[error("ambiguous message framing: {0}")]
    Smuggling(String),
    /// A method this proxy refuses to carry (CONNECT: we are not a tunnel).
    #[error("method {0} not allowed")]
    MethodNotAllowed(String),
    /// The client stopped sending in the middle of a request.
    #[error("client timed out")]
    Timeout,
    /// The connection closed cleanly before a new request began (normal keep-alive end).
    #[error("connection closed")]
    Closed,
    /// Any other socket error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl RequestError {
    /// The status to answer with, or `None` when the peer is gone and nothing can be sent.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            RequestError::Malformed(_) | RequestError::Smuggling(_) | RequestError::Truncated(_) => {
                Some(StatusCode::BAD_REQUEST)
            }
            RequestError::TargetTooLong(_) => Some(StatusCode::URI_TOO_LONG),
            RequestError::HeadersTooLarge(_) => Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
            RequestError::BodyTooLarge(_) => Some(StatusCode::PAYLOAD_TOO_LARGE),
            RequestError::MethodNotAllowed(_) => Some(StatusCode::METHOD_NOT_ALLOWED),
            // nginx answers 408 to a client that stalls mid-request; so do we.
            RequestError::Timeout => Some(StatusCode::REQUEST_TIMEOUT),
            RequestError::Closed | RequestError::Io(_) => None,
        }
    }
}
