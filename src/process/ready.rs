//! "I am ready": one line over a pipe from a new process to the one that started it.
//!
//! OS concept: a pipe as a one-shot notification, and end-of-file as news. The parent
//! keeps the read end and gives the child the write end (at the number named by
//! `ROUNDHOUSE_READY_FD`). The child writes `READY=1` (the word systemd's
//! `sd_notify(3)` uses) once it accepts connections. If it dies first, the kernel
//! closes its descriptors, and the parent's `read` returns 0 bytes: end of file means
//! "it will never be ready", known at once, without polling the child. The parent
//! waits with `poll(2)` and a deadline, so a child that hangs cannot hang it too.
//!
//! For this to work the parent must close its own copy of the write end after the
//! fork (`Launch` does), or end-of-file would never come: a pipe's reader sees EOF
//! only when every write end, in every process, is closed.

use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use thiserror::Error;

/// The environment variable that tells a child which descriptor to report on.
pub const READY_FD_VAR: &str = "ROUNDHOUSE_READY_FD";

/// What the child writes.
const READY: &[u8] = b"READY=1\n";

/// Why a new process did not report ready.
#[derive(Debug, Error)]
pub enum NotReady {
    #[error(
        "it closed its end of the readiness pipe without reporting ready (it exited, or does not report)"
    )]
    Closed,
    #[error("it did not report ready within {0:?}")]
    TimedOut(Duration),
    #[error("it wrote {0:?} instead of READY=1")]
    Garbage(String),
    #[error("cannot read the readiness pipe: {0}")]
    Io(#[from] io::Error),
}

/// The parent's end: wait here for the child's word.
#[derive(Debug)]
pub struct ReadyPipe {
    reader: io::PipeReader,
}

/// A new pipe: the end to keep, and the end to pass to the child.
pub fn pipe() -> io::Result<(ReadyPipe, OwnedFd)> {
    let (reader, writer) = io::pipe()?;
    Ok((ReadyPipe { reader }, OwnedFd::from(writer)))
}

impl ReadyPipe {
    /// Waits up to `timeout` for `READY=1`.
    pub fn wait(mut self, timeout: Duration) -> Result<(), NotReady> {
        let deadline = Instant::now() + timeout;
        let mut received = Vec::new();
        while !received.ends_with(b"\n") {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(NotReady::TimedOut(timeout));
            }
            let limit = Timespec::try_from(left).unwrap_or(Timespec {
                tv_sec: 1,
                tv_nsec: 0,
            });
            let mut fds = [PollFd::new(&self.reader, PollFlags::IN)];
            match rustix::event::poll(&mut fds, Some(&limit)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(error) => return Err(NotReady::Io(error.into())),
            }
            let mut chunk = [0u8; 64];
            match self.reader.read(&mut chunk) {
                Ok(0) => return Err(NotReady::Closed),
                Ok(read) => received.extend_from_slice(&chunk[..read]),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(NotReady::Io(error)),
            }
            if received.len() > 256 {
                break;
            }
        }
        if received == READY {
            Ok(())
        } else {
            Err(NotReady::Garbage(String::from_utf8_lossy(&received).into_owned()))
        }
    }
}

/// The child's side: writes `READY=1` on `pipe` and closes it.
pub fn report(pipe: OwnedFd) -> io::Result<()> {
    let mut writer = std::fs::File::from(pipe);
    writer.write_all(READY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_closed_and_timed_out_are_told_apart() {
        let (pipe_end, child_end) = pipe().unwrap();
        report(child_end).unwrap();
        assert!(pipe_end.wait(Duration::from_secs(1)).is_ok());

        let (pipe_end, child_end) = pipe().unwrap();
        drop(child_end);
        assert!(matches!(
            pipe_end.wait(Duration::from_secs(1)),
            Err(NotReady::Closed)
        ));

        let (pipe_end, _child_end) = pipe().unwrap();
        let started = Instant::now();
        assert!(matches!(
            pipe_end.wait(Duration::from_millis(50)),
            Err(NotReady::TimedOut(_))
        ));
        assert!(started.elapsed() >= Duration::from_millis(50));

        let (pipe_end, child_end) = pipe().unwrap();
        std::fs::File::from(child_end).write_all(b"hello\n").unwrap();
        assert!(matches!(
            pipe_end.wait(Duration::from_secs(1)),
            Err(NotReady::Garbage(_))
        ));
    }
}
