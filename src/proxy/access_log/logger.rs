//! The logger thread: the single consumer of access-log records.
//!
//! It formats each record and appends it to a buffer in memory; the buffer goes to the
//! file in one `write(2)` when it fills, at least once a second (so `tail -f` keeps
//! up), and when the log is stopped. One thread means lines never interleave and need
//! no lock on the file.
//!
//! OS concept: a file is its descriptor, not its name. After logrotate renames the log,
//! the open descriptor still writes to the renamed file; on SIGUSR1 the logger gets
//! `Message::Reopen` and opens the path again (nginx's `-s reopen`), and if that fails
//! it keeps the old descriptor, so lines still go somewhere.

use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::Message;

/// How long a written line may wait in the buffer before it reaches the file.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Buffer size: many lines per `write(2)` under load (nginx's `access_log ... buffer=64k`).
const BUFFER_BYTES: usize = 64 * 1024;

/// Turns times into `10/Oct/2000:13:55:36 -0700`, formatting once per second.
struct LocalClock {
    zone: TimeZone,
    second: i64,
    text: String,
}

impl LocalClock {
    fn new() -> Self {
        LocalClock {
            zone: TimeZone::system(),
            second: i64::MIN,
            text: String::new(),
        }
    }

    fn format(&mut self, time: SystemTime) -> &str {
        let timestamp = Timestamp::try_from(time).unwrap_or(Timestamp::UNIX_EPOCH);
        if timestamp.as_second() != self.second {
            self.second = timestamp.as_second();
            self.text = timestamp
                .to_zoned(self.zone.clone())
                .strftime("%d/%b/%Y:%H:%M:%S %z")
                .to_string();
        }
        &self.text
    }
}

/// The logger's whole life: consume records until told to stop or until every
/// producer is gone, then write out what is left.
/// `path` is the file to open again on `Reopen` (`None` for standard output).
pub fn run(records: &Receiver<Message>, mut out: Box<dyn Write + Send>, path: Option<&Path>) {
    let mut clock = LocalClock::new();
    let mut buffer = Vec::with_capacity(BUFFER_BYTES);
    let mut last_flush = Instant::now();
    let mut failing = false;
    loop {
        let wait = FLUSH_INTERVAL.saturating_sub(last_flush.elapsed());
        match records.recv_timeout(wait) {
            Ok(Message::Record(record)) => {
                record.write_line(&mut buffer, clock.format(record.time));
            }
            Ok(Message::Reopen) => {
                write_out(&mut out, &mut buffer, &mut failing);
                if let Some(path) = path {
                    match super::open_for_append(path) {
                        Ok(file) => {
                            out = Box::new(file);
                            log::info!("access log: reopened {}", path.display());
                        }
                        // The old file stays open: lines keep going somewhere.
                        Err(error) => {
                            log::error!("access log: cannot reopen {error}; still writing to the old file")
                        }
                    }
                }
            }
            Ok(Message::Stop) => {
                // Everything sent before the stop is already queued behind it: take it.
                while let Ok(message) = records.try_recv() {
                    if let Message::Record(record) = message {
                        record.write_line(&mut buffer, clock.format(record.time));
                    }
                }
                write_out(&mut out, &mut buffer, &mut failing);
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                write_out(&mut out, &mut buffer, &mut failing);
                return;
            }
        }
        if buffer.len() >= BUFFER_BYTES || last_flush.elapsed() >= FLUSH_INTERVAL {
            write_out(&mut out, &mut buffer, &mut failing);
            last_flush = Instant::now();
        }
    }
}

/// Writes the buffer out. A failing disk is reported once on stderr (not in the access
/// log!) and the lines are dropped rather than piling up in memory.
fn write_out(out: &mut Box<dyn Write + Send>, buffer: &mut Vec<u8>, failing: &mut bool) {
    if buffer.is_empty() {
        return;
    }
    let result: io::Result<()> = out.write_all(buffer).and_then(|()| out.flush());
    match result {
        Ok(()) if *failing => {
            *failing = false;
            log::info!("access log: writing again");
        }
        Ok(()) => {}
        Err(error) if !*failing => {
            *failing = true;
            log::error!("access log: cannot write: {error}; dropping lines until it works again");
        }
        Err(_) => {}
    }
    buffer.clear();
}
