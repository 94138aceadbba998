//! Freshness and storability: the RFC 9111 rules, delegated to `http-cache-semantics`.
//!
//! OS concept: none new; this is the protocol half of the cache. The crate (version 3,
//! built on `http` 1.x, the same `HeaderMap`/`StatusCode` types ureq and our front use)
//! implements the rules nginx and Varnish implement by hand: which responses a *shared*
//! cache may store (`no-store`, `private`, `Authorization` unless `public`/`s-maxage`/
//! `must-revalidate`, understood status codes), how long they stay fresh (`s-maxage`
//! over `max-age` over `Expires`, minus `Age`), and which requests they may answer
//! without asking the backend (request `no-cache`, `max-age`, `min-fresh`, `max-stale`,
//! `Pragma: no-cache`, `must-revalidate`, `proxy-revalidate`, `Vary`).
//!
//! Three rules are ours, on top of the crate:
//! - `--cache-ttl` stands in for the RFC's heuristic freshness: a 200 response with no
//!   `max-age`, `s-maxage` or `Expires` is fresh for the TTL (nginx's
//!   `proxy_cache_valid 200 30s`). The crate's own heuristic (10 % of the time since
//!   `Last-Modified`) is switched off so there is one predictable rule.
//! - A response with `Set-Cookie` is stored only when explicitly `public`: replaying
//!   someone's cookie to everyone is the classic shared-cache accident. (The crate also
//!   treats such a response as never fresh without `public`; `s-maxage` alone is not
//!   enough for it, and we keep its stricter reading. nginx by default never caches a
//!   response with `Set-Cookie` at all.)
//! - A response that is never fresh and has no validator is not stored: it could never
//!   be used.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use http_cache_semantics::{BeforeRequest, CacheOptions, CachePolicy, RequestLike, ResponseLike};

use crate::http1::fields::list_items;

/// Why a response was not stored (reported in debug logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStored {
    /// Only responses to GET are stored.
    Method,
    /// The body is larger than `--cache-max-object`.
    TooLarge,
    /// `Set-Cookie` without `public`.
    SetCookie,
    /// `Vary: *` never matches a later request.
    VaryStar,
    /// The RFC 9111 rules forbid it (`no-store`, `private`, `Authorization`, status...).
    Forbidden,
    /// Never fresh and no validator to revalidate with.
    Useless,
}

/// A request as the crate sees it. Stored responses are always responses to GET, so a
/// HEAD request asks as a GET would (nginx's `proxy_cache_convert_head`).
struct AsGet<'a> {
    uri: &'a Uri,
    headers: &'a HeaderMap,
}

impl RequestLike for AsGet<'_> {
    fn uri(&self) -> Uri {
        self.uri.clone()
    }
    fn is_same_uri(&self, other: &Uri) -> bool {
        self.uri == other
    }
    fn method(&self) -> &Method {
        &Method::GET
    }
    fn headers(&self) -> &HeaderMap {
        self.headers
    }
}

/// A response as the crate sees it: possibly with the TTL added, see `build`.
struct Seen<'a> {
    status: StatusCode,
    headers: &'a HeaderMap,
}

impl ResponseLike for Seen<'_> {
    fn status(&self) -> StatusCode {
        self.status
    }
    fn headers(&self) -> &HeaderMap {
        self.headers
    }
}

fn options() -> CacheOptions {
    CacheOptions {
        shared: true,
        cache_heuristic: 0.0,
        ..CacheOptions::default()
    }
}

/// Builds the policy of a response to `GET uri`. When the response says nothing about
/// freshness, the crate is shown it with `max-age=ttl` added; the client never sees that.
pub fn build(
    uri: &Uri,
    request_headers: &HeaderMap,
    status: StatusCode,
    response_headers: &HeaderMap,
    response_time: SystemTime,
    ttl: Duration,
) -> CachePolicy {
    let request = AsGet {
        uri,
        headers: request_headers,
    };
    let mut with_ttl;
    let mut seen = Seen {
        status,
        headers: response_headers,
    };
    if status == StatusCode::OK && !ttl.is_zero() && !has_explicit_freshness(response_headers) {
        with_ttl = response_headers.clone();
        if let Ok(value) = HeaderValue::from_str(&format!("max-age={}", ttl.as_secs().max(1))) {
            with_ttl.append(header::CACHE_CONTROL, value);
        }
        seen.headers = &with_ttl;
    }
    CachePolicy::new_options(&request, &seen, response_time, options())
}

/// Whether the response may be stored, and if not why.
pub fn check_storable(
    policy: &CachePolicy,
    response_headers: &HeaderMap,
    body_len: usize,
    max_object: u64,
    now: SystemTime,
) -> Result<(), NotStored> {
    if body_len as u64 > max_object {
        return Err(NotStored::TooLarge);
    }
    if response_headers.contains_key(header::SET_COOKIE) && !has_directive(response_headers, "public") {
        return Err(NotStored::SetCookie);
    }
    if super::key::vary_names(response_headers).is_none() {
        return Err(NotStored::VaryStar);
    }
    if !policy.is_storable() {
        return Err(NotStored::Forbidden);
    }
    if policy.is_stale(now) && !has_validator(response_headers) {
        return Err(NotStored::Useless);
    }
    Ok(())
}

