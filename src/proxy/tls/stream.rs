//! A TLS session over a blocking TCP socket, shared by a reading and a writing thread.
//!
//! OS concept: one connection, two directions, and a lock that is never held across a
//! wait. TLS turns the socket's bytes into records: each direction's records carry
//! sequence numbers and keys that live in one session object, so the thread reading
//! the client and the thread writing to it (the two directions of a WebSocket tunnel,
//! say) must share it behind a mutex. A thread that waits for the socket must not hold
//! that mutex, or a stalled reader would stop the writer too. So:
//!
//! - reading waits in `read(2)` on the socket with the lock released, then takes the
//!   lock to hand the ciphertext to rustls and take out the plaintext;
//! - writing takes the lock to encrypt into rustls' buffer and to send what the socket
//!   takes at once with one non-blocking `send(2)` (`MSG_DONTWAIT`); if the socket's
//!   buffer is full it releases the lock and waits in `poll(2)` until it is writable.
//!
//! Every send happens under the lock, in the order rustls produced the records, so
//! records from the two threads can never be interleaved out of order.
//!
//! The same calls (`read_tls`, `process_new_packets`, `write_tls` on a non-blocking
//! socket) are what an event loop makes on readiness; here a blocking thread makes them.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustls::Connection;
use socket2::SockRef;

use crate::http1::transport::Duplex;

/// Ciphertext taken from the socket per `read(2)`: less than rustls' 16 KiB plaintext
/// limit, so one read's records always fit in its buffer.
const READ_BYTES: usize = 8 * 1024;

/// A TLS session (server or client side) and its socket.
pub struct TlsStream {
    /// The TCP socket, shared with whoever else holds the connection (on the threaded
    /// front, its connection table, which shuts idle ones on a drain).
    socket: Arc<TcpStream>,
    /// Protects the session: keys, record numbers and rustls' buffers. Held only to move
    /// bytes into or out of rustls and for non-blocking sends, never across a wait.
    session: Mutex<Session>,
}

/// The session and the ciphertext it has not taken yet.
struct Session {
    /// Boxed: a rustls session is a few kilobytes, and a `TlsStream` is returned and
    /// moved by value (out of the handshake, into an `Arc`).
    conn: Box<Connection>,
    /// Bytes read from the socket that rustls could not take yet: it holds at most
    /// 16 KiB of undelivered plaintext, so the rest waits here until that is read.
    unread: Vec<u8>,
}

impl TlsStream {
    pub fn new(socket: Arc<TcpStream>, session: impl Into<Connection>) -> Self {
        TlsStream {
            socket,
            session: Mutex::new(Session {
                conn: Box::new(session.into()),
                unread: Vec::new(),
            }),
        }
    }

