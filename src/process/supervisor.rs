//! A supervisor thread: starts child processes, restarts the ones that die, and stops
//! them all together.
//!
//! OS concepts, each where it happens:
//! - **fork/exec** (`Launch::spawn`): every start is a new process running a program
//!   file; with `--sim-processes` that file is `/proc/self/exe`, the very file this
//!   process runs, so a restarted backend always matches its supervisor even after a
//!   rebuild replaced the file at our path (compare `upgrade`, which wants the new file).
//! - **SIGCHLD and waitpid**: the kernel sends SIGCHLD when a child ends; the thread
//!   then asks each of its own children `waitpid(pid, WNOHANG)` (std's `try_wait`).
//!   Never `waitpid(-1)`: that would also reap children other code waits for.
//! - **Zombies**: a child that has ended but was not waited for stays in the process
//!   table as a zombie (state `Z` in /proc), holding its PID and exit status. Reaping
//!   is what `try_wait` does; every exit is reaped at the next SIGCHLD.
//! - **Process groups**: all children share one group, led by the first child, apart
//!   from ours. Ctrl-C in a terminal goes to the terminal's foreground group, so it
//!   reaches the balancer only, which drains first and then stops the whole group with
//!   one `kill(-pgid, SIGTERM)`; a child's own children (a `[[processes]]` command run
//!   through a shell) are in the group too.
//! - **Orphans and the parent-death signal**: when a parent dies, its children are
//!   reparented to init and live on (orphans). `prctl(PR_SET_PDEATHSIG, SIGKILL)` asks
//!   the kernel to kill each child when the thread that forked it exits, so they go
//!   with us even when we are SIGKILLed and run no code at all. They are all forked by
//!   this one thread, which lives until the supervisor is stopped.
//!
//! While a child is down, the backend it serves is marked down (the health hook), so
//! the strategy sends nothing to it; when it starts again it is marked up.

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Child;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use rustix::process::{Pid, Signal};
use serde_json::{Value, json};

use super::exec::Launch;
use super::restart::{Decision, RestartPolicy, RestartState};
use super::status;

/// What to run and how to restart it.
#[derive(Debug)]
pub struct ProcessSpec {
    /// Shown in logs and `/stats`; unique among the supervised processes.
    pub name: String,
    pub program: PathBuf,
    /// `argv[0]`, when it should differ from `program`.
    pub arg0: Option<OsString>,
    pub args: Vec<OsString>,
    /// Passed to every start as `LISTEN_FDS` (socket activation): the socket stays open
    /// here while the child restarts, so connections wait in its queue instead of being
    /// refused.
    pub listeners: Vec<(String, TcpListener)>,
    /// The backend URL this process serves, marked down while it is not running.
    pub backend: Option<String>,
    pub restart: RestartPolicy,
}

/// Tells the balancer a supervised backend went down (`false`) or came up (`true`).
pub type HealthHook = Box<dyn Fn(&str, bool, &str) + Send>;

/// One process as `/stats` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessStatus {
    pub name: String,
    pub pid: Option<u32>,
    /// `running`, `restarting` (waiting out its pause), `failed` (start limit reached),
    /// `exited` (ended with code 0: `on-failure` leaves it), `stopped`.
    pub state: &'static str,
    pub restarts: u32,
    pub last_exit: Option<String>,
}

/// The copy of every process's status that `/stats` reads. The mutex protects the
/// vector; the supervisor holds it only to replace an entry, never while waiting for or
/// starting a process.
#[derive(Debug, Default)]
pub struct ProcessTable {
    statuses: Mutex<Vec<ProcessStatus>>,
}

impl ProcessTable {
    pub fn statuses(&self) -> Vec<ProcessStatus> {
        self.statuses.lock().clone()
    }

    /// The `processes` array of `/stats`.
    pub fn snapshot(&self) -> Value {
        let statuses = self.statuses();
        Value::Array(
            statuses
                .iter()
                .map(|status| {
                    json!({
                        "name": status.name,
                        "pid": status.pid,
                        "state": status.state,
                        "restarts": status.restarts,
                        "last_exit": status.last_exit,
                    })
                })
                .collect(),
        )
    }

    fn publish(&self, index: usize, status: ProcessStatus) {
        let mut statuses = self.statuses.lock();
        if index < statuses.len() {
            statuses[index] = status;
        }
    }
}

/// The running supervisor.
pub struct Supervisor {
    table: Arc<ProcessTable>,
    /// Sends the grace period of a stop.
    stop: Sender<Duration>,
    thread: Option<JoinHandle<()>>,
}

/// Why the supervised processes could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error(transparent)]
    Signals(#[from] crate::sys::signals::SignalError),
    #[error("cannot start the supervisor thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot start process {name}: {source}")]
    Process { name: String, source: std::io::Error },
    #[error("the supervisor thread ended at start-up")]
    Ended,
}

