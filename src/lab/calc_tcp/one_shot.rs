//! A server for one-message protocols: read once, answer, close.
//!
//! OS concept: the connection as the message frame. The first seed's calculator and its
//! status port have no length fields or delimiters: the request is whatever the first
//! `read(2)` returns, and the answer ends when the server closes the connection. That
//! is simple, and it is fragile in a way worth seeing: TCP is a byte stream, so a
//! request could in principle arrive split over two reads (on a real network, or with
//! a client that writes in pieces); a 1 KiB expression sent in one `write` on one
//! machine arrives whole in practice. HTTP's `Content-Length` exists to remove this
//! guesswork.
//!
//! Closing carefully matters too: closing a socket with unread bytes in its receive
//! buffer makes the kernel send a reset, which can destroy the answer before the client
//! reads it. So the answer is followed by `shutdown(Write)` (our FIN), and whatever the
//! client still sends is read and dropped until its own FIN, for at most a second, as
//! nginx's `lingering_close` does.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::sys::listen::{accept_with_backoff, wake_acceptor};

/// What a one-shot server answers to the bytes of a first read.
pub type Answer = dyn Fn(&[u8]) -> String + Send + Sync;

/// How a one-shot server behaves.
#[derive(Clone)]
pub struct OneShotConfig {
    /// Thread name prefix (`top -H` shows it).
    pub name: String,
    /// Size of the one read; a longer message is cut there, so make it one byte more
    /// than the longest valid message to let the answer function say "too long".
    pub read_bytes: usize,
    /// Connections served at once; one more is told so and closed.
    pub max_connections: usize,
    /// Longest wait for the client's message, or for it to take the answer.
    pub timeout: Duration,
}

/// A running one-shot server.
pub struct OneShotServer {
    local_addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

/// Starts answering connections on `listener` with `answer`.
pub fn start(listener: TcpListener, config: OneShotConfig, answer: Arc<Answer>) -> io::Result<OneShotServer> {
    let local_addr = listener.local_addr()?;
    let stopping = Arc::new(AtomicBool::new(false));
    let acceptor_stopping = Arc::clone(&stopping);
    let acceptor = thread::Builder::new()
        .name(format!("{}-accept", config.name))
        .spawn(move || accept_loop(&listener, &config, &answer, &acceptor_stopping))?;
    Ok(OneShotServer {
        local_addr,
        stopping,
        acceptor: Some(acceptor),
    })
}

fn accept_loop(listener: &TcpListener, config: &OneShotConfig, answer: &Arc<Answer>, stopping: &AtomicBool) {
    let open = Arc::new(AtomicUsize::new(0));
    let mut number = 0u64;
    // Out of descriptors or a similar passing shortage: back off, as the HTTP front does.
    while let Some((stream, _)) = accept_with_backoff(listener, stopping) {
        if stopping.load(Ordering::SeqCst) {
            break; // the wake-up connection of `wake_acceptor`, or one that came with it
        }
        if open.fetch_add(1, Ordering::SeqCst) >= config.max_connections {
            open.fetch_sub(1, Ordering::SeqCst);
            reply_and_close(stream, "Erro: too many connections, try again", config.timeout);
            continue;
        }
        number += 1;
        let (thread_config, answer, thread_open) = (config.clone(), Arc::clone(answer), Arc::clone(&open));
        let spawned = thread::Builder::new()
            .name(format!("{}-{number}", config.name))
            .stack_size(256 * 1024)
            .spawn(move || {
                serve(stream, &thread_config, &*answer);
                thread_open.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn serve(mut stream: TcpStream, config: &OneShotConfig, answer: &Answer) {
    let _ = stream.set_read_timeout(Some(config.timeout));
    let mut message = vec![0u8; config.read_bytes];
    let read = loop {
        match stream.read(&mut message) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            // Connected and closed without a word (a TCP health check, our own
            // shutdown's wake-up call), or never spoke: nothing to answer.
            Ok(0) | Err(_) => return,
            Ok(read) => break read,
        }
    };
    reply_and_close(stream, &answer(&message[..read]), config.timeout);
}

/// Writes `text`, sends our FIN, and drains what the client still sends (see the
/// module comment) before the socket is closed.
fn reply_and_close(mut stream: TcpStream, text: &str, timeout: Duration) {
    let _ = stream.set_write_timeout(Some(timeout));
    if stream.write_all(text.as_bytes()).is_err() {
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < 64 * 1024 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(read) => drained += read,
        }
    }
}

impl OneShotServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting; connections being answered finish on their own threads.
    pub fn shutdown(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // accept(2) has no timeout: see `wake_acceptor`.
        wake_acceptor(self.local_addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

impl Drop for OneShotServer {
    fn drop(&mut self) {
        if self.acceptor.is_some() {
            self.shutdown();
        }
    }
}
