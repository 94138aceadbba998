//! Processes: starting, watching and replacing them.
//!
//! OS concept: the process as the unit of isolation and of failure. A child can crash
//! without taking the balancer down, and a listening socket can pass from one process
//! to the next, so the service outlives both. The rest of roundhouse is threads in one
//! process; this module is the process half of an operating-systems course, in the
//! order a reader meets it:
//!
//! - `exec`: fork and exec, with listening sockets passed at descriptors 3, 4, ... the
//!   way systemd passes them (`LISTEN_FDS`), everything else close-on-exec;
//! - `listeners`: the receiving side: the sockets a new process inherits, handed out as
//!   plain `std::net::TcpListener`s to whichever front asks;
//! - `ready`: a pipe on which the new process says "ready", and end-of-file as news;
//! - `upgrade`: SIGUSR2: a new process takes the sockets over, the old one drains;
//! - `supervisor` and `restart`: child processes restarted when they die, with a
//!   back-off and a start limit (systemd's `Restart=on-failure`), reaped on SIGCHLD,
//!   in one process group, killed with us by a parent-death signal;
//! - `status`: how a child ended (exit code or signal);
//! - `sys`: the few system calls that need `unsafe`, each one small and documented. The
//!   one `unsafe` outside it is `exec.rs`'s `pre_exec`: what makes it sound is the
//!   closure's body, which is there, beside the promise;
//! - `args`: the command-line switches of the above.

pub mod args;
pub mod exec;
pub mod listeners;
pub mod ready;
pub mod restart;
pub mod status;
pub mod supervisor;
pub mod sys;
pub mod upgrade;
