//! Interim responses (`102 Processing`, `103 Early Hints`, ...) from a backend, passed on
//! to the client as they arrive, before the final answer (RFC 9110 section 15.2: "A proxy
//! MUST forward 1xx responses unless the proxy itself requested the generation of the
//! 1xx response"; the `100 Continue` the front sends itself is the exception).
//!
//! OS concept: writing to a socket from a thread that must not block. The worker reading
//! the backend holds an `Interim` for its request, a handle on the client's socket; it
//! sends each interim head with one non-blocking `send(2)`, so a client that does not
//! read never stalls a worker. Whatever the socket's buffer does not take is kept and
//! written, ahead of the final answer, by whichever thread writes that answer (the
//! connection thread, or the worker itself in `direct`). Nothing is ever cached: the
//! interim heads never enter a `Response`.

use std::fmt;
use std::io;
use std::net::TcpStream;
use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use parking_lot::Mutex;
use socket2::SockRef;

/// At most this many interim bytes wait for a slow client; a backend that sends more
/// before its answer loses the rest (they are advisory; the final answer is not).
const MAX_UNSENT: usize = 16 * 1024;

/// The way to the client for one request's interim responses.
pub struct Interim {
    /// The plain socket to send on; `None` over TLS, where only the connection's own
    /// thread may write (one TLS session, one writer), so every interim head waits
    /// for it and goes out just before the final answer.
    stream: Option<Arc<TcpStream>>,
    /// Protects what is not yet written and whether the final answer has begun. Never
    /// contended in practice: the worker sends interim heads strictly before it hands
    /// over the final answer, and the final writer takes the rest only after that. Held
    /// for one non-blocking send at most, which cannot wait.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    unsent: Vec<u8>,
    /// The final answer is being written: interim responses may no longer be sent.
    closed: bool,
}

impl Interim {
    pub fn new(stream: Arc<TcpStream>) -> Arc<Interim> {
        Arc::new(Interim {
            stream: Some(stream),
            state: Mutex::new(State::default()),
        })
    }

    /// An `Interim` that sends nothing itself: what it is given is written by the
    /// final answer's writer, ahead of that answer (for TLS connections).
    pub fn held() -> Arc<Interim> {
        Arc::new(Interim {
            stream: None,
            state: Mutex::new(State::default()),
        })
    }

    /// Passes one interim response on (its hop-by-hop fields already removed).
    pub fn send(&self, status: StatusCode, headers: &HeaderMap) {
        if !status.is_informational() {
            return;
        }
        let mut head = format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_str(),
            status.canonical_reason().unwrap_or("Informational")
        )
        .into_bytes();
        for (name, value) in headers {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let mut state = self.state.lock();
        if state.closed || state.unsent.len() + head.len() > MAX_UNSENT {
            return;
        }
        let Some(stream) = self.stream.as_ref().filter(|_| state.unsent.is_empty()) else {
            state.unsent.extend_from_slice(&head);
            return;
        };
        match SockRef::from(&**stream).send_with_flags(&head, libc::MSG_DONTWAIT) {
            Ok(sent) => state.unsent.extend_from_slice(&head[sent..]),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => state.unsent.extend_from_slice(&head),
            // The client is gone; its final answer will fail the same way.
            Err(_) => state.closed = true,
        }
    }

    /// Ends the interim phase: returns the bytes still to be written before the final
    /// answer (usually none).
    pub fn finish(&self) -> Vec<u8> {
        let mut state = self.state.lock();
        state.closed = true;
        std::mem::take(&mut state.unsent)
    }
}

impl fmt::Debug for Interim {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Interim")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    #[test]
    fn interim_heads_go_out_at_once_and_none_after_finish() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let interim = Interim::new(Arc::new(server));
        let mut headers = HeaderMap::new();
        headers.insert("link", "</a.css>; rel=preload".parse().unwrap());
        interim.send(StatusCode::from_u16(103).unwrap(), &headers);
        interim.send(StatusCode::OK, &headers);
        let expected = "HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n";
        let mut read = vec![0; expected.len()];
        client.read_exact(&mut read).unwrap();
        assert_eq!(String::from_utf8(read).unwrap(), expected);
        assert!(interim.finish().is_empty());
        interim.send(StatusCode::PROCESSING, &HeaderMap::new());
        assert!(
            interim.finish().is_empty(),
            "nothing is sent after the final answer began"
        );
    }
}
