//! roundhouse's own minimal HTTP/1.1 client, the one the workers forward with.
//!
//! OS concept: blocking I/O with timeouts, and the cost of system calls. A request to
//! a backend is one `write(2)` of head and body on a kept-alive socket and, for a small
//! answer, one `read(2)`. Socket options are set once per connection, not per request
//! (`TCP_NODELAY`, the write timeout; the read timeout only when it changes). ureq, a
//! fine general client, probes each pooled connection and sets its timeouts again on
//! every call; in the forwarding hot path that cost a third of the throughput (see
//! docs/decisions.md). ureq stays where a general client belongs.
//!
//! The hard part of keep-alive is the race every proxy has: the backend may close an
//! idle connection just as we send on it. Like Go's `net/http` Transport, a request
//! that failed on a reused connection before a single byte of the answer arrived is
//! sent again, once, on a fresh connection when it is idempotent (RFC 9110 section
//! 9.2.2: repeating it does no harm). A request that is not idempotent is never sent
//! twice; instead, before it goes out on a reused connection, the client checks the
//! connection is still open (nginx keeps the same rule: `proxy_next_upstream` skips
//! non-idempotent requests).

use std::io::Read;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http::{HeaderMap, Method, StatusCode, header};
use parking_lot::Mutex;

use super::UpstreamError;
use super::conn_pool::{BackendConn, with_worker_pool};
use super::response::{from_read_error, read_head, read_response_body};
use super::streamed::UpstreamBody;
use crate::http1::Response;
use crate::http1::head::Framing;
use crate::http1::interim::Interim;
use crate::http1::spool::{BodyStream, SPOOL_THRESHOLD, SpooledBody};
use crate::http1::upgrade::Upgrade;
use crate::proxy::tls::BackendTls;
use crate::proxy::tls::backend::HandshakeError;
use crate::proxy::tunnel::{Slot, Tunnel};

/// Response bodies up to this size are read whole; larger ones are streamed.
const STREAM_THRESHOLD: u64 = SPOOL_THRESHOLD as u64;

/// Timeouts for talking to backends.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamTimeouts {
    /// Longest wait for a TCP connection to a backend (`--connect-timeout`).
    pub connect: Duration,
    /// Longest wait for the backend's answer head, and for each read or write after
    /// that (`--timeout`).
    pub response: Duration,
}

/// Everything the client can be tuned with.
#[derive(Debug, Clone, Copy)]
pub struct ClientConfig {
    pub timeouts: UpstreamTimeouts,
    /// A pooled connection idle longer than this is closed rather than reused. Shorter
    /// than the 5 s keep-alive timeout of Node.js and Apache, the shortest common
    /// backend defaults, so the backend rarely closes a connection before we do.
    pub max_idle: Duration,
    /// Largest response body accepted; a larger one gets 502. Bodies are held in
    /// memory whole, so this bounds what one worker can allocate.
    pub max_response_body: u64,
}

impl ClientConfig {
    pub fn new(timeouts: UpstreamTimeouts) -> Self {
        ClientConfig {
            timeouts,
            max_idle: Duration::from_secs(4),
            max_response_body: 1024 * 1024 * 1024,
        }
    }
}

/// The parts of a request the client sends. Borrowed, so forwarding copies nothing.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingRequest<'a> {
    pub method: &'a Method,
    /// Origin form: path and query.
    pub target: &'a str,
    /// Sent as given, except the framing headers (Content-Length, Transfer-Encoding,
    /// Connection), which are the client's to write. Host defaults to the backend.
    pub headers: &'a HeaderMap,
    /// A body small enough to hold in memory (empty when `spooled` is set).
    pub body: &'a [u8],
    /// A large body kept in a temporary file by the front; streamed from there.
    pub spooled: Option<&'a SpooledBody>,
    /// Where the backend's interim responses go (`front::interim`), if anywhere.
    pub interim: Option<&'a Interim>,
    /// For a request that asks to switch protocols: the tunnel place reserved for it,
    /// taken if the backend answers `101`. `None`: a `101` is refused. The mutex protects
    /// that one taking (the request is shared by reference), held only to `take`.
    pub tunnel: Option<&'a Mutex<Option<Slot>>>,
}

/// Where a request goes: `host:port`, over TLS or not.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub authority: &'a str,
    pub tls: bool,
}

impl Target<'_> {
    /// The pool's key: the same address over http and https are different backends.
    fn key(&self) -> std::borrow::Cow<'_, str> {
        if self.tls {
            format!("https://{}", self.authority).into()
        } else {
            self.authority.into()
        }
    }
}