impl Supervisor {
    /// Starts every process in `specs` on the supervisor thread; returns once each has
    /// been started (or with the first that could not be).
    pub fn start(specs: Vec<ProcessSpec>, health: Option<HealthHook>) -> Result<Supervisor, SupervisorError> {
        let (exits, exits_handle) = crate::sys::signals::child_exits()?;
        let table = Arc::new(ProcessTable {
            statuses: Mutex::new(
                specs
                    .iter()
                    .map(|spec| ProcessStatus {
                        name: spec.name.clone(),
                        pid: None,
                        state: "starting",
                        restarts: 0,
                        last_exit: None,
                    })
                    .collect(),
            ),
        });
        let (stop, stopped) = crossbeam_channel::bounded(1);
        let (started, first_starts) = crossbeam_channel::bounded(1);
        let thread_table = Arc::clone(&table);
        let thread = thread::Builder::new()
            .name("supervisor".into())
            .spawn(move || {
                let mut run = Run {
                    slots: specs.into_iter().map(Slot::new).collect(),
                    table: thread_table,
                    health,
                    group: None,
                };
                let first = run.start_all();
                let ok = first.is_ok();
                let _ = started.send(first);
                if ok {
                    run.supervise(&exits, &stopped);
                } else {
                    run.stop_all(Duration::from_secs(1), &exits);
                }
                exits_handle.close();
            })
            .map_err(SupervisorError::Thread)?;
        let supervisor = Supervisor {
            table,
            stop,
            thread: Some(thread),
        };
        match first_starts.recv() {
            Ok(Ok(())) => Ok(supervisor),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(SupervisorError::Ended),
        }
    }

    /// The statuses `/stats` shows.
    pub fn table(&self) -> Arc<ProcessTable> {
        Arc::clone(&self.table)
    }

    /// Stops every child: SIGTERM to the group, up to `grace` for them to finish, then
    /// SIGKILL; all are reaped before this returns.
    pub fn shutdown(mut self, grace: Duration) {
        let _ = self.stop.send(grace);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.stop.send(Duration::from_secs(1));
            let _ = thread.join();
        }
    }
}

/// One supervised process.
struct Slot {
    spec: ProcessSpec,
    child: Option<Child>,
    started_at: Instant,
    history: RestartState,
    /// When to start it again, if it is down and will be.
    restart_at: Option<Instant>,
    restarts: u32,
    last_exit: Option<String>,
    state: &'static str,
}

impl Slot {
    fn new(spec: ProcessSpec) -> Slot {
        Slot {
            history: RestartState::new(spec.restart),
            spec,
            child: None,
            started_at: Instant::now(),
            restart_at: None,
            restarts: 0,
            last_exit: None,
            state: "starting",
        }
    }

    fn status(&self) -> ProcessStatus {
        ProcessStatus {
            name: self.spec.name.clone(),
            pid: self.child.as_ref().map(Child::id),
            state: self.state,
            restarts: self.restarts,
            last_exit: self.last_exit.clone(),
        }
    }
}

/// The supervisor thread's own state: only this thread touches it.
struct Run {
    slots: Vec<Slot>,
    table: Arc<ProcessTable>,
    health: Option<HealthHook>,
    /// The children's process group, once the first child leads one.
    group: Option<i32>,
}

