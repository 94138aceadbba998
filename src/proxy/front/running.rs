//! Which front a balancer runs, and one handle over either.
//!
//! OS concept: two ways to wait for many clients. `threads` gives each connection a
//! thread that blocks in `read(2)` (`server.rs`); `epoll` lets a few threads wait on
//! every socket at once (`event_loop`). Both serve the same `Handler`, so everything
//! behind the front (queue, workers, cache, logs) is the same. docs/decisions.md says
//! what each costs.

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;

use super::event_loop::{self, LoopHandle};
use super::server::{self, Handler, ServerConfig, ServerHandle};
use crate::proxy::pool::relay::Resume;

/// How the front waits for its clients (`--front`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FrontKind {
    /// A thread per connection, blocking reads (the default).
    #[default]
    Threads,
    /// `--front-threads` event loops over epoll, non-blocking sockets.
    Epoll,
}

impl FromStr for FrontKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "threads" => Ok(FrontKind::Threads),
            "epoll" => Ok(FrontKind::Epoll),
            other => Err(format!("unknown front {other:?}: choose threads or epoll")),
        }
    }
}

impl fmt::Display for FrontKind {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(match self {
            FrontKind::Threads => "threads",
            FrontKind::Epoll => "epoll",
        })
    }
}

/// A running front of either kind.
pub enum RunningFront {
    Threads(ServerHandle),
    Epoll(LoopHandle),
}

/// Starts the front of `kind` on `listener`; `loops` is the number of event-loop
/// threads (ignored by the threaded front, which has no use for `resumes` either).
pub fn start(
    kind: FrontKind,
    loops: usize,
    listener: TcpListener,
    config: ServerConfig,
    handler: Arc<dyn Handler>,
    resumes: Sender<Resume>,
) -> std::io::Result<RunningFront> {
    Ok(match kind {
        FrontKind::Threads => RunningFront::Threads(server::start(listener, config, handler)?),
        FrontKind::Epoll => {
            RunningFront::Epoll(event_loop::start(listener, config, loops, handler, resumes)?)
        }
    })
}

impl RunningFront {
    pub fn local_addr(&self) -> SocketAddr {
        match self {
            RunningFront::Threads(server) => server.local_addr(),
            RunningFront::Epoll(server) => server.local_addr(),
        }
    }

    pub fn open_connections(&self) -> usize {
        match self {
            RunningFront::Threads(server) => server.open_connections(),
            RunningFront::Epoll(server) => server.open_connections(),
        }
    }

    /// Stops accepting and drains for up to `drain`; true when every connection closed.
    pub fn shutdown(&mut self, drain: Duration) -> bool {
        match self {
            RunningFront::Threads(server) => server.shutdown(drain),
            RunningFront::Epoll(server) => server.shutdown(drain),
        }
    }

    /// The same, once a new process accepts on the listening socket too (an upgrade,
    /// `process::upgrade`). The threaded front then lets idle keep-alive connections
    /// go only as they finish (`ServerHandle::hand_over`); the event loop stops
    /// accepting and drains as on shutdown, closing idle connections between requests,
    /// which a keep-alive client answers by reconnecting (to the new process).
    pub fn hand_over(&mut self, drain: Duration) -> bool {
        match self {
            RunningFront::Threads(server) => server.hand_over(drain),
            RunningFront::Epoll(server) => server.shutdown(drain),
        }
    }
}
