//! Answering from the worker: the worker writes the response to the client socket
//! itself, while the connection thread has already gone back to reading the next
//! request.
//!
//! OS concept: every hand-off between threads costs a trip through the scheduler (one
//! thread sleeps, another is woken). Handing the response back to the connection thread
//! cost one such trip per request; writing it from the worker saves it (measured: 3.0 to
//! 2.0 context switches per request, docs/decisions.md). HTTP/1.1 answers in order, so
//! the connection thread waits on the `Turn` before it handles the next request; by then
//! the answer is normally long written, since the client sent its next request only
//! after reading it.
//!
//! A worker must never wait for a slow client: it would stop forwarding for everyone.
//! So it sends a small answer with one non-blocking `send(2)` (`MSG_DONTWAIT`), which
//! the socket's send buffer almost always takes whole; whatever does not fit, and every
//! large or streamed body, is written by a short-lived thread of its own. A slow reader
//! then costs a thread, as it did when the connection thread wrote, never a worker.
//!
//! With the event-loop front there is no connection thread to wait on a `Turn`, and a
//! thread per slow reader is what the loop exists to avoid. So an answer for the loop
//! carries a `Handback` instead: after its one non-blocking send the worker reports
//! "written" or hands the unwritten rest (and a streamed body's remainder, see
//! `relay.rs`) back to the loop, which writes it when the socket is writable. For a
//! TLS connection the worker sends nothing (`handing_back_all`): the session's keys and
//! record numbers live in the loop, so the whole serialized answer goes back, to be
//! encrypted there; a `101` goes back too (`Handback::switched`), since the loop then
//! hands the connection to its tunnel.

use std::io::{self, Write};
use std::net::TcpStream;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Instant;

use http::{Method, StatusCode, Version, header};
use parking_lot::{Condvar, Mutex};

use super::handback::{Handback, Relay, Rest, close_unless, send_now};
use super::relay::Resume;
use crate::http1::interim::Interim;
use crate::http1::message::Response;
use crate::http1::upgrade::Upgrade;
use crate::http1::writer::{BodyPlan, COALESCE_LIMIT, response_head, write_response};

/// Whether the answer to the previous request is out, and if so whether the
/// connection stays open.
#[derive(Default)]
pub struct Turn {
    /// Protects the outcome: `None` while the answer is on its way; once written,
    /// whether the connection stays open and when the answer was out. Held only to read
    /// or set it.
    written: Mutex<Option<Written>>,
    /// Signalled when `written` is set.
    changed: Condvar,
}

/// How an answer ended.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    pub keep_open: bool,
    /// When the answer was out: the keep-alive timeout counts from here.
    pub at: Instant,
}

impl Turn {
    fn finish(&self, keep_open: bool) {
        *self.written.lock() = Some(Written {
            keep_open,
            at: Instant::now(),
        });
        self.changed.notify_one();
    }

    /// Waits until the answer is written, and says how it ended.
    pub fn wait_written(&self) -> Written {
        let mut written = self.written.lock();
        loop {
            match *written {
                Some(outcome) => return outcome,
                None => self.changed.wait(&mut written),
            }
        }
    }

    /// Waits until the answer is written; true when the connection stays open.
    pub fn wait(&self) -> bool {
        self.wait_written().keep_open
    }
}

/// Something to run once the response is known, before it is written (the access
/// log's record, so a client that reads its answer and then looks finds it counted).
pub type BeforeWrite = Box<dyn FnOnce(&Response) + Send>;

/// Everything a worker needs to answer a client itself.
pub struct DirectAnswer {
    /// The client socket, shared with the connection thread (which reads from it).
    stream: Arc<TcpStream>,
    method: Method,
    version: Version,
    keep_alive: bool,
    /// The server's "stopping" flag: a draining server closes after this answer.
    stopping: Arc<AtomicBool>,
    turn: Arc<Turn>,
    /// Set for an event loop's connection: reports go there, not to `turn`.
    handback: Option<Box<dyn Handback>>,
    before_write: Option<BeforeWrite>,
    /// The request's interim responses, whose unsent rest goes before the answer.
    interim: Option<Arc<Interim>>,
    /// The loop writes every byte (a TLS connection: one session, one writer, the loop):
    /// the worker serializes the answer and hands it all back, never touching the socket.
    hand_back_all: bool,
    finished: bool,
}

impl DirectAnswer {
    pub fn new(
        stream: Arc<TcpStream>,
        method: Method,
        version: Version,
        keep_alive: bool,
        stopping: Arc<AtomicBool>,
    ) -> Self {
        DirectAnswer {
            stream,
            method,
            version,
            keep_alive,
            stopping,
            turn: Arc::new(Turn::default()),
            handback: None,
            before_write: None,
            interim: None,
            hand_back_all: false,
            finished: false,
        }
    }

    /// The request's interim responses (`interim`), ended when the answer is written.
    pub fn with_interim(mut self, interim: Option<Arc<Interim>>) -> Self {
        self.interim = interim;
        self
    }

