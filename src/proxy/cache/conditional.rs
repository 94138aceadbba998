//! Validators and conditional requests: `ETag`, `Last-Modified`, `If-None-Match`,
//! `If-Modified-Since`, and `304 Not Modified` in both directions.
//!
//! Towards the backend (RFC 9111 section 4.3): a stale entry with a validator is not
//! thrown away; the cache asks "has it changed?" with its own validators, and a `304`
//! that selects the entry (section 4.3.4) refreshes the stored headers while the stored
//! body is kept. The client's own conditional headers are replaced by ours then, so a
//! 304 can only mean "our copy is good" (nginx's `proxy_cache_revalidate` does the same).
//! With nothing stored to revalidate, the client's own conditionals go to the backend as
//! they are, and its 304 goes back to the client (section 4.3.2 lets a cache forward them).
//!
//! Towards the client (RFC 9110 section 13): a client holding a copy asks the same
//! question, and a fresh entry lets the cache answer `304` itself.
//!
//! OS concept: none of its own; it serves the cache (`mod.rs` asks and answers with it,
//! `entry.rs` applies a 304, `range.rs` checks `If-Range`). The wall clock appears
//! once: `client_not_modified` ignores an `If-Modified-Since` later than our own clock,
//! since a date in the future proves nothing about the client's copy.

use std::time::SystemTime;

use http::{HeaderMap, HeaderName, header};

use crate::http1::fields::list_items;

/// Request headers that make a request conditional or partial.
const CONDITIONALS: [HeaderName; 5] = [
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_MATCH,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
];

/// Headers a 304 must not change in a stored response: they describe the stored body
/// (RFC 9111 section 3.2), or they are ours.
const KEPT_ON_REFRESH: [&str; 4] = [
    "content-length",
    "content-encoding",
    "content-range",
    "x-roundhouse-worker",
];

/// Headers a 304 to the client carries (RFC 9110 section 15.4.5), besides ours.
const SENT_WITH_304: [HeaderName; 7] = [
    header::CACHE_CONTROL,
    header::CONTENT_LOCATION,
    header::DATE,
    header::ETAG,
    header::EXPIRES,
    header::LAST_MODIFIED,
    header::VARY,
];

/// Removes the client's conditional headers, so the backend sends a whole response the
/// cache can store (nginx clears them the same way when it fills its cache).
pub fn strip_conditionals(headers: &mut HeaderMap) {
    for name in &CONDITIONALS {
        headers.remove(name);
    }
}

/// Turns the client's request headers into a revalidation of a stored response: the
/// client's conditionals out, the stored validators in.
pub fn revalidate_with(headers: &mut HeaderMap, stored: &HeaderMap) {
    strip_conditionals(headers);
    if let Some(etag) = stored.get(header::ETAG) {
        headers.insert(header::IF_NONE_MATCH, etag.clone());
    }
    if let Some(modified) = stored.get(header::LAST_MODIFIED) {
        headers.insert(header::IF_MODIFIED_SINCE, modified.clone());
    }
}

/// The stored headers updated by a backend's 304: every field the 304 carries replaces
/// the stored one, except those describing the body.
pub fn refresh_headers(stored: &HeaderMap, not_modified: &HeaderMap) -> HeaderMap {
    let mut merged = stored.clone();
    // The stored Age told how old the response was when it first arrived; the 304 is a
    // new arrival, and its own Age (if any) is the one that counts (RFC 9111 4.2.3).
    merged.remove(header::AGE);
    for name in not_modified.keys() {
        if KEPT_ON_REFRESH.contains(&name.as_str()) {
            continue;
        }
        merged.remove(name);
        for value in not_modified.get_all(name) {
            merged.append(name.clone(), value.clone());
        }
    }
    merged
}

/// Whether a client's conditional GET or HEAD is satisfied by a stored 200 response, so
/// the answer is `304 Not Modified`. `If-None-Match` wins over `If-Modified-Since`
/// (RFC 9110 section 13.2.2); ETags compare weakly, as they must for If-None-Match.
pub fn client_not_modified(request: &HeaderMap, stored: &HeaderMap) -> bool {
    if request.contains_key(header::IF_NONE_MATCH) {
        let Some(etag) = stored.get(header::ETAG).and_then(|value| value.to_str().ok()) else {
            return false;
        };
        return list_items(request, header::IF_NONE_MATCH).any(|tag| tag == "*" || weak_eq(tag, etag));
    }
    let since = request
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| httpdate::parse_http_date(value).ok());
    let modified = stored
        .get(header::LAST_MODIFIED)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| httpdate::parse_http_date(value).ok());
    match (since, modified) {
        (Some(since), Some(modified)) => modified <= since && since <= SystemTime::now(),
        _ => false,
    }
}

