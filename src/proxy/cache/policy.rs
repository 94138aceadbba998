//! Freshness and storability: the RFC 9111 rules, delegated to `http-cache-semantics`
//! where it decides them right, decided here where it does not.
//!
//! OS concept: none new; this is the protocol half of the cache. The crate (version 3,
//! built on `http` 1.x, the same `HeaderMap`/`StatusCode` types ureq and our front use)
//! implements the rules nginx and Varnish implement by hand: which responses a *shared*
//! cache may store (`no-store`, `private`, `Authorization` unless `public`/`s-maxage`/
//! `must-revalidate`), how long they stay fresh (`s-maxage` over `max-age` over `Expires`,
//! minus `Age`), and which requests they may answer without asking the backend (request
//! `no-cache`, `max-age`, `min-fresh`, `max-stale`, `must-revalidate`, `Vary`).
//!
//! The crate is never shown a backend's raw fields. `crate_view` rewrites them first, and
//! each rewrite fixes a case the crate gets wrong, with the RFC section:
//! - `Cache-Control` comes out of `directives` in lowercase, first occurrence only,
//!   quoted strings understood (section 5.2: names are case-insensitive; the crate
//!   compares them with their case, so `No-Store` was stored). A `CDN-Cache-Control`
//!   field (RFC 9213) replaces `Cache-Control` and `Expires` for this cache.
//! - `max-age`/`s-maxage` with a broken value become `0`: invalid freshness information
//!   means stale (section 4.2.1). Large values saturate at 2^31 (section 1.2.2).
//! - `proxy-revalidate`, and `s-maxage` which implies it (sections 5.2.2.8, 5.2.2.10),
//!   become `must-revalidate`: the crate instead treats `proxy-revalidate` as "never
//!   fresh".
//! - qualified `no-cache="f"` and `private="f"` are not the whole-response directives
//!   (sections 5.2.2.4, 5.2.2.7): the crate sees neither, and `entry` drops the fields.
//! - `Age` is read by `fields::age` (section 5.1) and raised to the apparent age
//!   `response_time - Date` when that is larger (section 4.2.3); `Date`, `Expires` are
//!   read in all three HTTP-date forms, an invalid `Expires` means the past (5.3).
//! - a status the crate does not "understand" (RFC 7234's rule) is shown as one it
//!   does: RFC 9111 section 3 asks understanding only of 206 and 304, and of any status
//!   under `must-understand` (section 5.2.2.3).
//!
//! And rules of ours, on top of the RFC:
//! - heuristic freshness (section 4.2.2) is decided here, not by the crate: for the
//!   heuristically cacheable statuses (RFC 9110 section 15.1) or `public`, with a
//!   `Last-Modified`, 10 % of the time since then (the RFC's suggestion), at most a day;
//!   without `Last-Modified`, a 200 is fresh for `--cache-ttl` (nginx's
//!   `proxy_cache_valid 200 30s`). The crate is shown the result as `max-age`; the client
//!   never sees that.
//! - a response with `Set-Cookie` is stored (section 3.1 stores every end-to-end field)
//!   only when the origin gave it explicit freshness: never on a heuristic or the TTL,
//!   so a login page that says nothing is never replayed to everyone. (The crate wants
//!   `public` as well; it is shown the response without `Set-Cookie`.)
//! - a response that is never fresh and has no validator is not stored: it could never
//!   be used.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use http_cache_semantics::{BeforeRequest, CacheOptions, CachePolicy, RequestLike, ResponseLike};

use super::directives::{CDN_CACHE_CONTROL, Directives};
use super::fields;

/// Why a response was not stored (reported in debug logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStored {
    /// Only responses to GET are stored.
    Method,
    /// The body is larger than `--cache-max-object`.
    TooLarge,
    /// `Set-Cookie` without explicit freshness from the origin.
    SetCookie,
    /// `Vary: *` never matches a later request.
    VaryStar,
    /// The RFC 9111 rules forbid it (`no-store`, `private`, `Authorization`, status...).
    Forbidden,
    /// Never fresh and no validator to revalidate with.
    Useless,
}

/// Statuses a cache may give heuristic freshness (RFC 9110 section 15.1).
const HEURISTIC_STATUSES: [u16; 12] = [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501];

