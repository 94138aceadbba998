//! The loop itself: one thread, one epoll instance, every socket of its connections.
//!
//! OS concept: readiness and I/O multiplexing. `epoll_wait(2)` (through mio's `Poll`)
//! puts the thread to sleep until any of its registered descriptors is ready, a timer
//! is due, or a worker wakes it; it returns the list of what is ready, and the loop
//! runs each of those connections until it would block again. The thread sleeps only
//! when no connection can move, and one wake-up serves every connection that became
//! ready meanwhile: under load the loop hardly sleeps at all, and the cost of a wake-up
//! is shared by many requests. nginx's `ngx_process_events_and_timers` is this loop.
//!
//! Accepting: the listening socket is registered too; "readable" means connections wait
//! in the accept queue, and the loop accepts until EAGAIN. When `accept(2)` fails for
//! want of descriptors (EMFILE, ENFILE) the loop stops accepting for a moment (5 ms,
//! doubling up to 1 s), as nginx and Go do; the clients wait in the kernel's accept
//! queue meanwhile, and nothing is reset. (libuv instead keeps a spare descriptor to
//! accept and at once close one connection; here the limit is sized so that the
//! refusal's 503 has room instead, `proxy::front::limit`.)

use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::LoopShared;
use super::completions::{Completions, Report};
use super::connection::{Connection, Context, Verdict};
use super::table::Table;
use super::timers::Timers;

pub const LISTENER: Token = Token(usize::MAX - 1);
pub const WAKER: Token = Token(usize::MAX);

/// Size of the read buffer every connection of the loop shares.
const SCRATCH: usize = 64 * 1024;

pub struct Reactor {
    poll: Poll,
    listener: Arc<TcpListener>,
    shared: Arc<LoopShared>,
    completions: Arc<Completions>,
    connections: Table<Connection>,
    timers: Timers,
    /// Connections to run this round: `(slot, generation)`.
    ready: Vec<(usize, u64)>,
    /// Connections whose turn's budget ran out, run again next round.
    again: Vec<(usize, u64)>,
    scratch: Vec<u8>,
    /// Accepting paused (out of descriptors) until then.
    accept_paused: Option<Instant>,
    accept_backoff: Duration,
    /// The listener was deregistered for a drain.
    draining: bool,
}

impl Reactor {
    pub fn new(
        poll: Poll,
        listener: Arc<TcpListener>,
        shared: Arc<LoopShared>,
        completions: Arc<Completions>,
    ) -> std::io::Result<Self> {
        poll.registry()
            .register(&mut SourceFd(&listener.as_raw_fd()), LISTENER, Interest::READABLE)?;
        Ok(Reactor {
            poll,
            listener,
            shared,
            completions,
            connections: Table::default(),
            timers: Timers::default(),
            ready: Vec::new(),
            again: Vec::new(),
            scratch: vec![0; SCRATCH],
            accept_paused: None,
            accept_backoff: MIN_BACKOFF,
            draining: false,
        })
    }

