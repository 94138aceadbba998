//! Large bodies: spooled to a temporary file on the way in, streamed on the way out.
//!
//! OS concept: bounded memory through the file system and through streaming. A
//! 100 MiB upload must not cost 100 MiB of RAM, and neither may a 100 MiB download.
//! - In: like nginx (`client_body_buffer_size`, `client_body_temp_path`), a request body
//!   stays in memory up to a threshold and moves to an unnamed temporary file beyond it.
//!   The connection thread does this before queueing, so a worker never waits on a slow
//!   client's upload, and the worker then streams the file to the backend.
//! - Out: a large or unbounded response body is not read into memory; the worker hands
//!   the connection thread a reader, and the body flows through a small buffer.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use parking_lot::Mutex;

use super::sink::BodySink;

/// Bodies up to this size stay in memory; larger ones go to a temporary file.
pub const SPOOL_THRESHOLD: usize = 1024 * 1024;

/// Receives a body, in memory first, in a temporary file past the threshold.
pub struct Spool {
    memory: Vec<u8>,
    file: Option<File>,
    stored: u64,
    threshold: usize,
}

impl Spool {
    pub fn new(threshold: usize) -> Self {
        Spool {
            memory: Vec::new(),
            file: None,
            stored: 0,
            threshold,
        }
    }

    /// The body: in memory (small) or as a file (large).
    pub fn finish(self) -> io::Result<(Vec<u8>, Option<SpooledBody>)> {
        match self.file {
            None => Ok((self.memory, None)),
            Some(mut file) => {
                file.flush()?;
                Ok((
                    Vec::new(),
                    Some(SpooledBody {
                        file: Arc::new(file),
                        length: self.stored,
                    }),
                ))
            }
        }
    }
}

impl BodySink for Spool {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stored += bytes.len() as u64;
        if let Some(file) = &mut self.file {
            return file.write_all(bytes);
        }
        if self.memory.len() + bytes.len() <= self.threshold {
            self.memory.extend_from_slice(bytes);
            return Ok(());
        }
        // Past the threshold: an unnamed file (O_TMPFILE where available) that the
        // kernel deletes when the last handle closes, even if we crash.
        let mut file = tempfile::tempfile()?;
        file.write_all(&self.memory)?;
        file.write_all(bytes)?;
        self.memory = Vec::new();
        self.file = Some(file);
        Ok(())
    }

    fn stored(&self) -> u64 {
        self.stored
    }
}

/// A request body kept in a temporary file. Clones share the file.
#[derive(Debug, Clone)]
pub struct SpooledBody {
    file: Arc<File>,
    pub length: u64,
}

impl SpooledBody {
    /// A reader over the whole body from its start. Readers share one file offset, so
    /// only one may be in use at a time (one attempt on one backend at a time).
    pub fn reader(&self) -> io::Result<impl Read + Send + 'static> {
        (&*self.file).seek(SeekFrom::Start(0))?;
        Ok(SharedFile(Arc::clone(&self.file)).take(self.length))
    }
}

/// `&File` implements `Read`; this lets an `Arc<File>` be an owned reader.
struct SharedFile(Arc<File>);

impl Read for SharedFile {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buffer)
    }
}

/// A response body to be streamed rather than held in memory.
///
/// The worker creates it and the connection thread consumes it; the mutex only hands
/// the reader over once (taken out, then read without the lock).
#[derive(Clone)]
pub struct BodyStream {
    reader: Arc<Mutex<Option<Box<dyn Read + Send>>>>,
    /// The body's length when known (sent as Content-Length; otherwise chunked).
    pub length: Option<u64>,
}

impl BodyStream {
    pub fn new(reader: Box<dyn Read + Send>, length: Option<u64>) -> Self {
        BodyStream {
            reader: Arc::new(Mutex::new(Some(reader))),
            length,
        }
    }

    /// The reader, the first time it is asked for.
    pub fn take(&self) -> Option<Box<dyn Read + Send>> {
        self.reader.lock().take()
    }
}

impl fmt::Debug for BodyStream {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        write!(formatter, "BodyStream(length: {:?})", self.length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bodies_stay_in_memory_large_ones_go_to_a_file() {
        let mut small = Spool::new(10);
        small.put(b"hello").unwrap();
        let (memory, file) = small.finish().unwrap();
        assert_eq!(memory, b"hello");
        assert!(file.is_none());

        let mut large = Spool::new(10);
        large.put(b"hello ").unwrap();
        large.put(b"spooled world").unwrap();
        let (memory, file) = large.finish().unwrap();
        assert!(memory.is_empty());
        let file = file.unwrap();
        assert_eq!(file.length, 19);
        for _ in 0..2 {
            let mut text = String::new();
            file.reader().unwrap().read_to_string(&mut text).unwrap();
            assert_eq!(text, "hello spooled world", "each reader starts at the beginning");
        }
    }
}
