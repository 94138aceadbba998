//! One stored response: its headers, body, the request headers it varies on, and the
//! freshness policy computed from them.
//!
//! OS concept: immutable shared data. An entry is never changed after it is built; it is
//! shared as an `Arc<Entry>` by the store and by every thread answering from it, so a
//! reader needs no lock once it holds its `Arc`. A revalidation builds a new entry and
//! swaps it in, the way a read-copy-update scheme publishes a new version.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, StatusCode, Uri, header};
use http_cache_semantics::CachePolicy;

use super::conditional;
use super::directives::Directives;
use super::key;
use super::policy::{self, NotStored};
use super::range;
use crate::proxy::forward::headers::remove_hop_by_hop;

/// Fixed bytes counted per entry for the bookkeeping around it (map slot, Arc, policy).
const ENTRY_OVERHEAD: usize = 512;

/// Everything that makes an entry, as fetched or as read back from disk.
#[derive(Debug, Clone)]
pub struct Parts {
    /// The primary key (host and target).
    pub key: String,
    /// The request target, to tell the policy which URI this answers.
    pub target: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The request's headers; only `Host` and the varied ones are kept.
    pub request_headers: HeaderMap,
    /// When the response arrived (or was last revalidated).
    pub response_time: SystemTime,
}

#[derive(Debug)]
pub struct Entry {
    pub key: String,
    /// The primary key plus the varied request headers' values.
    pub variant: String,
    pub target: String,
    pub status: StatusCode,
    /// The response headers as they will be served, minus `Age` and `X-Cache`.
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub request_headers: HeaderMap,
    pub vary: Vec<HeaderName>,
    pub response_time: SystemTime,
    /// Freshness lifetime in seconds, as the policy counts it (for the stale windows).
    lifetime: u64,
    /// When the entry stops being fresh by its own lifetime: worked out once here, so a
    /// hit compares two times instead of having the policy parse the stored fields
    /// (Cache-Control, Expires, Date) again for every request.
    fresh_until: SystemTime,
    uri: Uri,
    policy: CachePolicy,
}

impl Entry {
    /// Builds an entry if the response may be stored, and says why not otherwise.
    pub fn build(parts: Parts, ttl: Duration, max_object: u64) -> Result<Entry, NotStored> {
        let uri: Uri = parts.target.parse().map_err(|_| NotStored::Forbidden)?;
        let vary = key::vary_names(&parts.headers).ok_or(NotStored::VaryStar)?;
        let mut headers = parts.headers;
        remove_hop_by_hop(&mut headers);
        // The writer states the length of what it sends; the worker id describes one
        // forwarding, not the stored response.
        headers.remove(header::CONTENT_LENGTH);
        headers.remove("x-roundhouse-worker");
        headers.remove("x-cache");
        strip_unstored_fields(&mut headers);
        // The full request headers decide storability (no-store, Authorization)...
        let checked = policy::build(
            &uri,
            &parts.request_headers,
            parts.status,
            &headers,
            parts.response_time,
            ttl,
        );
        let lifetime = policy::lifetime(parts.status, &headers, parts.response_time, ttl);
        let stale_window = policy::stale_window(&policy::effective(&headers));
        let now = SystemTime::now();
        let usable_stale = checked.age(now).as_secs() <= lifetime.saturating_add(stale_window);
        policy::check_storable(
            &checked,
            parts.status,
            &headers,
            parts.body.len(),
            max_object,
            usable_stale,
            now,
        )?;
        // A part is kept only when it says which part it is.
        if parts.status == StatusCode::PARTIAL_CONTENT && range::stored_part(&headers).is_none() {
            return Err(NotStored::Forbidden);
        }
        // ...but only Host and the varied ones are kept with the entry.
        let request_headers = key::kept_request_headers(&vary, &parts.request_headers);
        let policy = policy::build(
            &uri,
            &request_headers,
            parts.status,
            &headers,
            parts.response_time,
            ttl,
        );
        // `is_stale(now)` is `max_age <= age(now)`, and age grows one for one with time
        // after `response_time`: so the entry is fresh exactly until response_time plus
        // its time to live then (none: stale from the start).
        let time_to_live = policy.time_to_live(parts.response_time);
        let fresh_until = if time_to_live.is_zero() {
            SystemTime::UNIX_EPOCH
        } else {
            parts.response_time + time_to_live
        };
        Ok(Entry {
            variant: key::variant_key(&parts.key, &vary, &request_headers),
            fresh_until,
            key: parts.key,
            target: parts.target,
            status: parts.status,
            headers,
            body: parts.body,
            request_headers,
            vary,
            response_time: parts.response_time,
            lifetime,
            uri,
            policy,
        })
    }

