//! Starting a program with listening sockets at fixed descriptor numbers: fork, place
//! the descriptors, exec.
//!
//! OS concept: fork/exec and descriptor inheritance. `fork(2)` copies the process,
//! descriptor table included; `execve(2)` replaces the program but keeps every
//! descriptor that is not marked close-on-exec. So a parent hands a socket to a new
//! program by putting it at a number both agree on, without the flag, just before
//! `execve`. systemd's socket activation fixes the agreement (sd_listen_fds(3)): the
//! sockets start at descriptor 3, `LISTEN_FDS` says how many, `LISTEN_FDNAMES` names
//! them (`listen:backend-1`), and `LISTEN_PID` says which process they are meant for, so
//! that a grandchild that inherits the environment does not take them as its own.
//!
//! std's `Command` does the fork, reports a failed exec back to the parent through a
//! close-on-exec pipe, and gives us `Child::wait`. Its `pre_exec` hook is the code that
//! runs in the child between `fork` and `execve`, and that is where we place the
//! descriptors and then call `execve` ourselves: `LISTEN_PID` must be the child's own
//! PID, which nobody knows before the fork, and after it nothing may allocate (see
//! `sys`). So every string is built here, before the fork; the child only writes its
//! PID's digits into a buffer on its stack.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rustix::process::Signal;

use super::sys;

/// The first descriptor number a passed socket gets (0, 1 and 2 are the standard ones).
pub const FIRST_FD: RawFd = 3;

/// Environment variables of the socket-activation protocol, and roundhouse's own
/// readiness pipe: never passed on to a child unless set for it here.
pub const PROTOCOL_VARS: &[&str] = &[
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    super::ready::READY_FD_VAR,
];

/// A program to start, and what it inherits.
#[derive(Debug)]
pub struct Launch {
    program: PathBuf,
    /// `argv[0]`, what `ps` shows; the program as given when `None`.
    arg0: Option<OsString>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    /// Passed as `LISTEN_FDS`, from `FIRST_FD`, each with its name.
    listeners: Vec<(String, OwnedFd)>,
    /// Passed after the listeners; the environment variable names each one's number.
    descriptors: Vec<(String, OwnedFd)>,
    parent_death: Option<Signal>,
    process_group: Option<i32>,
    stdout_to_stderr: bool,
}

