//! The front: accept connections, parse HTTP/1.1 requests, hand each to a handler.
//!
//! Read in this order: `server` (threads and sockets), `reader` and `parse` (bytes to a
//! request head, within limits), `body`, `message` (the values passed between threads),
//! `writer`, `direct` (the worker writing the answer while the connection thread reads
//! ahead), and finally `dispatch` (the balancer's handler: the producer side of the
//! bounded queue).

pub mod body;
pub mod dashboard;
pub mod direct;
pub mod dispatch;
pub mod error;
pub mod interim;
pub mod listen;
pub mod message;
pub mod parse;
pub mod reader;
pub mod server;
pub mod spool;
pub mod writer;

pub use error::RequestError;
pub use message::{Request, Response, ResponseMeta};
pub use server::{Handler, ServerConfig, ServerHandle};
