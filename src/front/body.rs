//! Reading a message body by its framing: a fixed Content-Length, or chunked.
//!
//! OS concept: bounded buffers. The declared length is checked before a single body
//! byte is stored, and a chunked body is counted as it streams in, so no client can
//! make the process allocate more than `--max-body`.

use std::time::Duration;

use super::error::RequestError;
use super::parse::Framing;
use super::reader::HttpReader;

/// The longest chunk-size line or trailer line accepted.
const MAX_CHUNK_LINE: usize = 4096;

/// Reads a whole body. `per_read` bounds each wait for bytes from the peer.
pub fn read_body(
    reader: &mut HttpReader,
    framing: Framing,
    max_body: u64,
    per_read: Duration,
) -> Result<Vec<u8>, RequestError> {
    match framing {
        Framing::None => Ok(Vec::new()),
        Framing::ContentLength(length) => {
            if length > max_body {
                return Err(RequestError::BodyTooLarge(max_body));
            }
            let mut body = Vec::with_capacity(length as usize);
            reader.read_exact_into(length as usize, &mut body, per_read)?;
            Ok(body)
        }
        Framing::Chunked => read_chunked(reader, max_body, per_read),
        Framing::UntilClose => read_until_close(reader, max_body, per_read),
    }
}

/// Decodes a chunked body (RFC 9112 section 7.1); extensions and trailers are dropped.
pub fn read_chunked(
    reader: &mut HttpReader,
    max_body: u64,
    per_read: Duration,
) -> Result<Vec<u8>, RequestError> {
    let mut body = Vec::new();
    loop {
        let line = reader.read_line(MAX_CHUNK_LINE, per_read)?;
        let size = parse_chunk_size(&line)?;
        if size == 0 {
            break;
        }
        if body.len() as u64 + size > max_body {
            return Err(RequestError::BodyTooLarge(max_body));
        }
        reader.read_exact_into(size as usize, &mut body, per_read)?;
        if !reader.read_line(MAX_CHUNK_LINE, per_read)?.is_empty() {
            return Err(RequestError::Malformed("chunk not followed by CRLF".into()));
        }
    }
    // Trailer section: header lines until an empty line. Capped like any header.
    let mut trailer_bytes = 0;
    loop {
        let line = reader.read_line(MAX_CHUNK_LINE, per_read)?;
        if line.is_empty() {
            return Ok(body);
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
) -> Result<Vec<u8>, RequestError> {
    let mut body = Vec::new();
    loop {
        body.extend_from_slice(reader.buffered());
        let taken = reader.buffered().len();
        reader.consume(taken);
        if body.len() as u64 > max_body {
            return Err(RequestError::BodyTooLarge(max_body));
        }
        if reader.fill(std::time::Instant::now() + per_read)? == 0 {
            return Ok(body);
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
