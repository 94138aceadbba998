//! The HTTP/1.1 server: an acceptor thread and one thread per connection.
//!
//! OS concept: threads and blocking sockets, the classic server model. The acceptor
//! blocks in `accept(2)`; each connection gets its own thread that blocks in `read(2)`.
//! The model is simple and, bounded by `--max-connections` and socket timeouts, safe:
//! a connection over the limit gets a 503 at once, a stalled client is closed after the
//! client timeout, an idle keep-alive connection after the keep-alive timeout.
//!
//! The balancer's front and every simulated backend run this same server; only the
//! `Handler` differs.
//!
//! With `--tls-cert`, each connection thread first runs the TLS handshake itself
//! (`crate::proxy::tls`), bounded by the client timeout like a slow request head: a
//! handshake costs public-key work and round trips, and none of it may hold a worker.
//! After a `101 Switching Protocols` the connection thread stops speaking HTTP and
//! hands the connection to whatever the response says takes it over (a tunnel).

use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use http::{Method, StatusCode, Version, header};
use parking_lot::{Condvar, Mutex};

use crate::http1::body::read_body_into;
use crate::http1::error::RequestError;
use crate::http1::fields::wants_keep_alive;
use crate::http1::head::{Framing, Limits, read_request_head};
use crate::http1::interim::Interim;
use crate::http1::message::{Request, Response};
use crate::http1::reader::HttpReader;
use crate::http1::spool::{SPOOL_THRESHOLD, Spool};
use crate::http1::transport::Duplex;
use crate::http1::writer::write_response;
use crate::proxy::pool::direct::{DirectAnswer, Turn, keeps_connection};
use crate::proxy::tls::TlsAcceptor;
use crate::proxy::tls::acceptor::HandshakeFailure;
use crate::sys::listen::{accept_with_backoff, wake_acceptor, wake_periodically};

/// What a server does with each request. Called on the connection's own thread, so a
/// slow handler delays only its own client.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, request: Request) -> Response;

    /// Whether this request may be answered by another thread that writes to the client
    /// itself (`hand_off`).
    fn can_hand_off(&self, _request: &Request) -> bool {
        false
    }

    /// Hands the request to a thread that answers through `direct` and returns `None`;
    /// or, when it cannot, returns the answer for the connection thread to write.
    fn hand_off(&self, request: Request, direct: DirectAnswer) -> Option<Response> {
        let response = self.handle(request);
        direct.take_back(&response);
        Some(response)
    }

    /// For a front that must never wait (the event loop): answers at once what needs no
    /// waiting and returns it, or hands the request to a thread that answers through
    /// `direct` and returns `None`. The default answers right here, which suits only a
    /// handler that never blocks.
    fn answer_or_hand_off(&self, request: Request, direct: DirectAnswer) -> Option<Response> {
        let response = self.handle(request);
        direct.take_back(&response);
        Some(response)
    }

    /// A request that could not be read was answered with `status` by the server itself
    /// (400, 413, 414, 431...). Handlers that count or log requests override this.
    fn rejected(&self, _peer: SocketAddr, _status: StatusCode) {}
}

/// Settings of one server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub limits: Limits,
    /// Open connections allowed at once; one more gets a 503 and is closed.
    pub max_connections: usize,
    /// Longest wait for a client's bytes or for it to take ours.
    pub client_timeout: Duration,
    /// Longest wait for the next request on an idle keep-alive connection.
    pub keepalive_timeout: Duration,
    /// Prefix of thread names, so `top -H` shows which server a thread belongs to.
    pub thread_name: String,
    /// Serve HTTPS: the certificate and the handshake counters (`--tls-cert`).
    pub tls: Option<Arc<TlsAcceptor>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: Limits::default(),
            max_connections: 1024,
            client_timeout: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(15),
            thread_name: "conn".into(),
            tls: None,
        }
    }
}

