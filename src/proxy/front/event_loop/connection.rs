//! One client connection of the event loop, as an explicit state machine.
//!
//! OS concept: non-blocking I/O. The socket is in non-blocking mode, so `read(2)` and
//! `write(2)` never wait: they move what they can and fail with EAGAIN (`WouldBlock`)
//! when the kernel has nothing to give or no room to take. A thread that blocks keeps
//! "where am I in this request" on its stack, for free; a loop serving thousands of
//! connections on one stack must keep it in a value instead: this `Phase`. nginx does
//! the same with a read and a write handler per connection that it swaps as the request
//! goes on.
//!
//! Edge-triggered readiness (mio registers with `EPOLLET`): epoll says "readable" once
//! when bytes arrive, not again for bytes already there. So `readable` and `writable`
//! remember what epoll said until a read or write meets EAGAIN, and the connection must
//! keep reading until then, or stop on purpose (a buffer limit, its turn's budget) and
//! come back to it without waiting for a new edge.
//!
//! Behaviour is the threaded front's (`server.rs`), step for step: the same limits and
//! statuses from the same codec, the same timeouts (idle keep-alive counted from the
//! answer, the whole head within the client timeout, each body read and each write
//! within it), `Expect: 100-continue`, pipelined requests answered in order, lingering
//! close after an error.
//!
//! With TLS the state machine is the same over a session the loop drives itself
//! (`secure.rs`): `fill` decrypts into `input`, `flush` encrypts `output`, and the
//! handshake is the first thing `Idle` waits for, within the client timeout. After a
//! `101` the connection leaves the loop for a tunnel of threads (`into_tunnel`).

use std::io::{self, Read, Write};
use std::mem;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use http::{Method, StatusCode, Version, header};

use super::completions::{AnswerSlot, Completions, LoopHandback};
use super::secure::{Received, Secure};
use crate::http1::chunked::ChunkedDecoder;
use crate::http1::error::RequestError;
use crate::http1::fields::wants_keep_alive;
use crate::http1::head::{Framing, RequestHead, parse_request_head};
use crate::http1::interim::Interim;
use crate::http1::message::{Request, Response};
use crate::http1::sink::BodySink;
use crate::http1::spool::{SPOOL_THRESHOLD, Spool};
use crate::http1::upgrade::OnUpgrade;
use crate::http1::writer::{BodyPlan, response_head};
use crate::proxy::front::server::{Handler, LINGER_BYTES, LINGER_TIME, ServerConfig, over_limit};
use crate::proxy::pool::direct::{DirectAnswer, keeps_connection};
use crate::proxy::pool::handback::Rest;
use crate::proxy::pool::relay::{Relay, Resume};
use crate::proxy::tls::TlsStream;

/// Bytes one connection may read in one turn before the others get theirs.
const READ_BUDGET: usize = 1024 * 1024;

/// Stack of the thread that runs a tunnel's first direction (as a connection thread of
/// the threaded front would): its copy buffer is on the heap.
const TUNNEL_STACK: usize = 256 * 1024;

/// Bytes that arrived and are not parsed yet are held up to this much beyond the
/// largest head: a client that pipelines without reading its answers stops being read
/// (its bytes wait in the kernel, then in its own socket) instead of filling our memory.
const READ_AHEAD: usize = 8 * 1024;

/// Everything of the loop a connection needs while it runs.
pub struct Context<'a> {
    pub config: &'a ServerConfig,
    pub handler: &'a dyn Handler,
    pub stopping: &'a Arc<AtomicBool>,
    pub completions: &'a Arc<Completions>,
    pub resumes: &'a Sender<Resume>,
    /// This connection's slot and generation, for the reports of its workers.
    pub slot: usize,
    pub generation: u64,
    /// The loop's read buffer, shared by every connection: an idle connection holds no
    /// buffer of its own (nginx frees an idle keep-alive connection's buffer too).
    pub scratch: &'a mut [u8],
    pub now: Instant,
}