impl OutgoingRequest<'_> {
    fn body_length(&self) -> u64 {
        self.spooled
            .map_or(self.body.len() as u64, |spooled| spooled.length)
    }
}

impl UpstreamError {
    /// Whether the backend may have received (and acted on) the request. Only a
    /// connection that was never established proves it did not: then even a POST can
    /// safely go to another backend.
    pub fn may_have_reached_backend(&self) -> bool {
        !matches!(
            self,
            UpstreamError::Connect(_) | UpstreamError::ConnectTimeout(_) | UpstreamError::Tls(_)
        )
    }
}

/// A request body up to this size goes out in the same `write(2)` as the head.
const COALESCE_LIMIT: usize = 64 * 1024;

/// Sends requests to backends over each worker's own keep-alive connections.
#[derive(Debug, Clone)]
pub struct ForwardClient {
    config: ClientConfig,
    /// TLS to https:// backends: given (`--backend-ca`), or made from the system's
    /// roots on the first https connection (reading them costs a few milliseconds,
    /// which a balancer with only http backends need not pay).
    tls: Arc<OnceLock<Result<BackendTls, String>>>,
}

/// How one attempt on one connection failed.
struct Failure {
    error: UpstreamError,
    /// The connection was a reused one and ended before any byte of the answer came:
    /// the signature of a backend that closed it while it sat in our pool.
    stale: bool,
}

impl ForwardClient {
    pub fn new(timeouts: UpstreamTimeouts) -> Self {
        ForwardClient::with_config(ClientConfig::new(timeouts))
    }

    pub fn with_config(config: ClientConfig) -> Self {
        ForwardClient {
            config,
            tls: Arc::new(OnceLock::new()),
        }
    }

