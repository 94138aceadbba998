//! The HTTP load balancer (L7): the product the design card describes.
//!
//! OS concept: threads communicating in one process. Connection threads (or an epoll
//! loop) produce requests, a fixed pool of worker threads consumes them through a
//! bounded queue (`pool/mod.rs`), and the state they share is atomics or data behind a
//! short lock; each module names its own concept.
//!
//! The modules, bottom-up (each may use only those above it in this list; below them
//! all are the codec `crate::http1`, `crate::sys`, `crate::units`, and
//! `crate::process`, whose table of children `/stats` reads):
//! `strategy` (pick a backend from a view of the set), `stats` (counters, a leaf),
//! `clients` (who the client is: trusted proxies, request IDs, `Forwarded`), `tls`
//! (certificates, sessions), `tunnel` (two-way byte copies after an upgrade), `backends`
//! (the set, health, load), `routing` (pools and routes, swapped on reload),
//! `discovery` (pools fed by etcd, and registering in it), `forward` (send a request to
//! a backend, retry), `cache`, `access_log`, `pool` (the bounded queue and the worker
//! threads, and the ways an answer goes back), `admin` (`/stats`, `/metrics`,
//! `/dashboard`), `front` (accept, parse, dispatch), and
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