/// The headers of a 304 answered from a stored response.
pub fn not_modified_headers(stored: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for name in SENT_WITH_304.iter() {
        for value in stored.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

/// Weak comparison: `W/"a"` and `"a"` are the same entity tag.
fn weak_eq(left: &str, right: &str) -> bool {
    left.trim().trim_start_matches("W/") == right.trim().trim_start_matches("W/")
}

/// Strong comparison (RFC 9110 section 8.8.3.2): both strong and equal.
pub fn strong_eq(left: &str, right: &str) -> bool {
    let (left, right) = (left.trim(), right.trim());
    !left.starts_with("W/") && !right.starts_with("W/") && left == right
}

/// Whether the request carries a validator of the client's own (`If-None-Match`,
/// `If-Modified-Since`, or a precondition), so a backend may answer it with a 304 or 412.
pub fn is_conditional(request: &HeaderMap) -> bool {
    CONDITIONALS[..4].iter().any(|name| request.contains_key(name))
}

/// Whether a backend's `304` is about the stored response `stored` and may update it
/// (RFC 9111 section 4.3.4): its entity tag, if it has one, must match the stored one
/// (strongly when strong, weakly when weak); without one, its `Last-Modified` must, and
/// a 304 with neither selects a stored response that has neither as well.
pub fn selects(stored: &HeaderMap, not_modified: &HeaderMap) -> bool {
    let text = |headers: &HeaderMap, name| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .map(str::to_string)
    };
    let (old_tag, new_tag) = (text(stored, header::ETAG), text(not_modified, header::ETAG));
    let (old_date, new_date) = (
        text(stored, header::LAST_MODIFIED),
        text(not_modified, header::LAST_MODIFIED),
    );
    match (&old_tag, &new_tag) {
        (Some(old), Some(new)) if new.starts_with("W/") => weak_eq(old, new),
        (Some(old), Some(new)) => strong_eq(old, new),
        (None, Some(_)) => false,
        (_, None) => match (&old_date, &new_date) {
            (Some(old), Some(new)) => old == new,
            (_, Some(_)) => false,
            // No validator in the 304: it confirms what we asked about.
            (_, None) => true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::fields::header_map as headers;

    #[test]
    fn revalidation_sends_our_validators_not_the_clients() {
        let mut request = headers(&[("if-none-match", "\"client\""), ("accept", "*/*")]);
        let stored = headers(&[
            ("etag", "\"v1\""),
            ("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ]);
        revalidate_with(&mut request, &stored);
        assert_eq!(request["if-none-match"], "\"v1\"");
        assert_eq!(request["if-modified-since"], "Mon, 01 Jan 2024 00:00:00 GMT");
        assert_eq!(request["accept"], "*/*");
    }

    #[test]
    fn a_304_refreshes_headers_but_not_the_body_length() {
        let stored = headers(&[
            ("cache-control", "max-age=1"),
            ("content-length", "5"),
            ("x-a", "1"),
        ]);
        let refresh = headers(&[("cache-control", "max-age=60"), ("content-length", "0")]);
        let mut aged = stored.clone();
        aged.insert(header::AGE, "500".parse().unwrap());
        assert!(
            !refresh_headers(&aged, &refresh).contains_key("age"),
            "the old Age is gone"
        );
        let merged = refresh_headers(&stored, &refresh);
        assert_eq!(merged["cache-control"], "max-age=60");
        assert_eq!(merged["content-length"], "5");
        assert_eq!(merged["x-a"], "1");
    }

    #[test]
    fn a_304_selects_the_stored_response_by_its_validator() {
        let stored = headers(&[
            ("etag", "\"v1\""),
            ("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ]);
        assert!(selects(&stored, &headers(&[("etag", "\"v1\"")])));
        assert!(selects(&stored, &headers(&[("etag", "W/\"v1\"")])));
        assert!(!selects(&stored, &headers(&[("etag", "\"v2\"")])));
        assert!(selects(&stored, &HeaderMap::new()));
        let dated = headers(&[("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT")]);
        assert!(selects(&dated, &dated));
        assert!(!selects(
            &dated,
            &headers(&[("last-modified", "Tue, 02 Jan 2024 00:00:00 GMT")])
        ));
        assert!(!selects(&dated, &headers(&[("etag", "\"v1\"")])));
    }

    #[test]
    fn client_conditionals() {
        let stored = headers(&[
            ("etag", "\"v1\""),
            ("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ]);
        assert!(client_not_modified(
            &headers(&[("if-none-match", "\"x\", W/\"v1\"")]),
            &stored
        ));
        assert!(client_not_modified(&headers(&[("if-none-match", "*")]), &stored));
        assert!(!client_not_modified(
            &headers(&[("if-none-match", "\"v2\"")]),
            &stored
        ));
        // If-None-Match present: If-Modified-Since is ignored.
        assert!(!client_not_modified(
            &headers(&[
                ("if-none-match", "\"v2\""),
                ("if-modified-since", "Tue, 02 Jan 2024 00:00:00 GMT")
            ]),
            &stored
        ));
        assert!(client_not_modified(
            &headers(&[("if-modified-since", "Tue, 02 Jan 2024 00:00:00 GMT")]),
            &stored
        ));
        assert!(!client_not_modified(
            &headers(&[("if-modified-since", "Sun, 31 Dec 2023 00:00:00 GMT")]),
            &stored
        ));
        assert!(!client_not_modified(&HeaderMap::new(), &stored));
    }
}
