//! The HTTP/1 codec: bytes on a socket to requests and responses, and back.
//!
//! This is the bottom layer: it knows the wire format, message framing and the limits
//! that keep a hostile peer from taking memory, and nothing of pools, strategies or
//! stats. The fronts, the forwarding client, the simulated backends and the command-line
//! client all sit on top of it (mini-redis keeps its `frame.rs` apart the same way, and
//! Pingora its `pingora-core`).
//!
//! Read in this order: `error` (every way reading a message can fail, with its status),
//! `fields` (header rules every head shares), `head` (a request head from bytes),
//! `chunked` (the one chunked decoder, fed a buffer at a time), `sink` and `spool`
//! (where body bytes go: memory, or a file), `transport` (the byte stream: TCP, or TLS
//! over it), `reader` (a buffered socket with deadlines), `body` (a body by its
//! framing), `message` (the values handed between threads), `writer` (a response onto
//! a socket), `interim` (1xx answers sent ahead of the final one), `upgrade` (what a
//! connection becomes after `101 Switching Protocols`).
//!
//! OS concept: a byte stream has no message boundaries. TCP delivers bytes; where one
//! request ends and the next begins is only what the HTTP framing says.

pub mod body;
pub mod chunked;
pub mod error;
pub mod fields;
pub mod head;
pub mod interim;
pub mod message;
pub mod reader;
pub mod sink;
pub mod spool;
pub mod transport;
pub mod upgrade;
pub mod writer;

pub use error::RequestError;
pub use message::{Request, Response, ResponseMeta};
