//! Signals as messages: SIGINT and SIGTERM mean stop, SIGHUP means reload, SIGUSR1
//! means reopen the log files (nginx's conventions).
//!
//! OS concept: signals and the self-pipe trick. A signal interrupts whatever a thread
//! is doing, and a handler may then only call async-signal-safe functions: no locks,
//! no allocation, no logging. `signal-hook`'s iterator installs a handler that only
//! writes a byte to a pipe; our "signals" thread blocks reading that pipe and turns
//! each signal into an ordinary message on a channel, which `main` receives and acts
//! on with no restrictions at all.
//!
//! Why `signal-hook` owns all three signals, and `ctrlc` is gone: the two crates fight
//! over SIGHUP. With its `termination` feature, `ctrlc` installs its handler for
//! SIGINT, SIGTERM *and* SIGHUP (ctrlc 3.5, `platform/unix/mod.rs`). If `ctrlc` is set
//! up first, `signal-hook` chains to the handler it finds, so every SIGHUP would also
//! run ctrlc's and stop the balancer instead of reloading it; if `signal-hook` is set up
//! first, `ctrlc::set_handler` refuses (EEXIST) because SIGHUP already has a handler.
//! One owner for every signal avoids both.

use std::thread;

use crossbeam_channel::Receiver;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
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
}

/// Installs the handlers and returns the channel their events arrive on. Call it once,
/// early in `main`, before anything that a signal could interrupt.
pub fn listen() -> Result<Receiver<Event>, String> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1])
        .map_err(|error| format!("cannot install the signal handlers: {error}"))?;
    // Unbounded: a burst of SIGHUPs must not block this thread, and each one is
    // cheap to handle (the kernel may also merge pending signals into one).
    let (sender, events) = crossbeam_channel::unbounded();
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let event = match signal {
                    SIGHUP => Event::Reload,
                    SIGUSR1 => Event::ReopenLogs,
                    _ => Event::Stop,
                };
                if sender.send(event).is_err() {
                    return;
                }
            }
        })
        .map_err(|error| format!("cannot start the signal thread: {error}"))?;
    Ok(events)
}
