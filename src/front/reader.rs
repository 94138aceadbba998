//! A buffered reader over a TCP socket, with deadlines.
//!
//! OS concept: blocking I/O and socket timeouts. `read(2)` blocks the calling thread
//! until bytes arrive; `SO_RCVTIMEO` (`set_read_timeout`) bounds each wait. A slow
//! client that trickles one byte at a time would reset a per-read timeout forever, so
//! the head of a request gets an overall deadline: before every read the remaining time
//! is set as the socket timeout (nginx's `client_header_timeout` works the same way).

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::body::BodySink;
use super::error::RequestError;

/// How many bytes one `read(2)` asks for. One page-sized buffer per connection keeps
/// 2,000 idle connections cheap while most requests arrive in a single read.
const READ_CHUNK: usize = 8 * 1024;

/// Buffered bytes from a socket, consumed from the front.
pub struct HttpReader {
    stream: TcpStream,
    buffer: Vec<u8>,
    /// Bytes before this index were already consumed.
    start: usize,
    /// The socket timeout currently set, so unchanged timeouts cost no syscall.
    current_timeout: Option<Duration>,
}

impl HttpReader {
    pub fn new(stream: TcpStream) -> Self {
        HttpReader {
            stream,
            buffer: Vec::with_capacity(READ_CHUNK),
            start: 0,
            current_timeout: None,
        }
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Bytes received but not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buffer[self.start..]
    }

    /// Marks `count` buffered bytes as consumed.
    pub fn consume(&mut self, count: usize) {
        self.start += count;
        if self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        }
    }

    /// Reads more bytes into the buffer, waiting at most until `deadline`.
    /// Returns the number of new bytes; 0 means the peer closed its side.
    pub fn fill(&mut self, deadline: Instant) -> Result<usize, RequestError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(RequestError::Timeout);
        }
        self.set_timeout(remaining)?;
        if self.start > 0 && self.start * 2 >= self.buffer.len() {
            // Move the unread tail to the front instead of growing forever.
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        let old_len = self.buffer.len();
        self.buffer.resize(old_len + READ_CHUNK, 0);
        let result = loop {
            match self.stream.read(&mut self.buffer[old_len..]) {
                // A signal arrived during the wait (EINTR): nothing was read, try again.
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let read = match result {
            Ok(read) => read,
            Err(error) => {
                self.buffer.truncate(old_len);
                return Err(match error.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => RequestError::Timeout,
                    _ => RequestError::Io(error),
                });
            }
        };
        self.buffer.truncate(old_len + read);
        Ok(read)
    }

    /// Moves exactly `count` bytes into `out`, reading as needed; each wait for bytes
    /// may last up to `per_read` (a stalled sender times out, a slow steady one does not).
    pub fn read_exact_into(
        &mut self,
        mut count: usize,
        out: &mut impl BodySink,
        per_read: Duration,
    ) -> Result<(), RequestError> {
        while count > 0 {
            if self.buffered().is_empty() && self.fill(Instant::now() + per_read)? == 0 {
                return Err(RequestError::Malformed("connection closed mid-body".into()));
            }
            let take = count.min(self.buffered().len());
            out.put(&self.buffered()[..take])?;
            self.consume(take);
            count -= take;
        }
        Ok(())
    }

    /// Reads one line ending in LF (CRLF accepted) of at most `max` bytes, without the
    /// line ending.
    pub fn read_line(&mut self, max: usize, per_read: Duration) -> Result<Vec<u8>, RequestError> {
        loop {
            if let Some(position) = self.buffered().iter().position(|&byte| byte == b'\n') {
                let mut line = self.buffered()[..position].to_vec();
                self.consume(position + 1);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buffered().len() > max {
                return Err(RequestError::Malformed("line too long".into()));
            }
            if self.fill(Instant::now() + per_read)? == 0 {
                return Err(RequestError::Malformed("connection closed mid-line".into()));
            }
        }
    }

    fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        // Round up to whole milliseconds so tiny changes do not cost a syscall each.
        let rounded = Duration::from_millis(timeout.as_millis().max(1) as u64);
        if self.current_timeout != Some(rounded) {
            self.stream.set_read_timeout(Some(rounded))?;
            self.current_timeout = Some(rounded);
        }
        Ok(())
    }
}
