//! The front: accept connections, read requests with the codec (`crate::http1`), and
//! hand each to a handler.
//!
//! OS concept: the ways a server waits for its clients, each shown in its own file:
//! a thread blocked in `accept(2)` and one per connection (`server.rs`), a few threads
//! on `epoll(7)` (`event_loop/`), and the descriptor limit both must live within
//! (`limit.rs`).
//!
//! Read in this order: `server` (an acceptor thread and one thread per connection; the
//! simulated backends run this same server with their own `Handler`), then `dispatch`
//! (the balancer's handler: the producer side of the bounded queue), then `event_loop`
//! (the other way to wait for clients: a few threads on epoll), `running` (which of the
//! two a balancer runs), `limit` (how many connections the descriptor limit holds) and
//! `admin_listener` (the admin pages on a listener of their own).

pub mod admin_listener;
pub mod dispatch;
pub mod event_loop;
pub mod limit;
pub mod running;
pub mod server;

pub use running::{FrontKind, RunningFront};
pub use server::{Handler, ServerConfig, ServerHandle};
