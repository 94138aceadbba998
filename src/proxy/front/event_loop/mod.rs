//! The event-loop front: a few threads wait on thousands of client sockets at once.
//!
//! OS concept: I/O multiplexing and the C10k problem. The threaded front (`server.rs`)
//! gives each connection a thread that sleeps in `read(2)` until its client speaks: ten
//! thousand clients, ten thousand threads, each with a stack and a turn in the
//! scheduler, and every request costs a thread wake-up. Here one thread asks the kernel
//! to watch every socket (`epoll(7)`, through the `mio` crate) and sleeps until *some*
//! are ready, then serves all of those. A waiting connection costs a few hundred bytes
//! of state (`connection.rs`) and its kernel socket buffers, not a thread. This is how
//! nginx, HAProxy, Envoy and Go's runtime wait for clients.
//!
//! Read in this order: `reactor` (the loop: poll, accept, dispatch readiness, timers),
//! `connection` (one client's state machine), `timers` (every deadline in one heap),
//! `completions` (how workers report back, and why they seldom wake the loop), `secure`
//! (TLS driven by the loop, handshake included), `table` (tokens to connections).
//!
//! Everything behind the front is the threaded front's: the same `Handler` (for the
//! balancer, `dispatch::Dispatcher`: admin pages and cache hits answered on the loop,
//! everything else `try_send` into the bounded queue or refused with 503), the same
//! workers, which write the answer to the socket themselves with one non-blocking send
//! (over TLS they hand every byte back instead: only the loop writes to a session).
//! The rule of the two kinds of thread: the loop never blocks (no backend, no lock held
//! long, no waiting client), and a worker never waits on a client (what the socket does
//! not take goes back to the loop, `pool::direct::Handback`).
//!
//! `--front-threads N` runs N loops, each with its own epoll instance, all accepting
//! from the one listening socket: a connection stays with the loop that accepted it.

mod completions;
mod connection;
mod reactor;
mod secure;
mod table;
mod timers;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::{Poll, Waker};

use super::server::{Handler, ServerConfig};
use crate::proxy::pool::relay::Resume;
use completions::Completions;
use reactor::{Reactor, WAKER};

/// What every loop thread of one front shares.
struct LoopShared {
    config: ServerConfig,
    handler: Arc<dyn Handler>,
    /// Set to drain: stop accepting, close idle connections, finish the busy ones.
    /// Shared with the workers' answers, which then close after answering.
    stopping: Arc<AtomicBool>,
    /// Set when the drain ran out of time: the loops close everything and end.
    abandon: AtomicBool,
    /// Client connections open, over every loop (refusals not counted).
    open: AtomicUsize,
    /// Where the next piece of a streamed answer is queued for the workers.
    resumes: Sender<Resume>,
}

/// The running loops, and the way to stop them.
pub struct LoopHandle {
    local_addr: SocketAddr,
    shared: Arc<LoopShared>,
    wakers: Vec<Arc<Completions>>,
    threads: Vec<JoinHandle<()>>,
    /// Each loop sends one message as it ends.
    ended: Receiver<()>,
}

/// Starts `threads` event loops serving `listener`.
pub fn start(
    listener: TcpListener,
    config: ServerConfig,
    threads: usize,
    handler: Arc<dyn Handler>,
    resumes: Sender<Resume>,
) -> std::io::Result<LoopHandle> {
    let local_addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let listener = Arc::new(listener);
    let name = config.thread_name.clone();
    let shared = Arc::new(LoopShared {
        config,
        handler,
        stopping: Arc::new(AtomicBool::new(false)),
        abandon: AtomicBool::new(false),
        open: AtomicUsize::new(0),
        resumes,
    });
    let (ended_sender, ended) = crossbeam_channel::unbounded();
    let mut wakers = Vec::new();
    let mut handles = Vec::new();
    for number in 0..threads.max(1) {
        let poll = Poll::new()?;
        let completions = Arc::new(Completions::new(Waker::new(poll.registry(), WAKER)?));
        wakers.push(Arc::clone(&completions));
        let reactor = Reactor::new(poll, Arc::clone(&listener), Arc::clone(&shared), completions)?;
        let ended_sender = ended_sender.clone();
        let handle = thread::Builder::new()
            .name(format!("{name}-loop-{number}"))
            .spawn(move || {
                reactor.run();
                let _ = ended_sender.send(());
            })?;
        handles.push(handle);
    }
    Ok(LoopHandle {
        local_addr,
        shared,
        wakers,
        threads: handles,
        ended,
    })
}

impl LoopHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Client connections open right now.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Stops accepting, closes idle connections, and waits up to `drain` for the busy
    /// ones to finish. True when every connection closed in time.
    pub fn shutdown(&mut self, drain: Duration) -> bool {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.wake_all();
        let deadline = Instant::now() + drain;
        let mut ended = 0;
        while ended < self.threads.len() && self.ended.recv_deadline(deadline).is_ok() {
            ended += 1;
        }
        let drained = ended == self.threads.len();
        if !drained {
            self.shared.abandon.store(true, Ordering::SeqCst);
            self.wake_all();
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        drained
    }

    fn wake_all(&self) {
        for completions in &self.wakers {
            completions.wake();
        }
    }
}
