//! One request: build it, show it (`-v`), send it, show or save the answer.
//!
//! OS concept: a name from the network becomes a path in our file system. Without
//! `-o`, a body that is not text is saved under the URL's last segment, decoded;
//! `file_name` refuses `.`, `..` and any name with a slash, backslash or NUL, so an
//! answer cannot be written outside the current directory.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use http::{HeaderMap, HeaderValue, Method, Uri, header};

use super::{ClientError, RequestArgs, agent, resolve_url, transport_error};

/// Sent as `User-Agent`, so backends and logs can tell this client apart.
const USER_AGENT: &str = concat!("roundhouse-client/", env!("CARGO_PKG_VERSION"));

/// Name used when the URL ends in `/`, like wget's `index.html` but type-neutral.
const FALLBACK_NAME: &str = "download";

pub fn run(args: &RequestArgs) -> Result<(), ClientError> {
    let uri = resolve_url(args.url.as_deref().unwrap_or("/"))?;
    let (body, body_type) = request_body(args)?;
    let method = match &args.method {
        Some(name) => name
            .to_ascii_uppercase()
            .parse::<Method>()
            .map_err(|error| ClientError::Usage(error.to_string()))?,
        None if body.is_some() => Method::POST,
        None => Method::GET,
    };
    if body.is_some() && method != Method::POST {
        return Err(ClientError::Usage(format!(
            "{method} requests carry no body here; use -X POST with -d or --data-file"
        )));
    }
    let outgoing = Outgoing::new(method, uri, body, body_type);
    if args.verbose {
        print_sent(&outgoing);
    }
    let answer = outgoing.send(&agent())?;
    print_answer(&answer, &outgoing, args.output.as_deref())
}

/// The body and its content type from `-d` or `--data-file`.
fn request_body(args: &RequestArgs) -> Result<(Option<Vec<u8>>, String), ClientError> {
    if let Some(data) = &args.data {
        return Ok((
            Some(data.clone().into_bytes()),
            "text/plain; charset=utf-8".into(),
        ));
    }
    if let Some(path) = &args.data_file {
        let bytes = fs::read(path)
            .map_err(|error| ClientError::Usage(format!("--data-file {}: {error}", path.display())))?;
        let mime = mime_guess::from_path(path).first_or_octet_stream();
        return Ok((Some(bytes), mime.to_string()));
    }
    Ok((None, String::new()))
}

/// A request ready to go, and the text of it exactly as it goes on the wire.
pub struct Outgoing {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Option<Vec<u8>>,
}