/// Statuses the crate stores ("understood", RFC 7234); any other is shown as 307, which
/// it understands and does not cache by default, so its remaining rules apply unchanged.
const CRATE_UNDERSTOOD: [u16; 14] = [
    200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501,
];

/// The longest heuristic freshness (Squid's default `refresh_pattern` allows three days;
/// one is where RFC 7234 asked caches to warn).
const MAX_HEURISTIC: u64 = 24 * 60 * 60;

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

/// A response as the crate sees it (see `crate_view`).
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
        // Heuristics are ours (see the module comment).
        cache_heuristic: 0.0,
        // `immutable` says nothing about how long (RFC 8246): no extra lifetime.
        immutable_min_time_to_live: Duration::ZERO,
        ..CacheOptions::default()
    }
}

/// The directives this cache obeys: `CDN-Cache-Control` when the response has a valid
/// one (RFC 9213 section 2.2: a cache that honours a targeted field ignores
/// `Cache-Control`), otherwise `Cache-Control`.
pub fn effective(response_headers: &HeaderMap) -> Directives {
    ruling(response_headers).0
}

/// The directives this cache obeys, and whether they came from the targeted field (then
/// `Expires` is ignored as well).
fn ruling(response_headers: &HeaderMap) -> (Directives, bool) {
    match Directives::targeted(response_headers) {
        Some(targeted) => (targeted, true),
        None => (Directives::cache_control(response_headers), false),
    }
}

/// Whether the directives forbid serving the response stale in any case: `no-cache`,
/// `must-revalidate`, and for a shared cache `proxy-revalidate` and `s-maxage` (RFC 9111
/// section 4.2.4).
pub fn forbids_stale(directives: &Directives) -> bool {
    directives.unqualified("no-cache")
        || ["must-revalidate", "proxy-revalidate", "s-maxage"]
            .iter()
            .any(|name| directives.has(name))
}

/// Whether the origin said how long the response stays fresh: `max-age`, `s-maxage`, or
/// (unless a targeted field rules) `Expires`.
fn explicit_freshness(directives: &Directives, targeted: bool, response_headers: &HeaderMap) -> bool {
    directives.has("max-age")
        || directives.has("s-maxage")
        || (!targeted && response_headers.contains_key(header::EXPIRES))
}

/// Heuristic freshness in seconds (section 4.2.2), or `None` (see the module comment).
fn heuristic_lifetime(
    status: StatusCode,
    directives: &Directives,
    response_headers: &HeaderMap,
    response_time: SystemTime,
    ttl: Duration,
) -> Option<u64> {
    if response_headers.contains_key(header::SET_COOKIE) {
        return None;
    }
    if !HEURISTIC_STATUSES.contains(&status.as_u16()) && !directives.has("public") {
        return None;
    }
    if let Some(modified) = fields::date(response_headers, header::LAST_MODIFIED) {
        let date = fields::date(response_headers, header::DATE).unwrap_or(response_time);
        let unchanged_for = date.duration_since(modified).unwrap_or_default().as_secs();
        return Some((unchanged_for / 10).min(MAX_HEURISTIC));
    }
    (status == StatusCode::OK && !ttl.is_zero()).then(|| ttl.as_secs().max(1))
}

/// The status the crate is shown for `status`: 206 as the 200 it is part of (we handle
/// ranges ourselves, `range`), and statuses it does not know as 307 (module comment).
fn crate_status(status: StatusCode) -> StatusCode {
    if status == StatusCode::PARTIAL_CONTENT {
        StatusCode::OK
    } else if CRATE_UNDERSTOOD.contains(&status.as_u16()) {
        status
    } else {
        StatusCode::TEMPORARY_REDIRECT
    }
}

