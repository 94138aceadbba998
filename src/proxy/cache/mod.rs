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
pub mod directives;
pub mod disk;
pub mod entry;
pub mod fields;
pub mod key;
pub mod policy;
pub mod range;
pub mod refresh;
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
    /// Served stale: inside its `stale-while-revalidate` window (a background
    /// revalidation is on its way) or instead of a backend error (`stale-if-error`).
    Stale,
    Bypass,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Revalidated => "REVALIDATED",
            CacheStatus::Stale => "STALE",
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

    /// Answers `request`, from the cache when possible; `upstream` sends a request to a
    /// backend (through the worker queue). A background revalidation keeps its own clone
    /// of both the cache and `upstream`.
    pub fn serve(self: &Arc<Self>, request: Request, upstream: &Arc<dyn Upstream>) -> Response {
        let Some(key) = key::primary_key(&request) else {
            return self.bypass(request, upstream);
        };
        if request.method == Method::GET
            && let Some(spec) = range::requested(&request.headers)
        {
            return self.serve_range(&key, request, spec, upstream);
        }
        let now = SystemTime::now();
        let stale = match self.lookup(&key, &request.headers) {
            Some(entry) if entry.is_fresh_for(&request.headers, now) => {
                return self.answer(&entry, &request.headers, CacheStatus::Hit, None);
            }
            // RFC 5861 section 3: serve it now, revalidate behind the client's back.
            Some(entry) if entry.serves_while_revalidating(&request.headers, now) => {
                refresh::in_background(self, &key, &request, &entry, upstream);
                return self.answer(&entry, &request.headers, CacheStatus::Stale, None);
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
            return self.pass(request, upstream);
        }
        // Requests with credentials are not coalesced: until a response proves public,
        // each user's answer is their own. Nor are those whose own validators go to the
        // backend (nothing of ours to revalidate): their 304 is for them alone.
        let own_conditionals = stale.as_ref().is_none_or(|entry| !entry.has_validator())
            && conditional::is_conditional(&request.headers);
        if request.headers.contains_key(header::AUTHORIZATION) || own_conditionals {
            return self.fetch(&key, request, stale, upstream).0;
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
                let (response, outcome) = self.fetch(&key, request, stale, upstream);
                leader.finish(outcome);
                response
            }
            Role::Follower(flight) => {
                // A follower that is itself a worker does not wait on a background
                // revalidation: that one's fetch waits in the queue for a worker, perhaps
                // this one, and with every worker waiting so, none would be left to run
                // it before the lock timeout. It fetches for itself instead.
                let waits = !(flight.in_background() && upstream.forwards_here());
                let outcome = waits
                    .then(|| flight.wait(Instant::now() + self.lock_timeout))
                    .flatten();
                let entry = self.lookup(&key, &request.headers);
                if outcome == Some(Outcome::Stored)
                    && let Some(entry) = entry.as_ref().filter(|entry| entry.is_fresh(SystemTime::now()))
                {
                    return self.answer(entry, &request.headers, CacheStatus::Hit, None);
                }
                // Nothing we may share (not storable, another variant, an error, or the
                // leader is too slow): fetch for ourselves.
                self.fetch(&key, request, entry, upstream).0
            }
        }
    }

    /// The answer from a fresh stored entry, if there is one: the part of `serve` that
    /// never waits, for a front that may not wait (the event loop answers hits on its
    /// own thread and sends everything else to a worker, which calls `serve`).
    pub fn fresh_hit(&self, request: &Request) -> Option<Response> {
        let key = key::primary_key(request)?;
        // A range is cut from the stored body by `serve_range`: the worker does it.
        if range::requested(&request.headers).is_some() {
            return None;
        }
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
        upstream: &Arc<dyn Upstream>,
    ) -> (Response, Outcome) {
        let client = request.headers.clone();
        let target = request.target.clone();
        let revalidating = stale.clone().filter(|entry| entry.has_validator());
        // Kept to ask again if the backend's 304 turns out not to be about our copy.
        let mut unconditional = None;
        if let Some(entry) = &revalidating {
            let mut plain = request.clone();
            conditional::strip_conditionals(&mut plain.headers);
            unconditional = Some(plain);
            conditional::revalidate_with(&mut request.headers, &entry.headers);
        }
        let mut response = upstream.fetch(request);
        let mut response_time = SystemTime::now();
        // RFC 5861 section 4: an error from the backend (or none reachable: 502, 504)
        // is answered with the stale copy while its stale-if-error window lasts.
        if let Some(entry) = &stale
            && is_server_error(response.status)
            && entry.serves_if_error(&client, response_time)
        {
            CacheStats::count(&self.counters.stale);
            let answer = self.answer(entry, &client, CacheStatus::Stale, Some(&response));
            return (answer, Outcome::NotStored);
        }
        if let Some(entry) = &revalidating
            && response.status == StatusCode::NOT_MODIFIED
        {
            if conditional::selects(&entry.headers, &response.headers) {
                return self.revalidated(key, entry, &client, &response, response_time);
            }
            // RFC 9111 section 4.3.4: a 304 that selects no stored response updates
            // nothing. Our copy is unconfirmed, so ask for the whole response.
            log::debug!("cache: {key}: 304 with another validator; fetching again");
            if let Some(plain) = unconditional {
                response = upstream.fetch(plain);
                response_time = SystemTime::now();
            }
        }
        CacheStats::count(&self.counters.misses);
        if response.status == StatusCode::NOT_MODIFIED {
            // The client's own validators went to the backend: its 304 is the client's
            // answer, and it freshens what it selects (RFC 9111 section 4.3.4).
            self.freshen(key, &response, response_time);
            return (marked(response, CacheStatus::Miss), Outcome::NotStored);
        }
        let parts = Parts {
            key: key.to_string(),
            target,
            status: response.status,
            headers: response.headers.clone(),
            body: Vec::new(),
            request_headers: client.clone(),
            response_time,
        };
        match self.store_response(parts, &response) {
            Some((entry, outcome)) => (self.answer_fetched(&entry, &client, response), outcome),
            None => (marked(response, CacheStatus::Miss), Outcome::NotStored),
        }
    }

    /// Stores a fetched response if it may be stored (`parts` without the body, which is
    /// taken from `response`). A streamed body is larger than the spool threshold and so
    /// than any object we keep: it passes through untouched.
    fn store_response(&self, mut parts: Parts, response: &Response) -> Option<(Arc<Entry>, Outcome)> {
        if response.stream.is_some() || response.body.len() as u64 > self.config.max_object {
            return None;
        }
        parts.body = response.body.clone();
        let key = parts.key.clone();
        match Entry::build(parts, self.config.ttl, self.config.max_object) {
            Ok(entry) => Some(self.insert(entry, true)),
            Err(reason) => {
                log::debug!("cache: not storing {key}: {reason:?}");
                None
            }
        }
    }

    /// A stale entry confirmed by the backend's 304: stored with the 304's fields, and
    /// the client answered from it.
    fn revalidated(
        &self,
        key: &str,
        entry: &Arc<Entry>,
        client: &HeaderMap,
        response: &Response,
        response_time: SystemTime,
    ) -> (Response, Outcome) {
        CacheStats::count(&self.counters.revalidated);
        match entry.refreshed(&response.headers, response_time, self.config.ttl) {
            Ok(refreshed) => {
                let (refreshed, outcome) = self.insert(refreshed, true);
                let answer = self.answer(&refreshed, client, CacheStatus::Revalidated, Some(response));
                (answer, outcome)
            }
            // The 304 changed the rules (say, to no-store): answer this once from the
            // copy the backend just confirmed, and keep it no longer.
            Err(_) => {
                self.invalidate(key);
                let answer = self.answer(entry, client, CacheStatus::Revalidated, Some(response));
                (answer, Outcome::NotStored)
            }
        }
    }

    /// Updates every stored variant of `key` that a backend's 304 selects (RFC 9111
    /// section 4.3.4), with the 304's fields and a new response time.
    fn freshen(&self, key: &str, not_modified: &Response, response_time: SystemTime) {
        let variants = self.store.lock().variants(key);
        for entry in variants {
            if !entry.has_validator() || !conditional::selects(&entry.headers, &not_modified.headers) {
                continue;
            }
            if let Ok(refreshed) = entry.refreshed(&not_modified.headers, response_time, self.config.ttl) {
                self.insert(refreshed, true);
            }
        }
    }

    /// A HEAD with no fresh entry: forwarded unchanged, nothing stored.
    fn pass(&self, request: Request, upstream: &Arc<dyn Upstream>) -> Response {
        CacheStats::count(&self.counters.misses);
        marked(upstream.fetch(request), CacheStatus::Miss)
    }

    /// A request the cache does not handle. If it is an unsafe method that succeeded,
    /// what is stored for its URL is out of date and is dropped, and so is what is
    /// stored for its response's `Location` and `Content-Location` (RFC 9111 section
    /// 4.4): "unsafe" is every method not known to be safe, unknown ones included.
    fn bypass(&self, request: Request, upstream: &Arc<dyn Upstream>) -> Response {
        CacheStats::count(&self.counters.bypass);
        // The request moves to the worker: keep what naming its URIs takes.
        let unsafe_target = (!request.method.is_safe()).then(|| {
            let host = request.header("host").unwrap_or("").to_ascii_lowercase();
            (key::key_for(&request), host, request.path().to_string())
        });
        let response = upstream.fetch(request);
        if let Some((own, host, path)) = unsafe_target
            && (response.status.is_success() || response.status.is_redirection())
        {
            self.invalidate(&own);
            for related in key::related_keys(&host, &path, &response.headers) {
                self.invalidate(&related);
            }
        }
        marked(response, CacheStatus::Bypass)
    }

    /// A `Range` request: from a fresh complete entry, or a fresh stored part that holds
    /// the range; otherwise forwarded with its `Range`, and what comes back is stored
    /// (see `range`). Range requests are not coalesced: each asks for other bytes.
    fn serve_range(
        &self,
        key: &str,
        request: Request,
        spec: range::Spec,
        upstream: &Arc<dyn Upstream>,
    ) -> Response {
        let now = SystemTime::now();
        if let Some(entry) = self
            .lookup(key, &request.headers)
            .filter(|entry| entry.is_fresh_for(&request.headers, now))
        {
            return self.answer_range(&entry, &request.headers, spec, CacheStatus::Hit, None);
        }
        let partial_key = key::partial_key(key);
        if let Some(part) = self
            .lookup(&partial_key, &request.headers)
            .filter(|part| part.is_fresh_for(&request.headers, now))
            && let Some(answer) = self.answer_from_part(&part, &request.headers, spec)
        {
            return answer;
        }
        if policy::has_directive(&request.headers, "only-if-cached") {
            CacheStats::count(&self.counters.misses);
            self.stats.record_status(StatusCode::GATEWAY_TIMEOUT);
            let response = Response::text(StatusCode::GATEWAY_TIMEOUT, "not in the cache (only-if-cached)");
            return marked(response, CacheStatus::Miss);
        }
        CacheStats::count(&self.counters.misses);
        let client = request.headers.clone();
        let target = request.target.clone();
        let response = upstream.fetch(request);
        let stored_as = match response.status {
            StatusCode::PARTIAL_CONTENT => partial_key,
            StatusCode::OK => key.to_string(),
            _ => return marked(response, CacheStatus::Miss),
        };
        let parts = Parts {
            key: stored_as,
            target,
            status: response.status,
            headers: response.headers.clone(),
            body: Vec::new(),
            request_headers: client.clone(),
            response_time: SystemTime::now(),
        };
        match self.store_response(parts, &response) {
            // The backend ignored the Range and sent it all: answer the range from it.
            Some((entry, _)) if !entry.is_partial() => {
                self.answer_range(&entry, &client, spec, CacheStatus::Miss, Some(&response))
            }
            _ => marked(response, CacheStatus::Miss),
        }
    }

    /// A range of a complete entry: `206`, `416` past the end, or the whole `200` when
    /// `If-Range` does not match (RFC 9110 section 13.1.5) or the client's validators
    /// match (a 304 comes before ranges, section 13.2.2).
    fn answer_range(
        &self,
        entry: &Entry,
        client: &HeaderMap,
        spec: range::Spec,
        status: CacheStatus,
        fetched: Option<&Response>,
    ) -> Response {
        let whole = entry.status != StatusCode::OK
            || conditional::client_not_modified(client, &entry.headers)
            || !range::if_range_allows(client, &entry.headers);
        if whole {
            return self.answer(entry, client, status, fetched);
        }
        let length = entry.body.len() as u64;
        let mut response = match spec.resolve(length) {
            Some(part) => {
                let mut partial = Response::new(StatusCode::PARTIAL_CONTENT);
                partial.headers = entry.headers.clone();
                partial
                    .headers
                    .insert(header::CONTENT_RANGE, range::content_range(part, length));
                partial.body = entry.body[part.first as usize..=part.last as usize].to_vec();
                partial
            }
            None => {
                let mut refused = Response::new(StatusCode::RANGE_NOT_SATISFIABLE);
                refused
                    .headers
                    .insert(header::CONTENT_RANGE, range::unsatisfied_range(length));
                refused
            }
        };
        self.finish_answer(entry, &mut response, fetched, status);
        marked(response, status)
    }

    /// A range from a stored `206`, if the range lies wholly inside it.
    fn answer_from_part(&self, part: &Entry, client: &HeaderMap, spec: range::Spec) -> Option<Response> {
        let (held, length) = range::stored_part(&part.headers)?;
        let wanted = spec.resolve(length)?;
        if wanted.first < held.first
            || wanted.last > held.last
            || !range::if_range_allows(client, &part.headers)
        {
            return None;
        }
        let mut response = Response::new(StatusCode::PARTIAL_CONTENT);
        response.headers = part.headers.clone();
        response
            .headers
            .insert(header::CONTENT_RANGE, range::content_range(wanted, length));
        let start = (wanted.first - held.first) as usize;
        let end = (wanted.last - held.first) as usize;
        response.body = part.body.get(start..=end)?.to_vec();
        self.finish_answer(part, &mut response, None, CacheStatus::Hit);
        Some(marked(response, CacheStatus::Hit))
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
        self.finish_answer(entry, &mut response, fetched, status);
        marked(response, status)
    }

    /// The answer to the request that fetched `entry`: the backend's response itself,
    /// which may hold fields the entry does not keep (`private="..."` ones are for this
    /// client), with `Age`; or a `304` when the client's own validators match.
    fn answer_fetched(&self, entry: &Entry, client: &HeaderMap, mut response: Response) -> Response {
        if entry.status == StatusCode::OK && conditional::client_not_modified(client, &entry.headers) {
            return self.answer(entry, client, CacheStatus::Miss, Some(&response));
        }
        response
            .headers
            .insert(header::AGE, HeaderValue::from(entry.age(SystemTime::now())));
        marked(response, CacheStatus::Miss)
    }

    /// `Age`, and what the worker that fetched (if any) tells the log; or the counting
    /// of a request no worker saw (as a hit, or as served stale).
    fn finish_answer(
        &self,
        entry: &Entry,
        response: &mut Response,
        fetched: Option<&Response>,
        status: CacheStatus,
    ) {
        response
            .headers
            .insert(header::AGE, HeaderValue::from(entry.age(SystemTime::now())));
        match fetched {
            Some(fetched) => {
                if let Some(worker) = fetched.headers.get("x-roundhouse-worker") {
                    response.headers.insert("x-roundhouse-worker", worker.clone());
                }
                response.meta = fetched.meta.clone();
            }
            // No worker saw this request, so nobody else counts it.
            None => {
                let counter = match status {
                    CacheStatus::Stale => &self.counters.stale,
                    _ => &self.counters.hits,
                };
                CacheStats::count(counter);
                self.stats.record_status(response.status);
            }
        }
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

    /// Drops every variant stored under `key`, and the parts of it.
    fn invalidate(&self, key: &str) {
        let removed = {
            let mut store = self.store.lock();
            let mut removed = store.remove(key);
            removed.extend(store.remove(&key::partial_key(key)));
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

/// How the cache reaches a backend: the worker queue (`front::dispatch`). A trait
/// object rather than a closure, so a background revalidation can keep it after the
/// client's request is answered.
pub trait Upstream: Send + Sync + 'static {
    /// Sends `request` to a backend and waits for the answer (or a 502/503/504).
    fn fetch(&self, request: Request) -> Response;

    /// The way to a backend for a revalidation that runs after the client is answered,
    /// on a thread of its own: the same one, unless this one forwards on the calling
    /// thread (a worker's), which that thread would not be.
    fn background(self: Arc<Self>) -> Arc<dyn Upstream>;

    /// Whether `fetch` forwards on the calling thread, a worker of the fixed pool; such a
    /// caller must not sleep on work that needs a worker to get done.
    fn forwards_here(&self) -> bool {
        false
    }
}

/// The statuses RFC 5861 section 4 calls an error.
fn is_server_error(status: StatusCode) -> bool {
    matches!(status.as_u16(), 500 | 502 | 503 | 504)
}

/// Adds the verdict to a response, for the client (`X-Cache`) and for the access log.
fn marked(mut response: Response, status: CacheStatus) -> Response {
    response
        .headers
        .insert("x-cache", HeaderValue::from_static(status.as_str()));
    response.meta.cache = Some(status.as_str());
    response
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// A worker's way to a backend, as the event-loop front gives the cache: it answers
    /// at once, on the calling thread.
    struct OnThisWorker;

    impl Upstream for OnThisWorker {
        fn fetch(&self, _request: Request) -> Response {
            Response::text(StatusCode::OK, "from the backend")
        }

        fn background(self: Arc<Self>) -> Arc<dyn Upstream> {
            self
        }

        fn forwards_here(&self) -> bool {
            true
        }
    }

    fn get(target: &str) -> Request {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("test"));
        let peer = "127.0.0.1:1".parse().unwrap();
        Request {
            method: Method::GET,
            target: target.into(),
            version: http::Version::HTTP_11,
            headers,
            body: Vec::new(),
            spooled: None,
            peer,
            client: peer.ip(),
            received_at: Instant::now(),
            interim: None,
            tls: false,
        }
    }

    #[test]
    fn a_worker_does_not_wait_on_a_background_revalidation() {
        // An hour's lock timeout: a follower that waits is still waiting at the deadline.
        let stats = Arc::new(Stats::new("round-robin", 1));
        let cache = Arc::new(Cache::new(CacheConfig::default(), Duration::from_secs(3600), stats).unwrap());
        let request = get("/k");
        let key = key::primary_key(&request).unwrap();
        // A revalidation in the background leads the flight, its fetch still queued.
        let Role::Leader(revalidation) = cache.flights.join_in_background(&key) else {
            panic!("the first to join leads");
        };
        let (answered, answer) = mpsc::channel();
        let serving = Arc::clone(&cache);
        std::thread::spawn(move || {
            let upstream: Arc<dyn Upstream> = Arc::new(OnThisWorker);
            let _ = answered.send(serving.serve(request, &upstream));
        });
        let response = answer
            .recv_timeout(Duration::from_secs(20))
            .expect("the worker fetched for itself instead of waiting on the revalidation");
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.body, b"from the backend\n");
        drop(revalidation);
    }
}
