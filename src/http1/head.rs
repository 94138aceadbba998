//! Reading a request head within limits, and deciding how its body is framed.
//!
//! OS concept: defending a shared resource. Every byte a client sends lands in this
//! process's memory, so every length is capped before it is stored: the request target
//! (414), the header section and its field count (431), the body (413). The limits are
//! nginx's defaults in spirit: `large_client_header_buffers 4 8k`.

use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Method, Version, header};

use super::error::RequestError;
use super::fields::{content_length, is_only_chunked, parsed_headers};
use super::reader::HttpReader;

/// Size limits for one request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest request target (path and query) accepted: longer gets 414.
    pub max_target: usize,
    /// Largest request head (request line and headers): larger gets 431.
    pub max_head: usize,
    /// Most header fields: more gets 431.
    pub max_headers: usize,
    /// Largest body: larger gets 413.
    pub max_body: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_target: 8 * 1024,
            max_head: 16 * 1024,
            max_headers: 100,
            max_body: 10 * 1024 * 1024,
        }
    }
}

/// How the body that follows a head is delimited (RFC 9112 section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    ContentLength(u64),
    Chunked,
    /// Only for responses: the body runs until the sender closes the connection.
    UntilClose,
}

/// A request line and headers, before the body is read.
#[derive(Debug)]
pub struct RequestHead {
    pub method: Method,
    pub target: String,
    pub version: Version,
    pub headers: HeaderMap,
    pub framing: Framing,
}

/// Waits for and parses the next request head on a connection.
///
/// `idle_deadline` bounds the wait for the first byte (the keep-alive timeout);
/// once a byte arrives, the whole head must be complete within `head_timeout`.
pub fn read_request_head(
    reader: &mut HttpReader,
    limits: &Limits,
    idle_deadline: Instant,
    head_timeout: Duration,
) -> Result<RequestHead, RequestError> {
    // Wait for the first byte of a request; a clean close or an idle timeout here is the
    // normal end of a keep-alive connection, not an error to answer.
    while reader.buffered().is_empty() {
        match reader.fill(idle_deadline) {
            Ok(0) => return Err(RequestError::Closed),
            Ok(_) => {}
            Err(RequestError::Timeout) => return Err(RequestError::Closed),
            Err(other) => return Err(other),
        }
    }
    let head_deadline = Instant::now() + head_timeout;
    loop {
        if let Some(head) = try_parse_head(reader, limits)? {
            return Ok(head);
        }
        match reader.fill(head_deadline)? {
            0 => return Err(RequestError::Truncated("head")),
            _ => continue,
        }
    }
}

/// Parses the buffered bytes if they hold a whole head; `Ok(None)` asks for more.
fn try_parse_head(reader: &mut HttpReader, limits: &Limits) -> Result<Option<RequestHead>, RequestError> {
    let Some((head, length)) = parse_request_head(reader.buffered(), limits)? else {
        return Ok(None);
    };
    reader.consume(length);
    Ok(Some(head))
}

/// Parses a request head from the start of `buffered`: the head and the bytes it took,
/// or `Ok(None)` when more bytes are needed. Works on any byte buffer, so the blocking
/// front (through `read_request_head`) and an event loop that owns its buffers share it.
pub fn parse_request_head(
    buffered: &[u8],
    limits: &Limits,
) -> Result<Option<(RequestHead, usize)>, RequestError> {
    // A request line that has not ended after max_target bytes can only be too long.
    // (The slack covers the method and version around the target.)
    let line_end = buffered.iter().position(|&byte| byte == b'\n');
    if line_end.is_none() && buffered.len() > limits.max_target + 32 {
        return Err(RequestError::TargetTooLong(limits.max_target));
    }
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut parsed = httparse::Request::new(&mut slots);
    let status = match parsed.parse(buffered) {
        Ok(status) => status,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(RequestError::HeadersTooLarge(format!(
                "more than {} header fields",
                limits.max_headers
            )));
        }
        Err(httparse::Error::Version) if let Some(as_11) = higher_minor_version_as_11(buffered) => {
            // RFC 9110 section 2.5: a server answers a higher minor version of HTTP/1
            // as the highest it speaks, 1.1 (nginx and HAProxy do the same).
            return parse_request_head(&as_11, limits);
        }
        Err(error) => return Err(RequestError::Malformed(error.to_string())),
    };
    let head_len = match status {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => {
            if buffered.len() > limits.max_head {
                return Err(RequestError::HeadersTooLarge(format!(
                    "head over {} bytes",
                    limits.max_head
                )));
            }
            return Ok(None);
        }
    };
    let target = parsed.path.unwrap_or_default();
    if target.len() > limits.max_target {
        return Err(RequestError::TargetTooLong(limits.max_target));
    }
    if head_len > limits.max_head {
        return Err(RequestError::HeadersTooLarge(format!(
            "head over {} bytes",
            limits.max_head
        )));
    }
    let method = Method::from_bytes(parsed.method.unwrap_or_default().as_bytes())
        .map_err(|_| RequestError::Malformed("bad method".into()))?;
    let version = if parsed.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let mut headers =
        parsed_headers(parsed.headers).map_err(|bad| RequestError::Malformed(bad.to_string()))?;
    check_single_host(&headers)?;
    let mut target = target.to_string();

    if method == Method::CONNECT {
        // A reverse proxy is not a tunnel: nginx answers CONNECT with 405 too.
        return Err(RequestError::MethodNotAllowed(method.to_string()));
    }
    target = origin_form(target, &mut headers)?;
    if version == Version::HTTP_11 && !headers.contains_key(header::HOST) {
        // RFC 9112 section 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host.
        return Err(RequestError::Malformed("HTTP/1.1 request without Host".into()));
    }
    let framing = request_framing(&headers, version)?;
    let head = RequestHead {
        method,
        target,
        version,
        headers,
        framing,
    };
    Ok(Some((head, head_len)))
}

