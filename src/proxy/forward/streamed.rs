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
use crate::http1::body::parse_chunk_size;
use crate::http1::head::Framing;

/// The longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;

/// Where in the body the reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// A fixed-length body with this much left.
    Remaining(u64),
    /// Inside a chunked body: bytes left in the current chunk, and whether a chunk has
    /// been read already (each one after the first is preceded by its CRLF).
    InChunk {
        left: u64,
        after_first: bool,
    },
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
            Framing::Chunked => Position::InChunk {
                left: 0,
                after_first: false,
            },
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
        (self.position == Position::Done && self.conn.reader.buffered().is_empty()).then_some(self.conn)
    }

    /// Copies up to `left` buffered bytes (reading more if none are buffered).
    fn copy_some(&mut self, out: &mut [u8], left: u64) -> io::Result<usize> {
        if self.conn.reader.buffered().is_empty() && self.fill()? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "backend closed mid-body",
            ));
        }
        let buffered = self.conn.reader.buffered();
        let count = (buffered.len() as u64).min(left).min(out.len() as u64) as usize;
        out[..count].copy_from_slice(&buffered[..count]);
        self.conn.reader.consume(count);
        Ok(count)
    }

    fn fill(&mut self) -> io::Result<usize> {
        self.conn
            .reader
            .fill(Instant::now() + self.per_read)
            .map_err(to_io)
    }

    fn line(&mut self) -> io::Result<Vec<u8>> {
        self.conn.reader.read_line(MAX_LINE, self.per_read).map_err(to_io)
    }

    /// Reads the next chunk-size line (and the CRLF ending the chunk before it).
    fn next_chunk(&mut self, after_first: bool) -> io::Result<Position> {
        if after_first && !self.line()?.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "chunk not followed by CRLF",
            ));
        }
        let size = parse_chunk_size(&self.line()?).map_err(to_io)?;
        if size > 0 {
            return Ok(Position::InChunk {
                left: size,
                after_first: true,
            });
        }
        // The last chunk: skip the trailer section up to its empty line.
        while !self.line()?.is_empty() {}
        Ok(Position::Done)
    }
}

impl Read for UpstreamBody {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            match self.position {
                Position::Done => return Ok(0),
                Position::Remaining(left) => {
                    let count = self.copy_some(out, left)?;
                    let left = left - count as u64;
                    self.position = if left == 0 {
                        Position::Done
                    } else {
                        Position::Remaining(left)
                    };
                    return Ok(count);
                }
                Position::InChunk { left: 0, after_first } => self.position = self.next_chunk(after_first)?,
                Position::InChunk { left, after_first } => {
                    let count = self.copy_some(out, left)?;
                    self.position = Position::InChunk {
                        left: left - count as u64,
                        after_first,
                    };
                    return Ok(count);
                }
                Position::UntilClose => {
                    if self.conn.reader.buffered().is_empty() && self.fill()? == 0 {
                        self.position = Position::Done;
                        return Ok(0);
                    }
                    return self.copy_some(out, u64::MAX);
                }
            }
        }
    }
}

fn to_io(error: RequestError) -> io::Error {
    match error {
        RequestError::Io(error) => error,
        RequestError::Timeout => io::Error::new(io::ErrorKind::TimedOut, "backend stalled mid-body"),
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}
