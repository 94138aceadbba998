//! The few system calls that no safe crate wraps for us, each one minimal `unsafe` block.
//!
//! OS concept: where the compiler cannot check the kernel's rules. A descriptor number
//! is only a number, and only this program knows whether anything in it owns one; and
//! between `fork(2)` and `execve(2)` only async-signal-safe calls may run. So each call
//! below is one small `unsafe` block with its reason beside it.
//!
//! Everything else in `process` goes through std (`Command`, `Child::try_wait`) or
//! rustix's safe wrappers (`getpid`, `kill_process_group`, `prctl`); std's `pre_exec`,
//! unsafe because only its closure can keep the promise, is called in `exec.rs` beside
//! that closure. Two jobs are left, and both are unsafe by nature rather than for want
//! of a crate:
//!
//! - **Claiming an inherited descriptor** (`claim_inherited`). The number arrives as text
//!   in an environment variable (`LISTEN_FDS`); only this program can promise that
//!   nothing else in it already owns descriptor 3.
//! - **The child's last steps between fork(2) and execve(2)** (`place_descriptors`,
//!   `cloexec_from`, `execve`). After `fork` in a multithreaded process the child has one
//!   thread, and every lock another thread held (malloc's included) stays locked forever:
//!   only async-signal-safe calls are allowed until `execve` replaces the program. So
//!   these take arrays prepared before the fork and never allocate.

use std::ffi::{CStr, CString, c_char};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// The most descriptors a child can be given at fixed numbers (systemd's own limit is
/// in the thousands; roundhouse passes a handful).
pub const MAX_PLACED: usize = 64;

/// The most argument or environment strings `execve` is given.
pub const MAX_STRINGS: usize = 1024;

/// Takes ownership of descriptor `fd`, inherited across `execve` from the process that
/// started us, after checking that it is open; marks it close-on-exec, so that our own
/// children do not inherit it in turn.
///
/// Callers must call this at most once per number (`listeners::Inherited::from_env` is
/// the only caller and refuses to run twice).
pub fn claim_inherited(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 3 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {fd} is standard input, output or error, not a passed socket"),
        ));
    }
    // SAFETY: F_GETFD reads the descriptor's flags and touches no memory; on a number
    // that is not open it fails with EBADF, which is what we want to know.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor is open, and no `OwnedFd` in this process owns it: numbers
    // from 3 up were opened by our parent before `execve`, nothing of ours opened them,
    // and the caller claims each number once.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)?;
    Ok(owned)
}

/// In the child, between fork and exec: makes descriptor `sources[i]` appear as number
/// `first + i`, without close-on-exec, so that exactly these survive `execve`.
///
/// Each source is first copied above the target range (`F_DUPFD_CLOEXEC`), because a
/// source may itself sit on a target number (an inherited listener is at 3 already) and
/// placing another one there first would close it. The copies are close-on-exec and
/// vanish at `execve`; `dup2` gives its new descriptor no close-on-exec flag.
pub fn place_descriptors(sources: &[RawFd], first: RawFd) -> io::Result<()> {
    if sources.len() > MAX_PLACED {
        return Err(io::Error::from_raw_os_error(libc::EMFILE));
    }
    let above = first + sources.len() as RawFd;
    let mut copies = [0 as RawFd; MAX_PLACED];
    for (copy, &source) in copies.iter_mut().zip(sources) {
        // SAFETY: fcntl on plain integers; it touches no memory of ours.
        *copy = unsafe { libc::fcntl(source, libc::F_DUPFD_CLOEXEC, above) };
        if *copy == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    for (offset, &copy) in copies[..sources.len()].iter().enumerate() {
        // SAFETY: dup2 on plain integers. It may close whatever was at the target
        // number: in the child, on the way to execve, that is the point.
        if unsafe { libc::dup2(copy, first + offset as RawFd) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// In the child: marks every descriptor from `first` up close-on-exec (`close_range(2)`
/// with `CLOSE_RANGE_CLOEXEC`, Linux 5.11), so that one opened without `O_CLOEXEC` by a
/// library cannot leak into the new program. std opens every descriptor with
/// `O_CLOEXEC` already; this is the belt to that pair of braces. An older kernel that
/// lacks the call is not an error: the braces still hold.
pub fn cloexec_from(first: RawFd) {
    // SAFETY: a system call on plain integers.
    unsafe {
        libc::close_range(
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_int,
        );
    }
}

/// In the child: `execve(2)` of `program` with `args` (argv, program name first) and
/// `env`, plus `last`, one more environment string made after the fork (`LISTEN_PID`),
/// through pointer arrays built on the stack (no allocation after fork). Returns only
/// on failure, with its error.
pub fn execve(program: &CStr, args: &[CString], env: &[CString], last: Option<&CStr>) -> io::Error {
    if args.len() >= MAX_STRINGS || env.len() + 1 >= MAX_STRINGS {
        return io::Error::from_raw_os_error(libc::E2BIG);
    }
    let mut argv = [std::ptr::null::<c_char>(); MAX_STRINGS];
    let mut envp = [std::ptr::null::<c_char>(); MAX_STRINGS];
    for (slot, arg) in argv.iter_mut().zip(args) {
        *slot = arg.as_ptr();
    }
    for (slot, var) in envp.iter_mut().zip(env.iter().map(CString::as_c_str).chain(last)) {
        *slot = var.as_ptr();
    }
    // SAFETY: every pointer is a NUL-terminated string borrowed for this call, and both
    // arrays end with a null pointer (each is longer than its strings by at least one).
    unsafe { libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}
