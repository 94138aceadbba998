//! The response cache: a shared HTTP cache (RFC 9111) in front of the worker queue.
//!
//! Where it sits: in the front's dispatcher, on the client's connection thread, *before*
//! a request is queued. A fresh hit is answered right there without using a worker or a
//! backend, as nginx answers from `proxy_cache` without touching the upstream; a miss
//! goes through the bounded queue to a worker as every request does without the cache,
//! and the response is stored on its way back. So hits cost no queue slot and cannot be
//! refused with 503 when the workers are saturated.
//!
//! One request, step by step (`Cache::serve`):
//! 1. Not GET/HEAD, or a range request: BYPASS, straight to the backend. An unsafe
//!    method that succeeds invalidates what is stored for its URL (RFC 9111 section 4.4).
//! 2. Look up the key (host + target) and the variant matching the request's `Vary`
//!    headers. Fresh for this request: HIT, with `Age`, or `304` if the client's
//!    `If-None-Match`/`If-Modified-Since` matches.
//! 3. Otherwise join the key's *flight* (`coalesce`): the first request becomes the
//!    leader and fetches; concurrent ones wait on a condition variable and are answered
//!    from what the leader stored (nginx's `proxy_cache_lock`).
//! 4. The leader fetches. A stale entry with a validator is revalidated: `304` refreshes
//!    it (REVALIDATED); a new response replaces it (MISS). Storable responses (see
//!    `policy`) go into the LRU store (`store`) and, with `--cache-dir`, to disk (`disk`).
//!
//! OS concepts: mutual exclusion (one mutex around the store, held for map operations
//! only, never across network or disk I/O), condition variables (`coalesce`), immutable
//! shared data (`entry`), atomic rename (`disk`), atomics for the counters (`counters`).

pub mod args;
pub mod coalesce;
pub mod conditional;
pub mod counters;
pub mod disk;
pub mod entry;
pub mod key;
pub mod policy;
pub mod store;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use parking_lot::Mutex;

pub use args::CacheArgs;
pub use counters::CacheStats;

use crate::http1::{Request, Response};
use crate::proxy::stats::Stats;
use coalesce::{Coalescer, Outcome, Role};
use disk::Disk;
use entry::{Entry, Parts};
use store::Store;

/// Settings of the cache (`--cache-*` flags).
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Freshness of a 200 response that says nothing about it (`--cache-ttl`).
    pub ttl: Duration,
    /// Memory bound of all entries (`--cache-max-bytes`).
    pub max_bytes: u64,
    /// Larger bodies are passed through, not stored (`--cache-max-object`).
    pub max_object: u64,
    /// Where entries persist across restarts (`--cache-dir`).
    pub dir: Option<PathBuf>,
}

impl CacheConfig {
    /// One line for the start-up banner.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "cache on: {} MiB, objects up to {} KiB, ttl {}s",
            self.max_bytes >> 20,
            self.max_object >> 10,
            self.ttl.as_secs()
        );
        if let Some(dir) = &self.dir {
            text.push_str(&format!(", kept in {}", dir.display()));
        }
        text
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            ttl: Duration::from_secs(30),
            max_bytes: 64 << 20,
            max_object: 1 << 20,
            dir: None,
        }
    }
}

/// The cache's verdict on one request, sent to the client as `X-Cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
    Revalidated,
    Bypass,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Revalidated => "REVALIDATED",
            CacheStatus::Bypass => "BYPASS",
        }
    }
}

pub struct Cache {
    config: CacheConfig,
    /// How long a follower waits for its leader before fetching itself.
    lock_timeout: Duration,
    /// Protects the LRU table and its byte count. Held only for one lookup, insert or
    /// removal; never while a backend or the disk is being talked to.
    store: Mutex<Store>,
    flights: Coalescer,
    disk: Option<Disk>,
    /// The cache's own counters (`/stats` shows them under `cache`).
    counters: CacheStats,
    /// The balancer's request counters: a hit is a request answered, like any other.
    stats: Arc<Stats>,
}