/// State shared by the acceptor, every connection thread and the handle.
struct Shared {
    config: ServerConfig,
    handler: Arc<dyn Handler>,
    /// Shared with workers answering directly (`direct`), so they too close on drain.
    /// Set: accept no more, and answer every request with `Connection: close`.
    stopping: Arc<AtomicBool>,
    /// Set: a connection waiting for its next request closes instead. With `stopping`
    /// at a Ctrl-C; later during a hand-over (`ServerHandle::hand_over`).
    close_idle: AtomicBool,
    /// Protects the table of open connections: taken only to add or remove one, and by
    /// shutdown to wake the idle ones; never held while reading or writing a socket.
    connections: Mutex<ConnectionTable>,
    /// Signalled when a connection closes, so a draining shutdown can wait for zero.
    connection_closed: Condvar,
    /// Connections refused over the limit whose 503 is still lingering.
    lingering_refusals: AtomicUsize,
}

#[derive(Default)]
struct ConnectionTable {
    next_id: u64,
    /// Each open socket (the connection's one descriptor, shared) and whether its
    /// thread is waiting for a new request.
    open: HashMap<u64, (Arc<TcpStream>, Arc<AtomicBool>)>,
}

/// A running server: its address, and the way to stop it.
pub struct ServerHandle {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

/// Starts serving `listener` on a new acceptor thread.
pub fn start(
    listener: TcpListener,
    config: ServerConfig,
    handler: Arc<dyn Handler>,
) -> std::io::Result<ServerHandle> {
    let local_addr = listener.local_addr()?;
    wake_periodically(&listener)?;
    let shared = Arc::new(Shared {
        config,
        handler,
        stopping: Arc::new(AtomicBool::new(false)),
        close_idle: AtomicBool::new(false),
        connections: Mutex::new(ConnectionTable::default()),
        connection_closed: Condvar::new(),
        lingering_refusals: AtomicUsize::new(0),
    });
    let acceptor_shared = Arc::clone(&shared);
    let acceptor = thread::Builder::new()
        .name(format!("{}-accept", shared.config.thread_name))
        .spawn(move || accept_loop(listener, acceptor_shared))?;
    Ok(ServerHandle {
        local_addr,
        shared,
        acceptor: Some(acceptor),
    })
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Number of client connections open right now.
    pub fn open_connections(&self) -> usize {
        self.shared.connections.lock().open.len()
    }

    /// Stops accepting, closes idle keep-alive connections, and waits up to `drain`
    /// for connections with a request in progress to finish it. Returns true when every
    /// connection closed in time.
    pub fn shutdown(&mut self, drain: Duration) -> bool {
        self.finish(drain, Duration::ZERO, false)
    }

    /// Like `shutdown`, when another process now accepts on the same listening socket
    /// (an upgrade). Nothing in the accept queue is ours to take any more, and idle
    /// keep-alive connections are not closed under their clients: each stays until its
    /// next request, which is answered with `Connection: close` (the client then
    /// reconnects, to the new process), or until its own keep-alive timeout, within
    /// `drain`. Closing it while the client may be sending is the race every server has
    /// at shutdown (nginx closes idle connections at once); Envoy's drain and HAProxy's
    /// `idle-close-on-response` wait for the next request the same way.
    pub fn hand_over(&mut self, drain: Duration) -> bool {
        self.finish(drain, drain, true)
    }

    /// Stops accepting and drains; idle connections are closed after `idle_grace`.
    /// `shared_listener`: another process accepts on the socket too.
    fn finish(&mut self, drain: Duration, idle_grace: Duration, shared_listener: bool) -> bool {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if !shared_listener {
            self.shared.close_idle.store(true, Ordering::SeqCst);
            // accept(2) waits up to ACCEPT_WAKE; a connection to ourselves ends it now.
            // Not on a shared socket: the other process could take that connection.
            wake_acceptor(self.local_addr);
        }
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let started = Instant::now();
        let deadline = started + drain;
        let mut table = self.shared.connections.lock();
        loop {
            if started.elapsed() >= idle_grace {
                self.shared.close_idle.store(true, Ordering::SeqCst);
            }
            let closing_idle = self.shared.close_idle.load(Ordering::SeqCst);
            // A thread blocked reading an idle connection cannot see `stopping`;
            // shutting down the read side makes its read(2) return 0 at once. A thread
            // busy with a request keeps its write side and closes after answering.
            let idle: Vec<Arc<TcpStream>> = table
                .open
                .values()
                .filter(|(_, idle)| closing_idle && idle.load(Ordering::SeqCst))
                .map(|(stream, _)| Arc::clone(stream))
                .collect();
            if table.open.is_empty() {
                return true;
            }
            drop(table);
            for stream in idle {
                let _ = stream.shutdown(Shutdown::Read);
            }
            table = self.shared.connections.lock();
            if table.open.is_empty() {
                return true;
            }
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100));
            if wait.is_zero() {
                return false;
            }
            // Wake at least every 100 ms to catch connections that turned idle.
            self.shared.connection_closed.wait_for(&mut table, wait);
        }
    }
}

