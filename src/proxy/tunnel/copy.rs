//! Copying one direction of a proxied connection, with half-close and an idle timeout:
//! the L4 mode's whole job, and a WebSocket tunnel's after its `101`.
//!
//! OS concept: blocking I/O on a full-duplex byte stream. A TCP connection is two
//! independent one-way streams. With blocking sockets a thread that calls `read(2)` on
//! the client waits there until the client sends something; if the same thread were
//! also responsible for the backend's bytes, an answer arriving meanwhile would sit
//! unread. So each direction gets its own thread (nginx and HAProxy do the same job
//! with one thread and non-blocking sockets in an event loop, `epoll(7)`).
//!
//! `shutdown(Write)` sends a FIN: "I will send no more, but I am still listening". When
//! one side's read returns 0 (it sent its FIN), the copier passes the FIN on with
//! `shutdown(Write)` on the other socket and stops, while the opposite direction keeps
//! flowing. That is how a client can send a request, close its sending side, and still
//! receive the whole answer. A plain `close` instead would end both directions.
//!
//! The idle timeout is shared by both directions, like nginx's `proxy_timeout`: the
//! connection is closed only when *neither* direction has moved a byte for that long,
//! so a long download with a silent client is not cut off.
//!
//! The ends are `Duplex` streams (`crate::http1::transport`): plain TCP sockets, or TLS
//! sessions over them, whose shutdown sends TLS's `close_notify` before the FIN.

use std::io::{self, ErrorKind};
use std::net::Shutdown;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use crate::http1::transport::Duplex;
use crate::proxy::backends::health::now_ms;

/// Size of each direction's copy buffer, nginx's `proxy_buffer_size` default for
/// streams: a bulk transfer costs one system call per 16 KiB each way, and 1024
/// connections with two buffers each use 32 MiB.
const BUFFER_BYTES: usize = 16 * 1024;

/// When either direction of one connection last moved bytes (`now_ms()`), shared by its
/// two copiers.
#[derive(Debug)]
pub struct Activity(AtomicU64);

impl Default for Activity {
    fn default() -> Self {
        Activity(AtomicU64::new(now_ms()))
    }
}

impl Activity {
    fn touch(&self) {
        self.0.store(now_ms(), Ordering::Relaxed);
    }

    fn quiet_for(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.0.load(Ordering::Relaxed)))
    }
}

/// How one direction ended.
#[derive(Debug)]
pub enum Ended {
    /// The source sent its FIN; it was passed on.
    Eof,
    /// Nothing moved in either direction for the idle timeout.
    Idle,
    /// A read or write failed (reset, broken pipe...).
    Failed(io::Error),
}

/// One direction: the sockets, the shared clock, and where to count the bytes.
pub struct Direction<'a> {
    pub from: &'a dyn Duplex,
    pub to: &'a dyn Duplex,
    pub idle_timeout: Duration,
    pub activity: &'a Activity,
    /// Counters that each get every byte copied (the connection's, the backend's and
    /// the balancer's).
    pub counters: &'a [&'a AtomicU64],
}

impl Direction<'_> {
    /// Copies until end of stream, idleness or an error. On end of stream the FIN is
    /// passed on; in the other two cases the caller must tear the connection down.
    pub fn run(&self) -> Ended {
        let mut buffer = vec![0u8; BUFFER_BYTES];
        // A blocked write means the receiver stopped reading; that too is idleness.
        if let Err(error) = self.to.socket().set_write_timeout(Some(self.idle_timeout)) {
            return Ended::Failed(error);
        }
        let mut wait = self.idle_timeout;
        loop {
            if let Err(error) = self.from.socket().set_read_timeout(Some(wait)) {
                return Ended::Failed(error);
            }
            let read = match self.from.read(&mut buffer) {
                Ok(0) => {
                    // The sender's FIN: pass it on, keep the other direction open.
                    let _ = self.to.shutdown_write();
                    return Ended::Eof;
                }
                Ok(read) => read,
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                Err(error) if is_timeout(&error) => {
                    // Our side was quiet; the other direction may not have been.
                    let quiet = self.activity.quiet_for();
                    if quiet >= self.idle_timeout {
                        return Ended::Idle;
                    }
                    wait = self.idle_timeout - quiet;
                    continue;
                }
                Err(error) => return Ended::Failed(error),
            };
            self.activity.touch();
            if let Err(error) = self.to.write_all(&buffer[..read]) {
                return if is_timeout(&error) {
                    Ended::Idle
                } else {
                    Ended::Failed(error)
                };
            }
            self.activity.touch();
            wait = self.idle_timeout;
            for counter in self.counters {
                counter.fetch_add(read as u64, Ordering::Relaxed);
            }
        }
    }
}

/// Runs `upward` on a new thread (named `name`) and `downward` on this one, and
/// returns how each ended. When one direction ends other than by end of stream (idle,
/// reset), both sockets are shut down, which also wakes the other copier from its
/// blocking read. Scoped, so the directions may borrow this thread's sockets and
/// counters: the scope ends only when the spawned copier has finished.
pub fn both_ways(name: String, stack: usize, upward: Direction, downward: Direction) -> (Ended, Ended) {
    let end = |ended: Ended| {
        if !matches!(ended, Ended::Eof) {
            let _ = upward.from.socket().shutdown(Shutdown::Both);
            let _ = upward.to.socket().shutdown(Shutdown::Both);
        }
        ended
    };
    thread::scope(|scope| {
        let spawned = thread::Builder::new()
            .name(name)
            .stack_size(stack)
            .spawn_scoped(scope, || end(upward.run()));
        match spawned {
            Ok(handle) => {
                let down = end(downward.run());
                let up = handle.join().unwrap_or(Ended::Eof);
                (up, down)
            }
            Err(error) => {
                log::warn!("cannot start a copy thread: {error}; closing");
                (end(Ended::Failed(error)), Ended::Eof)
            }
        }
    })
}

/// A socket timeout shows as `WouldBlock` on Unix and `TimedOut` on Windows.
fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    /// A connected pair of sockets.
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    #[test]
    fn copies_then_passes_the_fin_on() {
        // writer -> [a_in | copier | b_out] -> reader
        let (writer, a_in) = pair();
        let (b_out, mut reader) = pair();
        let activity = Activity::default();
        let (one, two) = (AtomicU64::new(0), AtomicU64::new(0));
        writer.write_all(b"hello, world").unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
        let direction = Direction {
            from: &a_in,
            to: &b_out,
            idle_timeout: Duration::from_secs(10),
            activity: &activity,
            counters: &[&one, &two],
        };
        assert!(matches!(direction.run(), Ended::Eof));
        let mut received = Vec::new();
        reader.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        reader.read_to_end(&mut received).unwrap();
        assert_eq!(received, b"hello, world");
        assert_eq!(one.load(Ordering::Relaxed), 12);
        assert_eq!(two.load(Ordering::Relaxed), 12);
        // Only the copied direction was closed: the reader can still send back.
        reader.write_all(b"reply").unwrap();
    }

    #[test]
    fn stops_when_nothing_moves_for_the_idle_timeout() {
        let (_writer, a_in) = pair();
        let (b_out, _reader) = pair();
        let activity = Activity::default();
        let counter = AtomicU64::new(0);
        let direction = Direction {
            from: &a_in,
            to: &b_out,
            idle_timeout: Duration::from_millis(50),
            activity: &activity,
            counters: &[&counter],
        };
        assert!(matches!(direction.run(), Ended::Idle));
    }
}