impl Cache {
    /// Creates the cache, loading `--cache-dir` if given. `lock_timeout` should be the
    /// longest a backend fetch can take (the upstream timeouts).
    pub fn new(config: CacheConfig, lock_timeout: Duration, stats: Arc<Stats>) -> io::Result<Cache> {
        let disk = config.dir.as_deref().map(Disk::open).transpose()?;
        let store = Mutex::new(Store::new(
            usize::try_from(config.max_bytes).unwrap_or(usize::MAX),
        ));
        let cache = Cache {
            config,
            lock_timeout,
            store,
            flights: Coalescer::default(),
            disk,
            counters: CacheStats::default(),
            stats,
        };
        cache.load()?;
        Ok(cache)
    }

    /// The cache's counters, for `/stats` and `/metrics`.
    pub fn counters(&self) -> &CacheStats {
        &self.counters
    }

    /// Answers `request`, from the cache when possible; `fetch` sends a request to a
    /// backend (through the worker queue) and is called at most once.
    pub fn serve(&self, request: Request, fetch: impl FnOnce(Request) -> Response) -> Response {
        let Some(key) = key::primary_key(&request) else {
            return self.bypass(request, fetch);
        };
        let stale = match self.lookup(&key, &request.headers) {
            Some(entry) if entry.is_fresh_for(&request.headers, SystemTime::now()) => {
                return self.answer(&entry, &request.headers, CacheStatus::Hit, None);
            }
            other => other,
        };
        // The client wants nothing but a stored response (RFC 9111 section 5.2.1.7).
        if policy::has_directive(&request.headers, "only-if-cached") {
            CacheStats::count(&self.counters.misses);
            self.stats.record_status(StatusCode::GATEWAY_TIMEOUT);
            let response = Response::text(StatusCode::GATEWAY_TIMEOUT, "not in the cache (only-if-cached)");
            return marked(response, CacheStatus::Miss);
        }
        // HEAD is answered from a fresh stored GET only; otherwise it goes on as it is.
        if request.method == Method::HEAD {
            return self.pass(request, fetch);
        }
        // Requests with credentials are not coalesced: until a response proves public,
        // each user's answer is their own.
        if request.headers.contains_key(header::AUTHORIZATION) {
            return self.fetch(&key, request, stale, fetch).0;
        }
        match self.flights.join(&key) {
            Role::Leader(leader) => {
                // A flight that ended between our lookup and our join may have just
                // filled the cache: look again before going to the backend.
                if let Some(entry) = self
                    .lookup(&key, &request.headers)
                    .filter(|entry| entry.is_fresh_for(&request.headers, SystemTime::now()))
                {
                    leader.finish(Outcome::Stored);
                    return self.answer(&entry, &request.headers, CacheStatus::Hit, None);
                }
                let (response, outcome) = self.fetch(&key, request, stale, fetch);
                leader.finish(outcome);
                response
            }
            Role::Follower(flight) => {
                let outcome = flight.wait(Instant::now() + self.lock_timeout);
                let entry = self.lookup(&key, &request.headers);
                if outcome == Some(Outcome::Stored)
                    && let Some(entry) = entry.as_ref().filter(|entry| entry.is_fresh(SystemTime::now()))
                {
                    return self.answer(entry, &request.headers, CacheStatus::Hit, None);
                }
                // Nothing we may share (not storable, another variant, an error, or the
                // leader is too slow): fetch for ourselves.
                self.fetch(&key, request, entry, fetch).0
            }
        }
    }

    /// The answer from a fresh stored entry, if there is one: the part of `serve` that
    /// never waits, for a front that may not wait (the event loop answers hits on its
    /// own thread and sends everything else to a worker, which calls `serve`).
    pub fn fresh_hit(&self, request: &Request) -> Option<Response> {
        let key = key::primary_key(request)?;
        let entry = self
            .lookup(&key, &request.headers)
            .filter(|entry| entry.is_fresh_for(&request.headers, SystemTime::now()))?;
        Some(self.answer(&entry, &request.headers, CacheStatus::Hit, None))
    }

