//! How a child process ended, in words: an exit code, or the signal that killed it.
//!
//! OS concept: the wait status. `waitpid(2)` reports either a code the child passed to
//! `exit` (0 for success by convention) or the number of the signal that ended it;
//! never both. A shell shows the second as 128 + N (`kill -9` gives 137); here it is
//! named.

use std::process::ExitStatus;

/// `exited with code 1`, `was killed by signal 9 (SIGKILL)`.
pub fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal} ({})", signal_name(signal)),
        (None, None) => format!("ended ({status})"),
    }
}

/// A short form for `/stats`: `code 1`, `signal 9 (SIGKILL)`.
pub fn short(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("code {code}"),
        (None, Some(signal)) => format!("signal {signal} ({})", signal_name(signal)),
        (None, None) => status.to_string(),
    }
}

/// Whether systemd's `Restart=on-failure` would restart after this end: anything but a
/// clean exit with code 0 (a signal, including SIGTERM from someone else, counts as a
/// failure, as it does for systemd unless the unit lists it in `SuccessExitStatus`).
pub fn is_failure(status: ExitStatus) -> bool {
    !status.success()
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        _ => "another signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn codes_and_signals_are_told_apart() {
        // The raw wait status: the code in the second byte, or the signal in the low bits.
        assert_eq!(describe(ExitStatus::from_raw(1 << 8)), "exited with code 1");
        assert_eq!(
            describe(ExitStatus::from_raw(9)),
            "was killed by signal 9 (SIGKILL)"
        );
        assert_eq!(short(ExitStatus::from_raw(15)), "signal 15 (SIGTERM)");
        assert!(!is_failure(ExitStatus::from_raw(0)));
        assert!(is_failure(ExitStatus::from_raw(15)));
    }
}
