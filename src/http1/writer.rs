//! Writing a response onto a client socket.
//!
//! OS concept: system calls cost. The head and a small body go out in one `write(2)`
//! (with `TCP_NODELAY` set on the socket, two small writes could become two packets).

use std::io::{self, Read, Write};

use http::{HeaderMap, Method, StatusCode, Version, header};

use super::message::Response;

/// Bodies up to this size are copied next to the head and sent with one write.
pub const COALESCE_LIMIT: usize = 64 * 1024;

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
    let stream = response.stream.as_ref().filter(|_| body_allowed);
    // Chunked only for HTTP/1.1 clients; the server closes HTTP/1.0 connections
    // after a body of unknown length instead.
    let chunked = stream.is_some_and(|stream| stream.length.is_none()) && client_version == Version::HTTP_11;
    if let Some(stream) = stream {
        if let Some(length) = stream.length {
            push_header(&mut head, "content-length", length.to_string().as_bytes());
        } else if chunked {
            push_header(&mut head, "transfer-encoding", b"chunked");
        }
    } else if body_allowed {
        push_header(
            &mut head,
            "content-length",
            response.body.len().to_string().as_bytes(),
        );
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
            push_header(&mut head, "content-length", &length);
        }
    }
    if status == StatusCode::SWITCHING_PROTOCOLS {
        // The connection goes on in the protocol the Upgrade field names.
        head.extend_from_slice(b"connection: upgrade\r\n");
    } else if !keep_alive {
        head.extend_from_slice(b"connection: close\r\n");
    } else if client_version == Version::HTTP_10 {
        head.extend_from_slice(b"connection: keep-alive\r\n");
    }
    head.extend_from_slice(b"\r\n");
    if let Some(stream) = stream {
        out.write_all(&head)?;
        let reader = stream
            .take()
            .ok_or_else(|| io::Error::other("response body stream already consumed"))?;
        copy_body(reader, out, stream.length, chunked)?;
    } else if body_allowed && response.body.len() <= COALESCE_LIMIT {
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

fn push_header(head: &mut Vec<u8>, name: &str, value: &[u8]) {
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// Copies a streamed body through one 64 KiB buffer, as chunks when `chunked`. A body
/// that ends before its declared length is an error: the client must not mistake a
/// truncated body for a whole one, so the connection is closed.
fn copy_body(
    mut reader: Box<dyn Read + Send>,
    out: &mut impl Write,
    length: Option<u64>,
    chunked: bool,
) -> io::Result<()> {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut copied = 0u64;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        copied += read as u64;
        if chunked {
            out.write_all(format!("{read:x}\r\n").as_bytes())?;
            out.write_all(&buffer[..read])?;
            out.write_all(b"\r\n")?;
        } else {
            out.write_all(&buffer[..read])?;
        }
    }
    if chunked {
        out.write_all(b"0\r\n\r\n")?;
    }
    match length {
        Some(length) if copied != length => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("body ended after {copied} of {length} bytes"),
        )),
        _ => Ok(()),
    }
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
