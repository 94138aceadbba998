//! Reading a request head within limits, and deciding how its body is framed.
//!
//! OS concept: defending a shared resource. Every byte a client sends lands in this
//! process's memory, so every length is capped before it is stored: the request target
//! (414), the header section and its field count (431), the body (413). The limits are
//! nginx's defaults in spirit: `large_client_header_buffers 4 8k`.

use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue, Method, Version, header};

use super::error::RequestError;
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
    let buffered = reader.buffered();
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
    let mut headers = parsed_headers(parsed.headers).map_err(RequestError::Malformed)?;
    let mut target = target.to_string();
    reader.consume(head_len);

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
    Ok(Some(RequestHead {
        method,
        target,
        version,
        headers,
        framing,
    }))
}

/// The header fields httparse found, as a `HeaderMap`; a name or value that is not
/// valid HTTP is reported as a sentence. Shared with the forwarding client, which reads
/// response heads the same way.
pub fn parsed_headers(fields: &[httparse::Header<'_>]) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::with_capacity(fields.len());
    for field in fields {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| format!("bad header name {:?}", field.name))?;
        let value =
            HeaderValue::from_bytes(field.value).map_err(|_| format!("bad value for header {name}"))?;
        headers.append(name, value);
    }
    Ok(headers)
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

/// The Content-Length, if any; several that disagree (or do not parse) are an error.
pub fn content_length(headers: &HeaderMap) -> Result<Option<u64>, RequestError> {
    let mut found: Option<u64> = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        let text = value
            .to_str()
            .map_err(|_| RequestError::Smuggling("non-text Content-Length".into()))?;
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(RequestError::Smuggling(format!("bad Content-Length {text:?}")));
            }
            let length: u64 = part
                .parse()
                .map_err(|_| RequestError::Smuggling(format!("bad Content-Length {text:?}")))?;
            if found.is_some_and(|earlier| earlier != length) {
                return Err(RequestError::Smuggling("differing Content-Length values".into()));
            }
            found = Some(length);
        }
    }
    Ok(found)
}

/// True when Transfer-Encoding is exactly one `chunked` coding.
pub fn is_only_chunked(headers: &HeaderMap) -> bool {
    let codings: Vec<String> = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| value.to_str().unwrap_or("?").split(','))
        .map(|coding| coding.trim().to_ascii_lowercase())
        .filter(|coding| !coding.is_empty())
        .collect();
    codings == ["chunked"]
}

/// Whether the client wants the connection kept open after this exchange.
pub fn wants_keep_alive(version: Version, headers: &HeaderMap) -> bool {
    let tokens = connection_tokens(headers);
    if tokens.iter().any(|token| token == "close") {
        return false;
    }
    version == Version::HTTP_11 || tokens.iter().any(|token| token == "keep-alive")
}

/// The lower-cased tokens of every Connection header.
pub fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    list_items(headers, header::CONNECTION)
        .map(str::to_ascii_lowercase)
        .collect()
}

/// The items of a comma-separated list header (RFC 9110 section 5.6.1), over every
/// field of that name, trimmed, empty items dropped; a field that is not text is
/// skipped. Connection, Cache-Control, Vary and If-None-Match are all such lists, and
/// a sender may split one list over several fields or join several into one, so every
/// reader of a list header goes through here.
pub fn list_items(headers: &HeaderMap, name: HeaderName) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// A header map from (name, value) pairs, for tests.
#[cfg(test)]
pub fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

#[cfg(test)]
mod tests {
    use super::header_map as headers;
    use super::*;

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

    #[test]
    fn keep_alive_follows_version_and_connection_header() {
        assert!(wants_keep_alive(Version::HTTP_11, &HeaderMap::new()));
        assert!(!wants_keep_alive(Version::HTTP_10, &HeaderMap::new()));
        assert!(wants_keep_alive(
            Version::HTTP_10,
            &headers(&[("connection", "Keep-Alive")])
        ));
        assert!(!wants_keep_alive(
            Version::HTTP_11,
            &headers(&[("connection", "foo, close")])
        ));
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
