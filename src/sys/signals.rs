//! Signals as messages: SIGINT and SIGTERM mean stop, SIGHUP reload, SIGUSR1 reopen the
//! log files, SIGUSR2 upgrade in place (nginx's conventions).
//!
//! OS concept: signals and the self-pipe trick. A signal interrupts whatever a thread
//! is doing, and a handler may then only call async-signal-safe functions: no locks,
//! no allocation, no logging. `signal-hook`'s iterator installs a handler that only
//! writes a byte to a pipe; our "signals" thread blocks reading that pipe and turns
//! each signal into an ordinary message on a channel, which `main` receives and acts
//! on with no restrictions at all.
//!
//! Why `signal-hook` owns every signal handled here (and SIGCHLD), and `ctrlc` is gone: the two crates fight
//! over SIGHUP. With its `termination` feature, `ctrlc` installs its handler for
//! SIGINT, SIGTERM *and* SIGHUP (ctrlc 3.5, `platform/unix/mod.rs`). If `ctrlc` is set
//! up first, `signal-hook` chains to the handler it finds, so every SIGHUP would also
//! run ctrlc's and stop the balancer instead of reloading it; if `signal-hook` is set up
//! first, `ctrlc::set_handler` refuses (EEXIST) because SIGHUP already has a handler.
//! One owner for every signal avoids both.

use std::thread;

use crossbeam_channel::Receiver;
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// SIGINT or SIGTERM: finish accepted requests and exit.
    Stop,
    /// SIGHUP: read the configuration again.
    Reload,
    /// SIGUSR1: reopen the access log (after logrotate moved it).
    ReopenLogs,
    /// SIGUSR2: start the program file anew with our listening sockets, then drain and
    /// exit (nginx's binary upgrade; src/process/upgrade.rs).
    Upgrade,
}

/// Why the signals could not be set up (at start, so the message goes to the operator).
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("cannot install the signal handlers: {0}")]
    Handlers(std::io::Error),
    #[error("cannot start the {0} thread: {1}")]
    Thread(&'static str, std::io::Error),
}

/// Every signal `listen` handles and what it means. A signal whose default action
/// kills the process (SIGUSR1 and SIGUSR2 do) must be in this table before anyone is
/// told to send it; adding one is one line here and one arm where `Event`s are read.
const HANDLED: &[(i32, Event)] = &[
    (SIGINT, Event::Stop),
    (SIGTERM, Event::Stop),
    (SIGHUP, Event::Reload),
    (SIGUSR1, Event::ReopenLogs),
    (SIGUSR2, Event::Upgrade),
];

/// Installs the handlers and returns the channel their events arrive on. Call it once,
/// early in `main`, before anything that a signal could interrupt.
pub fn listen() -> Result<Receiver<Event>, SignalError> {
    let numbers: Vec<i32> = HANDLED.iter().map(|(signal, _)| *signal).collect();
    let mut signals = Signals::new(&numbers).map_err(SignalError::Handlers)?;
    // Unbounded: a burst of SIGHUPs must not block this thread, and each one is
    // cheap to handle (the kernel may also merge pending signals into one).
    let (sender, events) = crossbeam_channel::unbounded();
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let Some(&(_, event)) = HANDLED.iter().find(|(number, _)| *number == signal) else {
                    continue;
                };
                if sender.send(event).is_err() {
                    return;
                }
            }
        })
        .map_err(|error| SignalError::Thread("signal", error))?;
    Ok(events)
}

/// SIGCHLD as messages: one `()` whenever a child process may have exited, for the
/// supervisor (src/process/supervisor.rs), which then asks each of its children with
/// `waitpid(pid, WNOHANG)`. Signals of one kind merge while pending, so one message can
/// stand for several exits: it means "look", not "one child".
pub fn child_exits() -> Result<(Receiver<()>, signal_hook::iterator::Handle), SignalError> {
    let mut signals = Signals::new([SIGCHLD]).map_err(SignalError::Handlers)?;
    let handle = signals.handle();
    // Bounded to one: a pending "look" already covers every exit after it.
    let (sender, exits) = crossbeam_channel::bounded(1);
    thread::Builder::new()
        .name("sigchld".into())
        .spawn(move || {
            for _ in signals.forever() {
                let _ = sender.try_send(());
            }
        })
        .map_err(|error| SignalError::Thread("SIGCHLD", error))?;
    Ok((exits, handle))
}