/// The response fields rewritten for the crate (see the module comment).
fn crate_view(
    status: StatusCode,
    response_headers: &HeaderMap,
    response_time: SystemTime,
    ttl: Duration,
) -> HeaderMap {
    let (directives, targeted) = ruling(response_headers);
    let mut view = response_headers.clone();
    for name in [
        header::CACHE_CONTROL,
        header::EXPIRES,
        header::AGE,
        header::DATE,
        header::SET_COOKIE,
        header::PRAGMA,
    ] {
        view.remove(name);
    }
    view.remove(CDN_CACHE_CONTROL);
    let understood =
        HEURISTIC_STATUSES.contains(&status.as_u16()) || CRATE_UNDERSTOOD.contains(&status.as_u16());
    let mut text = directives
        .to_header_value(|directive| {
            let qualified = matches!(directive.name.as_str(), "no-cache" | "private")
                && directive
                    .value
                    .as_deref()
                    .is_some_and(|value| !value.trim().is_empty());
            let seconds = matches!(directive.name.as_str(), "max-age" | "s-maxage");
            // must-understand lets a cache that understands the status ignore no-store.
            let overridden = directive.name == "no-store" && directives.has("must-understand") && understood;
            !qualified && !seconds && !overridden && directive.name != "proxy-revalidate"
        })
        .and_then(|value| value.to_str().ok().map(str::to_string))
        .unwrap_or_default();
    let mut add = |directive: String| {
        if !text.is_empty() {
            text.push_str(", ");
        }
        text.push_str(&directive);
    };
    for name in ["max-age", "s-maxage"] {
        if let Some(seconds) = directives.seconds(name) {
            add(format!("{name}={seconds}"));
        }
    }
    if (directives.has("proxy-revalidate") || directives.has("s-maxage"))
        && !directives.has("must-revalidate")
    {
        add("must-revalidate".into());
    }
    if !explicit_freshness(&directives, targeted, response_headers)
        && let Some(seconds) = heuristic_lifetime(status, &directives, response_headers, response_time, ttl)
    {
        add(format!("max-age={seconds}"));
    }
    if let Ok(value) = HeaderValue::from_str(&text)
        && !text.is_empty()
    {
        view.insert(header::CACHE_CONTROL, value);
    }
    if !targeted && response_headers.contains_key(header::EXPIRES) {
        let expires = fields::date(response_headers, header::EXPIRES);
        view.insert(
            header::EXPIRES,
            expires.map_or(HeaderValue::from_static(fields::EPOCH), fields::format_http_date),
        );
    }
    let date = fields::date(response_headers, header::DATE);
    if let Some(date) = date {
        view.insert(header::DATE, fields::format_http_date(date));
    }
    // The corrected initial age (section 4.2.3): what Age says, or what the Date shows
    // when that is more.
    let apparent = date
        .and_then(|date| response_time.duration_since(date).ok())
        .map_or(0, |apparent| apparent.as_secs());
    let age = fields::age(response_headers).unwrap_or(0).max(apparent);
    if age > 0 {
        view.insert(header::AGE, HeaderValue::from(age));
    }
    view
}

/// The request fields rewritten for the crate: `Cache-Control` in lowercase, and no
/// `Pragma` when `Cache-Control` is there (RFC 9111 section 5.4). Borrowed unchanged when
/// there is nothing to rewrite, as on nearly every request.
fn request_view(request_headers: &HeaderMap) -> std::borrow::Cow<'_, HeaderMap> {
    if !request_headers.contains_key(header::CACHE_CONTROL) {
        return std::borrow::Cow::Borrowed(request_headers);
    }
    let mut view = request_headers.clone();
    view.remove(header::PRAGMA);
    match Directives::cache_control(request_headers).to_header_value(|_| true) {
        Some(value) => view.insert(header::CACHE_CONTROL, value),
        None => view.remove(header::CACHE_CONTROL),
    };
    std::borrow::Cow::Owned(view)
}

/// Builds the policy of a response to `GET uri` from the crate's view of it.
pub fn build(
    uri: &Uri,
    request_headers: &HeaderMap,
    status: StatusCode,
    response_headers: &HeaderMap,
    response_time: SystemTime,
    ttl: Duration,
) -> CachePolicy {
    let request_headers = request_view(request_headers);
    let request = AsGet {
        uri,
        headers: &request_headers,
    };
    let view = crate_view(status, response_headers, response_time, ttl);
    let seen = Seen {
        status: crate_status(status),
        headers: &view,
    };
    CachePolicy::new_options(&request, &seen, response_time, options())
}