/// Stack reserved for each connection thread. A Rust thread gets 2 MiB of address
/// space unless told otherwise (`RUST_MIN_STACK`; a C thread takes `ulimit -s`, often
/// 8 MiB); a connection thread parses one request head at a time and touches a few
/// pages of it, so 256 KiB keeps ten thousand connections inside 2.5 GiB of virtual
/// memory. Only the pages touched become resident (docs/concepts.md, "Memory per
/// thread and per connection").
pub const CONNECTION_STACK: usize = 256 * 1024;

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Out of file descriptors or a similar passing shortage: `accept_with_backoff`
    // backs off like Go's net/http (5 ms doubling to 1 s) instead of spinning.
    // A connection accepted as `stopping` was set is served all the same (one request,
    // answered with `Connection: close`): it was taken from the queue, and the other
    // process (during an upgrade) can no longer have it.
    while let Some((stream, peer)) = accept_with_backoff(&listener, &shared.stopping) {
        // Accepted sockets inherit the listener's `SO_RCVTIMEO` (`wake_periodically`).
        let _ = stream.set_read_timeout(None);
        // One descriptor per connection: the reader, the writer, a worker answering
        // directly and the connection table all share it (`&TcpStream` is `Read` and
        // `Write`), where `try_clone` would `dup(2)` one descriptor for each.
        let stream = Arc::new(stream);
        let registered = register(&shared, &stream);
        let Some((id, idle)) = registered else {
            refuse_over_limit(&shared, stream);
            continue;
        };
        let thread_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name(format!("{}-{id}", shared.config.thread_name))
            .stack_size(CONNECTION_STACK)
            .spawn(move || {
                let _registered = Registered {
                    shared: &thread_shared,
                    id,
                };
                // Connection threads wake up once per request: as SCHED_BATCH they do
                // not preempt the worker that woke them (see sys::sched).
                crate::sys::sched::batch_current_thread();
                if let Some(conn) = secure(&thread_shared.config, &stream, peer) {
                    serve_connection(&thread_shared, Arc::clone(&conn), stream, peer, &idle);
                    // TLS ends with our close_notify (once: rustls sends it only the first
                    // time), so a client can tell a whole close-delimited answer from a cut
                    // one; nginx sends it too, and the event loop does (`secure.rs`).
                    if !conn.is_plain() {
                        let _ = conn.shutdown_write();
                    }
                }
            });
        if let Err(error) = spawned {
            log::warn!("cannot start a connection thread: {error}");
            unregister(&shared, id);
        }
    }
}

/// Adds a connection to the table unless the table is full.
fn register(shared: &Shared, stream: &Arc<TcpStream>) -> Option<(u64, Arc<AtomicBool>)> {
    let clone = Arc::clone(stream);
    let mut table = shared.connections.lock();
    if table.open.len() >= shared.config.max_connections {
        return None;
    }
    table.next_id += 1;
    let id = table.next_id;
    let idle = Arc::new(AtomicBool::new(true));
    table.open.insert(id, (clone, Arc::clone(&idle)));
    Some((id, idle))
}

