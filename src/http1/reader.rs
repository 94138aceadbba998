//! A buffered reader over a TCP socket (or a TLS session on one), with deadlines.
//!
//! OS concept: blocking I/O and socket timeouts. `read(2)` blocks the calling thread
//! until bytes arrive; `SO_RCVTIMEO` (`set_read_timeout`) bounds each wait. A slow
//! client that trickles one byte at a time would reset a per-read timeout forever, so
//! the head of a request gets an overall deadline: before every read the remaining time
//! is set as the socket timeout (nginx's `client_header_timeout` works the same way).

use std::io;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::RequestError;
use super::sink::BodySink;
use super::transport::Duplex;

/// How many bytes one `read(2)` asks for. One page-sized buffer per connection keeps
/// 2,000 idle connections cheap while most requests arrive in a single read.
const READ_CHUNK: usize = 8 * 1024;

/// Buffered bytes from a socket, consumed from the front.
pub struct HttpReader {
    /// Shared, so that a writer (or, after an upgrade, a tunnel) can reach the same
    /// stream: a TLS session must be one object for both directions.
    stream: Arc<dyn Duplex>,
    /// Received bytes are `buffer[start..end]`; the rest is room for the next read.
    /// `read(2)` needs initialized memory, so the room is zeroed once, when the buffer
    /// grows, and reused after that: no per-read `memset`.
    buffer: Vec<u8>,
    /// Bytes before this index were already consumed.
    start: usize,
    /// Bytes from this index on are not data (yet).
    end: usize,
    /// The socket timeout currently set, so unchanged timeouts cost no syscall.
    current_timeout: Option<Duration>,
}

impl HttpReader {
    pub fn new(stream: TcpStream) -> Self {
        HttpReader::over(Arc::new(stream))
    }

    /// A reader over a socket that others write to through their own `Arc`.
    pub fn shared(stream: Arc<TcpStream>) -> Self {
        HttpReader::over(stream)
    }

    /// A reader over any `Duplex` (a TLS session, say).
    pub fn over(stream: Arc<dyn Duplex>) -> Self {
        HttpReader {
            stream,
            buffer: Vec::new(),
            start: 0,
            end: 0,
            current_timeout: None,
        }
    }

    /// The TCP socket underneath.
    pub fn stream(&self) -> &TcpStream {
        self.stream.socket()
    }

    /// The byte stream read from, for writing back on it.
    pub fn duplex(&self) -> &Arc<dyn Duplex> {
        &self.stream
    }

    /// The stream and the bytes received but not consumed: what a connection that
    /// switched protocols (101) carries on with.
    pub fn into_parts(self) -> (Arc<dyn Duplex>, Vec<u8>) {
        let rest = self.buffered().to_vec();
        (self.stream, rest)
    }

    /// Bytes received but not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buffer[self.start..self.end]
    }

    /// Marks `count` buffered bytes as consumed.
    pub fn consume(&mut self, count: usize) {
        self.start += count;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
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
        if self.start > 0 && self.start * 2 >= self.end {
            // Move the unread tail to the front instead of growing forever.
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buffer.len() - self.end < READ_CHUNK {
            self.buffer.resize(self.end + READ_CHUNK, 0);
        }
        let read = loop {
            match self.stream.read(&mut self.buffer[self.end..]) {
                Ok(read) => break read,
                // A signal arrived during the wait (EINTR): nothing was read, try again.
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Err(RequestError::Timeout);
                }
                Err(error) => return Err(RequestError::Io(error)),
            }
        };
        self.end += read;
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
                return Err(RequestError::Truncated("body"));
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
                return Err(RequestError::Truncated("line"));
            }
        }
    }

    fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        // Round up to whole milliseconds so tiny changes do not cost a syscall each.
        let rounded = Duration::from_millis(timeout.as_millis().max(1) as u64);
        if self.current_timeout != Some(rounded) {
            self.stream.socket().set_read_timeout(Some(rounded))?;
            self.current_timeout = Some(rounded);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, HttpReader) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let writer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        (writer, HttpReader::new(accepted))
    }

    #[test]
    fn lines_and_bodies_across_many_reads_and_buffer_reuse() {
        let (mut writer, mut reader) = pair();
        let per_read = Duration::from_secs(5);
        let body: Vec<u8> = (0..3 * READ_CHUNK + 17).map(|n| (n % 251) as u8).collect();
        let sender = std::thread::spawn(move || {
            writer.write_all(b"first li").unwrap();
            writer.flush().unwrap();
            std::thread::sleep(Duration::from_millis(20));
            writer.write_all(b"ne\r\nsecond\n").unwrap();
            writer.write_all(&body).unwrap();
            writer.write_all(b"tail\n").unwrap();
            body
        });
        assert_eq!(reader.read_line(100, per_read).unwrap(), b"first line");
        assert_eq!(reader.read_line(100, per_read).unwrap(), b"second");
        let body = sender.join().unwrap();
        let mut received = Vec::new();
        reader
            .read_exact_into(body.len(), &mut received, per_read)
            .unwrap();
        assert!(received == body);
        assert_eq!(reader.read_line(100, per_read).unwrap(), b"tail");
        assert!(reader.buffered().is_empty());
        // A body three times the read size never made the buffer grow past two reads.
        assert!(reader.buffer.len() <= 2 * READ_CHUNK);
        assert_eq!(reader.fill(Instant::now() + per_read).unwrap(), 0);
    }
}
