//! The byte stream under the codec: a TCP socket, or a TLS session over one.
//!
//! OS concept: a file descriptor is a byte stream, whatever sits on it. The codec reads
//! and writes through `Duplex`, so the same request parser serves plain TCP and TLS
//! (whose `Duplex` lives with the TLS code, in the proxy's `tls` module). Both halves
//! take `&self`, like `&TcpStream`: one thread may read while another writes, which a
//! two-way tunnel needs (one thread per direction).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

/// A two-way byte stream over a TCP socket.
pub trait Duplex: Send + Sync {
    /// Reads some bytes; 0 at the end of the stream. Honours the socket's read timeout
    /// (`SO_RCVTIMEO`): a timeout is `WouldBlock` or `TimedOut`.
    fn read(&self, buffer: &mut [u8]) -> io::Result<usize>;
    /// Writes all of `bytes`, within the socket's write timeout (`SO_SNDTIMEO`).
    fn write_all(&self, bytes: &[u8]) -> io::Result<()>;
    /// Ends our sending side (TCP's FIN; TLS sends its `close_notify` first), while the
    /// peer may still send.
    fn shutdown_write(&self) -> io::Result<()>;
    /// The TCP socket underneath: for timeouts, addresses and a full `shutdown`.
    fn socket(&self) -> &TcpStream;
    /// Whether bytes written straight to `socket()` reach the peer as they are (plain
    /// TCP), so that another thread may answer on the socket itself (`pool::direct`).
    fn is_plain(&self) -> bool {
        false
    }
}

impl Duplex for TcpStream {
    fn read(&self, buffer: &mut [u8]) -> io::Result<usize> {
        Read::read(&mut &*self, buffer)
    }

    fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(&mut &*self, bytes)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn socket(&self) -> &TcpStream {
        self
    }

    fn is_plain(&self) -> bool {
        true
    }
}

/// `io::Read` and `io::Write` over a shared `Duplex`, for code written against them
/// (`write_response`, tungstenite).
impl Read for &dyn Duplex {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        Duplex::read(*self, buffer)
    }
}

impl Write for &dyn Duplex {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        Duplex::write_all(*self, bytes).map(|()| bytes.len())
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Duplex::write_all(*self, bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