fn unregister(shared: &Shared, id: u64) {
    shared.connections.lock().open.remove(&id);
    shared.connection_closed.notify_all();
}

/// A connection's place in the table, given back when its thread ends, by return or by
/// panic (the cache's hits and the admin pages run on this thread): a bug met by one
/// connection must not hold a place against `--max-connections` forever, nor make
/// every drain wait out its deadline for it.
struct Registered<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        unregister(self.shared, self.id);
    }
}

/// Over `--max-connections`: answer 503 without reading the request, and close.
/// (HAProxy's `maxconn` queues instead; a bounded, visible refusal is the lesson here.)
///
/// Closing a socket whose request is still unread sends a reset, not the 503, so the
/// refusal lingers like an error answer (`linger`). Up to `MAX_LINGERING_REFUSALS`
/// linger on threads of their own; past that the acceptor lingers itself, which stops
/// accepting for a moment: the kernel's accept queue holds the next clients meanwhile,
/// and they get their 503 in turn rather than a reset.
fn refuse_over_limit(shared: &Arc<Shared>, stream: Arc<TcpStream>) {
    /// Refusals lingering at once on threads of their own.
    const MAX_LINGERING_REFUSALS: usize = 64;
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let mut out: &TcpStream = &stream;
    let _ = write_response(&mut out, &over_limit(), &Method::GET, Version::HTTP_11, false);
    let lingering = shared.lingering_refusals.fetch_add(1, Ordering::SeqCst);
    let done = {
        let shared = Arc::clone(shared);
        move || {
            linger(&mut HttpReader::shared(stream));
            shared.lingering_refusals.fetch_sub(1, Ordering::SeqCst);
        }
    };
    if lingering >= MAX_LINGERING_REFUSALS {
        return done();
    }
    let spawned = thread::Builder::new()
        .name(format!("{}-refuse", shared.config.thread_name))
        .stack_size(64 * 1024)
        .spawn(done);
    if let Err(error) = spawned {
        // The closure was dropped unrun (its socket closed with it): give its place back.
        shared.lingering_refusals.fetch_sub(1, Ordering::SeqCst);
        log::warn!("cannot start a thread to refuse a connection: {error}");
    }
}

/// The answer to a connection over the limit (shared by both fronts).
pub fn over_limit() -> Response {
    Response::text(StatusCode::SERVICE_UNAVAILABLE, "too many connections, try again")
        .with_header(header::RETRY_AFTER, "1")
}

/// The connection as a byte stream: the socket itself, or, with TLS, a session over it
/// once the handshake is done (`None` if it failed or took longer than the client
/// timeout; the acceptor counts which).
fn secure(config: &ServerConfig, stream: &Arc<TcpStream>, peer: SocketAddr) -> Option<Arc<dyn Duplex>> {
    let Some(tls) = &config.tls else {
        return Some(Arc::clone(stream) as Arc<dyn Duplex>);
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(config.client_timeout));
    match tls.accept(Arc::clone(stream), Instant::now() + config.client_timeout) {
        Ok(session) => Some(Arc::new(session)),
        Err(HandshakeFailure::TimedOut) => {
            log::debug!("{peer}: TLS handshake timed out");
            None
        }
        Err(HandshakeFailure::Failed(reason)) => {
            log::debug!("{peer}: TLS handshake failed: {reason}");
            None
        }
    }
}

