//! Writing a response onto a client socket.
//!
//! OS concept: system calls cost. The head and a small body go out in one `write(2)`
//! (with `TCP_NODELAY` set on the socket, two small writes could become two packets).
//! A streamed body goes out a piece at a time (`BodyPump`), whoever does the writing.

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
    let (mut head, body) = response_head(response, method, client_version, keep_alive);
    match body {
        BodyPlan::Stream(mut pump) => {
            out.write_all(&head)?;
            let mut piece = Vec::with_capacity(PIECE + 32);
            while pump.next_piece(&mut piece)? {
                out.write_all(&piece)?;
            }
        }
        BodyPlan::Bytes if response.body.len() <= COALESCE_LIMIT => {
            head.extend_from_slice(&response.body);
            out.write_all(&head)?;
        }
        BodyPlan::Bytes => {
            out.write_all(&head)?;
            out.write_all(&response.body)?;
        }
        BodyPlan::None => out.write_all(&head)?,
    }
    out.flush()
}

/// What follows a response head on the wire.
pub enum BodyPlan {
    None,
    /// `response.body`.
    Bytes,
    /// A streamed body, read and framed a piece at a time.
    Stream(BodyPump),
}

/// The head of `response` as bytes (for a small body, with room to append it), and what
/// follows it. A front that must not block (the event loop) writes the head and pumps
/// a streamed body itself; `write_response` does both at once on a blocking socket.
pub fn response_head(
    response: &Response,
    method: &Method,
    client_version: Version,
    keep_alive: bool,
) -> (Vec<u8>, BodyPlan) {
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
    let plan = match stream {
        Some(stream) => BodyPlan::Stream(BodyPump {
            reader: stream.take(),
            length: stream.length,
            chunked,
            copied: 0,
            finished: false,
        }),
        None if body_allowed && !response.body.is_empty() => BodyPlan::Bytes,
        None => BodyPlan::None,
    };
    (head, plan)
}

fn push_header(head: &mut Vec<u8>, name: &str, value: &[u8]) {
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// The most body bytes read from a stream for one piece.
pub const PIECE: usize = 64 * 1024;

/// A streamed body on its way out: read from its source a piece at a time, framed as
/// chunks when `chunked`. Reading may block (the source is a backend), writing is the
/// caller's: a blocking socket (`write_response`), or a worker's non-blocking send that
/// hands what the socket did not take back to an event loop (`proxy::pool::relay`).
pub struct BodyPump {
    reader: Option<Box<dyn Read + Send>>,
    length: Option<u64>,
    chunked: bool,
    copied: u64,
    finished: bool,
}

impl BodyPump {
    /// Replaces `piece` with the next framed bytes to send; false once the body (and
    /// its last chunk) is out. A body that ends before its declared length is an
    /// error: the client must not mistake a truncated body for a whole one, so the
    /// connection is closed.
    pub fn next_piece(&mut self, piece: &mut Vec<u8>) -> io::Result<bool> {
        piece.clear();
        if self.finished {
            return Ok(false);
        }
        let reader = self
            .reader
            .as_mut()
            .ok_or_else(|| io::Error::other("response body stream already consumed"))?;
        let header_room = if self.chunked { 16 } else { 0 };
        piece.resize(header_room + PIECE, 0);
        let read = loop {
            match reader.read(&mut piece[header_room..]) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if read == 0 {
            self.finished = true;
            piece.clear();
            if let Some(length) = self.length
                && self.copied != length
            {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("body ended after {} of {length} bytes", self.copied),
                ));
            }
            if self.chunked {
                piece.extend_from_slice(b"0\r\n\r\n");
                return Ok(true);
            }
            return Ok(false);
        }
        self.copied += read as u64;
        piece.truncate(header_room + read);
        if self.chunked {
            // The chunk-size line goes right before the data, in the room left for it.
            let size = format!("{read:x}\r\n");
            let start = header_room - size.len();
            piece[start..header_room].copy_from_slice(size.as_bytes());
            piece.drain(..start);
            piece.extend_from_slice(b"\r\n");
        }
        Ok(true)
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