/// The freshness lifetime the crate is shown (RFC 9111 section 4.2.1), in seconds:
/// `s-maxage`, `max-age`, `Expires` minus `Date`, or our heuristic; 0 under `no-cache`.
pub fn lifetime(
    status: StatusCode,
    response_headers: &HeaderMap,
    response_time: SystemTime,
    ttl: Duration,
) -> u64 {
    let (directives, targeted) = ruling(response_headers);
    if directives.unqualified("no-cache") {
        return 0;
    }
    if let Some(seconds) = directives.seconds("s-maxage").or(directives.seconds("max-age")) {
        return seconds;
    }
    if !targeted && response_headers.contains_key(header::EXPIRES) {
        let date = fields::date(response_headers, header::DATE).unwrap_or(response_time);
        return fields::date(response_headers, header::EXPIRES)
            .and_then(|expires| expires.duration_since(date).ok())
            .map_or(0, |left| left.as_secs());
    }
    heuristic_lifetime(status, &directives, response_headers, response_time, ttl).unwrap_or(0)
}

/// How long past its lifetime the response may still be served stale: the larger of
/// `stale-while-revalidate` and `stale-if-error` (RFC 5861), 0 when forbidden.
pub fn stale_window(directives: &Directives) -> u64 {
    if forbids_stale(directives) {
        return 0;
    }
    let window = |name| directives.seconds(name).unwrap_or(0);
    window("stale-while-revalidate").max(window("stale-if-error"))
}

/// Whether the response may be stored, and if not why. `usable_stale` says a response
/// stale on arrival can still be served stale (RFC 5861) or revalidated.
pub fn check_storable(
    policy: &CachePolicy,
    status: StatusCode,
    response_headers: &HeaderMap,
    body_len: usize,
    max_object: u64,
    usable_stale: bool,
    now: SystemTime,
) -> Result<(), NotStored> {
    if body_len as u64 > max_object {
        return Err(NotStored::TooLarge);
    }
    // A final response only; 304 and 1xx never stand for a whole stored response.
    if status.is_informational() || status == StatusCode::NOT_MODIFIED {
        return Err(NotStored::Forbidden);
    }
    let (directives, targeted) = ruling(response_headers);
    let understood =
        HEURISTIC_STATUSES.contains(&status.as_u16()) || CRATE_UNDERSTOOD.contains(&status.as_u16());
    if directives.has("must-understand") && !understood {
        return Err(NotStored::Forbidden);
    }
    if response_headers.contains_key(header::SET_COOKIE)
        && !explicit_freshness(&directives, targeted, response_headers)
    {
        return Err(NotStored::SetCookie);
    }
    if super::key::vary_names(response_headers).is_none() {
        return Err(NotStored::VaryStar);
    }
    if !policy.is_storable() {
        return Err(NotStored::Forbidden);
    }
    if policy.is_stale(now) && !has_validator(response_headers) && !usable_stale {
        return Err(NotStored::Useless);
    }
    Ok(())
}

/// Whether `request_headers` may be answered by the stored response without asking the
/// backend, now. (A request that asks nothing, no Cache-Control and no Pragma, never
/// gets here: `Entry::is_fresh_for` answers it from the entry's own expiry time.)
pub fn is_fresh_for(policy: &CachePolicy, uri: &Uri, request_headers: &HeaderMap, now: SystemTime) -> bool {
    let request_headers = request_view(request_headers);
    let request = AsGet {
        uri,
        headers: &request_headers,
    };
    matches!(policy.before_request(&request, now), BeforeRequest::Fresh(_))
}

/// A request with `Authorization` may reuse a stored response only if the response was
/// explicitly made for sharing (RFC 9111 section 3.5).
pub fn allows_authenticated_reuse(response_headers: &HeaderMap) -> bool {
    let directives = effective(response_headers);
    ["public", "s-maxage", "must-revalidate"]
        .iter()
        .any(|name| directives.has(name))
}

/// Whether the response has `ETag` or `Last-Modified`, so a stale copy can be revalidated.
pub fn has_validator(response_headers: &HeaderMap) -> bool {
    response_headers.contains_key(header::ETAG) || response_headers.contains_key(header::LAST_MODIFIED)
}

/// Whether a request's `Cache-Control` carries the directive `name` (any case).
pub fn has_directive(headers: &HeaderMap, name: &str) -> bool {
    Directives::cache_control(headers).has(name)
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
        check_storable(&policy, status, &response, 10, 1024, false, now)
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
            Ok(()),
            "explicit freshness: Set-Cookie is stored with the rest (section 3.1)"
        );
        assert_eq!(
            storable(200, &[], &[("set-cookie", "a=1")]),
            Err(NotStored::SetCookie),
            "never on the TTL"
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
