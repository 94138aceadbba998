//! Writing a response onto a client socket.
//!
//! OS concept: system calls cost. The head and a small body go out in one `write(2)`
//! (with `TCP_NODELAY` set on the socket, two small writes could become two packets).

use std::io::{self, Write};

use http::{HeaderMap, Method, StatusCode, Version, header};

use super::message::Response;

/// Bodies up to this size are copied next to the head and sent with one write.
const COALESCE_LIMIT: usize = 64 * 1024;

/// Writes `response` as the answer to a request with `method`.
///
/// The framing headers are ours to decide: any Content-Length or Transfer-Encoding the
/// handler left is replaced, except for HEAD and 304 answers, whose Content-Length
/// describes the body a GET would have had (RFC 9110 sections 9.3.2 and 15.4.5).
pub fn write_response(
    out: &mut impl Write,
    response: &Response,
    method: &Method,
    client_version: Version,
    keep_alive: bool,
) -> io::Result<()> {
    let status = response.status;
    let body_allowed = body_allowed(method, status);
    let mut head = Vec::with_capacity(256 + response.body.len().min(COALESCE_LIMIT));
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    head.extend_from_slice(b"\r\n");
    write_headers(&mut head, &response.headers);
    if body_allowed {
        head.extend_from_slice(b"content-length: ");
        head.extend_from_slice(response.body.len().to_string().as_bytes());
        head.extend_from_slice(b"\r\n");
    } else if keeps_declared_length(method, status) {
        // A handler may answer HEAD with the GET body (we drop it) or with the GET
        // body's length in the header (a proxied HEAD); either way the length is told.
        let declared = response
            .headers
            .get(header::CONTENT_LENGTH)
            .map(|value| value.as_bytes().to_vec());
        let length = declared
            .or_else(|| (!response.body.is_empty()).then(|| response.body.len().to_string().into_bytes()));
        if let Some(length) = length {
            head.extend_from_slice(b"content-length: ");
            head.extend_from_slice(&length);
            head.extend_from_slice(b"\r\n");
        }
    }
    if !keep_alive {
        head.extend_from_slice(b"connection: close\r\n");
    } else if client_version == Version::HTTP_10 {
        head.extend_from_slice(b"connection: keep-alive\r\n");
    }
    head.extend_from_slice(b"\r\n");
    if body_allowed && response.body.len() <= COALESCE_LIMIT {
        head.extend_from_slice(&response.body);
        out.write_all(&head)?;
    } else {
        out.write_all(&head)?;
        if body_allowed {
            out.write_all(&response.body)?;
        }
    }
    out.flush()
}

/// Writes every header except the framing ones, which `write_response` decides.
fn write_headers(head: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING || name == header::CONNECTION {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
}

/// Whether a response to `method` with `status` carries a body on the wire.
pub fn body_allowed(method: &Method, status: StatusCode) -> bool {
    !(method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

fn keeps_declared_length(method: &Method, status: StatusCode) -> bool {
    method == Method::HEAD || status == StatusCode::NOT_MODIFIED
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(response: &Response, method: Method) -> String {
        let mut out = Vec::new();
        write_response(&mut out, response, &method, Version::HTTP_11, true).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn head_keeps_length_but_sends_no_body() {
        let response = Response::text(StatusCode::OK, "hello");
        let get = written(&response, Method::GET);
        assert!(get.contains("content-length: 6\r\n") && get.ends_with("\r\n\r\nhello\n"));
        let mut for_head = Response::new(StatusCode::OK);
        for_head
            .headers
            .insert(header::CONTENT_LENGTH, "6".parse().unwrap());
        let head = written(&for_head, Method::HEAD);
        assert!(head.contains("content-length: 6\r\n") && head.ends_with("\r\n\r\n"));
    }

    #[test]
    fn no_content_has_no_length() {
        let text = written(&Response::new(StatusCode::NO_CONTENT), Method::GET);
        assert!(!text.contains("content-length"));
    }
}
