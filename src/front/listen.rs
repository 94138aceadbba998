//! Opening the listening socket with a deep accept queue.
//!
//! OS concept: the kernel's accept queue. Between the TCP handshake and our
//! `accept(2)`, a connection waits in a queue whose length is `listen(2)`'s backlog.
//! When a burst fills it, Linux drops the new SYNs and the clients retry after one
//! second: a whole second of latency that no code of ours can see. The standard
//! library always asks for 128; nginx asks for 511 and HAProxy for the `maxconn`, so
//! roundhouse asks for 4096 (the kernel caps it at `net.core.somaxconn`).

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// The backlog requested from `listen(2)`.
pub const BACKLOG: i32 = 4096;

/// Binds `addr` and listens with `BACKLOG`, with `SO_REUSEADDR` so a restarted server
/// can bind while old connections linger in TIME_WAIT.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