impl Run {
    fn start_all(&mut self) -> Result<(), SupervisorError> {
        for index in 0..self.slots.len() {
            self.start(index).map_err(|source| SupervisorError::Process {
                name: self.slots[index].spec.name.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Forks and executes one process; from this thread only (see the module comment).
    fn start(&mut self, index: usize) -> std::io::Result<()> {
        let child = match self.launch(index, self.group.unwrap_or(0)) {
            // The group is gone when all its members died: lead a new one.
            Err(error) if self.group.is_some() && error.kind() == std::io::ErrorKind::PermissionDenied => {
                self.launch(index, 0)?
            }
            other => other?,
        };
        if self.group.is_none() || self.group_is_gone() {
            self.group = Some(child.id() as i32);
        }
        let now = Instant::now();
        let slot = &mut self.slots[index];
        slot.history.started(now);
        slot.started_at = now;
        slot.restart_at = None;
        slot.state = "running";
        log::info!("process {} started (PID {})", slot.spec.name, child.id());
        slot.child = Some(child);
        if let (Some(health), Some(url)) = (&self.health, &slot.spec.backend) {
            health(url, true, "");
        }
        self.table.publish(index, slot.status());
        Ok(())
    }

    fn launch(&self, index: usize, group: i32) -> std::io::Result<Child> {
        let spec = &self.slots[index].spec;
        let mut launch = Launch::new(&spec.program);
        if let Some(arg0) = &spec.arg0 {
            launch = launch.arg0(arg0);
        }
        let mut launch = launch
            .args(spec.args.iter().cloned())
            .parent_death_signal(Signal::KILL)
            .process_group(group)
            .stdout_to_stderr();
        for (name, listener) in &spec.listeners {
            launch = launch.listener(name, listener)?;
        }
        launch.spawn()
    }

    /// Whether our group has no member left (its leader and all others were reaped).
    fn group_is_gone(&self) -> bool {
        self.group
            .and_then(Pid::from_raw)
            .is_none_or(|group| rustix::process::test_kill_process_group(group).is_err())
    }

    fn supervise(&mut self, exits: &Receiver<()>, stopped: &Receiver<Duration>) {
        loop {
            // Wake for a SIGCHLD, a stop, the next restart due, or once a second anyway
            // (a check that costs nothing, in case a signal was missed at start-up).
            let next = self
                .slots
                .iter()
                .filter_map(|slot| slot.restart_at)
                .min()
                .map_or(Duration::from_secs(1), |at| {
                    at.saturating_duration_since(Instant::now())
                })
                .min(Duration::from_secs(1));
            crossbeam_channel::select! {
                recv(exits) -> _ => {}
                recv(stopped) -> grace => {
                    self.stop_all(grace.unwrap_or(Duration::from_secs(1)), exits);
                    return;
                }
                default(next) => {}
            }
            self.reap();
            self.restart_due();
        }
    }

    /// Collects the exit status of every child that has ended.
    fn reap(&mut self) {
        let now = Instant::now();
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            let Some(child) = &mut slot.child else { continue };
            let status = match child.try_wait() {
                Ok(Some(status)) => status,
                Ok(None) => continue,
                Err(error) => {
                    log::warn!("cannot wait for process {}: {error}", slot.spec.name);
                    continue;
                }
            };
            let pid = child.id();
            slot.child = None;
            slot.last_exit = Some(status::short(status));
            let ended = status::describe(status);
            let reason = if !status::is_failure(status) {
                slot.state = "exited";
                format!(
                    "process {} (PID {pid}) {ended}; not restarted (on-failure)",
                    slot.spec.name
                )
            } else {
                match slot.history.failed(now, now - slot.started_at) {
                    Decision::RestartAfter(pause) => {
                        slot.state = "restarting";
                        slot.restart_at = Some(now + pause);
                        format!(
                            "process {} (PID {pid}) {ended}; restarting in {pause:?}",
                            slot.spec.name
                        )
                    }
                    Decision::GiveUp => {
                        slot.state = "failed";
                        format!(
                            "process {} (PID {pid}) {ended}; started {} times within {:?}: not restarted again",
                            slot.spec.name, slot.spec.restart.burst, slot.spec.restart.interval
                        )
                    }
                }
            };
            log::warn!("{reason}");
            if let (Some(health), Some(url)) = (&self.health, &slot.spec.backend) {
                health(url, false, &reason);
            }
            self.table.publish(index, slot.status());
        }
    }

    fn restart_due(&mut self) {
        let now = Instant::now();
        for index in 0..self.slots.len() {
            if self.slots[index].restart_at.is_some_and(|at| at <= now) {
                self.slots[index].restarts += 1;
                if let Err(error) = self.start(index) {
                    let slot = &mut self.slots[index];
                    log::warn!("cannot restart process {}: {error}", slot.spec.name);
                    // A failed start counts as a crash of no duration.
                    slot.restart_at = match slot.history.failed(now, Duration::ZERO) {
                        Decision::RestartAfter(pause) => Some(now + pause),
                        Decision::GiveUp => {
                            slot.state = "failed";
                            None
                        }
                    };
                    self.table.publish(index, slot.status());
                }
            }
        }
    }

    /// SIGTERM to the group (and to any child outside it), `grace` to end, then SIGKILL;
    /// every child reaped.
    fn stop_all(&mut self, grace: Duration, exits: &Receiver<()>) {
        if let Some(group) = self.group.and_then(Pid::from_raw) {
            let _ = rustix::process::kill_process_group(group, Signal::TERM);
        }
        for slot in &self.slots {
            if let Some(pid) = slot
                .child
                .as_ref()
                .and_then(|child| Pid::from_raw(child.id() as i32))
            {
                let _ = rustix::process::kill_process(pid, Signal::TERM);
            }
        }
        let deadline = Instant::now() + grace;
        while self.slots.iter().any(|slot| slot.child.is_some()) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let _ = exits.recv_timeout(left.min(Duration::from_millis(100)));
            for slot in &mut self.slots {
                if let Some(Ok(Some(status))) = slot.child.as_mut().map(Child::try_wait) {
                    slot.last_exit = Some(status::short(status));
                    slot.child = None;
                }
            }
        }
        for slot in &mut self.slots {
            if let Some(mut child) = slot.child.take() {
                log::warn!(
                    "process {} did not stop within {grace:?}; killing it",
                    slot.spec.name
                );
                let _ = child.kill();
                if let Ok(status) = child.wait() {
                    slot.last_exit = Some(status::short(status));
                }
            }
            slot.state = "stopped";
            slot.restart_at = None;
        }
        for (index, slot) in self.slots.iter().enumerate() {
            self.table.publish(index, slot.status());
        }
    }
}