    /// An answer for an event loop's connection: the socket is non-blocking and the
    /// loop learns the outcome through `handback`.
    pub fn for_loop(
        stream: Arc<TcpStream>,
        method: Method,
        version: Version,
        keep_alive: bool,
        stopping: Arc<AtomicBool>,
        handback: Box<dyn Handback>,
    ) -> Self {
        let mut direct = DirectAnswer::new(stream, method, version, keep_alive, stopping);
        direct.handback = Some(handback);
        direct
    }

    /// Every byte of the answer goes back to the loop, which encrypts it (`hand_back_all`).
    pub fn handing_back_all(mut self, yes: bool) -> Self {
        self.hand_back_all = yes;
        self
    }

    /// The turn the connection thread waits on before its next request.
    pub fn turn(&self) -> Arc<Turn> {
        Arc::clone(&self.turn)
    }

    /// Runs `hook` with the response just before it is written (or taken back).
    pub fn before_write(&mut self, hook: BeforeWrite) {
        self.before_write = Some(hook);
    }

    /// The request was not handed off after all: the connection thread writes
    /// `response` itself (the hook still runs).
    pub fn take_back(mut self, response: &Response) {
        if let Some(hook) = self.before_write.take() {
            hook(response);
        }
        if let Some(handback) = self.handback.take() {
            handback.taken_back();
        }
        self.finished = true;
    }

    /// Writes `response` (see the module comment for who does the writing) and tells
    /// the connection thread whether to go on.
    pub fn answer(mut self, response: Response) {
        if let Some(hook) = self.before_write.take() {
            hook(&response);
        }
        let keep_alive = self.keep_alive
            && keeps_connection(&response, self.version)
            && !self.stopping.load(Ordering::SeqCst);
        // Interim bytes the socket did not take yet go first.
        let early = self
            .interim
            .take()
            .map(|interim| interim.finish())
            .unwrap_or_default();
        if let Some(handback) = self.handback.take() {
            self.finished = true;
            if response.status == StatusCode::SWITCHING_PROTOCOLS
                && let Some(upgrade) = response.upgrade.as_ref().and_then(Upgrade::take)
            {
                // The connection stays open for the new protocol, so the head says so.
                let mut head = early;
                let serialized = write_response(&mut head, &response, &self.method, self.version, true);
                debug_assert!(serialized.is_ok(), "writing to a Vec cannot fail");
                return handback.switched(head, upgrade);
            }
            return self.answer_for_loop(&response, early, keep_alive, handback);
        }
        let small = response.stream.is_none() && response.body.len() <= COALESCE_LIMIT;
        if small {
            let mut bytes = early;
            let serialized = write_response(&mut bytes, &response, &self.method, self.version, keep_alive);
            debug_assert!(serialized.is_ok(), "writing to a Vec cannot fail");
            match send_now(&self.stream, &bytes) {
                Ok(sent) if sent == bytes.len() => return self.finish(keep_alive),
                Ok(sent) => return self.write_on_own_thread(Unwritten::Bytes(bytes, sent), keep_alive),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return self.write_on_own_thread(Unwritten::Bytes(bytes, 0), keep_alive);
                }
                Err(_) => return self.finish(false),
            }
        }
        self.write_on_own_thread(Unwritten::Response(Box::new(response), early), keep_alive);
    }

    /// Hands the rest of the answer to a new thread, which may wait for the client as
    /// long as the client timeout allows.
    fn write_on_own_thread(mut self, unwritten: Unwritten, keep_alive: bool) {
        let stream = Arc::clone(&self.stream);
        let (method, version) = (self.method.clone(), self.version);
        let turn = Arc::clone(&self.turn);
        let spawned = thread::Builder::new()
            .name("answer".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                let mut out: &TcpStream = &stream;
                // Whatever happens here, the turn must end: the connection thread waits
                // on it without a deadline. A panic counts as a failed write.
                let written = panic::catch_unwind(AssertUnwindSafe(|| match unwritten {
                    Unwritten::Bytes(bytes, sent) => out.write_all(&bytes[sent..]),
                    Unwritten::Response(response, early) => out
                        .write_all(&early)
                        .and_then(|()| write_response(&mut out, &response, &method, version, keep_alive)),
                }))
                .unwrap_or_else(|_| Err(std::io::Error::other("panicked while writing the answer")));
                let keep_open = written.is_ok() && keep_alive;
                close_unless(&stream, keep_open);
                turn.finish(keep_open);
            });
        match spawned {
            Ok(_) => self.finished = true,
            Err(error) => {
                log::warn!("cannot start a thread to write an answer: {error}");
                self.finish(false);
            }
        }
    }

    /// One non-blocking send; what the socket does not take goes back to the loop. A
    /// streamed body is relayed piece by piece (`relay.rs`). Over TLS nothing is sent
    /// here: all of it goes back.
    fn answer_for_loop(
        &self,
        response: &Response,
        early: Vec<u8>,
        keep_alive: bool,
        handback: Box<dyn Handback>,
    ) {
        let (head, body) = response_head(response, &self.method, self.version, keep_alive);
        let mut bytes = early;
        bytes.extend_from_slice(&head);
        match body {
            BodyPlan::Stream(pump) => {
                let resume = Resume {
                    relay: Relay {
                        pump,
                        keep_open: keep_alive,
                    },
                    pending: bytes,
                    stream: Arc::clone(&self.stream),
                    handback,
                    hand_back_all: self.hand_back_all,
                };
                return resume.run();
            }
            BodyPlan::Bytes => bytes.extend_from_slice(&response.body),
            BodyPlan::None => {}
        }
        if self.hand_back_all {
            return handback.unwritten(Rest {
                bytes,
                sent: 0,
                relay: None,
                keep_open: keep_alive,
            });
        }
        let mut sent = 0;
        while sent < bytes.len() {
            match send_now(&self.stream, &bytes[sent..]) {
                Ok(count) => sent += count,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return handback.unwritten(Rest {
                        bytes,
                        sent,
                        relay: None,
                        keep_open: keep_alive,
                    });
                }
                Err(_) => {
                    close_unless(&self.stream, false);
                    return handback.written(false);
                }
            }
        }
        close_unless(&self.stream, keep_alive);
        handback.written(keep_alive);
    }

    fn finish(&mut self, keep_open: bool) {
        // Over TLS the loop closes, after its close_notify.
        if !self.hand_back_all {
            close_unless(&self.stream, keep_open);
        }
        self.finished = true;
        match self.handback.take() {
            Some(handback) => handback.written(keep_open),
            None => self.turn.finish(keep_open),
        }
    }
}

