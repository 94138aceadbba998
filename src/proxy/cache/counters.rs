//! The cache's counters, shown under `cache` in `/stats`.
//!
//! OS concept: atomics, as in `crate::proxy::stats`. `entries` and `bytes` are gauges copied
//! from the store while its lock is held, so `/stats` reads them without taking it.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

#[derive(Debug, Default)]
pub struct CacheStats {
    /// Answered from a fresh entry without asking a backend.
    pub hits: AtomicU64,
    /// Fetched from a backend (nothing stored, stale without validator, or changed).
    pub misses: AtomicU64,
    /// A stale entry confirmed by the backend's `304`.
    pub revalidated: AtomicU64,
    /// Answered from a stale entry (`stale-while-revalidate`, `stale-if-error`).
    pub stale: AtomicU64,
    /// Requests the cache does not handle (methods other than GET/HEAD, ranges).
    pub bypass: AtomicU64,
    /// Entries (variants) stored now.
    pub entries: AtomicU64,
    /// Bytes charged against `--cache-max-bytes` now.
    pub bytes: AtomicU64,
    /// Entries dropped to make room.
    pub evictions: AtomicU64,
}

impl CacheStats {
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The `cache` object of `/stats`.
    pub fn snapshot(&self) -> Value {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        json!({
            "hits": load(&self.hits),
            "misses": load(&self.misses),
            "revalidated": load(&self.revalidated),
            "stale": load(&self.stale),
            "bypass": load(&self.bypass),
            "entries": load(&self.entries),
            "bytes": load(&self.bytes),
            "evictions": load(&self.evictions),
        })
    }
}
