//! Opening the listening socket with a deep accept queue.
//!
//! OS concept: the kernel's accept queue. Between the TCP handshake and our
//! `accept(2)`, a connection waits in a queue whose length is `listen(2)`'s backlog.
//! When a burst fills it, Linux drops the new SYNs and the clients retry after one
//! second: a whole second of latency that no code of ours can see. The standard
//! library always asks for 128; nginx asks for 511 and HAProxy for the `maxconn`, so
//! roundhouse asks for 4096 (the kernel caps it at `net.core.somaxconn`).
//!
//! Also here: the two halves of an acceptor thread's life that every listener of
//! roundhouse (the HTTP front, `roundhouse tcp`, the one-shot TCP backends) shares,
//! accepting with a back-off and waking a blocked `accept(2)` to stop it.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

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

/// The next connection from `listener`, or `None` once `stopping` is set. Shared by
/// every accept loop so that all of them survive a descriptor shortage the same way.
///
/// A failed `accept(2)` (EMFILE: out of file descriptors, or a similar passing
/// shortage) is retried after a pause that starts at 5 ms and doubles up to 1 s, as
/// Go's net/http does, instead of spinning on a CPU while nothing can succeed.
pub fn accept_with_backoff(listener: &TcpListener, stopping: &AtomicBool) -> Option<(TcpStream, SocketAddr)> {
    let mut backoff = Duration::from_millis(5);
    loop {
        match listener.accept() {
            Ok(pair) => return (!stopping.load(Ordering::SeqCst)).then_some(pair),
            Err(error) => {
                if stopping.load(Ordering::SeqCst) {
                    return None;
                }
                log::warn!("accept failed: {error}; retrying in {backoff:?}");
                thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Wakes an acceptor blocked in `accept(2)` on `local_addr`, after its `stopping` flag
/// is set. `accept(2)` has no timeout: a connection to ourselves makes it return, and
/// the acceptor then sees `stopping` and ends. A listener on the unspecified address
/// (0.0.0.0 or ::) is reached through loopback.
pub fn wake_acceptor(local_addr: SocketAddr) {
    let mut wake = local_addr;
    if wake.ip().is_unspecified() {
        wake.set_ip(if wake.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
}
