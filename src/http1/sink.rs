//! Where body bytes go as they arrive: memory, or a file once the body is large.
//!
//! OS concept: bounded buffers. Readers of a body (`body.rs`, the socket reader) put
//! bytes into a `BodySink` and never decide themselves where the bytes live; `Vec<u8>`
//! keeps them in memory, `spool::Spool` moves them to a temporary file past a
//! threshold, so the same reading code serves a 10-byte form and a 100 MiB upload.

use std::io;

/// Where body bytes are put as they arrive.
pub trait BodySink {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Bytes put so far.
    fn stored(&self) -> u64;
}

impl BodySink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.extend_from_slice(bytes);
        Ok(())
    }
    fn stored(&self) -> u64 {
        self.len() as u64
    }
}