    /// Runs the handshake to its end (and sends what follows it, such as TLS 1.3
    /// session tickets), giving up at `deadline`. Errors carry the `rustls::Error`
    /// inside (`rustls_error`) when the peer broke the protocol.
    pub fn handshake(&self, deadline: Instant) -> io::Result<()> {
        let mut raw = [0u8; READ_BYTES];
        loop {
            let (handshaking, sent) = {
                let mut session = self.session.lock();
                let sent = self.send_pending(&mut session.conn)?;
                (session.conn.is_handshaking(), sent)
            };
            if !sent {
                self.wait_writable(Some(deadline))?;
                continue;
            }
            if !handshaking {
                return Ok(());
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ErrorKind::TimedOut.into());
            }
            self.socket.set_read_timeout(Some(remaining))?;
            let read = retry_interrupted(|| Read::read(&mut &*self.socket, &mut raw))?;
            if read == 0 {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the TLS handshake",
                ));
            }
            self.feed(&raw[..read])?;
        }
    }

    /// The protocol chosen by ALPN, if any.
    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.session.lock().conn.alpn_protocol().map(<[u8]>::to_vec)
    }

    /// Hands ciphertext read from the socket to rustls.
    fn feed(&self, ciphertext: &[u8]) -> io::Result<()> {
        let mut session = self.session.lock();
        session.unread.extend_from_slice(ciphertext);
        self.decrypt(&mut session)
    }

    /// Gives rustls the unread ciphertext until it is all taken or rustls holds
    /// plaintext for the reader; a protocol error is answered with its alert.
    fn decrypt(&self, session: &mut Session) -> io::Result<()> {
        let Session { conn, unread } = session;
        while !unread.is_empty() {
            let taken = conn.read_tls(&mut &unread[..])?;
            unread.drain(..taken);
            match conn.process_new_packets() {
                Ok(state) if state.plaintext_bytes_to_read() > 0 => return Ok(()),
                Ok(_) if taken == 0 => return Ok(()),
                Ok(_) => {}
                Err(error) => {
                    // rustls has queued the alert that tells the peer why.
                    let _ = self.send_pending(conn);
                    return Err(io::Error::new(ErrorKind::InvalidData, error));
                }
            }
        }
        Ok(())
    }

    /// Sends what rustls has ready, as far as the socket takes it without waiting.
    /// True when nothing is left.
    fn send_pending(&self, session: &mut Connection) -> io::Result<bool> {
        while session.wants_write() {
            match session.write_tls(&mut DontWait(&self.socket)) {
                Ok(_) => {}
                Err(error) if error.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(true)
    }

    /// Waits, with no lock held, until the socket can take more bytes or `deadline`.
    fn wait_writable(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.wait_for(PollFlags::OUT, deadline, ErrorKind::TimedOut)
    }

    /// Waits, with no lock held, until bytes arrive or `deadline`; then the same error
    /// a plain socket's read timeout gives (EAGAIN, `WouldBlock`).
    fn wait_readable(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.wait_for(PollFlags::IN, deadline, ErrorKind::WouldBlock)
    }

    fn wait_for(&self, flags: PollFlags, deadline: Option<Instant>, expired: ErrorKind) -> io::Result<()> {
        let timeout = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(expired.into());
                }
                Some(timespec(left))
            }
            None => None,
        };
        let mut fds = [PollFd::new(&*self.socket, flags)];
        match poll(&mut fds, timeout.as_ref()) {
            Ok(0) => Err(expired.into()),
            Ok(_) => Ok(()),
            Err(rustix::io::Errno::INTR) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// When a blocked read gives up: the socket's read timeout, counted from the first
    /// read of one call.
    fn read_deadline(&self) -> io::Result<Option<Instant>> {
        Ok(self
            .socket
            .read_timeout()?
            .map(|timeout| Instant::now() + timeout))
    }

    /// When a blocked write gives up: the socket's write timeout, like a plain socket's.
    fn write_deadline(&self) -> io::Result<Option<Instant>> {
        Ok(self
            .socket
            .write_timeout()?
            .map(|timeout| Instant::now() + timeout))
    }

    /// Sends everything rustls holds, waiting for the socket as long as its write
    /// timeout allows.
    fn flush_all(&self, deadline: &mut Option<Option<Instant>>) -> io::Result<()> {
        loop {
            if self.send_pending(&mut self.session.lock().conn)? {
                return Ok(());
            }
            let deadline = match deadline {
                Some(deadline) => *deadline,
                None => *deadline.insert(self.write_deadline()?),
            };
            self.wait_writable(deadline)?;
        }
    }
}

impl Duplex for TlsStream {
    fn read(&self, out: &mut [u8]) -> io::Result<usize> {
        let mut raw = [0u8; READ_BYTES];
        // A plain socket's read gives up after its read timeout; so does this one, over
        // however many reads the peer spreads its records across: a byte now and then,
        // never a whole record, must not hold a connection thread (or a worker reading a
        // backend) past the timeout. Set at the first read(2), which SO_RCVTIMEO bounds.
        let mut deadline: Option<Option<Instant>> = None;
        loop {
            {
                let mut session = self.session.lock();
                match session.conn.reader().read(out) {
                    Ok(count) => return Ok(count),
                    Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                    // The peer closed TCP without a close_notify. At a message boundary
                    // that is an ordinary close (HTTP framing, not TLS, says where a
                    // message ends), so it reads as end of stream, as nginx takes it.
                    Err(error) if error.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                    Err(error) => return Err(error),
                }
                // Replies rustls owes the peer (a key update, say) go out first.
                self.send_pending(&mut session.conn)?;
                let waiting = session.unread.len();
                if waiting > 0 {
                    // Ciphertext is waiting already: no need to read the socket, unless
                    // rustls takes none of it (then a record is still incomplete).
                    self.decrypt(&mut session)?;
                    if session.unread.len() < waiting {
                        continue;
                    }
                }
            }
            match deadline {
                None => deadline = Some(self.read_deadline()?),
                Some(limit) => self.wait_readable(limit)?,
            }
            let read = retry_interrupted(|| Read::read(&mut &*self.socket, &mut raw))?;
            if read == 0 {
                return Ok(0);
            }
            self.feed(&raw[..read])?;
        }
    }

    fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        // Looked up only if the socket ever makes us wait, and again after each progress:
        // like a plain socket's SO_SNDTIMEO, the timeout is for no progress, not for the
        // whole write (a 1 MiB answer to a slow but steady client must not be cut off).
        let mut deadline = None;
        loop {
            let sent = {
                let mut session = self.session.lock();
                // rustls takes what fits under its buffer limit (64 KiB by default).
                let taken = session.conn.writer().write(bytes)?;
                if taken > 0 {
                    deadline = None;
                }
                bytes = &bytes[taken..];
                self.send_pending(&mut session.conn)?
            };
            if sent && bytes.is_empty() {
                return Ok(());
            }
            if !sent {
                let deadline = match deadline {
                    Some(deadline) => deadline,
                    None => *deadline.insert(self.write_deadline()?),
                };
                self.wait_writable(deadline)?;
            }
        }
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.session.lock().conn.send_close_notify();
        self.flush_all(&mut None)?;
        self.socket.shutdown(Shutdown::Write)
    }

    fn socket(&self) -> &TcpStream {
        &self.socket
    }
}

/// The `rustls::Error` behind an I/O error from this module, if it was one.
pub fn rustls_error(error: &io::Error) -> Option<&rustls::Error> {
    error.get_ref()?.downcast_ref::<rustls::Error>()
}

/// A socket as a `Write` that never waits: each write is one `send(2)` with
/// `MSG_DONTWAIT`, so a full buffer is `WouldBlock`, not a blocked thread.
struct DontWait<'a>(&'a TcpStream);

impl Write for DontWait<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        SockRef::from(self.0).send_with_flags(bytes, libc::MSG_DONTWAIT)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn retry_interrupted(mut call: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
    loop {
        match call() {
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn timespec(duration: Duration) -> Timespec {
    Timespec {
        tv_sec: duration.as_secs() as _,
        tv_nsec: duration.subsec_nanos() as _,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::tls::self_signed::write_self_signed;
    use crate::proxy::tls::{BackendTls, TlsAcceptor, TlsFiles};
    use std::net::TcpListener;
    use std::thread;

    #[test]
    fn one_session_is_read_and_written_by_two_threads_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_self_signed(dir.path()).unwrap();
        let acceptor = TlsAcceptor::new(TlsFiles {
            cert: cert.clone(),
            key,
        })
        .unwrap();
        let trust = BackendTls::new(Some(&cert)).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        // The server echoes until the client's close_notify, then closes its side.
        let server = thread::spawn(move || {
            let (socket, _) = listener.accept().unwrap();
            let stream = acceptor.accept(Arc::new(socket), deadline).unwrap();
            let mut buffer = [0u8; 8192];
            loop {
                let count = stream.read(&mut buffer).unwrap();
                if count == 0 {
                    break;
                }
                stream.write_all(&buffer[..count]).unwrap();
            }
            stream.shutdown_write().unwrap();
        });
        let socket = TcpStream::connect(addr).unwrap();
        let client = Arc::new(trust.connect(socket, "localhost", deadline).unwrap());
        client
            .socket()
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        client
            .socket()
            .set_write_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        // Far more than the sockets' and rustls' buffers hold: the writer must wait for
        // room while the reader, on another thread, decrypts the echo.
        let data: Vec<u8> = (0..4 << 20).map(|index| (index % 251) as u8).collect();
        let writer = {
            let (client, data) = (Arc::clone(&client), data.clone());
            thread::spawn(move || {
                for chunk in data.chunks(100_000) {
                    client.write_all(chunk).unwrap();
                }
                client.shutdown_write().unwrap();
            })
        };
        let mut received = Vec::with_capacity(data.len());
        let mut buffer = [0u8; 16 * 1024];
        loop {
            let count = client.read(&mut buffer).unwrap();
            if count == 0 {
                break;
            }
            received.extend_from_slice(&buffer[..count]);
        }
        writer.join().unwrap();
        server.join().unwrap();
        assert!(
            received == data,
            "{} of {} bytes came back",
            received.len(),
            data.len()
        );
        assert_eq!(client.alpn_protocol().as_deref(), Some(&b"http/1.1"[..]));
    }
}