/// Whether `request_headers` may be answered by the stored response without asking the
/// backend, now.
pub fn is_fresh_for(policy: &CachePolicy, uri: &Uri, request_headers: &HeaderMap, now: SystemTime) -> bool {
    let request = AsGet {
        uri,
        headers: request_headers,
    };
    matches!(policy.before_request(&request, now), BeforeRequest::Fresh(_))
}

/// A request with `Authorization` may reuse a stored response only if the response was
/// explicitly made for sharing (RFC 9111 section 3.5).
pub fn allows_authenticated_reuse(response_headers: &HeaderMap) -> bool {
    ["public", "s-maxage", "must-revalidate"]
        .iter()
        .any(|name| has_directive(response_headers, name))
}

/// Whether the response has `ETag` or `Last-Modified`, so a stale copy can be revalidated.
pub fn has_validator(response_headers: &HeaderMap) -> bool {
    response_headers.contains_key(header::ETAG) || response_headers.contains_key(header::LAST_MODIFIED)
}

/// `max-age`, `s-maxage` or `Expires`: the origin said how long the response stays fresh.
fn has_explicit_freshness(response_headers: &HeaderMap) -> bool {
    response_headers.contains_key(header::EXPIRES)
        || has_directive(response_headers, "max-age")
        || has_directive(response_headers, "s-maxage")
}

/// Whether any `Cache-Control` field carries the directive `name` (with or without a value).
pub fn has_directive(headers: &HeaderMap, name: &str) -> bool {
    list_items(headers, header::CACHE_CONTROL)
        .map(|directive| directive.split('=').next().unwrap_or("").trim())
        .any(|directive| directive.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::fields::header_map as headers;

    fn storable(status: u16, request: &[(&str, &str)], response: &[(&str, &str)]) -> Result<(), NotStored> {
        let now = SystemTime::now();
        let response = headers(response);
        let uri: Uri = "/x".parse().unwrap();
        let status = StatusCode::from_u16(status).unwrap();
        let policy = build(
            &uri,
            &headers(request),
            status,
            &response,
            now,
            Duration::from_secs(30),
        );
        check_storable(&policy, &response, 10, 1024, now)
    }

    #[test]
    fn storability_follows_the_rfc_and_our_rules() {
        assert_eq!(storable(200, &[], &[("cache-control", "max-age=60")]), Ok(()));
        assert_eq!(
            storable(200, &[], &[]),
            Ok(()),
            "the TTL makes a bare 200 storable"
        );
        assert_eq!(
            storable(200, &[], &[("cache-control", "no-store")]),
            Err(NotStored::Forbidden)
        );
        assert_eq!(
            storable(200, &[], &[("cache-control", "private, max-age=60")]),
            Err(NotStored::Forbidden)
        );
        assert_eq!(
            storable(200, &[("cache-control", "no-store")], &[]),
            Err(NotStored::Forbidden)
        );
        assert_eq!(
            storable(
                200,
                &[("authorization", "Bearer x")],
                &[("cache-control", "max-age=60")]
            ),
            Err(NotStored::Forbidden)
        );
        assert_eq!(
            storable(
                200,
                &[("authorization", "Bearer x")],
                &[("cache-control", "public, max-age=60")]
            ),
            Ok(())
        );
        assert_eq!(
            storable(
                200,
                &[],
                &[("cache-control", "max-age=60"), ("set-cookie", "a=1")]
            ),
            Err(NotStored::SetCookie)
        );
        assert_eq!(
            storable(
                200,
                &[],
                &[("cache-control", "public, s-maxage=60"), ("set-cookie", "a=1")]
            ),
            Ok(())
        );
        assert_eq!(storable(200, &[], &[("vary", "*")]), Err(NotStored::VaryStar));
        assert_eq!(storable(500, &[], &[]), Err(NotStored::Forbidden));
        assert_eq!(
            storable(404, &[], &[]),
            Err(NotStored::Useless),
            "no TTL for non-200"
        );
        assert_eq!(
            storable(200, &[], &[("cache-control", "no-cache")]),
            Err(NotStored::Useless)
        );
        assert_eq!(
            storable(200, &[], &[("cache-control", "no-cache"), ("etag", "\"1\"")]),
            Ok(())
        );
    }

    #[test]
    fn freshness_honours_request_directives() {
        let now = SystemTime::now();
        let uri: Uri = "/x".parse().unwrap();
        let response = headers(&[("cache-control", "max-age=60")]);
        let policy = build(
            &uri,
            &HeaderMap::new(),
            StatusCode::OK,
            &response,
            now,
            Duration::ZERO,
        );
        assert!(is_fresh_for(&policy, &uri, &HeaderMap::new(), now));
        assert!(!is_fresh_for(
            &policy,
            &uri,
            &headers(&[("cache-control", "no-cache")]),
            now
        ));
        assert!(!is_fresh_for(
            &policy,
            &uri,
            &headers(&[("pragma", "no-cache")]),
            now
        ));
        let later = now + Duration::from_secs(61);
        assert!(!is_fresh_for(&policy, &uri, &HeaderMap::new(), later));
        let expires = headers(&[("expires", "Thu, 01 Jan 1970 00:00:00 GMT")]);
        let policy = build(
            &uri,
            &HeaderMap::new(),
            StatusCode::OK,
            &expires,
            now,
            Duration::from_secs(30),
        );
        assert!(
            !is_fresh_for(&policy, &uri, &HeaderMap::new(), now),
            "Expires is explicit: no TTL"
        );
    }
}
