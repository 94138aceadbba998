//! TLS on the event loop: a rustls session driven by readiness, with no thread to block.
//!
//! OS concept: a protocol layered on a non-blocking byte stream. The threaded front runs
//! a TLS session over a blocking socket (`proxy::tls::stream`); here the same session
//! is fed by hand. Ciphertext the loop reads from the socket goes into rustls
//! (`read_tls`, `process_new_packets`) and plaintext comes out of its `reader()`;
//! plaintext the loop wants to send goes into its `writer()` and ciphertext comes out
//! of `write_tls`, as far as the socket takes it now. The handshake is only the first
//! records of that exchange, so it runs on the loop too, a few messages per readiness
//! edge, never holding a thread while the client thinks: nginx, HAProxy and Envoy all
//! handshake on their event loops this way.
//!
//! One session, one writer: only the loop encrypts for a connection. Workers hand every
//! byte of a TLS connection's answer back to the loop (`pool::direct`, `pool::relay`)
//! instead of sending it themselves as they do for plain HTTP.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rustls::ServerConnection;

use crate::proxy::tls::TlsAcceptor;
use crate::proxy::tls::acceptor::HandshakeFailure;

/// One connection's TLS session and the counters its handshake is reported to.
pub struct Secure {
    /// Boxed: a session is a few kilobytes, a plain connection should not carry them.
    session: Box<ServerConnection>,
    acceptor: Arc<TlsAcceptor>,
    /// How the handshake ended has been counted (once per connection).
    counted: bool,
    /// The session failed (a protocol error): nothing more can be read or written.
    pub broken: bool,
    /// Our close_notify has been queued.
    notified: bool,
}

/// What arrived, decrypted.
pub enum Received {
    /// Plaintext appended (possibly none: handshake records, a partial record).
    Some,
    /// The client sent its close_notify: nothing more will come.
    Closed,
}

impl Secure {
    /// A session with the certificate in force now (a reload after this does not
    /// change it, as on the threaded front).
    pub fn new(acceptor: &Arc<TlsAcceptor>) -> Result<Self, rustls::Error> {
        Ok(Secure {
            session: Box::new(acceptor.new_session()?),
            acceptor: Arc::clone(acceptor),
            counted: false,
            broken: false,
            notified: false,
        })
    }

    /// The session, for a `TlsStream` once the connection leaves the loop (a tunnel).
    pub fn into_session(self) -> ServerConnection {
        *self.session
    }

    pub fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// Ciphertext is waiting for the socket.
    pub fn wants_write(&self) -> bool {
        self.session.wants_write()
    }

    /// Hands `ciphertext` to rustls and appends what it decrypts to `plaintext`. A
    /// protocol error leaves the alert that says why queued for `send`.
    pub fn receive(&mut self, mut ciphertext: &[u8], plaintext: &mut Vec<u8>) -> Received {
        let mut closed = false;
        while !ciphertext.is_empty() && !self.broken {
            let taken = match self.session.read_tls(&mut ciphertext) {
                Ok(taken) => taken,
                Err(error) => {
                    self.fail(&error.to_string());
                    break;
                }
            };
            if let Err(error) = self.session.process_new_packets() {
                self.fail(&error.to_string());
                break;
            }
            // Drained after every record batch: rustls holds at most 16 KiB of
            // plaintext, and refuses more ciphertext while that is full.
            closed |= self.drain(plaintext);
            if taken == 0 {
                // With the plaintext drained this happens only after the client's
                // close_notify (rustls takes nothing more then); the bytes left would be
                // lost either way, so the session is given up rather than garbled.
                self.fail("rustls took no more ciphertext");
                break;
            }
        }
        if !self.counted && !self.broken && !self.session.is_handshaking() {
            self.counted = true;
            self.acceptor.count(Ok(()));
        }
        if closed { Received::Closed } else { Received::Some }
    }

    /// Moves the decrypted plaintext out; true at the client's close_notify.
    fn drain(&mut self, plaintext: &mut Vec<u8>) -> bool {
        let mut chunk = [0u8; 4096];
        loop {
            match self.session.reader().read(&mut chunk) {
                Ok(0) => return true,
                Ok(count) => plaintext.extend_from_slice(&chunk[..count]),
                // No more plaintext for now, or the peer closed without close_notify
                // (the socket's own end of file says so, in the caller).
                Err(_) => return false,
            }
        }
    }

    fn fail(&mut self, reason: &str) {
        log::debug!("TLS session failed: {reason}");
        self.broken = true;
        if !self.counted {
            self.counted = true;
            self.acceptor
                .count(Err(&HandshakeFailure::Failed(reason.to_string())));
        }
    }

    /// The handshake did not finish within the client timeout.
    pub fn timed_out(&mut self) {
        if !self.counted {
            self.counted = true;
            self.acceptor.count(Err(&HandshakeFailure::TimedOut));
        }
    }

    /// The connection closes: a handshake left unfinished counts as failed (the client
    /// went away), and a finished session says close_notify, as far as the socket
    /// takes it now.
    pub fn close(&mut self, stream: &TcpStream) {
        if !self.counted {
            self.fail("the connection closed during the handshake");
        }
        if self.session.is_handshaking() {
            // No session to close: the socket's close says it all, as on the threaded
            // front.
            return;
        }
        self.notify();
        let mut writable = true;
        let _ = self.send(stream, &mut writable);
    }

    /// Queues close_notify (once).
    pub fn notify(&mut self) {
        if !self.notified && !self.broken {
            self.notified = true;
            self.session.send_close_notify();
        }
    }

    /// Takes as much of `plaintext` as rustls buffers (its limit bounds what one
    /// connection holds); the rest waits in the caller's output.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> usize {
        self.session.writer().write(plaintext).unwrap_or(0)
    }

    /// Sends the ciphertext rustls holds while the socket takes it; clears `writable`
    /// at EAGAIN. Returns the bytes sent.
    pub fn send(&mut self, stream: &TcpStream, writable: &mut bool) -> io::Result<usize> {
        let mut sent = 0;
        while *writable && self.session.wants_write() {
            match self.session.write_tls(&mut &*stream) {
                Ok(count) => sent += count,
                Err(error) if error.kind() == ErrorKind::WouldBlock => *writable = false,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(sent)
    }
}
