//! The `--cache*` command-line flags, flattened into `serve`'s arguments.
//!
//! OS concept: none of its own; the limits of the cache (`--cache-max-bytes` of memory,
//! `--cache-max-object` per response) and the directory that lets entries survive a
//! restart, turned into a `CacheConfig` by `CacheArgs::config`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::CacheConfig;
use crate::units::{parse_duration, parse_size};

#[derive(Debug, Clone, Args)]
pub struct CacheArgs {
    /// Cache responses the way a shared HTTP cache may (RFC 9111: Cache-Control, Expires,
    /// Vary, ETag revalidation). Off by default so the latency demo stays honest.
    #[arg(long)]
    pub cache: bool,

    /// How long a 200 response with no Cache-Control max-age, s-maxage, Expires or
    /// Last-Modified stays fresh in the cache (0: only what the backend says). With a
    /// Last-Modified, the RFC's heuristic applies instead: 10% of its age, at most a day.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub cache_ttl: Duration,

    /// Memory for cached responses; the least recently used are evicted beyond it.
    #[arg(long, default_value = "64M", value_parser = parse_size, value_name = "SIZE")]
    pub cache_max_bytes: u64,

    /// Larger response bodies are passed through, not cached.
    #[arg(long, default_value = "1M", value_parser = parse_size, value_name = "SIZE")]
    pub cache_max_object: u64,

    /// Keep cached responses in this directory too, so they survive a restart.
    #[arg(long, value_name = "DIR", requires = "cache")]
    pub cache_dir: Option<PathBuf>,
}

impl CacheArgs {
    /// The cache's settings, or `None` without `--cache`.
    pub fn config(&self) -> Option<CacheConfig> {
        self.cache.then(|| CacheConfig {
            ttl: self.cache_ttl,
            max_bytes: self.cache_max_bytes,
            max_object: self.cache_max_object,
            dir: self.cache_dir.clone(),
        })
    }
}