    /// Verifies https backends with `tls` (built from `--backend-ca`).
    pub fn with_backend_tls(self, tls: BackendTls) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(Ok(tls));
        ForwardClient {
            tls: Arc::new(cell),
            ..self
        }
    }

    /// Sends `request` to the backend at `authority` (`host:port`) over plain TCP.
    pub fn send(&self, authority: &str, request: &OutgoingRequest<'_>) -> Result<Response, UpstreamError> {
        self.send_to(
            Target {
                authority,
                tls: false,
            },
            request,
        )
    }

    /// Sends `request` to `target` and reads the whole answer. Uses, and refills, the
    /// calling thread's connection pool.
    pub fn send_to(
        &self,
        target: Target<'_>,
        request: &OutgoingRequest<'_>,
    ) -> Result<Response, UpstreamError> {
        let key = target.key();
        let authority = &*key;
        let idempotent = request.method.is_idempotent();
        let pooled = with_worker_pool(|pool| pool.take(authority, self.config.max_idle));
        // A request we may not repeat only goes out on a connection known to be open.
        let pooled = pooled.filter(|conn| idempotent || !conn.closed_by_peer());
        if let Some(conn) = pooled {
            match self.exchange(authority, target.authority, conn, request) {
                Ok(response) => return Ok(response),
                Err(failure) if failure.stale && idempotent => {
                    log::debug!("{authority}: pooled connection was closed; retrying on a new one");
                    with_worker_pool(|pool| pool.clear(authority));
                }
                Err(failure) => return Err(failure.error),
            }
        }
        let conn = self.connect(target)?;
        self.exchange(authority, target.authority, conn, request)
            .map_err(|failure| failure.error)
    }

    /// Opens a new connection, trying each address the authority resolves to; for an
    /// https target, runs the TLS handshake on it within the connect timeout.
    fn connect(&self, target: Target<'_>) -> Result<BackendConn, UpstreamError> {
        let started = Instant::now();
        let socket = self.connect_tcp(target.authority)?;
        if !target.tls {
            return Ok(BackendConn::new(socket));
        }
        let tls = self
            .tls
            .get_or_init(|| BackendTls::new(None).map_err(|error| error.to_string()))
            .as_ref()
            .map_err(|error| UpstreamError::Tls(error.clone()))?;
        let host = target
            .authority
            .rsplit_once(':')
            .map_or(target.authority, |(host, _)| host);
        let session = tls
            .connect(socket, host, started + self.config.timeouts.connect)
            .map_err(|error| match error {
                // A handshake that did not finish in time is a connect timeout (504, as
                // nginx answers an upstream SSL handshake timeout), not a trust problem.
                HandshakeError::Io(io)
                    if matches!(
                        io.kind(),
                        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                    ) =>
                {
                    UpstreamError::ConnectTimeout(format!("TLS handshake with {}: {io}", target.authority))
                }
                other => UpstreamError::Tls(format!("TLS handshake with {}: {other}", target.authority)),
            })?;
        Ok(BackendConn::over(Arc::new(session)))
    }

    /// Opens a TCP connection, trying each address the authority resolves to.
    fn connect_tcp(&self, authority: &str) -> Result<TcpStream, UpstreamError> {
        // An IP literal is parsed, not looked up; a name is resolved on each new
        // connection only, never per request.
        let addresses: Vec<SocketAddr> = authority
            .to_socket_addrs()
            .map_err(|error| UpstreamError::Connect(format!("cannot resolve {authority}: {error}")))?
            .collect();
        let mut last_error = UpstreamError::Connect(format!("{authority} resolves to no address"));
        for address in addresses {
            match TcpStream::connect_timeout(&address, self.config.timeouts.connect) {
                Ok(stream) => {
                    // Our request head and body leave in one write: send it now, do not
                    // wait (Nagle) for more that will never come. Set once per socket.
                    let _ = stream.set_nodelay(true);
                    stream
                        .set_write_timeout(Some(self.config.timeouts.response))
                        .map_err(|error| UpstreamError::Connect(error.to_string()))?;
                    return Ok(stream);
                }
                Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {
                    last_error = UpstreamError::ConnectTimeout(format!(
                        "no connection to {address} within {:?}",
                        self.config.timeouts.connect
                    ));
                }
                Err(error) => last_error = UpstreamError::Connect(format!("{address}: {error}")),
            }
        }
        Err(last_error)
    }

    /// One request and its answer on one connection; a connection that can carry
    /// another request goes back to the pool.
    /// `key` names the connection pool (`https://` marks TLS); `host` is the backend's
    /// own `host:port`, the Host of a request that came without one.
    fn exchange(
        &self,
        key: &str,
        host: &str,
        mut conn: BackendConn,
        request: &OutgoingRequest<'_>,
    ) -> Result<Response, Failure> {
        let reused = conn.requests > 0;
        conn.requests += 1;
        let broken = |error: std::io::Error| {
            let timed_out = matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            );
            Failure {
                stale: reused && !timed_out,
                error: if timed_out {
                    UpstreamError::Timeout("backend did not take the request in time".into())
                } else {
                    UpstreamError::Broken(format!("sending the request: {error}"))
                },
            }
        };
        write_request(&mut conn.write_buffer, host, request);
        let deadline = Instant::now() + self.config.timeouts.response;
        let stream = Arc::clone(conn.reader.duplex());
        stream.write_all(&conn.write_buffer).map_err(broken)?;
        if request.body.len() > COALESCE_LIMIT {
            stream.write_all(request.body).map_err(broken)?;
        }
        if let Some(spooled) = request.spooled {
            let mut body = spooled.reader().map_err(broken)?;
            std::io::copy(&mut body, &mut &*stream).map_err(broken)?;
        }
        // Wait for the first byte of the answer here, where a silent close on a reused
        // connection can still be told apart from a failure in mid-answer.
        match conn.reader.fill(deadline) {
            Ok(0) => {
                return Err(Failure {
                    stale: reused,
                    error: UpstreamError::Broken("backend closed the connection without answering".into()),
                });
            }
            Ok(_) => {}
            Err(error) => {
                let error = from_read_error(error);
                return Err(Failure {
                    stale: reused && matches!(error, UpstreamError::Broken(_)),
                    error,
                });
            }
        }
        // From here on part of the answer has arrived: a failure cuts it short, and is
        // never retried. A head that stalls is still a timeout to the client (504, as
        // nginx's "upstream timed out while reading response header"); a body that
        // stalls is an answer cut short (502).
        let not_stale = |error| Failure {
            error: cut_short(error),
            stale: false,
        };
        let upgrade = request.tunnel.is_some();
        let head = read_head(
            &mut conn.reader,
            request.method,
            deadline,
            request.interim,
            upgrade,
        )
        .map_err(|error| Failure {
            error: match error {
                UpstreamError::Timeout(what) => UpstreamError::Stalled(what),
                other => cut_short(other),
            },
            stale: false,
        })?;
        let mut response = Response::new(head.status);
        response.headers = head.headers;
        if response.status == StatusCode::SWITCHING_PROTOCOLS {
            // The connection is the backend's side of a tunnel now, never pooled again.
            let slot = request.tunnel.and_then(|slot| slot.lock().take());
            let slot = slot.ok_or_else(|| not_stale(UpstreamError::Protocol("a second 101".into())))?;
            let (backend, from_backend) = conn.reader.into_parts();
            let tunnel = Tunnel {
                backend,
                from_backend,
                slot,
            };
            response.upgrade = Some(Upgrade::new(Box::new(tunnel)));
            return Ok(response);
        }
        let small = match head.framing {
            Framing::None => true,
            Framing::ContentLength(length) => length <= STREAM_THRESHOLD,
            Framing::Chunked | Framing::UntilClose => false,
        };
        if small {
            // The common case: a body of known, small size, read whole in place.
            response.body = read_response_body(
                &mut conn.reader,
                head.framing,
                self.config.max_response_body,
                self.config.timeouts.response,
            )
            .map_err(not_stale)?;
            // Bytes after the answer belong to nothing we asked: the connection is unusable.
            if head.keep_alive && conn.reader.buffered().is_empty() {
                with_worker_pool(|pool| pool.put(key, conn));
            }
            return Ok(response);
        }
        // Large, or of unknown length: read up to the threshold; if the body goes on,
        // hand the rest over as a stream that carries the connection with it.
        let declared = match head.framing {
            Framing::ContentLength(length) => Some(length),
            _ => None,
        };
        let mut body = UpstreamBody::new(conn, head.framing, self.config.timeouts.response);
        let mut prefix = Vec::new();
        (&mut body)
            .take(STREAM_THRESHOLD + 1)
            .read_to_end(&mut prefix)
            .map_err(|error| not_stale(UpstreamError::Incomplete(error.to_string())))?;
        if prefix.len() as u64 <= STREAM_THRESHOLD {
            if let Some(conn) = body.into_reusable_connection().filter(|_| head.keep_alive) {
                with_worker_pool(|pool| pool.put(key, conn));
            }
            response.body = prefix;
        } else {
            let rest = std::io::Cursor::new(prefix).chain(body);
            response.stream = Some(BodyStream::new(Box::new(rest), declared));
        }
        Ok(response)
    }
}