impl Outgoing {
    /// Sets every header itself (the agent adds none), so `wire_bytes` can show them.
    pub fn new(method: Method, uri: Uri, body: Option<Vec<u8>>, body_type: String) -> Self {
        let mut headers = HeaderMap::new();
        if let Some(authority) = uri.authority()
            && let Ok(host) = HeaderValue::from_str(authority.as_str())
        {
            headers.insert(header::HOST, host);
        }
        headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        if let Some(body) = &body {
            if let Ok(value) = HeaderValue::from_str(&body_type) {
                headers.insert(header::CONTENT_TYPE, value);
            }
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        Outgoing {
            method,
            uri,
            headers,
            body,
        }
    }

    /// The request line, the headers in the order they are sent, the blank line and
    /// the body: what ureq writes to the socket for this request.
    pub fn wire_bytes(&self) -> Vec<u8> {
        let target = self.uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
        let mut text = format!("{} {target} HTTP/1.1\r\n", self.method).into_bytes();
        for (name, value) in &self.headers {
            text.extend_from_slice(name.as_str().as_bytes());
            text.extend_from_slice(b": ");
            text.extend_from_slice(value.as_bytes());
            text.extend_from_slice(b"\r\n");
        }
        text.extend_from_slice(b"\r\n");
        if let Some(body) = &self.body {
            text.extend_from_slice(body);
        }
        text
    }

    /// Sends the request and reads the whole answer.
    pub fn send(&self, agent: &ureq::Agent) -> Result<Answer, ClientError> {
        let builder = http::Request::builder()
            .method(self.method.clone())
            .uri(self.uri.clone());
        let result = match &self.body {
            Some(body) => builder.body(body.as_slice()).map(|mut request| {
                *request.headers_mut() = self.headers.clone();
                agent.run(request)
            }),
            None => builder.body(()).map(|mut request| {
                *request.headers_mut() = self.headers.clone();
                agent.run(request)
            }),
        };
        let response = result
            .map_err(|error| ClientError::Usage(error.to_string()))?
            .map_err(|error| transport_error(&self.uri, error))?;
        let (parts, mut body) = response.into_parts();
        let body = body
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .map_err(|error| transport_error(&self.uri, error))?;
        Ok(Answer {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body,
        })
    }
}

/// A response, read whole.
pub struct Answer {
    pub status: http::StatusCode,
    pub version: http::Version,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// `-v`: the request, byte for byte, between two marker lines.
fn print_sent(outgoing: &Outgoing) {
    let bytes = outgoing.wire_bytes();
    let authority = outgoing.uri.authority().map(|a| a.as_str()).unwrap_or("?");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "* sending {} bytes to {authority}:", bytes.len());
    let body_is_text = outgoing
        .body
        .as_ref()
        .is_none_or(|body| std::str::from_utf8(body).is_ok());
    if body_is_text {
        let _ = out.write_all(&bytes);
    } else {
        // Raw binary would scramble the terminal; the head is still exact.
        let head_len = bytes.len() - outgoing.body.as_ref().map_or(0, Vec::len);
        let _ = out.write_all(&bytes[..head_len]);
        let _ = write!(out, "[{} bytes of binary body]", bytes.len() - head_len);
    }
    if !bytes.ends_with(b"\n") {
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "* response:");
}

/// Prints the status line and headers, then the body if it is text, or saves it.
fn print_answer(answer: &Answer, outgoing: &Outgoing, output: Option<&Path>) -> Result<(), ClientError> {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:?} {} {}",
        answer.version,
        answer.status.as_str(),
        answer.status.canonical_reason().unwrap_or("")
    );
    for (name, value) in &answer.headers {
        let _ = writeln!(out, "{name}: {}", String::from_utf8_lossy(value.as_bytes()));
    }
    let _ = writeln!(out);
    if answer.body.is_empty() && output.is_none() {
        return Ok(());
    }
    let content_type = answer.header("content-type").unwrap_or("");
    if output.is_none() && is_text(content_type, &answer.body) {
        let _ = out.write_all(&answer.body);
        if !answer.body.ends_with(b"\n") {
            let _ = writeln!(out);
        }
        return Ok(());
    }
    let path = output.map_or_else(|| PathBuf::from(file_name(&outgoing.uri)), Path::to_path_buf);
    fs::write(&path, &answer.body)
        .map_err(|error| ClientError::Usage(format!("cannot write {}: {error}", path.display())))?;
    let kind = if content_type.is_empty() {
        "no type"
    } else {
        content_type
    };
    let _ = writeln!(
        out,
        "* saved the {} byte body ({kind}) to {}",
        answer.body.len(),
        path.display()
    );
    Ok(())
}

/// Whether a body is for reading on a terminal: text, JSON, XML, JavaScript; or, with
/// no type given, anything that is valid UTF-8.
fn is_text(content_type: &str, body: &[u8]) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence.is_empty() {
        return std::str::from_utf8(body).is_ok();
    }
    essence.starts_with("text/")
        || essence.ends_with("json")
        || essence.ends_with("xml")
        || essence.ends_with("javascript")
}

/// The URL's last path segment, decoded, as a file name in the current directory; a
/// name that could point elsewhere (`..`, containing a slash) falls back to a fixed one.
fn file_name(uri: &Uri) -> String {
    let last = uri.path().rsplit('/').next().unwrap_or("");
    let decoded = crate::lab::sim_backend::apps::percent::decode(last)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_default();
    if decoded.is_empty() || decoded == "." || decoded == ".." || decoded.contains(['/', '\\', '\0']) {
        FALLBACK_NAME.to_string()
    } else {
        decoded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_bytes_show_the_whole_message() {
        let uri: Uri = "http://127.0.0.1:8080/calc?x=1".parse().unwrap();
        let outgoing = Outgoing::new(Method::POST, uri, Some(b"3 + 4".to_vec()), "text/plain".into());
        let text = String::from_utf8(outgoing.wire_bytes()).unwrap();
        assert_eq!(
            text,
            format!(
                "POST /calc?x=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nuser-agent: {USER_AGENT}\r\n\
                 accept: */*\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\n3 + 4"
            )
        );
    }

    #[test]
    fn picks_safe_file_names() {
        let name = |url: &str| file_name(&url.parse().unwrap());
        assert_eq!(name("http://h/site/roundhouse.png"), "roundhouse.png");
        assert_eq!(name("http://h/site/a%20b.png?x=1"), "a b.png");
        assert_eq!(name("http://h/site/"), FALLBACK_NAME);
        assert_eq!(name("http://h/site/%2e%2e"), FALLBACK_NAME);
        assert_eq!(name("http://h/a%2fb"), FALLBACK_NAME);
    }

    #[test]
    fn text_types_are_printed() {
        assert!(is_text("application/json", b"{}"));
        assert!(is_text("text/html; charset=utf-8", b""));
        assert!(!is_text("image/png", b"abc"));
        assert!(is_text("", b"plain"));
        assert!(!is_text("", &[0xff, 0xfe]));
    }
}
