//! Each worker's own pool of keep-alive connections to the backends.
//!
//! OS concept: thread-local storage, and sharing by not sharing. A worker forwards one
//! request at a time, so it needs at most one connection per backend at a time. The
//! pool therefore lives in the worker thread's own storage (`thread_local!`, the same
//! mechanism as C's `errno`): no other thread can reach it, so it needs no lock at all.
//! Compare ureq's agent, whose one pool is shared by every worker behind a mutex.
//! nginx does the same per process: each worker has its own `keepalive` cache.
//!
//! Connections are reused last-in, first-out, like nginx's upstream keepalive cache:
//! the most recently used one is the least likely to have been closed by the backend.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::http1::reader::HttpReader;
use crate::http1::transport::Duplex;

/// Most idle connections a worker keeps per backend. A worker uses one at a time, so
/// a few spare cover the rare case where a retry opened a second one.
pub const MAX_IDLE_PER_BACKEND: usize = 4;

/// One open connection to a backend, with its read buffer.
pub struct BackendConn {
    pub reader: HttpReader,
    /// Reused for every request head written on this connection, so writing a request
    /// allocates nothing once the connection has carried its first request.
    pub write_buffer: Vec<u8>,
    /// Requests this connection has carried. More than zero means a reused connection,
    /// which the backend may have closed while it sat in the pool.
    pub requests: u64,
}

impl BackendConn {
    pub fn new(stream: TcpStream) -> Self {
        BackendConn::over(Arc::new(stream))
    }

    /// A connection over any byte stream (a TLS session to an https backend).
    pub fn over(stream: Arc<dyn Duplex>) -> Self {
        BackendConn {
            reader: HttpReader::over(stream),
            write_buffer: Vec::with_capacity(1024),
            requests: 0,
        }
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.stream()
    }

    /// True when the backend has closed its side (or sent bytes nobody asked for).
    ///
    /// A closed peer makes `read(2)` return 0 at once; an open, quiet one would block.
    /// So the check switches the socket to non-blocking for one `peek`: three system
    /// calls, which is why the client only pays them for requests it could not retry.
    pub fn closed_by_peer(&self) -> bool {
        let stream = self.stream();
        if stream.set_nonblocking(true).is_err() {
            return true;
        }
        let mut probe = [0u8; 1];
        let closed = match stream.peek(&mut probe) {
            // 0 bytes: the backend closed. Any byte: an answer to nothing, unusable.
            Ok(_) => true,
            Err(error) => error.kind() != std::io::ErrorKind::WouldBlock,
        };
        stream.set_nonblocking(false).is_err() || closed
    }
}

struct IdleConn {
    conn: BackendConn,
    since: Instant,
}

/// Idle connections by backend authority (`host:port`).
#[derive(Default)]
pub struct ConnPool {
    idle: HashMap<String, Vec<IdleConn>>,
}

impl ConnPool {
    /// The most recently returned connection to `authority` that has been idle less
    /// than `max_idle`; older ones are closed on the way.
    pub fn take(&mut self, authority: &str, max_idle: Duration) -> Option<BackendConn> {
        let idle = self.idle.get_mut(authority)?;
        let now = Instant::now();
        // Oldest first in the vector: drop the ones idle too long from the front.
        let fresh_from = idle
            .iter()
            .position(|entry| now.duration_since(entry.since) < max_idle)
            .unwrap_or(idle.len());
        idle.drain(..fresh_from);
        idle.pop().map(|entry| entry.conn)
    }

    /// Keeps `conn` for the next request to `authority`, unless enough are kept.
    pub fn put(&mut self, authority: &str, conn: BackendConn) {
        let entry = IdleConn {
            conn,
            since: Instant::now(),
        };
        match self.idle.get_mut(authority) {
            Some(idle) if idle.len() >= MAX_IDLE_PER_BACKEND => {}
            Some(idle) => idle.push(entry),
            None => {
                self.idle.insert(authority.to_string(), vec![entry]);
            }
        }
    }

    /// Closes every idle connection to `authority`: after one turned out closed by the
    /// backend (a restart, say), the others are likely closed too.
    pub fn clear(&mut self, authority: &str) {
        if let Some(idle) = self.idle.get_mut(authority) {
            idle.clear();
        }
    }

    /// Idle connections kept for `authority`.
    pub fn idle_count(&self, authority: &str) -> usize {
        self.idle.get(authority).map_or(0, Vec::len)
    }
}

thread_local! {
    /// The calling thread's pool. Only this thread ever touches it.
    static WORKER_POOL: RefCell<ConnPool> = RefCell::new(ConnPool::default());
}

/// Runs `action` on the calling thread's pool. Never do I/O inside `action`: take a
/// connection out, use it, and put it back in a second call.
pub fn with_worker_pool<R>(action: impl FnOnce(&mut ConnPool) -> R) -> R {
    WORKER_POOL.with_borrow_mut(action)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn connection(listener: &TcpListener) -> BackendConn {
        BackendConn::new(TcpStream::connect(listener.local_addr().unwrap()).unwrap())
    }

    #[test]
    fn reuses_last_in_first_out_and_caps_idle() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut pool = ConnPool::default();
        let mut ports = Vec::new();
        for _ in 0..MAX_IDLE_PER_BACKEND + 2 {
            let conn = connection(&listener);
            ports.push(conn.stream().local_addr().unwrap().port());
            pool.put("a:1", conn);
        }
        assert_eq!(pool.idle_count("a:1"), MAX_IDLE_PER_BACKEND);
        let taken = pool.take("a:1", Duration::from_secs(60)).unwrap();
        assert_eq!(
            taken.stream().local_addr().unwrap().port(),
            ports[MAX_IDLE_PER_BACKEND - 1]
        );
        assert!(pool.take("b:1", Duration::from_secs(60)).is_none());
        pool.clear("a:1");
        assert_eq!(pool.idle_count("a:1"), 0);
    }

    #[test]
    fn drops_connections_idle_too_long() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut pool = ConnPool::default();
        pool.put("a:1", connection(&listener));
        assert!(pool.take("a:1", Duration::ZERO).is_none());
        assert_eq!(pool.idle_count("a:1"), 0);
    }

    #[test]
    fn sees_a_peer_close() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let conn = connection(&listener);
        let (accepted, _) = listener.accept().unwrap();
        assert!(!conn.closed_by_peer());
        drop(accepted);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !conn.closed_by_peer() {
            assert!(Instant::now() < deadline, "close never seen");
            std::thread::yield_now();
        }
    }
}
