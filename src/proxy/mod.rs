//! The HTTP load balancer (L7): the product the design card describes.
//!
//! The modules, bottom-up (each may use only those above it in this list, and the
//! codec `crate::http1` and `crate::sys` below everything):
//! `strategy` (pick a backend from a view of the set), `stats` (counters, a leaf),
//! `tls` (certificates, sessions), `tunnel` (two-way byte copies after an upgrade),
//! `backends` (the set, health, load), `routing` (pools and routes, swapped on reload),
//! `forward` (send a request to a backend, retry), `cache`, `access_log`, `pool` (the
//! bounded queue and the worker threads, and the ways an answer goes back), `admin`
//! (`/stats`, `/metrics`, `/dashboard`), `front` (accept, parse, dispatch), and
//! `balancer` (wiring, start and stop).

pub mod access_log;
pub mod admin;
pub mod backends;
pub mod balancer;
pub mod cache;
pub mod clients;
pub mod discovery;
pub mod forward;
pub mod front;
pub mod pool;
pub mod routing;
pub mod stats;
pub mod strategy;
pub mod tls;
pub mod tunnel;
