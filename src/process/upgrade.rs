//! Upgrading in place on SIGUSR2: a new process takes the listening sockets over, the
//! old one stops accepting, drains and exits, and no connection is refused meanwhile.
//!
//! OS concept: a listening socket belongs to no process. Both processes hold it for a
//! while (the new one through descriptor inheritance, see `exec`), and the kernel queues
//! every connection on it in the one accept queue, which both take from. The old
//! process stops taking; the queue never closes, so no client is ever refused. Compare
//! a stop followed by a start: between the two, nothing listens, and the kernel answers
//! every SYN with a reset ("connection refused").
//!
//! The steps, after nginx's binary upgrade (`kill -USR2` on its master):
//! 1. fork and exec the program file with the same arguments, the sockets at 3, 4, ...
//!    (`LISTEN_FDS`) and the write end of a readiness pipe (`ready`);
//! 2. wait, within `--upgrade-timeout`, for `READY=1` on that pipe: the new process
//!    writes it once it accepts connections;
//! 3. only then stop accepting and drain (`Balancer::hand_over`), and exit.
//!
//! If the new process fails to start, exits, or stays silent past the deadline, it is
//! stopped and reaped, the old one keeps serving, and the log says why.

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Child;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::exec::Launch;
use super::ready::{self, NotReady, READY_FD_VAR};
use super::status::describe;

/// Names another program for SIGUSR2 to execute instead of this one's file (for tests,
/// and for an upgrade to a binary installed elsewhere).
pub const EXE_OVERRIDE_VAR: &str = "ROUNDHOUSE_UPGRADE_EXE";

/// How long a new process that did not become ready gets to stop on SIGTERM before
/// SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The program file, as its path was at start-up.
static EXECUTABLE: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Remembers the path of our own program file. Call it first thing in `main`.
///
/// Why now, and why the path: `/proc/self/exe` is a link to the *file* this process
/// runs, not to a path. A rebuild (`cargo build`, `install`) writes a new file and puts
/// it at the old path, unlinking the old file, which lives on while we run it. From then
/// on `/proc/self/exe` still reaches the old file (`readlink` shows `PATH (deleted)`), so
/// executing it would start the old program again: right for a restarted backend that
/// must match its supervisor (`supervisor` does just that), wrong for an upgrade, whose
/// point is to run what the path names *now*. So the path is read once, here, while it
/// still names the file we run, and the upgrade executes that path.
pub fn remember_executable() {
    EXECUTABLE.get_or_init(|| std::env::current_exe().ok());
}

/// The program SIGUSR2 executes: `ROUNDHOUSE_UPGRADE_EXE` if set, else our own path.
pub fn executable() -> Result<PathBuf, UpgradeError> {
    if let Some(path) = std::env::var_os(EXE_OVERRIDE_VAR) {
        return Ok(PathBuf::from(path));
    }
    EXECUTABLE
        .get_or_init(|| std::env::current_exe().ok())
        .clone()
        .ok_or(UpgradeError::NoExecutable)
}

/// Why an upgrade did not happen.
#[derive(Debug, Error)]
pub enum UpgradeError {
    #[error("cannot tell which program file this process runs")]
    NoExecutable,
    #[error("cannot start {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("the new process (PID {pid}) {reason}{exit}")]
    NotReady {
        pid: u32,
        reason: NotReady,
        exit: String,
    },
}

/// A new process that reported ready: it accepts connections now.
#[derive(Debug)]
pub struct Successor {
    pub pid: u32,
    pub program: PathBuf,
    /// Kept, not waited for: we exit soon and it is then reparented.
    _child: Child,
}

/// Starts this program again with `listeners` (name, socket) and our arguments, and
/// waits up to `timeout` for it to report ready.
pub fn start_successor(
    listeners: &[(String, TcpListener)],
    timeout: Duration,
) -> Result<Successor, UpgradeError> {
    let program = executable()?;
    let spawn_error = |source| UpgradeError::Spawn {
        program: program.display().to_string(),
        source,
    };
    let (pipe, child_end) = ready::pipe().map_err(spawn_error)?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let mut launch = Launch::new(&program).args(args);
    for (name, listener) in listeners {
        launch = launch.listener(name, listener).map_err(spawn_error)?;
    }
    // No parent-death signal: the new process must outlive this one.
    let mut child = launch
        .descriptor(READY_FD_VAR, child_end)
        .spawn()
        .map_err(spawn_error)?;
    let pid = child.id();
    log::info!(
        "upgrade: started {} as PID {pid}; waiting up to {timeout:?} for it to report ready",
        program.display()
    );
    match pipe.wait(timeout) {
        Ok(()) => Ok(Successor {
            pid,
            program,
            _child: child,
        }),
        Err(reason) => {
            let exit = stop(&mut child);
            Err(UpgradeError::NotReady { pid, reason, exit })
        }
    }
}

/// Stops a new process that did not become ready, and reaps it; describes its end.
fn stop(child: &mut Child) -> String {
    let wait = |child: &mut Child, limit: Duration| {
        let deadline = Instant::now() + limit;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                _ => return None,
            }
        }
    };
    // It may have exited already (that is how the pipe closed); a moment to be sure.
    if let Some(status) = wait(child, Duration::from_millis(200)) {
        return format!("; it {}", describe(status));
    }
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    if let Some(status) = wait(child, STOP_GRACE) {
        return format!("; stopped with SIGTERM, it {}", describe(status));
    }
    let _ = child.kill();
    match child.wait() {
        Ok(status) => format!("; killed, it {}", describe(status)),
        Err(error) => format!("; cannot reap it: {error}"),
    }
}
