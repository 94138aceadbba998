//! The command-line options of process management: upgrades and supervised backends.
//!
//! OS concept: none of its own; the switches of `supervisor.rs` (children restarted
//! when they die) and `upgrade.rs` (SIGUSR2 and the time a successor has to say it is
//! ready before this process gives up on it and keeps serving).

use std::time::Duration;

use clap::Args;

use crate::units::parse_duration;

#[derive(Debug, Clone, Args)]
pub struct ProcessArgs {
    /// Run the simulated backends as child processes (`roundhouse backend`) instead of
    /// threads, supervised: one that exits is restarted after 100 ms, longer after
    /// repeated crashes, and given up after 5 starts in 10 s (systemd's
    /// Restart=on-failure). /stats shows each child's PID, restarts and last exit.
    #[arg(long)]
    pub sim_processes: bool,

    /// On SIGUSR2 (upgrade: the program file is started anew with the listening
    /// sockets, and this process drains and exits once it is ready), how long the new
    /// process has to report ready before it is stopped and this one keeps serving.
    /// ROUNDHOUSE_UPGRADE_EXE=PATH names another program to start instead (tests).
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub upgrade_timeout: Duration,
}