impl Context<'_> {
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// What the loop does with a connection after a turn.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Wait for readiness, a report or `deadline`.
    Wait,
    /// Its budget ran out with work left: run it again after the others.
    Again,
    Close,
    /// A `101` is out: the connection leaves the loop for its new protocol
    /// (`into_tunnel`).
    Upgraded,
}

/// Where the connection is in its request.
enum Phase {
    /// Waiting for a request to begin; closed quietly at `until`.
    Idle {
        until: Instant,
    },
    /// Part of a head has arrived; 408 at `until`.
    Head {
        until: Instant,
    },
    /// Reading a body; 408 if no byte comes by `until`.
    Body(Box<BodyState>),
    /// A worker has the request and writes the answer itself. At `check` (a keep-alive
    /// timeout after the hand-off) the loop looks whether it is out yet.
    Answering {
        answer: Arc<AnswerSlot>,
        check: Instant,
    },
    /// Writing `output` (then a relay, if any); each write must progress by `until`.
    Writing {
        then: Then,
        until: Instant,
    },
    /// After an error answer: the write side is shut, what the client still sends is
    /// discarded until it closes or `until`.
    Lingering {
        until: Instant,
        discarded: usize,
    },
    Closed,
}

struct BodyState {
    head: RequestHead,
    keep_alive: bool,
    left: BodyLeft,
    spool: Spool,
    until: Instant,
}

enum BodyLeft {
    Length(u64),
    Chunked(ChunkedDecoder),
}

/// What follows once the output is written.
enum Then {
    KeepAlive,
    Close,
    Linger,
    /// Hand this request on (it waited for a `100 Continue` to go out first).
    Dispatch(Box<Request>, bool),
    /// The `101` is out: the new protocol takes the connection.
    Upgrade(Box<dyn OnUpgrade>),
}

/// Whether the state machine goes on now or waits.
enum Flow {
    Continue,
    Wait,
    Again,
    Close,
    Upgraded,
}

pub struct Connection {
    pub stream: Arc<TcpStream>,
    peer: SocketAddr,
    /// The TLS session of an HTTPS connection: every byte read is decrypted into
    /// `input`, every byte of `output` encrypted on its way out (`secure.rs`).
    secure: Option<Secure>,
    /// Bytes this connection has put on the wire, to tell a slow client from a stalled
    /// one while writing.
    sent: u64,
    /// Received, not yet parsed.
    input: Vec<u8>,
    /// To write: `output[written..]`.
    output: Vec<u8>,
    written: usize,
    /// A streamed body to relay once `output` is out.
    relay: Option<Relay>,
    phase: Phase,
    /// Counts against `--max-connections` (a refused connection does not).
    pub counted: bool,
    /// What epoll last said, until a read or write meets EAGAIN (or a short read shows
    /// the socket drained).
    pub readable: bool,
    pub writable: bool,
    /// epoll said the client sent its FIN: read until the end even after a short read.
    pub hung_up: bool,
    /// The client sent its FIN (or the socket failed): nothing more will arrive.
    read_closed: bool,
    /// When the loop should next look at this connection.
    pub deadline: Option<Instant>,
    /// The earliest entry this connection has in the timer heap.
    pub scheduled: Option<Instant>,
    /// Already in the loop's list of connections to run this round.
    pub queued: bool,
    /// The new protocol after a `101`, once its head is written.
    upgraded: Option<Box<dyn OnUpgrade>>,
}

impl Connection {
    /// A new connection: the first request (after the TLS handshake, if any) may take
    /// the client timeout to begin.
    pub fn new(stream: TcpStream, peer: SocketAddr, config: &ServerConfig, now: Instant) -> Self {
        let secure = config
            .tls
            .as_ref()
            .and_then(|acceptor| match Secure::new(acceptor) {
                Ok(secure) => Some(secure),
                Err(error) => {
                    // Cannot happen with a configuration that loaded; the connection is
                    // then served by nobody rather than in plaintext.
                    log::error!("cannot start a TLS session: {error}");
                    None
                }
            });
        let broken = config.tls.is_some() && secure.is_none();
        Connection {
            stream: Arc::new(stream),
            peer,
            secure,
            sent: 0,
            input: Vec::new(),
            output: Vec::new(),
            written: 0,
            relay: None,
            phase: Phase::Idle {
                until: now + config.client_timeout,
            },
            counted: true,
            readable: true,
            writable: true,
            hung_up: false,
            read_closed: broken,
            deadline: None,
            scheduled: None,
            queued: false,
            upgraded: None,
        }
    }

