//! The access log: one line per request in nginx's combined format, written by one
//! logger thread (`--access-log PATH | - | off`).
//!
//! OS concept: the producer–consumer problem. Every connection thread (or event loop,
//! or worker) produces records,
//! one logger thread consumes them, and a bounded channel is the buffer between them.
//! The producers must not do the slow part (formatting, `write(2)` to a disk that may
//! stall), or every request would wait for the disk; so they only put a small record
//! in the buffer and go on. The consumer takes records out, formats and writes them in
//! batches. The classic questions each have an answer here:
//! - Buffer empty: the consumer sleeps in `recv` (with a timeout, to flush once a
//!   second), using no CPU.
//! - Buffer full (the disk is slower than the traffic): the producers *block* in `send`
//!   until there is room. That backpressure slows requests down instead of dropping
//!   lines or letting memory grow without bound: no line is ever lost. An event loop
//!   that blocks here stops all of its connections until the logger catches up; that
//!   is what nginx's worker does on a stalled log `write(2)` too (HAProxy instead sends
//!   to syslog and drops), and a disk slower than the traffic for 4,096 requests is a
//!   disk to fix, not a reason to lose lines.
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
    /// Write everything queued before this to the file open now, then open the path
    /// again (SIGUSR1, after logrotate renamed the file).
    Reopen,
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
            AccessLogTarget::File(path) => Box::new(open_for_append(path)?),
        };
        let path = match target {
            AccessLogTarget::File(path) => Some(path.clone()),
            _ => None,
        };
        let (sender, receiver) = crossbeam_channel::bounded(CAPACITY);
        let thread = thread::Builder::new()
            .name("access-log".into())
            .spawn(move || logger::run(&receiver, out, path.as_deref()))?;
        Ok(Some(AccessLog { sender, thread }))
    }

    /// Asks the logger to reopen its file (nginx's `kill -USR1` convention). Every line
    /// queued before goes to the old file, every line after to the new one: the one
    /// logger thread does both in order, so none is lost or written twice.
    pub fn reopen(&self) {
        let _ = self.sender.send(Message::Reopen);
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

/// Opens `path` to append to it, creating it if needed; the error names the path.
pub fn open_for_append(path: &std::path::Path) -> io::Result<std::fs::File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|error| io::Error::new(error.kind(), format!("{}: {error}", path.display())))
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
    fn reopen_moves_later_lines_to_the_new_file_and_loses_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let rotated = dir.path().join("access.log.1");
        let log = AccessLog::start(&AccessLogTarget::File(path.clone()))
            .unwrap()
            .unwrap();
        let sender = log.sender();
        let rejected = || Record::rejected("127.0.0.1:1".parse().unwrap(), StatusCode::BAD_REQUEST);
        for _ in 0..1000 {
            sender.send(rejected());
        }
        // What logrotate does: rename, then signal.
        std::fs::rename(&path, &rotated).unwrap();
        log.reopen();
        for _ in 0..500 {
            sender.send(rejected());
        }
        log.finish();
        let count = |path: &std::path::Path| std::fs::read_to_string(path).unwrap().lines().count();
        assert_eq!(count(&rotated), 1000);
        assert_eq!(count(&path), 500);
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