/// A break or stall after the answer began is `Incomplete`: the backend did act.
fn cut_short(error: UpstreamError) -> UpstreamError {
    match error {
        UpstreamError::Broken(what) | UpstreamError::Timeout(what) => UpstreamError::Incomplete(what),
        other => other,
    }
}

/// Writes the request head (and a small body) into `out`, ready for one `write(2)`.
fn write_request(out: &mut Vec<u8>, authority: &str, request: &OutgoingRequest<'_>) {
    out.clear();
    out.extend_from_slice(request.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(request.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !request.headers.contains_key(header::HOST) {
        // HTTP/1.1 requires a Host; an HTTP/1.0 client may not have sent one.
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(authority.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if request.tunnel.is_some() && request.headers.contains_key(header::UPGRADE) {
        // The one hop-by-hop field we send on: asking the backend to switch protocols.
        out.extend_from_slice(b"connection: upgrade\r\n");
    }
    for (name, value) in request.headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING || name == header::CONNECTION {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // The body is whole, so its length is known: always Content-Length, never chunked.
    // Methods that normally carry a body state even an empty one, as nginx does.
    let expects_body = matches!(*request.method, Method::POST | Method::PUT | Method::PATCH);
    if request.body_length() > 0 || expects_body {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(request.body_length().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if request.body.len() <= COALESCE_LIMIT {
        out.extend_from_slice(request.body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(method: Method, headers: &[(&str, &str)], body: &[u8]) -> String {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let request = OutgoingRequest {
            method: &method,
            target: "/a?b=1",
            headers: &map,
            body,
            spooled: None,
            interim: None,
            tunnel: None,
        };
        let mut out = Vec::new();
        write_request(&mut out, "10.0.0.1:81", &request);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn writes_head_with_our_framing() {
        let text = written(
            Method::POST,
            &[("host", "example.test"), ("content-length", "999"), ("x-a", "1")],
            b"hello",
        );
        assert_eq!(
            text,
            "POST /a?b=1 HTTP/1.1\r\nhost: example.test\r\nx-a: 1\r\ncontent-length: 5\r\n\r\nhello"
        );
    }

    #[test]
    fn adds_host_and_no_length_for_bodiless_get() {
        let text = written(Method::GET, &[], b"");
        assert_eq!(text, "GET /a?b=1 HTTP/1.1\r\nhost: 10.0.0.1:81\r\n\r\n");
        let empty_post = written(Method::POST, &[("host", "h")], b"");
        assert!(empty_post.ends_with("content-length: 0\r\n\r\n"));
    }
}