    /// A connection over `--max-connections`: the 503, then a lingering close, like
    /// the threaded front's refusal but without a thread. Over TLS too it is written in
    /// plaintext, as the threaded front does: a handshake costs the CPU an overloaded
    /// server lacks, and the client's TLS library reports the refusal as a failure.
    pub fn refused(stream: TcpStream, peer: SocketAddr, config: &ServerConfig, now: Instant) -> Self {
        let plain = ServerConfig {
            tls: None,
            ..config.clone()
        };
        let mut connection = Connection::new(stream, peer, &plain, now);
        connection.counted = false;
        connection.serialize(&over_limit(), &Method::GET, Version::HTTP_11, false);
        connection.phase = Phase::Writing {
            then: Then::Linger,
            until: now + config.client_timeout,
        };
        connection
    }

    /// A worker could not write all of its answer: the loop writes the rest.
    pub fn take_rest(&mut self, rest: Rest, config: &ServerConfig, now: Instant) {
        if !matches!(self.phase, Phase::Answering { .. }) {
            return;
        }
        self.output = rest.bytes;
        self.written = rest.sent;
        self.relay = rest.relay;
        // The worker found the socket full (over TLS it never touched it).
        if self.secure.is_none() {
            self.writable = false;
        }
        self.phase = Phase::Writing {
            then: if rest.keep_open {
                Then::KeepAlive
            } else {
                Then::Close
            },
            until: now + config.client_timeout,
        };
    }

    /// A worker's `101`: the loop writes its head, then hands the connection over.
    pub fn take_switched(
        &mut self,
        head: Vec<u8>,
        upgrade: Box<dyn OnUpgrade>,
        config: &ServerConfig,
        now: Instant,
    ) {
        if !matches!(self.phase, Phase::Answering { .. }) {
            return;
        }
        // Nothing of it was sent: the worker left the socket alone.
        self.output = head;
        self.written = 0;
        self.phase = Phase::Writing {
            then: Then::Upgrade(upgrade),
            until: now + config.client_timeout,
        };
    }

    /// Runs the new protocol on threads of its own, over a blocking socket: the tunnel
    /// code the threaded front uses (one thread per direction, `proxy::tunnel`), which
    /// never holds a worker. What the client sent after its request goes along; over
    /// TLS the session goes along too, now shared by the tunnel's two threads
    /// (`TlsStream`).
    pub fn into_tunnel(mut self, write_timeout: Duration) {
        let Some(upgrade) = self.upgraded.take() else {
            return;
        };
        let received = mem::take(&mut self.input);
        if let Err(error) = self.stream.set_nonblocking(false) {
            log::warn!(
                "{}: cannot hand an upgraded connection to its tunnel: {error}",
                self.peer
            );
            return;
        }
        let _ = self.stream.set_write_timeout(Some(write_timeout));
        // (Named in full: in scope, the trait's `read` would shadow the socket's.)
        let client: Arc<dyn crate::http1::transport::Duplex> = match self.secure.take() {
            None => Arc::clone(&self.stream) as _,
            Some(secure) => Arc::new(TlsStream::new(Arc::clone(&self.stream), secure.into_session())),
        };
        let spawned = thread::Builder::new()
            .name("tunnel".into())
            .stack_size(TUNNEL_STACK)
            .spawn(move || upgrade.run(client, received));
        if let Err(error) = spawned {
            log::warn!("cannot start a thread for a tunnel: {error}");
        }
    }

    /// The loop closes the connection: over TLS, close_notify first (or the handshake
    /// that never finished is counted).
    pub fn closing(&mut self) {
        if let Some(secure) = &mut self.secure {
            secure.close(&self.stream);
        }
    }

