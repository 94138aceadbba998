//! The front: accept connections, read requests with the codec (`crate::http1`), and
//! hand each to a handler.
//!
//! Read in this order: `server` (an acceptor thread and one thread per connection; the
//! simulated backends run this same server with their own `Handler`), then `dispatch`
//! (the balancer's handler: the producer side of the bounded queue), then `event_loop`
//! (the other way to wait for clients: a few threads on epoll), `running` (which of the
//! two a balancer runs) and `limit` (how many connections the descriptor limit holds).

pub mod admin_listener;
pub mod dispatch;
pub mod event_loop;
pub mod limit;
pub mod running;
pub mod server;

pub use running::{FrontKind, RunningFront};
pub use server::{Handler, ServerConfig, ServerHandle};