    /// The stored variant for these request headers, if any may be used for them.
    fn lookup(&self, key: &str, request: &HeaderMap) -> Option<Arc<Entry>> {
        let entry = self.store.lock().find(key, request)?;
        if request.contains_key(header::AUTHORIZATION) && !entry.allows_authenticated_reuse() {
            return None;
        }
        Some(entry)
    }

    /// Goes to the backend for a cacheable GET, revalidating `stale` if it has a
    /// validator, and stores what may be stored.
    fn fetch(
        &self,
        key: &str,
        mut request: Request,
        stale: Option<Arc<Entry>>,
        fetch: impl FnOnce(Request) -> Response,
    ) -> (Response, Outcome) {
        let client = request.headers.clone();
        let target = request.target.clone();
        let revalidating = stale.filter(|entry| entry.has_validator());
        match &revalidating {
            Some(entry) => conditional::revalidate_with(&mut request.headers, &entry.headers),
            None => conditional::strip_conditionals(&mut request.headers),
        }
        let response = fetch(request);
        let response_time = SystemTime::now();
        if let Some(entry) = &revalidating
            && response.status == StatusCode::NOT_MODIFIED
        {
            CacheStats::count(&self.counters.revalidated);
            return match entry.refreshed(&response.headers, response_time, self.config.ttl) {
                Ok(refreshed) => {
                    let (refreshed, outcome) = self.insert(refreshed, true);
                    let answer = self.answer(&refreshed, &client, CacheStatus::Revalidated, Some(&response));
                    (answer, outcome)
                }
                // The 304 changed the rules (say, to no-store): answer this once from
                // the copy the backend just confirmed, and keep it no longer.
                Err(_) => {
                    self.invalidate(key);
                    let answer = self.answer(entry, &client, CacheStatus::Revalidated, Some(&response));
                    (answer, Outcome::NotStored)
                }
            };
        }
        CacheStats::count(&self.counters.misses);
        // A streamed body is larger than the spool threshold and so than any object we
        // keep; it passes through untouched.
        if response.stream.is_none() && response.body.len() as u64 <= self.config.max_object {
            let parts = Parts {
                key: key.to_string(),
                target,
                status: response.status,
                headers: response.headers.clone(),
                body: response.body.clone(),
                request_headers: client.clone(),
                response_time,
            };
            match Entry::build(parts, self.config.ttl, self.config.max_object) {
                Ok(entry) => {
                    let (entry, outcome) = self.insert(entry, true);
                    let answer = self.answer(&entry, &client, CacheStatus::Miss, Some(&response));
                    return (answer, outcome);
                }
                Err(reason) => log::debug!("cache: not storing {key}: {reason:?}"),
            }
        }
        (marked(response, CacheStatus::Miss), Outcome::NotStored)
    }

    /// A HEAD with no fresh entry: forwarded unchanged, nothing stored.
    fn pass(&self, request: Request, fetch: impl FnOnce(Request) -> Response) -> Response {
        CacheStats::count(&self.counters.misses);
        marked(fetch(request), CacheStatus::Miss)
    }

    /// A request the cache does not handle. If it is an unsafe method that succeeded,
    /// what is stored for its URL is out of date and is dropped.
    fn bypass(&self, request: Request, fetch: impl FnOnce(Request) -> Response) -> Response {
        CacheStats::count(&self.counters.bypass);
        let unsafe_key = (!request.method.is_safe()).then(|| key::key_for(&request));
        let response = fetch(request);
        if let Some(key) = unsafe_key
            && (response.status.is_success() || response.status.is_redirection())
        {
            self.invalidate(&key);
        }
        marked(response, CacheStatus::Bypass)
    }