    /// Runs the connection as far as it can go without waiting.
    pub fn run(&mut self, cx: &mut Context) -> Verdict {
        let mut budget = READ_BUDGET;
        self.deadline = None;
        loop {
            if self.secure.as_ref().is_some_and(|secure| secure.broken) {
                // The alert that says why goes out if the socket takes it now.
                let _ = self.flush();
                self.phase = Phase::Closed;
                return Verdict::Close;
            }
            let flow = match mem::replace(&mut self.phase, Phase::Closed) {
                Phase::Idle { until } => self.idle(cx, until, &mut budget),
                Phase::Head { until } => self.head(cx, until, &mut budget),
                Phase::Body(body) => self.body(cx, body, &mut budget),
                Phase::Answering { answer, check } => self.answering(cx, answer, check, &mut budget),
                Phase::Writing { then, until } => self.writing(cx, then, until),
                Phase::Lingering { until, discarded } => self.lingering(cx, until, discarded),
                Phase::Closed => Flow::Close,
            };
            match flow {
                Flow::Continue => continue,
                Flow::Wait => return Verdict::Wait,
                Flow::Again => return Verdict::Again,
                Flow::Upgraded => {
                    self.phase = Phase::Closed;
                    return Verdict::Upgraded;
                }
                Flow::Close => {
                    self.phase = Phase::Closed;
                    return Verdict::Close;
                }
            }
        }
    }

    fn wait(&mut self, phase: Phase, deadline: Option<Instant>) -> Flow {
        self.phase = phase;
        self.deadline = deadline;
        Flow::Wait
    }

    fn idle(&mut self, cx: &mut Context, until: Instant, budget: &mut usize) -> Flow {
        if !self.input.is_empty() {
            // The whole head must now arrive within the client timeout.
            self.phase = Phase::Head {
                until: cx.now + cx.config.client_timeout,
            };
            return Flow::Continue;
        }
        if cx.stopping() || self.read_closed {
            return Flow::Close;
        }
        let handshaking = self.handshaking();
        let filled = self.fill(cx, budget);
        // The handshake had the client timeout; the first request has it again, as
        // on the threaded front.
        let until = if handshaking && !self.handshaking() {
            cx.now + cx.config.client_timeout
        } else {
            until
        };
        match filled {
            Filled::Some => {
                self.phase = Phase::Idle { until };
                Flow::Continue
            }
            Filled::OutOfBudget => {
                self.phase = Phase::Idle { until };
                Flow::Again
            }
            // The client closed (or sent close_notify) with nothing to read: its end
            // may have come with the bytes just read, and no new edge will follow.
            Filled::Nothing if self.read_closed => Flow::Close,
            Filled::Nothing if cx.now >= until => {
                if let Some(secure) = &mut self.secure
                    && secure.is_handshaking()
                {
                    log::debug!("{}: TLS handshake timed out", self.peer);
                    secure.timed_out();
                }
                Flow::Close
            }
            Filled::Nothing => self.wait(Phase::Idle { until }, Some(until)),
        }
    }

    fn head(&mut self, cx: &mut Context, until: Instant, budget: &mut usize) -> Flow {
        loop {
            match parse_request_head(&self.input, &cx.config.limits) {
                Err(error) => return self.answer_error(cx, &error),
                Ok(Some((head, length))) => {
                    self.input.drain(..length);
                    return self.begin_request(cx, head);
                }
                Ok(None) => {}
            }
            match self.fill(cx, budget) {
                Filled::Some => continue,
                Filled::OutOfBudget => {
                    self.phase = Phase::Head { until };
                    return Flow::Again;
                }
                Filled::Nothing => {}
            }
            if self.read_closed {
                return self.answer_error(cx, &RequestError::Truncated("head"));
            }
            if cx.now >= until {
                return self.answer_error(cx, &RequestError::Timeout);
            }
            return self.wait(Phase::Head { until }, Some(until));
        }
    }