    /// The entry after the backend answered a revalidation with `304`: same body, headers
    /// updated from the 304, freshness counted again from `response_time`.
    pub fn refreshed(
        &self,
        not_modified: &HeaderMap,
        response_time: SystemTime,
        ttl: Duration,
    ) -> Result<Entry, NotStored> {
        let mut updates = not_modified.clone();
        remove_hop_by_hop(&mut updates);
        let parts = Parts {
            key: self.key.clone(),
            target: self.target.clone(),
            status: self.status,
            headers: conditional::refresh_headers(&self.headers, &updates),
            body: self.body.clone(),
            request_headers: self.request_headers.clone(),
            response_time,
        };
        Entry::build(parts, ttl, u64::MAX)
    }

    /// Whether this variant was stored for requests like `request` (same varied headers).
    pub fn matches(&self, request: &HeaderMap) -> bool {
        key::vary_matches(&self.vary, &self.request_headers, request)
    }

    /// Whether this entry may answer `request` now without asking the backend.
    pub fn is_fresh_for(&self, request: &HeaderMap, now: SystemTime) -> bool {
        // The hit path. A request with no Cache-Control and no Pragma asks nothing of
        // the entry but to be fresh (the store already matched its host, target and
        // Vary): one comparison. Anything else goes through the policy.
        if !request.contains_key(header::CACHE_CONTROL) && !request.contains_key(header::PRAGMA) {
            return self.is_fresh(now);
        }
        policy::is_fresh_for(&self.policy, &self.uri, request, now)
    }

    /// Whether the entry is fresh by its own lifetime, whatever a request asks.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        now < self.fresh_until
    }

    /// Seconds since the origin made the response, as the `Age` header tells it.
    pub fn age(&self, now: SystemTime) -> u64 {
        self.policy.age(now).as_secs()
    }

    /// Seconds past its freshness lifetime (0 while fresh).
    pub fn staleness(&self, now: SystemTime) -> u64 {
        self.age(now).saturating_sub(self.lifetime)
    }

    /// Whether this stale entry may answer `request` now while it is revalidated in the
    /// background: inside its `stale-while-revalidate` window (RFC 5861 section 3), not
    /// forbidden by `must-revalidate` and friends (RFC 9111 section 4.2.4), and the
    /// client did not ask for a fresh answer (`no-cache`, `max-age`, `min-fresh`).
    pub fn serves_while_revalidating(&self, request: &HeaderMap, now: SystemTime) -> bool {
        let directives = policy::effective(&self.headers);
        let Some(window) = directives.seconds("stale-while-revalidate") else {
            return false;
        };
        let asked = Directives::cache_control(request);
        let wants_fresh = ["no-cache", "max-age", "min-fresh"]
            .iter()
            .any(|name| asked.has(name))
            || (!request.contains_key(header::CACHE_CONTROL) && request.contains_key(header::PRAGMA));
        !policy::forbids_stale(&directives) && !wants_fresh && self.staleness(now) <= window
    }

    /// Whether this stale entry may answer `request` instead of a backend's error: inside
    /// the response's or the request's `stale-if-error` window (RFC 5861 section 4), and
    /// not forbidden (RFC 9111 section 4.2.4).
    pub fn serves_if_error(&self, request: &HeaderMap, now: SystemTime) -> bool {
        let directives = policy::effective(&self.headers);
        let window = directives
            .seconds("stale-if-error")
            .into_iter()
            .chain(Directives::cache_control(request).seconds("stale-if-error"))
            .max();
        !policy::forbids_stale(&directives) && window.is_some_and(|window| self.staleness(now) <= window)
    }

    /// A stored `206`: answers only ranges inside it.
    pub fn is_partial(&self) -> bool {
        self.status == StatusCode::PARTIAL_CONTENT
    }

    pub fn has_validator(&self) -> bool {
        policy::has_validator(&self.headers)
    }

    pub fn allows_authenticated_reuse(&self) -> bool {
        policy::allows_authenticated_reuse(&self.headers)
    }

    /// Bytes this entry is charged against `--cache-max-bytes`.
    pub fn size(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .chain(self.request_headers.iter())
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        ENTRY_OVERHEAD + self.body.len() + headers + self.key.len() + self.variant.len() + self.target.len()
    }
}