    /// Runs until the server stops and every connection is closed (or abandoned).
    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut reports = Vec::new();
        loop {
            let stopping = self.shared.stopping.load(Ordering::SeqCst);
            if stopping && !self.draining {
                self.begin_drain();
            }
            if self.shared.abandon.load(Ordering::SeqCst) || (self.draining && self.connections.is_empty()) {
                break;
            }
            let timeout = self.timeout();
            // The loop sleeps as soon as nothing is ready, as nginx's does. (Spinning on a
            // zero timeout for 20 or 50 us first was measured: the loop's own sleeps per
            // request fell from 0.33 to 0.10-0.16, and on two cores shared with the
            // client and the backends a third of the throughput at 32 connections went:
            // the spin took the CPU the others needed.)
            if let Err(error) = self.poll.poll(&mut events, timeout)
                && error.kind() != std::io::ErrorKind::Interrupted
            {
                log::error!("event loop: poll failed: {error}");
                break;
            }
            let now = Instant::now();
            let mut accept = false;
            for event in events.iter() {
                match event.token() {
                    LISTENER => accept = true,
                    WAKER => {
                        self.completions.take(&mut reports);
                        for (slot, generation, report) in reports.drain(..) {
                            let Some(connection) = self.connections.get_mut(slot, generation) else {
                                continue;
                            };
                            match report {
                                Report::Rest(rest) => connection.take_rest(rest, &self.shared.config, now),
                                Report::Switched(head, upgrade) => {
                                    connection.take_switched(head, upgrade, &self.shared.config, now)
                                }
                                Report::Look => {}
                            }
                            queue(&mut self.ready, connection, slot, generation);
                        }
                    }
                    Token(slot) => {
                        let Some((generation, connection)) = self.connections.get_any(slot) else {
                            continue;
                        };
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            connection.readable = true;
                        }
                        if event.is_read_closed() || event.is_error() {
                            connection.hung_up = true;
                        }
                        if event.is_writable() || event.is_write_closed() || event.is_error() {
                            connection.writable = true;
                        }
                        queue(&mut self.ready, connection, slot, generation);
                    }
                }
            }
            if self.accept_paused.is_some_and(|until| now >= until) {
                self.accept_paused = None;
                accept = true;
            }
            if accept && !self.draining && self.accept_paused.is_none() {
                self.accept_all(now);
            }
            while let Some((at, slot, generation)) = self.timers.pop_due(now) {
                // An entry that is not the connection's earliest is stale: skipped.
                if let Some(connection) = self.connections.get_mut(slot, generation)
                    && connection.scheduled == Some(at)
                {
                    connection.scheduled = None;
                    queue(&mut self.ready, connection, slot, generation);
                }
            }
            let again = std::mem::take(&mut self.again);
            for (slot, generation) in again {
                if let Some(connection) = self.connections.get_mut(slot, generation) {
                    queue(&mut self.ready, connection, slot, generation);
                }
            }
            let ready = std::mem::take(&mut self.ready);
            for &(slot, generation) in &ready {
                self.run_connection(slot, generation, now);
            }
            self.ready = ready;
            self.ready.clear();
            self.compact_timers();
        }
        for (slot, _) in self.connections.keys() {
            self.close(slot);
        }
    }

    /// How long `epoll_wait` may sleep: until the earliest timer, at once when work is
    /// left over, and forever when nothing is due (a report or readiness wakes it).
    fn timeout(&self) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        let next = [self.timers.next(), self.accept_paused]
            .into_iter()
            .flatten()
            .min();
        // Rounded up to the next millisecond (epoll's unit) so a timer is never early.
        next.map(|at| {
            let wait = at.saturating_duration_since(Instant::now());
            Duration::from_millis(wait.as_micros().div_ceil(1000) as u64)
        })
    }

    fn accept_all(&mut self, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    self.accept_backoff = MIN_BACKOFF;
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let config = &self.shared.config;
                    let open = self.shared.open.fetch_add(1, Ordering::SeqCst);
                    let connection = if open < config.max_connections {
                        Connection::new(stream, peer, config, now)
                    } else {
                        self.shared.open.fetch_sub(1, Ordering::SeqCst);
                        Connection::refused(stream, peer, config, now)
                    };
                    self.admit(connection, now);
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => {
                    // Out of descriptors (or a similar passing shortage): accepting now
                    // would fail again at once, and with edge-triggered readiness no new
                    // event comes for the clients already queued, so look again later.
                    log::warn!("accept failed: {error}; retrying in {:?}", self.accept_backoff);
                    self.accept_paused = Some(now + self.accept_backoff);
                    self.accept_backoff = (self.accept_backoff * 2).min(MAX_BACKOFF);
                    return;
                }
            }
        }
    }

    fn admit(&mut self, connection: Connection, now: Instant) {
        let fd = connection.stream.as_raw_fd();
        let counted = connection.counted;
        let (slot, generation) = self.connections.insert(connection);
        // Readable and writable, registered once (edge-triggered, as nginx does): no
        // `epoll_ctl` per request to change what is watched.
        let registered = self.poll.registry().register(
            &mut SourceFd(&fd),
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        );
        if let Err(error) = registered {
            log::warn!("cannot register a connection with epoll: {error}");
            self.connections.remove(slot);
            if counted {
                self.connection_gone();
            }
            return;
        }
        // Its request may be here already: run it now rather than after another poll.
        self.run_connection(slot, generation, now);
    }

    fn run_connection(&mut self, slot: usize, generation: u64, now: Instant) {
        let shared = &self.shared;
        let Some(connection) = self.connections.get_mut(slot, generation) else {
            return;
        };
        connection.queued = false;
        let mut context = Context {
            config: &shared.config,
            handler: &*shared.handler,
            stopping: &shared.stopping,
            completions: &self.completions,
            resumes: &shared.resumes,
            slot,
            generation,
            scratch: &mut self.scratch,
            now,
        };
        // A panic while serving one connection (admin pages and cache hits run here)
        // closes that connection, not the loop and every other connection on it: the
        // workers' rule (`pool/mod.rs`), applied per connection. The panic hook has
        // printed the message already.
        let verdict =
            panic::catch_unwind(AssertUnwindSafe(|| connection.run(&mut context))).unwrap_or_else(|_| {
                log::error!("event loop: a panic while serving a connection; closing it");
                Verdict::Close
            });
        match verdict {
            Verdict::Close => self.close(slot),
            Verdict::Upgraded => self.hand_over(slot),
            Verdict::Again => self.again.push((slot, generation)),
            Verdict::Wait => {
                // An entry is pushed only when the deadline moved earlier than the one
                // in the heap (see `timers.rs`).
                if let Some(deadline) = connection.deadline
                    && connection.scheduled.is_none_or(|scheduled| deadline < scheduled)
                {
                    self.timers.schedule(deadline, slot, generation);
                    connection.scheduled = Some(deadline);
                }
            }
        }
    }

    fn close(&mut self, slot: usize) {
        let Some(mut connection) = self.connections.remove(slot) else {
            return;
        };
        connection.closing();
        let _ = self
            .poll
            .registry()
            .deregister(&mut SourceFd(&connection.stream.as_raw_fd()));
        // A worker may still hold the socket (a drain that ran out of time): shut it so
        // the client sees the end now, not when the worker lets go.
        if Arc::strong_count(&connection.stream) > 1 {
            let _ = connection.stream.shutdown(std::net::Shutdown::Both);
        }
        if connection.counted {
            self.connection_gone();
        }
    }

    /// After a `101`: the connection leaves the loop (and its epoll set) for a tunnel
    /// of threads, as on the threaded front; it no longer counts as one of the front's.
    fn hand_over(&mut self, slot: usize) {
        let Some(connection) = self.connections.remove(slot) else {
            return;
        };
        let _ = self
            .poll
            .registry()
            .deregister(&mut SourceFd(&connection.stream.as_raw_fd()));
        if connection.counted {
            self.connection_gone();
        }
        connection.into_tunnel(self.shared.config.client_timeout);
    }

    fn connection_gone(&self) {
        self.shared.open.fetch_sub(1, Ordering::SeqCst);
    }

    /// Stops accepting and closes every idle connection; busy ones close after their
    /// answer (they see `stopping`).
    fn begin_drain(&mut self) {
        self.draining = true;
        let _ = self
            .poll
            .registry()
            .deregister(&mut SourceFd(&self.listener.as_raw_fd()));
        let now = Instant::now();
        for (slot, generation) in self.connections.keys() {
            self.run_connection(slot, generation, now);
        }
    }

    /// Entries of deadlines that moved later stay in the heap until they pop (lazy
    /// deletion); when they far outnumber the connections, the heap is rebuilt.
    fn compact_timers(&mut self) {
        if self.timers.len() <= 4 * self.connections.len() + 1024 {
            return;
        }
        self.timers.clear();
        for (slot, generation) in self.connections.keys() {
            if let Some(connection) = self.connections.get_mut(slot, generation) {
                connection.scheduled = connection.deadline;
                if let Some(deadline) = connection.deadline {
                    self.timers.schedule(deadline, slot, generation);
                }
            }
        }
    }
}

const MIN_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Adds a connection to this round's list once.
fn queue(ready: &mut Vec<(usize, u64)>, connection: &mut Connection, slot: usize, generation: u64) {
    if !connection.queued {
        connection.queued = true;
        ready.push((slot, generation));
    }
}