    /// A head is in: check `Expect`, then read the body or hand the request on.
    fn begin_request(&mut self, cx: &mut Context, head: RequestHead) -> Flow {
        let keep_alive = wants_keep_alive(head.version, &head.headers);
        let limits = &cx.config.limits;
        if let Some(expect) = head.headers.get(header::EXPECT) {
            if !expect.as_bytes().eq_ignore_ascii_case(b"100-continue") {
                let error = RequestError::Malformed("unsupported Expect".into());
                let response = Response::text(StatusCode::EXPECTATION_FAILED, error.to_string());
                cx.handler.rejected(self.peer, StatusCode::EXPECTATION_FAILED);
                self.serialize(&response, &head.method, head.version, false);
                return self.write_then(cx, Then::Close);
            }
            if let Framing::ContentLength(length) = head.framing
                && length > limits.max_body
            {
                return self.answer_error(cx, &RequestError::BodyTooLarge(limits.max_body));
            }
            // The client waits for this interim answer before sending its body.
            if head.version == Version::HTTP_11 && head.framing != Framing::None {
                self.output.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
        }
        let left = match head.framing {
            Framing::None | Framing::UntilClose => {
                let request = into_request(head, Vec::new(), None, self.peer, self.secure.is_some());
                return self.dispatch(cx, request, keep_alive);
            }
            Framing::ContentLength(length) if length > limits.max_body => {
                return self.answer_error(cx, &RequestError::BodyTooLarge(limits.max_body));
            }
            Framing::ContentLength(length) => BodyLeft::Length(length),
            Framing::Chunked => BodyLeft::Chunked(ChunkedDecoder::new(limits.max_body)),
        };
        self.phase = Phase::Body(Box::new(BodyState {
            head,
            keep_alive,
            left,
            // Past the threshold the body goes to a temporary file, written from this
            // thread: a file write lands in the page cache and does not wait for a
            // client, so the loop may do it (nginx's loop writes its
            // `client_body_temp_path` files itself too).
            spool: Spool::new(SPOOL_THRESHOLD),
            until: cx.now + cx.config.client_timeout,
        }));
        Flow::Continue
    }

    fn body(&mut self, cx: &mut Context, mut body: Box<BodyState>, budget: &mut usize) -> Flow {
        loop {
            match take_body_bytes(&mut self.input, &mut body) {
                Err(error) => return self.answer_error(cx, &error),
                Ok(true) => {
                    let BodyState {
                        head,
                        keep_alive,
                        spool,
                        ..
                    } = *body;
                    let (bytes, spooled) = match spool.finish() {
                        Ok(parts) => parts,
                        Err(error) => return self.answer_error(cx, &RequestError::Io(error)),
                    };
                    let request = into_request(head, bytes, spooled, self.peer, self.secure.is_some());
                    return self.dispatch(cx, request, keep_alive);
                }
                Ok(false) => {}
            }
            // A `100 Continue` still on its way.
            if self.flush().is_err() {
                return Flow::Close;
            }
            match self.fill(cx, budget) {
                Filled::Some => {
                    body.until = cx.now + cx.config.client_timeout;
                    continue;
                }
                Filled::OutOfBudget => {
                    self.phase = Phase::Body(body);
                    return Flow::Again;
                }
                Filled::Nothing => {}
            }
            if self.read_closed {
                return self.answer_error(cx, &RequestError::Truncated("body"));
            }
            if cx.now >= body.until {
                return self.answer_error(cx, &RequestError::Timeout);
            }
            let until = body.until;
            return self.wait(Phase::Body(body), Some(until));
        }
    }

    /// A whole request: answered here (admin pages, cache hits, refusals) or handed to
    /// a worker that writes the answer itself.
    fn dispatch(&mut self, cx: &mut Context, mut request: Request, keep_alive: bool) -> Flow {
        if self.written < self.output.len() {
            // The worker writes to the socket itself: our bytes must be out first.
            return self.write_then(cx, Then::Dispatch(Box::new(request), keep_alive));
        }
        // A backend's 1xx answers go to the client as they come (`http1::interim`),
        // never to an HTTP/1.0 client (RFC 9110 section 15.2).
        // Over TLS they wait for the final answer's bytes, which the loop encrypts.
        if request.version == Version::HTTP_11 {
            request.interim = Some(match self.secure {
                None => Interim::new(Arc::clone(&self.stream)),
                Some(_) => Interim::held(),
            });
        }
        let keep_alive = keep_alive && !cx.stopping();
        let (method, version) = (request.method.clone(), request.version);
        let answer = AnswerSlot::new();
        let handback = LoopHandback::new(cx.completions, &answer, cx.slot, cx.generation);
        let direct = DirectAnswer::for_loop(
            Arc::clone(&self.stream),
            method.clone(),
            version,
            keep_alive,
            Arc::clone(cx.stopping),
            handback,
        )
        .with_interim(request.interim.clone())
        .handing_back_all(self.secure.is_some());
        match cx.handler.answer_or_hand_off(request, direct) {
            None => {
                self.phase = Phase::Answering {
                    answer,
                    check: cx.now + cx.config.keepalive_timeout,
                };
                Flow::Continue
            }
            Some(response) => {
                let keep_alive = keep_alive && keeps_connection(&response, version) && !cx.stopping();
                self.serialize(&response, &method, version, keep_alive);
                let then = if keep_alive { Then::KeepAlive } else { Then::Close };
                self.write_then(cx, then)
            }
        }
    }

    /// While a worker answers, reads ahead (bounded) and looks at the answer only when
    /// there is a reason to: the next request is here, the client left, the server is
    /// draining, or a keep-alive timeout passed since the hand-off.
    fn answering(
        &mut self,
        cx: &mut Context,
        answer: Arc<AnswerSlot>,
        check: Instant,
        budget: &mut usize,
    ) -> Flow {
        if let Some(outcome) = answer.outcome(cx.completions) {
            if !outcome.keep_open {
                return Flow::Close;
            }
            // The keep-alive time counts from the answer, as in the threaded front.
            self.phase = Phase::Idle {
                until: outcome.at + cx.config.keepalive_timeout,
            };
            return Flow::Continue;
        }
        let filled = self.fill(cx, budget);
        let reason = !self.input.is_empty() || self.read_closed || cx.stopping() || cx.now >= check;
        if reason && !answer.watch() {
            // Done between the two looks.
            self.phase = Phase::Answering { answer, check };
            return Flow::Continue;
        }
        if filled == Filled::OutOfBudget {
            self.phase = Phase::Answering { answer, check };
            return Flow::Again;
        }
        // Watched: the worker's report wakes us. Otherwise look again at `check`.
        let deadline = (!reason).then_some(check);
        self.wait(Phase::Answering { answer, check }, deadline)
    }

    fn writing(&mut self, cx: &mut Context, then: Then, until: Instant) -> Flow {
        let before = self.sent;
        if self.flush().is_err() {
            return Flow::Close;
        }
        if self.unsent() {
            let until = if self.sent > before {
                cx.now + cx.config.client_timeout
            } else {
                until
            };
            if cx.now >= until {
                return Flow::Close;
            }
            return self.wait(Phase::Writing { then, until }, Some(until));
        }
        if let Some(relay) = self.relay.take() {
            // The next piece of a streamed body: a worker reads it from the backend.
            let answer = AnswerSlot::new();
            let resume = Resume {
                relay,
                pending: Vec::new(),
                stream: Arc::clone(&self.stream),
                handback: LoopHandback::new(cx.completions, &answer, cx.slot, cx.generation),
                hand_back_all: self.secure.is_some(),
            };
            if cx.resumes.send(resume).is_err() {
                return Flow::Close;
            }
            self.phase = Phase::Answering {
                answer,
                check: cx.now + cx.config.keepalive_timeout,
            };
            return Flow::Continue;
        }
        match then {
            Then::KeepAlive => {
                self.phase = Phase::Idle {
                    until: cx.now + cx.config.keepalive_timeout,
                };
                Flow::Continue
            }
            Then::Close => Flow::Close,
            Then::Linger => {
                if let Some(secure) = &mut self.secure {
                    // close_notify before the FIN, as far as the socket takes it now.
                    secure.notify();
                    let _ = secure.send(&self.stream, &mut self.writable);
                }
                let _ = self.stream.shutdown(Shutdown::Write);
                self.phase = Phase::Lingering {
                    until: cx.now + LINGER_TIME,
                    discarded: 0,
                };
                Flow::Continue
            }
            Then::Dispatch(request, keep_alive) => self.dispatch(cx, *request, keep_alive),
            Then::Upgrade(upgrade) => {
                self.upgraded = Some(upgrade);
                Flow::Upgraded
            }
        }
    }

    /// Closing a socket with unread bytes sends a reset that can destroy the answer
    /// before the client reads it; so, like nginx's `lingering_close`, discard what the
    /// client still sends for a while (the threaded front's `linger`).
    fn lingering(&mut self, cx: &mut Context, until: Instant, mut discarded: usize) -> Flow {
        discarded += mem::take(&mut self.input).len();
        while self.readable && discarded < LINGER_BYTES {
            match (&*self.stream).read(cx.scratch) {
                Ok(0) => return Flow::Close,
                Ok(count) => discarded += count,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Flow::Close,
            }
        }
        if self.read_closed || discarded >= LINGER_BYTES || cx.now >= until {
            return Flow::Close;
        }
        self.wait(Phase::Lingering { until, discarded }, Some(until))
    }

    /// Answers a request that could not be read, if the client can still hear it, and
    /// closes after lingering: after a framing error the byte stream cannot be trusted.
    fn answer_error(&mut self, cx: &mut Context, error: &RequestError) -> Flow {
        let Some(status) = error.status() else {
            return Flow::Close;
        };
        // Counted before the answer is written, as in the threaded front.
        cx.handler.rejected(self.peer, status);
        let response = Response::text(status, error.to_string());
        self.serialize(&response, &Method::GET, Version::HTTP_11, false);
        self.write_then(cx, Then::Linger)
    }

    fn write_then(&mut self, cx: &mut Context, then: Then) -> Flow {
        self.phase = Phase::Writing {
            then,
            until: cx.now + cx.config.client_timeout,
        };
        Flow::Continue
    }

    /// Appends an answer written by the loop itself; a streamed body is relayed by the
    /// workers after the head.
    fn serialize(&mut self, response: &Response, method: &Method, version: Version, keep_alive: bool) {
        let (head, body) = response_head(response, method, version, keep_alive);
        self.output.extend_from_slice(&head);
        match body {
            BodyPlan::Bytes => self.output.extend_from_slice(&response.body),
            BodyPlan::Stream(pump) => {
                self.relay = Some(Relay {
                    pump,
                    keep_open: keep_alive,
                })
            }
            BodyPlan::None => {}
        }
    }

    /// Something of the answer is not on the wire yet: in `output`, or encrypted and
    /// waiting in the TLS session.
    fn unsent(&self) -> bool {
        self.written < self.output.len() || self.secure.as_ref().is_some_and(Secure::wants_write)
    }

    fn handshaking(&self) -> bool {
        self.secure.as_ref().is_some_and(Secure::is_handshaking)
    }

    /// Writes what the socket takes now: the bytes themselves, or over TLS their
    /// records (encrypted a buffer's worth at a time, so a large answer is never held
    /// twice).
    fn flush(&mut self) -> io::Result<()> {
        if let Some(secure) = &mut self.secure {
            loop {
                self.sent += secure.send(&self.stream, &mut self.writable)? as u64;
                if secure.wants_write() || self.written == self.output.len() {
                    break;
                }
                let taken = secure.encrypt(&self.output[self.written..]);
                if taken == 0 {
                    break;
                }
                self.written += taken;
            }
        } else {
            self.write_plain()?;
        }
        if self.written == self.output.len() {
            self.written = 0;
            // A large answer's buffer is given back; a small one is kept for the next.
            if self.output.capacity() > 64 * 1024 {
                self.output = Vec::new();
            } else {
                self.output.clear();
            }
        }
        Ok(())
    }

    /// The plain socket's share of `flush` (never for a TLS connection: its bytes go
    /// out only as records).
    fn write_plain(&mut self) -> io::Result<()> {
        while self.written < self.output.len() && self.writable {
            match (&*self.stream).write(&self.output[self.written..]) {
                Ok(count) => {
                    self.written += count;
                    self.sent += count as u64;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Reads what the socket has, within the read-ahead limit and the turn's budget.
    fn fill(&mut self, cx: &mut Context, budget: &mut usize) -> Filled {
        let limit = cx.config.limits.max_head + READ_AHEAD;
        let mut got = false;
        while self.readable && !self.read_closed && self.input.len() < limit {
            if *budget == 0 {
                return Filled::OutOfBudget;
            }
            let room = (limit - self.input.len()).min(cx.scratch.len());
            match (&*self.stream).read(&mut cx.scratch[..room]) {
                Ok(0) => self.read_closed = true,
                Ok(count) => {
                    let before = self.input.len();
                    match &mut self.secure {
                        None => self.input.extend_from_slice(&cx.scratch[..count]),
                        Some(secure) => {
                            if let Received::Closed = secure.receive(&cx.scratch[..count], &mut self.input) {
                                self.read_closed = true;
                            }
                            if secure.broken {
                                self.read_closed = true;
                            }
                        }
                    }
                    // Handshake records bring no request bytes, but they are progress.
                    got |= self.input.len() > before || self.handshaking();
                    *budget = budget.saturating_sub(count);
                    // A short read emptied the socket: bytes that come later are a new
                    // edge, so the read that would only say EAGAIN is saved (one system
                    // call per request; tokio does the same). A FIN already queued makes
                    // no new edge, so after a hang-up the loop reads on to the end.
                    if count < room && !self.hung_up {
                        self.readable = false;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                // A reset: treated as the end of what the client sends.
                Err(_) => self.read_closed = true,
            }
        }
        // The handshake's answers (and TLS 1.3's session tickets after it) go out now.
        if let Some(secure) = &mut self.secure
            && secure.send(&self.stream, &mut self.writable).is_err()
        {
            self.read_closed = true;
        }
        if got { Filled::Some } else { Filled::Nothing }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Filled {
    Some,
    Nothing,
    OutOfBudget,
}

/// Moves buffered body bytes into the spool; true once the body is complete.
fn take_body_bytes(input: &mut Vec<u8>, body: &mut BodyState) -> Result<bool, RequestError> {
    match &mut body.left {
        BodyLeft::Length(left) => {
            let take = (*left).min(input.len() as u64) as usize;
            body.spool.put(&input[..take])?;
            input.drain(..take);
            *left -= take as u64;
            Ok(*left == 0)
        }
        BodyLeft::Chunked(decoder) => {
            let mut used_total = 0;
            while !decoder.is_done() && used_total < input.len() {
                let (used, data) = decoder.step(&input[used_total..], usize::MAX)?;
                if let Some(data) = data {
                    body.spool.put(data)?;
                }
                if used == 0 {
                    break;
                }
                used_total += used;
            }
            input.drain(..used_total);
            Ok(decoder.is_done())
        }
    }
}

fn into_request(
    head: RequestHead,
    body: Vec<u8>,
    spooled: Option<crate::http1::spool::SpooledBody>,
    peer: SocketAddr,
    tls: bool,
) -> Request {
    Request {
        method: head.method,
        target: head.target,
        version: head.version,
        headers: head.headers,
        body,
        spooled,
        peer,
        client: peer.ip(),
        received_at: Instant::now(),
        // Set by `dispatch`, which has the socket.
        interim: None,
        // For X-Forwarded-Proto and Forwarded: proto.
        tls,
    }
}

/// Serializes `response` as the threaded front would write it (for tests).
#[cfg(test)]
fn wire(response: &Response) -> Vec<u8> {
    let mut bytes = Vec::new();
    crate::http1::writer::write_response(&mut bytes, response, &Method::GET, Version::HTTP_11, false)
        .unwrap();
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_the_threaded_fronts_503() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        let config = ServerConfig::default();
        let refused = Connection::refused(server, peer, &config, Instant::now());
        assert_eq!(refused.output, wire(&over_limit()));
        assert!(!refused.counted);
    }
}