    /// The client's answer from a stored entry: the stored response with `Age`, or a
    /// `304` when the client's own validators match. `fetched` is the backend response
    /// that produced or confirmed the entry, if this request fetched it.
    fn answer(
        &self,
        entry: &Entry,
        client: &HeaderMap,
        status: CacheStatus,
        fetched: Option<&Response>,
    ) -> Response {
        let now = SystemTime::now();
        let mut response =
            if entry.status == StatusCode::OK && conditional::client_not_modified(client, &entry.headers) {
                let mut not_modified = Response::new(StatusCode::NOT_MODIFIED);
                not_modified.headers = conditional::not_modified_headers(&entry.headers);
                not_modified
            } else {
                let mut whole = Response::new(entry.status);
                whole.headers = entry.headers.clone();
                whole.body = entry.body.clone();
                whole
            };
        response
            .headers
            .insert(header::AGE, HeaderValue::from(entry.age(now)));
        match fetched {
            Some(fetched) => {
                if let Some(worker) = fetched.headers.get("x-roundhouse-worker") {
                    response.headers.insert("x-roundhouse-worker", worker.clone());
                }
                response.meta = fetched.meta.clone();
            }
            // No worker saw this request, so nobody else counts it.
            None => {
                CacheStats::count(&self.counters.hits);
                self.stats.record_status(response.status);
            }
        }
        marked(response, status)
    }

    /// Puts an entry in the store (and on disk when `persist`), deleting the files of
    /// what it pushed out. Returns the shared entry and whether it was kept.
    fn insert(&self, entry: Entry, persist: bool) -> (Arc<Entry>, Outcome) {
        let entry = Arc::new(entry);
        let removed = {
            let mut store = self.store.lock();
            let removed = store.insert(Arc::clone(&entry));
            self.publish_gauges(&store);
            removed
        };
        let Some(removed) = removed else {
            return (entry, Outcome::NotStored);
        };
        self.counters
            .evictions
            .fetch_add(removed.evicted.len() as u64, Ordering::Relaxed);
        if let Some(disk) = &self.disk {
            if persist {
                disk.write(&entry);
            }
            // A replaced variant shares the new entry's file name: it was overwritten.
            for old in &removed.evicted {
                disk.remove(old);
            }
        }
        (entry, Outcome::Stored)
    }

    /// Drops every variant stored under `key`.
    fn invalidate(&self, key: &str) {
        let removed = {
            let mut store = self.store.lock();
            let removed = store.remove(key);
            self.publish_gauges(&store);
            removed
        };
        if let Some(disk) = &self.disk {
            for old in &removed {
                disk.remove(old);
            }
        }
    }

    /// Copies the store's size into the `/stats` gauges; called with the lock held.
    fn publish_gauges(&self, store: &Store) {
        self.counters.entries.store(store.len() as u64, Ordering::Relaxed);
        self.counters.bytes.store(store.bytes() as u64, Ordering::Relaxed);
    }

    /// Fills the store from `--cache-dir`, oldest first, so the newest survive if the
    /// directory holds more than `--cache-max-bytes`.
    fn load(&self) -> io::Result<()> {
        let Some(disk) = &self.disk else { return Ok(()) };
        let mut loaded = 0;
        for (path, parts) in disk.load()? {
            match Entry::build(parts, self.config.ttl, self.config.max_object) {
                Ok(entry) => {
                    self.insert(entry, false);
                    loaded += 1;
                }
                // Stored under other settings, or expired with no way to revalidate.
                Err(reason) => {
                    log::info!("cache: dropping {}: {reason:?}", path.display());
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        log::info!(
            "cache: loaded {loaded} entries ({} bytes) from {}",
            self.counters.bytes.load(Ordering::Relaxed),
            self.config
                .dir
                .as_deref()
                .unwrap_or_else(|| "".as_ref())
                .display()
        );
        Ok(())
    }
}

/// Adds the verdict to a response, for the client (`X-Cache`) and for the access log.
fn marked(mut response: Response, status: CacheStatus) -> Response {
    response
        .headers
        .insert("x-cache", HeaderValue::from_static(status.as_str()));
    response.meta.cache = Some(status.as_str());
    response
}
