//! The way back from a worker to an event loop, and the two socket calls every way
//! back begins with.
//!
//! OS concept: non-blocking I/O between threads. A worker answering an event loop's
//! connection sends with `MSG_DONTWAIT`, so it never waits on the client; what the
//! socket's buffer did not take, and a streamed body's remainder, it hands back to the
//! loop (`Handback`), which waits for the socket to become writable instead.

use std::io;
use std::net::{Shutdown, TcpStream};

use socket2::SockRef;

use crate::http1::upgrade::OnUpgrade;
use crate::http1::writer::BodyPump;

/// The way back to an event loop: how a worker tells it that an answer is out, or gives
/// it what the socket did not take. Each call consumes the handback: one answer, one
/// report.
pub trait Handback: Send {
    /// The whole answer is out; `keep_open`: the connection carries the next request.
    fn written(self: Box<Self>, keep_open: bool);
    /// The socket took only part of the answer: the loop writes the rest.
    fn unwritten(self: Box<Self>, rest: Rest);
    /// The request was answered by the loop after all (a refusal): nothing to report.
    fn taken_back(self: Box<Self>);
    /// The answer is a `101 Switching Protocols`: the loop writes `head` (nothing of it
    /// is sent yet), then gives the connection to `upgrade` (a tunnel), no longer HTTP.
    fn switched(self: Box<Self>, head: Vec<u8>, upgrade: Box<dyn OnUpgrade>);
}

/// What a worker could not send at once.
pub struct Rest {
    /// Serialized bytes, of which the first `sent` are out.
    pub bytes: Vec<u8>,
    pub sent: usize,
    /// A streamed body still to come after `bytes`.
    pub relay: Option<Relay>,
    /// Whether the connection stays open once everything is written.
    pub keep_open: bool,
}

/// A streamed body still to come, and whether the connection stays open after it
/// (relayed piece by piece by the workers, `relay.rs`).
pub struct Relay {
    pub pump: BodyPump,
    pub keep_open: bool,
}

/// One `send(2)` that never waits (`MSG_DONTWAIT`): what the socket's buffer takes now.
pub fn send_now(stream: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    loop {
        match SockRef::from(stream).send_with_flags(bytes, libc::MSG_DONTWAIT) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Closes the connection when it is not to be kept, which also wakes the connection
/// thread blocked reading the next request.
pub fn close_unless(stream: &TcpStream, keep_open: bool) {
    if !keep_open {
        let _ = stream.shutdown(Shutdown::Both);
    }
}
