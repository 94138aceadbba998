//! The front: accept connections, read requests with the codec (`crate::http1`), and
//! hand each to a handler.
//!
//! Read in this order: `server` (an acceptor thread and one thread per connection; the
//! simulated backends run this same server with their own `Handler`), then `dispatch`
//! (the balancer's handler: the producer side of the bounded queue).

pub mod admin_listener;
pub mod dispatch;
pub mod server;

pub use server::{Handler, ServerConfig, ServerHandle};
