//! Reading a message body by its framing: a fixed Content-Length, or chunked.
//!
//! OS concept: bounded buffers. The declared length is checked before a single body
//! byte is stored, and a chunked body is counted as it streams in, so no client can
//! make the process allocate more than `--max-body`. Where the bytes go is a
//! `BodySink`: a `Vec` in memory, or a `Spool` that moves to a temporary file once
//! the body is large (see `spool.rs`).

use std::time::{Duration, Instant};

use super::chunked::ChunkedDecoder;
use super::error::RequestError;
use super::head::Framing;
use super::reader::HttpReader;
use super::sink::BodySink;

/// Reads a whole body into memory. `per_read` bounds each wait for bytes from the peer.
pub fn read_body(
    reader: &mut HttpReader,
    framing: Framing,
    max_body: u64,
    per_read: Duration,
) -> Result<Vec<u8>, RequestError> {
    let mut body = match framing {
        Framing::ContentLength(length) if length <= max_body => Vec::with_capacity(length as usize),
        _ => Vec::new(),
    };
    read_body_into(reader, framing, max_body, per_read, &mut body)?;
    Ok(body)
}

/// Reads a whole body into `sink`.
pub fn read_body_into(
    reader: &mut HttpReader,
    framing: Framing,
    max_body: u64,
    per_read: Duration,
    sink: &mut impl BodySink,
) -> Result<(), RequestError> {
    match framing {
        Framing::None => Ok(()),
        Framing::ContentLength(length) => {
            if length > max_body {
                return Err(RequestError::BodyTooLarge(max_body));
            }
            reader.read_exact_into(length as usize, sink, per_read)
        }
        Framing::Chunked => read_chunked_into(reader, max_body, per_read, sink),
        Framing::UntilClose => read_until_close(reader, max_body, per_read, sink),
    }
}

/// Decodes a chunked body (RFC 9112 section 7.1) into memory.
pub fn read_chunked(
    reader: &mut HttpReader,
    max_body: u64,
    per_read: Duration,
) -> Result<Vec<u8>, RequestError> {
    let mut body = Vec::new();
    read_chunked_into(reader, max_body, per_read, &mut body)?;
    Ok(body)
}

/// Decodes a chunked body into `body` with the one chunked decoder (`chunked.rs`);
/// extensions and trailers are dropped.
pub fn read_chunked_into(
    reader: &mut HttpReader,
    max_body: u64,
    per_read: Duration,
    body: &mut impl BodySink,
) -> Result<(), RequestError> {
    let mut decoder = ChunkedDecoder::new(max_body);
    while !decoder.is_done() {
        if reader.buffered().is_empty() && reader.fill(Instant::now() + per_read)? == 0 {
            return Err(RequestError::Truncated("body"));
        }
        let (used, data) = decoder.step(reader.buffered(), usize::MAX)?;
        if let Some(data) = data {
            body.put(data)?;
        }
        reader.consume(used);
    }
    Ok(())
}

fn read_until_close(
    reader: &mut HttpReader,
    max_body: u64,
    per_read: Duration,
    body: &mut impl BodySink,
) -> Result<(), RequestError> {
    loop {
        body.put(reader.buffered())?;
        let taken = reader.buffered().len();
        reader.consume(taken);
        if body.stored() > max_body {
            return Err(RequestError::BodyTooLarge(max_body));
        }
        if reader.fill(Instant::now() + per_read)? == 0 {
            return Ok(());
        }
    }
}