/// RFC 9112 section 3.2: a request with more than one Host field, or a Host list,
/// gets 400. Otherwise the cache could key on one host while the backend reads another
/// (host confusion, cache poisoning); nginx answers such requests 400 as well.
fn check_single_host(headers: &HeaderMap) -> Result<(), RequestError> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let first = hosts.next();
    if hosts.next().is_some() {
        return Err(RequestError::Malformed("more than one Host field".into()));
    }
    // `Host: a, b` is two hosts folded into one field, the same ambiguity.
    if first.is_some_and(|host| host.as_bytes().contains(&b',')) {
        return Err(RequestError::Malformed("Host is not one host".into()));
    }
    Ok(())
}

/// The head with its request line's `HTTP/1.x` (x from 2 to 9) rewritten to
/// `HTTP/1.1`, or `None` when the version is something else (HTTP/2.0, HTTP/1.10...),
/// which stays an error. Only this rare case copies the head.
fn higher_minor_version_as_11(buffered: &[u8]) -> Option<Vec<u8>> {
    let line_end = buffered.iter().position(|&byte| byte == b'\n')?;
    let line = buffered[..line_end].strip_suffix(b"\r")?;
    let digit = line.len().checked_sub(1)?;
    if !line[..digit].ends_with(b" HTTP/1.") || !(b'2'..=b'9').contains(&line[digit]) {
        return None;
    }
    let mut copy = buffered.to_vec();
    copy[digit] = b'1';
    Some(copy)
}