/// The keep-alive loop of one connection, over `conn` (`stream` itself, or a TLS
/// session on it).
fn serve_connection(
    shared: &Shared,
    conn: Arc<dyn Duplex>,
    stream: Arc<TcpStream>,
    peer: SocketAddr,
    idle: &AtomicBool,
) {
    let config = &shared.config;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(config.client_timeout));
    // The workers' handle on the socket, for answering it directly: plain TCP only,
    // since a TLS session has one writer, this thread (workers answer it through a
    // reply slot instead).
    let shared_writer = conn.is_plain().then_some(stream);
    let tls = !conn.is_plain();
    let mut writer: &dyn Duplex = &*conn;
    let mut reader = HttpReader::over(Arc::clone(&conn));
    // The first request may take the client timeout to begin; later ones the keep-alive.
    let mut idle_wait = config.client_timeout;
    // The answer a worker is writing for the previous request, if any.
    let mut pending: Option<Arc<Turn>> = None;
    loop {
        idle.store(true, Ordering::SeqCst);
        let mut idle_deadline = Instant::now() + idle_wait;
        if let Some(turn) = &pending {
            match read_ahead(&mut reader, turn, config.keepalive_timeout) {
                Some(deadline) => idle_deadline = deadline,
                None => {
                    // The client closed, the server is draining, or the answer closed
                    // the connection: let the answer finish, then end.
                    turn.wait();
                    return;
                }
            }
        }
        if shared.close_idle.load(Ordering::SeqCst) && reader.buffered().is_empty() {
            return;
        }
        let head = read_request_head(&mut reader, &config.limits, idle_deadline, config.client_timeout);
        idle.store(false, Ordering::SeqCst);
        // HTTP/1.1 answers in order: nothing more is written before the previous answer.
        if let Some(turn) = pending.take()
            && !turn.wait()
        {
            return;
        }
        idle_wait = config.keepalive_timeout;
        let head = match head {
            Ok(head) => head,
            Err(error) => return answer_error(shared, &mut writer, &mut reader, peer, &error),
        };
        let keep_alive = wants_keep_alive(head.version, &head.headers);
        if let Some(expect) = head.headers.get(header::EXPECT) {
            if !expect.as_bytes().eq_ignore_ascii_case(b"100-continue") {
                let error = RequestError::Malformed("unsupported Expect".into());
                let response = Response::text(StatusCode::EXPECTATION_FAILED, error.to_string());
                shared.handler.rejected(peer, StatusCode::EXPECTATION_FAILED);
                let _ = write_response(&mut writer, &response, &head.method, head.version, false);
                return;
            }
            if let Framing::ContentLength(length) = head.framing
                && length > config.limits.max_body
            {
                let error = RequestError::BodyTooLarge(config.limits.max_body);
                return answer_error(shared, &mut writer, &mut reader, peer, &error);
            }
            // The client waits for this interim answer before sending its body.
            if head.version == Version::HTTP_11
                && head.framing != Framing::None
                && writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
            {
                return;
            }
        }
        let mut spool = Spool::new(SPOOL_THRESHOLD);
        let read = read_body_into(
            &mut reader,
            head.framing,
            config.limits.max_body,
            config.client_timeout,
            &mut spool,
        )
        .and_then(|()| spool.finish().map_err(RequestError::Io));
        let (body, spooled) = match read {
            Ok(parts) => parts,
            Err(error) => return answer_error(shared, &mut writer, &mut reader, peer, &error),
        };
        let method = head.method.clone();
        let version = head.version;
        // A server must not send 1xx to an HTTP/1.0 client (RFC 9110 section 15.2).
        let interim = (version == Version::HTTP_11).then(|| match &shared_writer {
            Some(socket) => Interim::new(Arc::clone(socket)),
            None => Interim::held(),
        });
        let request = Request {
            method: head.method,
            target: head.target,
            version,
            headers: head.headers,
            body,
            spooled,
            peer,
            client: peer.ip(),
            received_at: Instant::now(),
            interim: interim.clone(),
            tls,
        };
        let keep_alive = keep_alive && !shared.stopping.load(Ordering::SeqCst);
        let response = if let Some(shared_writer) = &shared_writer
            && shared.handler.can_hand_off(&request)
        {
            let direct = DirectAnswer::new(
                Arc::clone(shared_writer),
                method.clone(),
                version,
                keep_alive,
                Arc::clone(&shared.stopping),
            )
            .with_interim(interim.clone());
            let turn = direct.turn();
            match shared.handler.hand_off(request, direct) {
                None => {
                    pending = Some(turn);
                    continue;
                }
                Some(response) => response,
            }
        } else {
            shared.handler.handle(request)
        };
        let keep_alive =
            keep_alive && keeps_connection(&response, version) && !shared.stopping.load(Ordering::SeqCst);
        // Interim responses the client's socket had no room for go first (`interim`).
        let early = interim.map(|interim| interim.finish()).unwrap_or_default();
        if !early.is_empty() && writer.write_all(&early).is_err() {
            return;
        }
        if let Some(upgrade) = switched(&response) {
            // The connection now speaks another protocol, on this thread.
            if write_response(&mut writer, &response, &method, version, true).is_ok() {
                drop(shared_writer);
                let (stream, received) = reader.into_parts();
                upgrade.run(stream, received);
            }
            return;
        }
        if write_response(&mut writer, &response, &method, version, keep_alive).is_err() || !keep_alive {
            return;
        }
    }
}

