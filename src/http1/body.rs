//! Reading a message body by its framing: a fixed Content-Length, or chunked.
//!
//! OS concept: bounded buffers. The declared length is checked before a single body
//! byte is stored, and a chunked body is counted as it streams in, so no client can
//! make the process allocate more than `--max-body`. Where the bytes go is a
//! `BodySink`: a `Vec` in memory, or a `Spool` that moves to a temporary file once
//! the body is large (see `spool.rs`).

use std::io;
use std::time::Duration;

use super::error::RequestError;
use super::head::Framing;
use super::reader::HttpReader;

/// The longest chunk-size line or trailer line accepted.
const MAX_CHUNK_LINE: usize = 4096;

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

/// Decodes a chunked body into `body`; extensions and trailers are dropped.
pub fn read_chunked_into(
    reader: &mut HttpReader,
    max_body: u64,
    per_read: Duration,
    body: &mut impl BodySink,
) -> Result<(), RequestError> {
    loop {
        let line = reader.read_line(MAX_CHUNK_LINE, per_read)?;
        let size = parse_chunk_size(&line)?;
        if size == 0 {
            break;
        }
        if body.stored() + size > max_body {
            return Err(RequestError::BodyTooLarge(max_body));
        }
        reader.read_exact_into(size as usize, body, per_read)?;
        if !reader.read_line(MAX_CHUNK_LINE, per_read)?.is_empty() {
            return Err(RequestError::Malformed("chunk not followed by CRLF".into()));
        }
    }
    // Trailer section: header lines until an empty line. Capped like any header.
    let mut trailer_bytes = 0;
    loop {
        let line = reader.read_line(MAX_CHUNK_LINE, per_read)?;
        if line.is_empty() {
            return Ok(());
        }
        trailer_bytes += line.len();
        if trailer_bytes > MAX_CHUNK_LINE * 4 {
            return Err(RequestError::HeadersTooLarge("trailer section too large".into()));
        }
    }
}

/// Parses `1a;ext=1` into 26. Hex digits only, no sign, at most 15 digits (no overflow).
pub fn parse_chunk_size(line: &[u8]) -> Result<u64, RequestError> {
    let digits = line.split(|&byte| byte == b';').next().unwrap_or_default();
    let digits = digits.trim_ascii();
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(RequestError::Malformed("bad chunk size".into()));
    }
    let text = std::str::from_utf8(digits).map_err(|_| RequestError::Malformed("bad chunk size".into()))?;
    u64::from_str_radix(text, 16).map_err(|_| RequestError::Malformed("bad chunk size".into()))
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
        if reader.fill(std::time::Instant::now() + per_read)? == 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_parse_strictly() {
        assert_eq!(parse_chunk_size(b"1a").unwrap(), 26);
        assert_eq!(parse_chunk_size(b"0;name=value").unwrap(), 0);
        assert_eq!(parse_chunk_size(b"FF ").unwrap(), 255);
        assert!(parse_chunk_size(b"").is_err());
        assert!(parse_chunk_size(b"-1").is_err());
        assert!(parse_chunk_size(b"0x10").is_err());
        assert!(parse_chunk_size(b"1234567890abcdef0").is_err());
    }
}
