//! The access log: one line per request in nginx's combined format, written by one
//! logger thread (`--access-log PATH | - | off`).
//!
//! OS concept: the producer–consumer problem. Every connection thread produces records,
//! one logger thread consumes them, and a bounded channel is the buffer between them.
//! The producers must not do the slow part (formatting, `write(2)` to a disk that may
//! stall), or every request would wait for the disk; so they only put a small record
//! in the buffer and go on. The consumer takes records out, formats and writes them in
//! batches. The classic questions each have an answer here:
//! - Buffer empty: the consumer sleeps in `recv` (with a timeout, to flush once a
//!   second), using no CPU.
//! - Buffer full (the disk is slower than the traffic): the producers *block* in `send`
//!   until there is room. That backpressure slows requests down instead of dropping
//!   lines or letting memory grow without bound: no line is ever lost.
//! - Shutdown: `AccessLog::finish` queues a stop message *behind* every record already
//!   sent (the channel is FIFO), so the consumer writes them all before it exits, and
//!   the balancer joins it before returning.
//!
//! Diagnostics (errors, health changes) go to stderr through `log`/`env_logger`, never
//! here, so tools like goaccess can read this file unchanged.

pub mod logger;
pub mod record;

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::PathBuf;
use std::str::FromStr;
use std::thread::{self, JoinHandle};

use clap::Args;
use crossbeam_channel::Sender;

pub use record::{Pending, Record};

/// Records that may wait for the logger before producers block.
const CAPACITY: usize = 4096;

/// Where the access log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    Off,
    Stdout,
    File(PathBuf),
}

impl FromStr for AccessLogTarget {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "" => Err("give a file path, - for standard output, or off".into()),
            "off" => Ok(AccessLogTarget::Off),
            "-" => Ok(AccessLogTarget::Stdout),
            path => Ok(AccessLogTarget::File(PathBuf::from(path))),
        }
    }
}

/// The `--access-log` flag, flattened into `serve`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct AccessLogArgs {
    /// Where to write one line per request (nginx's combined format plus upstream,
    /// worker, timings and cache status): a file (appended to), - for standard output,
    /// or off.
    #[arg(long = "access-log", default_value = "-", value_name = "PATH|-|off")]
    pub access_log: AccessLogTarget,
}

/// What travels down the channel.
pub enum Message {
    Record(Box<Record>),
    /// Write everything queued before this, then exit.
    Stop,
}

/// The running logger thread.
pub struct AccessLog {
    sender: Sender<Message>,
    thread: JoinHandle<()>,
}

/// A producer's end of the log, one per dispatcher.
#[derive(Clone)]
pub struct AccessLogSender {
    sender: Sender<Message>,
}

impl AccessLogSender {
    /// Queues a record; blocks while the buffer is full (backpressure).
    pub fn send(&self, record: Record) {
        // Fails only after the logger has stopped, past the end of shutdown.
        let _ = self.sender.send(Message::Record(Box::new(record)));
    }
}

impl AccessLog {
    /// Opens the target and starts the logger thread; `None` for `off`.
    pub fn start(target: &AccessLogTarget) -> io::Result<Option<AccessLog>> {
        let out: Box<dyn Write + Send> = match target {
            AccessLogTarget::Off => return Ok(None),
            AccessLogTarget::Stdout => Box::new(io::stdout()),
            AccessLogTarget::File(path) => Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|error| io::Error::new(error.kind(), format!("{}: {error}", path.display())))?,
            ),
        };
        let (sender, receiver) = crossbeam_channel::bounded(CAPACITY);
        let thread = thread::Builder::new()
            .name("access-log".into())
            .spawn(move || logger::run(&receiver, out))?;
        Ok(Some(AccessLog { sender, thread }))
    }

    pub fn sender(&self) -> AccessLogSender {
        AccessLogSender {
            sender: self.sender.clone(),
        }
    }

    /// Writes every record sent so far and stops the logger thread.
    pub fn finish(self) {
        let _ = self.sender.send(Message::Stop);
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::StatusCode;

    use super::*;

    #[test]
    fn parses_targets() {
        assert_eq!("off".parse(), Ok(AccessLogTarget::Off));
        assert_eq!("-".parse(), Ok(AccessLogTarget::Stdout));
        assert_eq!("a.log".parse(), Ok(AccessLogTarget::File("a.log".into())));
        assert!("".parse::<AccessLogTarget>().is_err());
    }

    #[test]
    fn finish_writes_every_queued_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let log = AccessLog::start(&AccessLogTarget::File(path.clone()))
            .unwrap()
            .unwrap();
        let sender = log.sender();
        for _ in 0..10_000 {
            sender.send(Record::rejected(
                "127.0.0.1:1".parse().unwrap(),
                StatusCode::BAD_REQUEST,
            ));
        }
        log.finish();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 10_000);
    }

    #[test]
    fn lines_reach_the_file_within_the_flush_interval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let log = AccessLog::start(&AccessLogTarget::File(path.clone()))
            .unwrap()
            .unwrap();
        log.sender().send(Record::rejected(
            "127.0.0.1:1".parse().unwrap(),
            StatusCode::BAD_REQUEST,
        ));
        let deadline = std::time::Instant::now() + logger::FLUSH_INTERVAL * 5;
        while std::fs::read_to_string(&path).unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "line not flushed in time");
            std::thread::sleep(Duration::from_millis(20));
        }
        log.finish();
    }
}
