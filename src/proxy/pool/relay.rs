//! A streamed answer relayed for an event loop, a piece at a time, by the workers.
//!
//! OS concept: who may block on what. A streamed body (a large or unbounded download)
//! is a blocking `Read` from the backend's socket, and the client on the other side may
//! be slow. Three places could copy it, and two are wrong:
//! - the event loop: its reads from the backend would block every other connection;
//! - one worker, for the whole body: a slow client would hold it, and a handful of
//!   slow downloads would stop all forwarding;
//! - (what the threaded front does) a short-lived thread per download: one thread per
//!   slow client again, the very cost the event loop exists to remove.
//!
//! So the copy is cut into pieces. A worker reads a piece from the backend (waiting on
//! a backend is a worker's job) and sends it with a non-blocking `send(2)`; while the
//! client keeps up it goes on, up to `BUDGET` bytes, then gives its turn up. Whatever
//! the socket did not take goes back to the loop (`Handback::unwritten`) with the rest
//! of the body, the loop writes it when the socket is writable, and then queues a
//! `Resume` for the next piece on the workers' resume channel. A slow client costs
//! bytes in one buffer, never a blocked thread; the workers still bound how many
//! backends are read at once. nginx buffers a slow client's download the same way
//! (`proxy_buffering`), in memory and in temporary files, from its event loop.
//!
//! Over TLS a worker cannot send at all (only the loop writes to a session): it reads a
//! quarter megabyte of pieces and hands them all back (`hand_back_all`), and the loop
//! encrypts them as the socket drains.

use std::io;
use std::net::TcpStream;
use std::sync::Arc;

pub use super::handback::Relay;
use super::handback::{Handback, Rest, close_unless, send_now};

/// Bytes a worker relays for one connection before it lets other work go first.
pub const BUDGET: usize = 1024 * 1024;

/// The next stretch of a relay, for a worker: `pending` bytes go first.
pub struct Resume {
    pub relay: Relay,
    pub pending: Vec<u8>,
    pub stream: Arc<TcpStream>,
    pub handback: Box<dyn Handback>,
    /// A TLS connection: the worker reads pieces and hands them all to the loop, which
    /// encrypts them (only the loop writes to a TLS session).
    pub hand_back_all: bool,
}

impl Resume {
    /// Sends pieces until the socket is full, the body ends, or the budget is spent.
    pub fn run(self) {
        let Resume {
            mut relay,
            pending: mut bytes,
            stream,
            handback,
            hand_back_all,
        } = self;
        if hand_back_all {
            return gather(relay, bytes, handback);
        }
        let mut sent = 0;
        let mut budget = BUDGET;
        let mut more = true;
        loop {
            while sent < bytes.len() {
                match send_now(&stream, &bytes[sent..]) {
                    Ok(count) => sent += count,
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                        let relay = more.then_some(relay);
                        let keep_open = relay.as_ref().is_none_or(|relay| relay.keep_open);
                        return handback.unwritten(Rest {
                            bytes,
                            sent,
                            relay,
                            keep_open,
                        });
                    }
                    Err(_) => return finish(&stream, handback, false),
                }
            }
            if !more {
                return finish(&stream, handback, relay.keep_open);
            }
            if budget == 0 {
                // Our turn is over: the loop queues the rest behind other work.
                let keep_open = relay.keep_open;
                return handback.unwritten(Rest {
                    bytes: Vec::new(),
                    sent: 0,
                    relay: Some(relay),
                    keep_open,
                });
            }
            match relay.pump.next_piece(&mut bytes) {
                Ok(going_on) => more = going_on,
                Err(error) => {
                    log::debug!("streamed body broke off: {error}");
                    return finish(&stream, handback, false);
                }
            }
            sent = 0;
            budget = budget.saturating_sub(bytes.len().max(1));
        }
    }
}

/// Pieces to hand back to the loop over TLS: read until `HANDED_BACK` bytes wait (one
/// hand-back per quarter megabyte, not per 16 KiB piece) or the body ends.
fn gather(mut relay: Relay, mut bytes: Vec<u8>, handback: Box<dyn Handback>) {
    let mut piece = Vec::new();
    while bytes.len() < HANDED_BACK {
        match relay.pump.next_piece(&mut piece) {
            Ok(true) => bytes.extend_from_slice(&piece),
            Ok(false) => {
                bytes.extend_from_slice(&piece);
                return handback.unwritten(Rest {
                    bytes,
                    sent: 0,
                    relay: None,
                    keep_open: relay.keep_open,
                });
            }
            Err(error) => {
                log::debug!("streamed body broke off: {error}");
                // The loop closes the connection: nothing more can be sent whole.
                return handback.written(false);
            }
        }
    }
    let keep_open = relay.keep_open;
    handback.unwritten(Rest {
        bytes,
        sent: 0,
        relay: Some(relay),
        keep_open,
    })
}

/// Bytes a worker gathers for a TLS connection before it hands them to the loop.
const HANDED_BACK: usize = 256 * 1024;

fn finish(stream: &TcpStream, handback: Box<dyn Handback>, keep_open: bool) {
    close_unless(stream, keep_open);
    handback.written(keep_open);
}
