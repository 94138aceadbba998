//! The admin pages: `/stats` (JSON), `/metrics` (Prometheus text) and `/dashboard`.
//!
//! They only render: every counter they show is owned by the subsystem that counts it
//! (`stats`, `backends`, `routing`, `cache`). OS concept: observing a running system
//! without stopping it, by reading atomics the workers keep updating.

pub mod dashboard;
pub mod metrics;
pub mod prometheus;
