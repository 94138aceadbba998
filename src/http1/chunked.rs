//! The chunked transfer coding (RFC 9112 section 7.1), decoded one buffer at a time.
//!
//! OS concept: a byte stream arrives in pieces of any size. A chunk-size line may be cut
//! in two by the network, or ten chunks may arrive in one `read(2)`. So the decoder is a
//! small state machine that is fed whatever bytes are there and remembers where it
//! stopped; it never reads a socket itself. The blocking readers (`body.rs` for
//! requests, the forwarding client's streamed responses) and an event loop that owns its
//! buffers all drive this one decoder.

use super::error::RequestError;

/// The longest chunk-size line or trailer line accepted.
pub const MAX_CHUNK_LINE: usize = 4096;

/// Where in a chunked body the decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk with this many data bytes left.
    Data(u64),
    /// Expecting the CRLF that ends a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty one.
    Trailer,
    Done,
}

/// An incremental decoder of one chunked body.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
    /// A line that began in an earlier buffer and has not ended yet.
    partial_line: Vec<u8>,
    /// Data bytes decoded so far, checked against `max_body`.
    decoded: u64,
    max_body: u64,
    trailer_bytes: usize,
}

impl ChunkedDecoder {
    /// A decoder that refuses bodies over `max_body` bytes (`u64::MAX`: no limit).
    pub fn new(max_body: u64) -> Self {
        ChunkedDecoder {
            state: State::Size,
            partial_line: Vec::new(),
            decoded: 0,
            max_body,
            trailer_bytes: 0,
        }
    }

    /// True once the last chunk and the trailer section are read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from the start of `input`, handing out at most `max_data` body bytes.
    ///
    /// Returns how many bytes of `input` were used and, when some were body data, that
    /// data (a slice of `input` within the used bytes). With no data and not done, all of
    /// `input` was used and more is needed. The caller drops the used bytes afterwards.
    pub fn step<'a>(
        &mut self,
        input: &'a [u8],
        max_data: usize,
    ) -> Result<(usize, Option<&'a [u8]>), RequestError> {
        let mut used = 0;
        loop {
            match self.state {
                State::Done => return Ok((used, None)),
                State::Data(left) => {
                    let available = input.len() - used;
                    if available == 0 || max_data == 0 {
                        return Ok((used, None));
                    }
                    let take = (left.min(available as u64) as usize).min(max_data);
                    self.state = if take as u64 == left {
                        State::DataEnd
                    } else {
                        State::Data(left - take as u64)
                    };
                    return Ok((used + take, Some(&input[used..used + take])));
                }
                State::Size | State::DataEnd | State::Trailer => {
                    let rest = &input[used..];
                    let Some(end) = rest.iter().position(|&byte| byte == b'\n') else {
                        if self.partial_line.len() + rest.len() > MAX_CHUNK_LINE {
                            return Err(RequestError::Malformed("line too long".into()));
                        }
                        self.partial_line.extend_from_slice(rest);
                        return Ok((input.len(), None));
                    };
                    used += end + 1;
                    let joined;
                    let line = if self.partial_line.is_empty() {
                        &rest[..end]
                    } else {
                        joined = [std::mem::take(&mut self.partial_line).as_slice(), &rest[..end]].concat();
                        &joined[..]
                    };
                    if line.len() > MAX_CHUNK_LINE {
                        return Err(RequestError::Malformed("line too long".into()));
                    }
                    // RFC 9112 section 7.1: chunk lines end in CRLF. A bare LF is how
                    // two parsers come to disagree on where a body ends (smuggling), so
                    // it is refused, as HAProxy does, instead of tolerated.
                    let line = line
                        .strip_suffix(b"\r")
                        .ok_or_else(|| RequestError::Malformed("chunk line not ended by CRLF".into()))?;
                    self.state = self.after_line(line)?;
                }
            }
        }
    }

    /// The state after one whole line (without its line ending).
    fn after_line(&mut self, line: &[u8]) -> Result<State, RequestError> {
        match self.state {
            State::Size => {
                let size = parse_chunk_size(line)?;
                if size == 0 {
                    return Ok(State::Trailer);
                }
                if self.decoded.saturating_add(size) > self.max_body {
                    return Err(RequestError::BodyTooLarge(self.max_body));
                }
                self.decoded += size;
                Ok(State::Data(size))
            }
            State::DataEnd if line.is_empty() => Ok(State::Size),
            State::DataEnd => Err(RequestError::Malformed("chunk not followed by CRLF".into())),
            State::Trailer if line.is_empty() => Ok(State::Done),
            State::Trailer => {
                // Trailer fields are dropped; capped like any header section.
                self.trailer_bytes += line.len();
                if self.trailer_bytes > MAX_CHUNK_LINE * 4 {
                    return Err(RequestError::HeadersTooLarge("trailer section too large".into()));
                }
                Ok(State::Trailer)
            }
            State::Data(_) | State::Done => unreachable!("lines are read only between chunks"),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` in pieces of `piece` bytes, as a network might deliver it.
    fn decode_in_pieces(
        wire: &[u8],
        piece: usize,
        max_data: usize,
    ) -> Result<(Vec<u8>, usize), RequestError> {
        let mut decoder = ChunkedDecoder::new(1024);
        let mut body = Vec::new();
        let mut buffer: Vec<u8> = Vec::new();
        let mut fed = 0;
        while !decoder.is_done() {
            if fed < wire.len() {
                let end = (fed + piece).min(wire.len());
                buffer.extend_from_slice(&wire[fed..end]);
                fed = end;
            } else if buffer.is_empty() {
                return Err(RequestError::Truncated("body"));
            }
            loop {
                let (used, data) = decoder.step(&buffer, max_data)?;
                if let Some(data) = data {
                    body.extend_from_slice(data);
                }
                buffer.drain(..used);
                if used == 0 || decoder.is_done() || buffer.is_empty() {
                    break;
                }
            }
        }
        Ok((body, buffer.len() + wire.len() - fed))
    }

    #[test]
    fn the_same_body_whatever_the_pieces() {
        let wire = b"5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        for piece in [1, 2, 3, 7, wire.len()] {
            for max_data in [1, 4, usize::MAX] {
                let (body, left) = decode_in_pieces(wire, piece, max_data).unwrap();
                assert_eq!(body, b"hello world!", "piece {piece}, max_data {max_data}");
                assert_eq!(left, 4, "the next message's bytes stay unread");
            }
        }
    }

    #[test]
    fn bad_framing_is_refused() {
        assert!(decode_in_pieces(b"5\r\nhelloXX\r\n0\r\n\r\n", 3, 64).is_err());
        assert!(decode_in_pieces(b"zz\r\n", 3, 64).is_err());
        // Bare LF after a chunk size, after chunk data, and ending the trailer section.
        assert!(decode_in_pieces(b"5\nhello\r\n0\r\n\r\n", 3, 64).is_err());
        assert!(decode_in_pieces(b"5\r\nhello\n0\r\n\r\n", 3, 64).is_err());
        assert!(decode_in_pieces(b"5\r\nhello\r\n0\r\n\n", 3, 64).is_err());
        let too_large = format!("{:x}\r\n", 2048);
        assert!(matches!(
            decode_in_pieces(too_large.as_bytes(), 64, 64),
            Err(RequestError::BodyTooLarge(1024))
        ));
        let long_line = vec![b'1'; MAX_CHUNK_LINE + 10];
        assert!(decode_in_pieces(&long_line, 100, 64).is_err());
    }

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
