//! roundhouse: an HTTP load balancer on threads (and one epoll front), written to be read.
//!
//! OS concept: none of its own; this is the map. Each module's opening comment names
//! the concept it shows, and docs/concepts.md lists them with experiments to run.
//!
//! The crate reads bottom-up; every arrow between modules points down this list
//! (`tests/architecture.rs` fails on a cycle):
//!
//! 1. `http1`, `sys`, `units`: the HTTP/1 codec, thin wrappers over system calls, and
//!    the parsers of durations and sizes. They import nothing else of the crate.
//! 2. `process`: starting, supervising and replacing processes (fork/exec, waitpid,
//!    inherited sockets); it uses only `sys` and `units`.
//! 3. `proxy`: the HTTP load balancer (L7), itself layered (see its module comment).
//! 4. `l4`: the TCP load balancer, which borrows the proxy's strategies, health and
//!    HTTP server (for its `/stats` port).
//! 5. `lab`: what a classroom runs against the balancer (simulated backends, client,
//!    bench, simulator, plots).
//! 6. `config` and `cli`: the program's settings, from a file and the command line.
//!
//! To follow one request: `proxy::front::server` accepts and parses it,
//! `proxy::front::dispatch` queues it, a `proxy::pool` worker takes it,
//! `proxy::strategy` picks a backend, `proxy::forward` sends it, and the worker writes
//! the answer (`proxy::pool::direct`).

pub mod cli;
pub mod config;
pub mod http1;
pub mod l4;
pub mod lab;
pub mod process;
pub mod proxy;
pub mod sys;
pub mod units;