impl Drop for DirectAnswer {
    /// A worker that panicked before answering: say so if the socket takes it at once,
    /// and close, so the client is not left waiting and the connection thread wakes
    /// from its read.
    fn drop(&mut self) {
        if !self.finished {
            let failed = Response::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "worker failed while serving this request",
            );
            let mut bytes = Vec::new();
            if write_response(&mut bytes, &failed, &self.method, self.version, false).is_ok() {
                if self.hand_back_all
                    && let Some(handback) = self.handback.take()
                {
                    self.finished = true;
                    return handback.unwritten(Rest {
                        bytes,
                        sent: 0,
                        relay: None,
                        keep_open: false,
                    });
                }
                let _ = send_now(&self.stream, &bytes);
            }
            self.finish(false);
        }
    }
}

/// What is left to write.
enum Unwritten {
    /// A serialized answer, of which the first `usize` bytes are sent.
    Bytes(Vec<u8>, usize),
    /// A large or streamed answer, not yet serialized, after the interim bytes left.
    Response(Box<Response>, Vec<u8>),
}

/// Whether the connection may carry another request after `response`: not when the
/// handler asked to close, nor after an HTTP/1.0 body whose end only a close can mark.
pub fn keeps_connection(response: &Response, client_version: Version) -> bool {
    let handler_wants_close = response
        .headers
        .get(header::CONNECTION)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
    let close_delimited = client_version == Version::HTTP_10
        && response
            .stream
            .as_ref()
            .is_some_and(|stream| stream.length.is_none());
    !handler_wants_close && !close_delimited
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    /// A connected pair: the server's side wrapped for a worker, and the client's side.
    fn pair(keep_alive: bool) -> (DirectAnswer, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let stopping = Arc::new(AtomicBool::new(false));
        let direct = DirectAnswer::new(
            Arc::new(server),
            Method::GET,
            Version::HTTP_11,
            keep_alive,
            stopping,
        );
        (direct, client)
    }

    fn read_all(mut client: TcpStream) -> String {
        let mut text = String::new();
        client.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn a_small_answer_is_written_and_the_turn_says_keep_open() {
        let (direct, mut client) = pair(true);
        let turn = direct.turn();
        direct.answer(Response::text(StatusCode::OK, "hi"));
        assert!(turn.wait(), "keep-alive answer: the connection stays open");
        let mut head = [0u8; 15];
        client.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 200 OK");
    }

    #[test]
    fn a_closing_answer_ends_the_connection() {
        let (direct, client) = pair(false);
        let turn = direct.turn();
        direct.answer(Response::text(StatusCode::OK, "bye"));
        assert!(!turn.wait());
        let text = read_all(client);
        assert!(
            text.contains("connection: close") && text.ends_with("bye\n"),
            "{text}"
        );
    }

    #[test]
    fn a_large_answer_is_written_whole_by_a_thread_of_its_own() {
        let (direct, client) = pair(false);
        let turn = direct.turn();
        let body = "x".repeat(3 * COALESCE_LIMIT);
        direct.answer(Response::text(StatusCode::OK, body.clone()));
        let text = read_all(client);
        assert!(text.ends_with(&format!("{body}\n")));
        assert!(!turn.wait());
    }

    #[test]
    fn a_worker_that_drops_its_answer_sends_500_and_closes() {
        let (direct, client) = pair(true);
        let turn = direct.turn();
        drop(direct);
        assert!(!turn.wait(), "nothing more on this connection");
        assert!(read_all(client).starts_with("HTTP/1.1 500"));
    }
}
