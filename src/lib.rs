//! roundhouse: a thread-based HTTP load balancer written to be read.
//!
//! The modules, in the order a request visits them:
//! `front` (accept, parse, dispatch) → `pool` (worker threads) → `strategy` (pick a
//! backend) → `backends` (the set and its counters) → `forward` (send, answer) →
//! `stats`. `backend` is the simulated backend; `balancer` wires it all together.

pub mod access_log;
pub mod backend;
pub mod backends;
pub mod balancer;
pub mod bench;
pub mod cache;
pub mod calc;
pub mod cli;
pub mod client;
pub mod config;
pub mod cpu;
pub mod forward;
pub mod front;
pub mod l4;
pub mod metrics;
pub mod plot;
pub mod pool;
pub mod process;
pub mod routing;
pub mod simulate;
pub mod stats;
pub mod strategy;
pub mod units;