/// Turns an absolute-form target (`GET http://host/path`) into origin form (`/path`),
/// taking the Host from the URI as RFC 9112 section 3.2.2 says. The request is then
/// served by the configured backends like any other: never sent to that host, so
/// roundhouse cannot be used as an open forward proxy.
fn origin_form(target: String, headers: &mut HeaderMap) -> Result<String, RequestError> {
    if target.starts_with('/') || target == "*" {
        return Ok(target);
    }
    let lower = target.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
        .map(|rest| &target[target.len() - rest.len()..])
        .ok_or_else(|| RequestError::Malformed(format!("unsupported request target {target:?}")))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(index) => (&rest[..index], &rest[index..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    let host =
        HeaderValue::from_str(authority).map_err(|_| RequestError::Malformed("bad authority".into()))?;
    headers.insert(header::HOST, host);
    Ok(path)
}

/// Decides how a request body is delimited, refusing every ambiguous combination
/// (RFC 9112 section 6.3; these are the request-smuggling vectors).
pub fn request_framing(headers: &HeaderMap, version: Version) -> Result<Framing, RequestError> {
    let content_length = content_length(headers)?;
    if headers.contains_key(header::TRANSFER_ENCODING) {
        if content_length.is_some() {
            return Err(RequestError::Smuggling(
                "both Content-Length and Transfer-Encoding".into(),
            ));
        }
        if version == Version::HTTP_10 {
            return Err(RequestError::Smuggling(
                "Transfer-Encoding in an HTTP/1.0 request".into(),
            ));
        }
        if !is_only_chunked(headers) {
            return Err(RequestError::Smuggling(
                "Transfer-Encoding other than chunked".into(),
            ));
        }
        return Ok(Framing::Chunked);
    }
    Ok(match content_length {
        Some(0) | None => Framing::None,
        Some(length) => Framing::ContentLength(length),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::fields::header_map as headers;

    #[test]
    fn framing_refuses_smuggling_vectors() {
        let both = headers(&[("content-length", "5"), ("transfer-encoding", "chunked")]);
        assert!(matches!(
            request_framing(&both, Version::HTTP_11),
            Err(RequestError::Smuggling(_))
        ));
        let differing = headers(&[("content-length", "5"), ("content-length", "6")]);
        assert!(request_framing(&differing, Version::HTTP_11).is_err());
        let gzip = headers(&[("transfer-encoding", "gzip, chunked")]);
        assert!(request_framing(&gzip, Version::HTTP_11).is_err());
        let same_twice = headers(&[("content-length", "5"), ("content-length", "5")]);
        assert_eq!(
            request_framing(&same_twice, Version::HTTP_11).unwrap(),
            Framing::ContentLength(5)
        );
        let chunked = headers(&[("transfer-encoding", "Chunked")]);
        assert_eq!(
            request_framing(&chunked, Version::HTTP_11).unwrap(),
            Framing::Chunked
        );
        let signed = headers(&[("content-length", "+5")]);
        assert!(request_framing(&signed, Version::HTTP_11).is_err());
    }

    fn head_with_fields(count: usize, limits: &Limits) -> Result<RequestHead, RequestError> {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mut head = String::from("GET /x HTTP/1.1\r\nHost: h\r\n");
        for number in 1..count {
            head.push_str(&format!("x-field-{number}: {number}\r\n"));
        }
        head.push_str("\r\n");
        client.write_all(head.as_bytes()).unwrap();
        let mut reader = HttpReader::new(listener.accept().unwrap().0);
        let timeout = Duration::from_secs(5);
        read_request_head(&mut reader, limits, Instant::now() + timeout, timeout)
    }

    #[test]
    fn field_count_limit_holds() {
        let limits = Limits::default();
        let head = head_with_fields(limits.max_headers, &limits).unwrap();
        assert_eq!(head.headers.len(), limits.max_headers);
        assert_eq!(head.headers["x-field-99"], "99");
        assert!(matches!(
            head_with_fields(limits.max_headers + 1, &limits),
            Err(RequestError::HeadersTooLarge(_))
        ));
        let many = Limits {
            max_headers: 150,
            max_head: 64 * 1024,
            ..Limits::default()
        };
        assert_eq!(
            head_with_fields(many.max_headers, &many).unwrap().headers.len(),
            many.max_headers
        );
        assert!(head_with_fields(many.max_headers + 1, &many).is_err());
    }

    fn parsed(text: &str) -> Result<RequestHead, RequestError> {
        parse_request_head(text.as_bytes(), &Limits::default()).map(|head| head.unwrap().0)
    }

    #[test]
    fn one_host_only() {
        assert!(parsed("GET / HTTP/1.1\r\nHost: a\r\n\r\n").is_ok());
        assert!(matches!(
            parsed("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Err(RequestError::Malformed(_))
        ));
        assert!(parsed("GET / HTTP/1.1\r\nHost: a, b\r\n\r\n").is_err());
        assert!(parsed("GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n").is_err());
    }

    #[test]
    fn a_higher_minor_version_is_served_as_1_1() {
        let head = parsed("GET / HTTP/1.2\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(head.version, Version::HTTP_11);
        let (_, length) = parse_request_head(b"GET / HTTP/1.9\r\nHost: a\r\n\r\nNEXT", &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(length, "GET / HTTP/1.9\r\nHost: a\r\n\r\n".len());
        assert!(parsed("GET / HTTP/2.0\r\nHost: a\r\n\r\n").is_err());
        assert!(parse_request_head(b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", &Limits::default()).is_err());
    }

    #[test]
    fn absolute_form_becomes_origin_form_with_host() {
        let mut map = HeaderMap::new();
        let target = origin_form("http://Other.example:81/a?b=1".into(), &mut map).unwrap();
        assert_eq!(target, "/a?b=1");
        assert_eq!(map.get("host").unwrap(), "Other.example:81");
        assert_eq!(origin_form("http://x.example".into(), &mut map).unwrap(), "/");
        assert!(origin_form("ftp://x/".into(), &mut map).is_err());
    }
}
