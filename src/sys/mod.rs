//! Thin wrappers over the operating system: listening sockets, the descriptor limit,
//! CPU-time clocks, scheduling classes and signals.
//!
//! Everything here is one system call (or a well-kept crate's wrapper of one) with a
//! sentence on why it is used; nothing here knows HTTP. The layers above call these
//! instead of `libc` directly, so the one place that talks to the kernel is easy to find.
//!
//! OS concept: the system call interface, one file per concept: the listen backlog
//! (`listen.rs`), resource limits (`limits.rs`), CPU accounting (`cpu.rs`), the
//! scheduler's wake-up preemption (`sched.rs`) and signals turned into messages
//! (`signals.rs`).

pub mod cpu;
pub mod limits;
pub mod listen;
pub mod sched;
pub mod signals;
