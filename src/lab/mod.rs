//! The lab around the balancer: what a classroom runs against it.
//!
//! - `sim_backend`: the simulated backend (`roundhouse backend`) and the seeds' apps it
//!   hosts (calculator, currency converter, static site).
//! - `calc`: the calculator's parser; `calc_tcp`: the first seed's calculator over plain
//!   TCP, behind the L4 balancer.
//! - `client`: `roundhouse client`, GET/HEAD/POST and the calculator loop.
//! - `bench` (`roundhouse bench`, `experiment`), `simulator` (`roundhouse simulate`,
//!   queueing theory in virtual time), and `plot` (the SVG figures in docs/img).
//!
//! OS concept: each part names its own: processes versus threads and the load average
//! in `sim_backend`, the stack as a bound in `calc`, scheduling policies simulated in
//! `simulator`, Little's law in `bench`.
//!
//! Nothing in `crate::proxy` or `crate::l4` uses the lab; the lab uses them.

pub mod bench;
pub mod calc;
pub mod calc_tcp;
pub mod client;
pub mod plot;
pub mod sim_backend;
pub mod simulator;
