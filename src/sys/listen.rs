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

/// How long one `accept(2)` waits before looking at the `stopping` flag again, on the
/// listeners that `wake_periodically` was called on.
pub const ACCEPT_WAKE: Duration = Duration::from_millis(100);

/// Makes `accept(2)` on `listener` give up after `ACCEPT_WAKE` (`SO_RCVTIMEO`, which
/// Linux applies to `accept` too), so an acceptor sees its `stopping` flag without
/// being woken. `wake_acceptor` cannot wake it when the socket is shared with another
/// process (during an upgrade): its connection may be accepted by the other process.
pub fn wake_periodically(listener: &TcpListener) -> io::Result<()> {
    socket2::SockRef::from(listener).set_read_timeout(Some(ACCEPT_WAKE))
}

/// The next connection from `listener`, or `None` once `stopping` is set. Shared by
/// every accept loop so that all of them survive a descriptor shortage the same way.
///
/// A connection taken from the accept queue is returned even if `stopping` was set
/// meanwhile: dropping it would reset a client that did nothing wrong, so the caller
/// serves it (or drops it, if it prefers).
///
/// A failed `accept(2)` (EMFILE: out of file descriptors, or a similar passing
/// shortage) is retried after a pause that starts at 5 ms and doubles up to 1 s, as
/// Go's net/http does, instead of spinning on a CPU while nothing can succeed.
pub fn accept_with_backoff(listener: &TcpListener, stopping: &AtomicBool) -> Option<(TcpStream, SocketAddr)> {
    let mut backoff = Duration::from_millis(5);
    loop {
        if stopping.load(Ordering::SeqCst) {
            return None;
        }
        match listener.accept() {
            Ok(pair) => return Some(pair),
            // `SO_RCVTIMEO` ran out (`wake_periodically`): look at `stopping` again.
            Err(error) if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
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