impl Launch {
    /// `program` is a path, or a bare name looked up in `PATH` as a shell would.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Launch {
            program: program.into(),
            arg0: None,
            args: Vec::new(),
            env: Vec::new(),
            listeners: Vec::new(),
            descriptors: Vec::new(),
            parent_death: None,
            process_group: None,
            stdout_to_stderr: false,
        }
    }

    /// The program's name as it sees it in `argv[0]` (and as `ps` shows it).
    pub fn arg0(mut self, name: impl Into<OsString>) -> Self {
        self.arg0 = Some(name.into());
        self
    }

    /// Arguments after the program name.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets one environment variable (the rest of ours is passed on).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Passes a copy of `listener` (the same socket: `dup(2)`) under `name`.
    pub fn listener(mut self, name: &str, listener: &TcpListener) -> io::Result<Self> {
        let copy = listener.as_fd().try_clone_to_owned()?;
        self.listeners.push((name.to_string(), copy));
        Ok(self)
    }

    /// Passes `descriptor` after the listeners, its number in the variable `env_var`.
    pub fn descriptor(mut self, env_var: &str, descriptor: OwnedFd) -> Self {
        self.descriptors.push((env_var.to_string(), descriptor));
        self
    }

    /// Asks the kernel to send `signal` to the child when its parent dies
    /// (`prctl(PR_SET_PDEATHSIG)`), even when the parent is killed with SIGKILL and runs
    /// no code at all.
    ///
    /// Linux's "parent" here is the *thread* that forked the child: the signal comes
    /// when that thread exits, even if the rest of the process lives on. So spawn such
    /// children from a thread that lives as long as they should (the supervisor's).
    pub fn parent_death_signal(mut self, signal: Signal) -> Self {
        self.parent_death = Some(signal);
        self
    }

    /// Puts the child in process group `pgid` (0: a new group led by the child), so that
    /// one `kill(-pgid, ...)` reaches it and its own children, and the terminal's Ctrl-C,
    /// which goes to the foreground group only, does not.
    pub fn process_group(mut self, pgid: i32) -> Self {
        self.process_group = Some(pgid);
        self
    }

    /// Sends the child's standard output to our standard error, so that our own output
    /// (the banner, the summary line) stays ours alone.
    pub fn stdout_to_stderr(mut self) -> Self {
        self.stdout_to_stderr = true;
        self
    }

    /// Forks and executes the program. On success the child runs it with the listeners
    /// at 3, 4, ... and every other descriptor but 0, 1 and 2 closed.
    pub fn spawn(self) -> io::Result<Child> {
        let program = resolve(&self.program)?;
        let program_c = c_string(program.as_os_str())?;
        let arg0 = self.arg0.as_deref().unwrap_or(self.program.as_os_str());
        let args: Vec<CString> = std::iter::once(arg0)
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(c_string)
            .collect::<io::Result<_>>()?;
        let passes_listeners = !self.listeners.is_empty();
        let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(key, _)| !PROTOCOL_VARS.iter().any(|var| key == var))
            .filter(|(key, _)| !self.env.iter().any(|(set, _)| set == key))
            .collect();
        env.extend(self.env.iter().cloned());
        if passes_listeners {
            let names: Vec<&str> = self.listeners.iter().map(|(name, _)| name.as_str()).collect();
            env.push(("LISTEN_FDS".into(), self.listeners.len().to_string().into()));
            env.push(("LISTEN_FDNAMES".into(), names.join(":").into()));
        }
        let first_extra = FIRST_FD + self.listeners.len() as RawFd;
        for (index, (var, _)) in self.descriptors.iter().enumerate() {
            env.push((var.into(), (first_extra + index as RawFd).to_string().into()));
        }
        let env: Vec<CString> = env
            .iter()
            .map(|(key, value)| {
                let mut pair = key.clone();
                pair.push("=");
                pair.push(value);
                c_string(&pair)
            })
            .collect::<io::Result<_>>()?;
        let sources: Vec<RawFd> = self
            .listeners
            .iter()
            .chain(&self.descriptors)
            .map(|(_, fd)| fd.as_raw_fd())
            .collect();
        if sources.len() > sys::MAX_PLACED {
            return Err(io::Error::other("too many descriptors to pass"));
        }
        // Held by the closure so the descriptors stay open until the fork; the parent's
        // copies close when `command` is dropped, after `spawn`.
        let owned: Vec<OwnedFd> = self
            .listeners
            .into_iter()
            .chain(self.descriptors)
            .map(|(_, fd)| fd)
            .collect();
        let parent = rustix::process::getpid();
        let parent_death = self.parent_death;
        let mut command = Command::new(&program);
        command.stdin(Stdio::null());
        if self.stdout_to_stderr {
            command.stdout(Stdio::from(io::stderr().as_fd().try_clone_to_owned()?));
        }
        if let Some(pgid) = self.process_group {
            command.process_group(pgid);
        }
        let in_child = move || -> io::Result<()> {
            let _keep_open = &owned;
            if let Some(signal) = parent_death {
                rustix::process::set_parent_process_death_signal(Some(signal))?;
                // The parent may have died between fork and prctl; then the signal never
                // comes, and the child would outlive it. The classic check: our parent
                // is no longer the process that forked us.
                if rustix::process::getppid() != Some(parent) {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
            }
            sys::place_descriptors(&sources, FIRST_FD)?;
            sys::cloexec_from(FIRST_FD + sources.len() as RawFd);
            let mut buffer = [0u8; 32];
            let listen_pid = passes_listeners.then(|| listen_pid(&mut buffer));
            Err(sys::execve(&program_c, &args, &env, listen_pid))
        };
        // SAFETY: the closure runs in the forked child and only makes async-signal-safe
        // calls (prctl, getppid, fcntl, dup2, close_range, execve, and a few writes into
        // its own stack); it allocates nothing: every string was built above.
        unsafe { command.pre_exec(in_child) };
        command.spawn()
    }
}