/// Fields a shared cache must not keep, beyond the hop-by-hop ones: the proxy
/// authentication fields (RFC 9111 section 3.1), and those named by a qualified
/// `no-cache="..."` or `private="..."` (sections 5.2.2.4 and 5.2.2.7: they may not be
/// served from the cache, so they are simply not stored; the rest of the response is).
fn strip_unstored_fields(headers: &mut HeaderMap) {
    for name in [
        "proxy-authenticate",
        "proxy-authentication-info",
        "proxy-authorization",
    ] {
        headers.remove(name);
    }
    let directives = policy::effective(headers);
    let mut named = directives.field_names("no-cache");
    named.extend(directives.field_names("private"));
    for name in named {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn parts(key: &str, response: &[(&str, &str)], body: &[u8]) -> Parts {
        let mut headers = HeaderMap::new();
        for (name, value) in response {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let mut request_headers = HeaderMap::new();
        request_headers.insert(header::HOST, "h".parse().unwrap());
        request_headers.insert(header::COOKIE, "secret=1".parse().unwrap());
        request_headers.insert(header::ACCEPT, "text/html".parse().unwrap());
        Parts {
            key: key.into(),
            target: "/x".into(),
            status: StatusCode::OK,
            headers,
            body: body.to_vec(),
            request_headers,
            response_time: SystemTime::now(),
        }
    }

    #[test]
    fn keeps_only_host_and_varied_request_headers() {
        let entry = Entry::build(
            parts(
                "h/x",
                &[("cache-control", "max-age=60"), ("vary", "Accept")],
                b"hi",
            ),
            Duration::ZERO,
            1024,
        )
        .unwrap();
        assert!(entry.request_headers.contains_key("accept"));
        assert!(!entry.request_headers.contains_key("cookie"));
        assert_eq!(entry.variant, "h/x\naccept:text/html");
        assert!(entry.is_fresh(SystemTime::now()));
    }

    #[test]
    fn refresh_restarts_freshness() {
        let old = Parts {
            response_time: SystemTime::now() - Duration::from_secs(100),
            ..parts(
                "h/x",
                &[("cache-control", "max-age=10"), ("etag", "\"1\"")],
                b"hi",
            )
        };
        let entry = Entry::build(old, Duration::ZERO, 1024).unwrap();
        assert!(!entry.is_fresh(SystemTime::now()));
        let refreshed = entry
            .refreshed(&HeaderMap::new(), SystemTime::now(), Duration::ZERO)
            .unwrap();
        assert!(refreshed.is_fresh(SystemTime::now()));
        assert_eq!(refreshed.body, b"hi");
    }

    #[test]
    fn objects_over_the_limit_are_not_stored() {
        let big = parts("h/x", &[("cache-control", "max-age=60")], &[0; 100]);
        assert_eq!(
            Entry::build(big, Duration::ZERO, 99).unwrap_err(),
            NotStored::TooLarge
        );
    }
}
