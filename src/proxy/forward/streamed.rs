//! A backend's response body read as it arrives, for bodies too large to hold.
//!
//! OS concept: streaming through a fixed buffer. A 100 MiB download must not cost
//! 100 MiB of memory: the body is decoded from the backend's socket into whatever buffer
//! the reader is given (the connection thread's 64 KiB copy buffer), chunk framing and
//! all. The backend connection goes with it and is closed at the end rather than pooled:
//! the worker that owns the pool has long moved on.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use super::conn_pool::BackendConn;
use crate::http1::RequestError;
use crate::http1::chunked::ChunkedDecoder;
use crate::http1::head::Framing;

/// Where in the body the reader is.
#[derive(Debug)]
enum Position {
    /// A fixed-length body with this much left.
    Remaining(u64),
    /// A chunked body, decoded by the codec's one chunked decoder.
    Chunked(ChunkedDecoder),
    /// Until the backend closes.
    UntilClose,
    Done,
}

/// Reads a response body from a backend connection, decoding its framing.
pub struct UpstreamBody {
    conn: BackendConn,
    position: Position,
    per_read: Duration,
}

impl UpstreamBody {
    pub fn new(conn: BackendConn, framing: Framing, per_read: Duration) -> Self {
        let position = match framing {
            Framing::None | Framing::ContentLength(0) => Position::Done,
            Framing::ContentLength(length) => Position::Remaining(length),
            // A response body has no size limit here: it streams through, never stored.
            Framing::Chunked => Position::Chunked(ChunkedDecoder::new(u64::MAX)),
            Framing::UntilClose => Position::UntilClose,
        };
        UpstreamBody {
            conn,
            position,
            per_read,
        }
    }

    /// The connection, if the body was read to its end and nothing else arrived, so it
    /// can carry another request.
    pub fn into_reusable_connection(self) -> Option<BackendConn> {
        (matches!(self.position, Position::Done) && self.conn.reader.buffered().is_empty())
            .then_some(self.conn)
    }

    /// Reads more bytes from the backend unless some are buffered; false at its end.
    fn ensure_buffered(&mut self) -> io::Result<bool> {
        if !self.conn.reader.buffered().is_empty() {
            return Ok(true);
        }
        let read = self
            .conn
            .reader
            .fill(Instant::now() + self.per_read)
            .map_err(to_io)?;
        Ok(read > 0)
    }

    /// Copies up to `left` buffered bytes (reading more if none are buffered).
    fn copy_some(&mut self, out: &mut [u8], left: u64) -> io::Result<usize> {
        if !self.ensure_buffered()? {
            return Err(closed_mid_body());
        }
        let buffered = self.conn.reader.buffered();
        let count = (buffered.len() as u64).min(left).min(out.len() as u64) as usize;
        out[..count].copy_from_slice(&buffered[..count]);
        self.conn.reader.consume(count);
        Ok(count)
    }
}

impl Read for UpstreamBody {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            match &mut self.position {
                Position::Done => return Ok(0),
                Position::Remaining(left) => {
                    let left = *left;
                    let count = self.copy_some(out, left)?;
                    let left = left - count as u64;
                    self.position = if left == 0 {
                        Position::Done
                    } else {
                        Position::Remaining(left)
                    };
                    return Ok(count);
                }
                Position::Chunked(decoder) if decoder.is_done() => self.position = Position::Done,
                Position::Chunked(_) => {
                    if !self.ensure_buffered()? {
                        return Err(closed_mid_body());
                    }
                    let Position::Chunked(decoder) = &mut self.position else {
                        unreachable!()
                    };
                    let (used, data) = decoder
                        .step(self.conn.reader.buffered(), out.len())
                        .map_err(to_io)?;
                    let count = data.map_or(0, |data| {
                        out[..data.len()].copy_from_slice(data);
                        data.len()
                    });
                    self.conn.reader.consume(used);
                    if count > 0 {
                        return Ok(count);
                    }
                }
                Position::UntilClose => {
                    if !self.ensure_buffered()? {
                        self.position = Position::Done;
                        return Ok(0);
                    }
                    return self.copy_some(out, u64::MAX);
                }
            }
        }
    }
}

fn closed_mid_body() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "backend closed mid-body")
}

fn to_io(error: RequestError) -> io::Error {
    match error {
        RequestError::Io(error) => error,
        RequestError::Timeout => io::Error::new(io::ErrorKind::TimedOut, "backend stalled mid-body"),
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}