/// `LISTEN_PID=<this process's PID>` written into `buffer`, without allocating.
fn listen_pid(buffer: &mut [u8; 32]) -> &CStr {
    const PREFIX: &[u8] = b"LISTEN_PID=";
    buffer[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
    let mut digits = [0u8; 10];
    let mut count = 0;
    loop {
        digits[count] = b'0' + (pid % 10) as u8;
        count += 1;
        pid /= 10;
        if pid == 0 {
            break;
        }
    }
    for (slot, digit) in buffer[PREFIX.len()..]
        .iter_mut()
        .zip(digits[..count].iter().rev())
    {
        *slot = *digit;
    }
    buffer[PREFIX.len() + count] = 0;
    CStr::from_bytes_until_nul(&buffer[..]).unwrap_or_default()
}

fn c_string(text: &OsStr) -> io::Result<CString> {
    CString::new(text.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{text:?} contains a NUL byte"),
        )
    })
}

/// The file `program` names: itself when it has a `/`, else the first executable of
/// that name in `PATH` (as `execvp(3)` would find it, but before the fork).
fn resolve(program: &Path) -> io::Result<PathBuf> {
    if program.as_os_str().as_bytes().contains(&b'/') {
        return Ok(program.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} not found in PATH", program.display()),
            )
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_pid_is_written_without_allocating() {
        let mut buffer = [0u8; 32];
        let text = listen_pid(&mut buffer).to_str().unwrap().to_string();
        assert_eq!(text, format!("LISTEN_PID={}", std::process::id()));
    }

    #[test]
    fn the_child_sees_its_own_pid_its_sockets_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (_reader, writer) = io::pipe().unwrap();
        // `exec >` first, so the shell keeps no saved copy of descriptor 1 around.
        // `exec ls`: the listing is of the process that was started, not of a fork of
        // the shell (which keeps saved copies of redirected descriptors around).
        let script = "exec > \"$OUT\"; echo \"$LISTEN_PID $$ $LISTEN_FDS $LISTEN_FDNAMES $READY\"; \
                      readlink /proc/$$/fd/3; exec ls /proc/self/fd > \"$OUT.fds\"";
        let mut child = Launch::new("sh")
            .args(["-c", script])
            .env("OUT", &out)
            .listener("listen", &listener)
            .unwrap()
            .descriptor("READY", OwnedFd::from(writer))
            .spawn()
            .unwrap();
        assert!(child.wait().unwrap().success());
        let output = std::fs::read_to_string(&out).unwrap();
        let mut lines = output.lines();
        let first: Vec<&str> = lines.next().unwrap().split(' ').collect();
        assert_eq!(first[0], first[1], "LISTEN_PID is the child's own PID: {output}");
        assert_eq!(&first[2..], ["1", "listen", "4"], "{output}");
        assert!(lines.next().unwrap().starts_with("socket:["), "{output}");
        // 0-2, the socket at 3, the pipe at 4, and 5, `ls`'s own handle on the
        // directory it lists: nothing else of ours leaked.
        let listing = std::fs::read_to_string(dir.path().join("out.fds")).unwrap();
        let mut fds: Vec<u32> = listing.split_whitespace().map(|fd| fd.parse().unwrap()).collect();
        fds.sort();
        assert_eq!(fds, [0, 1, 2, 3, 4, 5], "{listing}");
    }

    #[test]
    fn a_program_that_cannot_be_executed_is_an_error_from_spawn() {
        let error = Launch::new("/nonexistent/roundhouse").spawn().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound, "{error}");
        let error = Launch::new("no-such-program-anywhere").spawn().unwrap_err();
        assert!(error.to_string().contains("not found in PATH"), "{error}");
    }
}