/// What takes the connection over after this response: set for a `101` only.
fn switched(response: &Response) -> Option<Box<dyn crate::http1::upgrade::OnUpgrade>> {
    if response.status != StatusCode::SWITCHING_PROTOCOLS {
        return None;
    }
    response.upgrade.as_ref()?.take()
}

/// While a worker answers the previous request, waits for the first byte of the next
/// one. The keep-alive clock starts only once the answer is out (as nginx's
/// `keepalive_timeout` does), and the answer's time is not known while waiting here, so
/// after a quiet `keepalive_timeout` this asks the turn. Returns the deadline for the
/// rest of the wait, or `None` when the connection is over (closed by the client, shut
/// down for a drain, or closed by the answer).
fn read_ahead(reader: &mut HttpReader, turn: &Turn, keepalive_timeout: Duration) -> Option<Instant> {
    let deadline = Instant::now() + keepalive_timeout;
    while reader.buffered().is_empty() {
        match reader.fill(deadline) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(RequestError::Timeout) => {
                let written = turn.wait_written();
                if !written.keep_open {
                    return None;
                }
                // Answered and still open: the client has the rest of its keep-alive
                // time, counted from the answer.
                return Some(written.at + keepalive_timeout);
            }
            Err(_) => return None,
        }
    }
    Some(deadline)
}

/// Answers a request that could not be read, if the client can still hear it, and
/// closes: after a framing error the connection's byte stream cannot be trusted.
fn answer_error(
    shared: &Shared,
    writer: &mut &dyn Duplex,
    reader: &mut HttpReader,
    peer: SocketAddr,
    error: &RequestError,
) {
    let Some(status) = error.status() else { return };
    // Counted before the answer is written, so a client that reads the answer and then
    // asks /stats always sees its request counted.
    shared.handler.rejected(peer, status);
    let response = Response::text(status, error.to_string());
    let _ = write_response(writer, &response, &Method::GET, Version::HTTP_11, false);
    linger(reader);
}

/// How long a connection closed after an error answer (or a refusal) keeps discarding
/// what its client still sends, and how much it discards at most (nginx's
/// `lingering_time` is 30 s; a few seconds are enough for a client to read its answer).
pub const LINGER_TIME: Duration = Duration::from_secs(2);
pub const LINGER_BYTES: usize = 64 * 1024 * 1024;

/// Closing a socket that still has unread bytes makes the kernel send a reset, which can
/// destroy our error response before the client reads it. Like nginx's
/// `lingering_close`, half-close and discard what the client still sends, for a while.
fn linger(reader: &mut HttpReader) {
    // Over TLS this sends the close_notify first.
    let _ = reader.duplex().shutdown_write();
    let deadline = Instant::now() + LINGER_TIME;
    let mut discarded = 0;
    while discarded < LINGER_BYTES {
        let pending = reader.buffered().len();
        reader.consume(pending);
        discarded += pending;
        match reader.fill(deadline) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
