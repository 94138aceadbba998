//! Reading a backend's response: the front's request parsing, used the other way round.
//!
//! OS concept: a byte stream has no message boundaries. TCP delivers bytes, not
//! responses; the only way to know where one response ends (and whether the connection
//! can carry the next) is the framing the HTTP head declares: a Content-Length, chunked
//! encoding, or "until the sender closes". The same `HttpReader` and body decoder that
//! read clients' requests read the backends' responses here.

use std::time::{Duration, Instant};

use http::{HeaderMap, Method, StatusCode, Version, header};

use super::UpstreamError;
use crate::http1::RequestError;
use crate::http1::body::read_body;
use crate::http1::fields::{content_length, is_only_chunked, parsed_headers, wants_keep_alive};
use crate::http1::head::Framing;
use crate::http1::interim::Interim;
use crate::http1::reader::HttpReader;
use crate::http1::writer::body_allowed;

/// Largest response head accepted (nginx's `proxy_buffer_size` plays this role; an
/// answer with a larger head gets 502 there too).
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Most header fields in a response head.
pub const MAX_RESPONSE_HEADERS: usize = 100;

/// A response head, parsed, with what it says about the body and the connection.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// Whether the backend lets the connection carry another request afterwards.
    pub keep_alive: bool,
}

/// Reads the final response head for a request with `method`. Interim 1xx answers
/// before it go to `interim` as they arrive (102, 103 Early Hints...), except `100
/// Continue`, which the front already sent the client itself (RFC 9110 section 15.2 lets
/// a proxy drop a 1xx it caused). The whole head must arrive by `deadline`.
///
/// A `101 Switching Protocols` is final when the request asked for an upgrade
/// (`upgrade`), and a protocol error otherwise.
pub fn read_head(
    reader: &mut HttpReader,
    method: &Method,
    deadline: Instant,
    interim: Option<&Interim>,
    upgrade: bool,
) -> Result<ResponseHead, UpstreamError> {
    loop {
        if let Some(head) = try_parse_head(reader, method)? {
            if head.status.is_informational() {
                if head.status == StatusCode::SWITCHING_PROTOCOLS {
                    if upgrade {
                        return Ok(head);
                    }
                    return Err(UpstreamError::Protocol(
                        "unrequested 101 Switching Protocols".into(),
                    ));
                }
                if let Some(interim) = interim
                    && head.status != StatusCode::CONTINUE
                {
                    let mut headers = head.headers;
                    super::headers::remove_hop_by_hop(&mut headers);
                    interim.send(head.status, &headers);
                }
                continue;
            }
            return Ok(head);
        }
        if reader.fill(deadline).map_err(from_read_error)? == 0 {
            return Err(UpstreamError::Broken(
                "backend closed the connection mid-head".into(),
            ));
        }
    }
}

/// Reads the body the head announced, waiting at most `per_read` for each chunk of
/// bytes (nginx's `proxy_read_timeout` is also a per-read timeout).
pub fn read_response_body(
    reader: &mut HttpReader,
    framing: Framing,
    max_body: u64,
    per_read: Duration,
) -> Result<Vec<u8>, UpstreamError> {
    read_body(reader, framing, max_body, per_read).map_err(|error| match error {
        RequestError::BodyTooLarge(limit) => {
            UpstreamError::Protocol(format!("response body larger than {limit} bytes"))
        }
        other => from_read_error(other),
    })
}

/// Parses the buffered bytes if they hold a whole head; `Ok(None)` asks for more.
fn try_parse_head(reader: &mut HttpReader, method: &Method) -> Result<Option<ResponseHead>, UpstreamError> {
    let buffered = reader.buffered();
    if buffered.is_empty() {
        return Ok(None);
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut parsed = httparse::Response::new(&mut slots);
    let head_len = match parsed.parse(buffered) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buffered.len() > MAX_RESPONSE_HEAD => {
            return Err(UpstreamError::Protocol(format!(
                "response head over {MAX_RESPONSE_HEAD} bytes"
            )));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(UpstreamError::Protocol(format!("bad response head: {error}"))),
    };
    let status = parsed
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| UpstreamError::Protocol("bad status code".into()))?;
    let version = if parsed.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let headers = parsed_headers(parsed.headers).map_err(|bad| UpstreamError::Protocol(bad.to_string()))?;
    reader.consume(head_len);
    let framing = response_framing(method, status, &headers)?;
    let keep_alive = framing != Framing::UntilClose && wants_keep_alive(version, &headers);
    Ok(Some(ResponseHead {
        status,
        headers,
        framing,
        keep_alive,
    }))
}

/// How a response body is delimited (RFC 9112 section 6.3), refusing what two parsers
/// could read differently, as nginx does ("upstream sent ... at the same time": 502).
pub fn response_framing(
    method: &Method,
    status: StatusCode,
    headers: &HeaderMap,
) -> Result<Framing, UpstreamError> {
    // HEAD answers, 1xx, 204 and 304 never have a body, whatever their headers say.
    if !body_allowed(method, status) {
        return Ok(Framing::None);
    }
    let declared =
        content_length(headers).map_err(|error| UpstreamError::Protocol(format!("response: {error}")))?;
    if headers.contains_key(header::TRANSFER_ENCODING) {
        if declared.is_some() {
            return Err(UpstreamError::Protocol(
                "response has both Content-Length and Transfer-Encoding".into(),
            ));
        }
        if !is_only_chunked(headers) {
            return Err(UpstreamError::Protocol(
                "response Transfer-Encoding other than chunked".into(),
            ));
        }
        return Ok(Framing::Chunked);
    }
    Ok(match declared {
        Some(0) => Framing::None,
        Some(length) => Framing::ContentLength(length),
        None => Framing::UntilClose,
    })
}

/// Maps a read failure on a backend connection to what the client will be told.
pub fn from_read_error(error: RequestError) -> UpstreamError {
    match error {
        RequestError::Timeout => UpstreamError::Timeout("no answer from the backend in time".into()),
        RequestError::Io(io) => UpstreamError::Broken(io.to_string()),
        RequestError::Closed => UpstreamError::Broken("backend closed the connection".into()),
        RequestError::Truncated(what) => {
            UpstreamError::Incomplete(format!("backend closed the connection mid-{what}"))
        }
        other => UpstreamError::Protocol(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::fields::header_map as headers;

    #[test]
    fn framing_follows_rfc_9112() {
        let ok = StatusCode::OK;
        let length = headers(&[("content-length", "5")]);
        assert_eq!(
            response_framing(&Method::GET, ok, &length).unwrap(),
            Framing::ContentLength(5)
        );
        assert_eq!(
            response_framing(&Method::HEAD, ok, &length).unwrap(),
            Framing::None
        );
        for status in [204, 304, 100] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(
                response_framing(&Method::GET, status, &length).unwrap(),
                Framing::None
            );
        }
        let chunked = headers(&[("transfer-encoding", "chunked")]);
        assert_eq!(
            response_framing(&Method::GET, ok, &chunked).unwrap(),
            Framing::Chunked
        );
        assert_eq!(
            response_framing(&Method::GET, ok, &HeaderMap::new()).unwrap(),
            Framing::UntilClose
        );
        let both = headers(&[("transfer-encoding", "chunked"), ("content-length", "5")]);
        assert!(response_framing(&Method::GET, ok, &both).is_err());
        let gzip = headers(&[("transfer-encoding", "gzip")]);
        assert!(response_framing(&Method::GET, ok, &gzip).is_err());
        let differing = headers(&[("content-length", "5"), ("content-length", "6")]);
        assert!(response_framing(&Method::GET, ok, &differing).is_err());
    }
}
