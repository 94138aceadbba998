//! Header rewriting between client and backend.
//!
//! Hop-by-hop headers describe one connection, not the message (RFC 9110 section
//! 7.6.1), so a proxy removes them in both directions; nginx and HAProxy do the same.
//! The `X-Forwarded-*` and `Via` headers tell the backend who the real client was.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::http1::fields::list_items;

/// Headers that never cross a proxy, besides those the Connection header names.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// `X-Forwarded-For`, as a constant: inserting with a `&str` name that is not one of
/// the standard headers would allocate a new `HeaderName` on every request.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// Which worker served a response (added to every response).
pub const X_ROUNDHOUSE_WORKER: HeaderName = HeaderName::from_static("x-roundhouse-worker");
/// Which backend served a response.
pub const X_ROUNDHOUSE_BACKEND: HeaderName = HeaderName::from_static("x-roundhouse-backend");

/// Removes Connection, every header it names, and the fixed hop-by-hop set.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Only tokens that name another header need a `HeaderName`; the usual
    // `Connection: keep-alive` or `close` allocates nothing.
    let mut named = Vec::new();
    for token in list_items(headers, header::CONNECTION) {
        if token.eq_ignore_ascii_case("close") || token.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
            named.push(name);
        }
    }
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// Adds what the backend needs to know about the original request: the client's
/// address appended to `X-Forwarded-For`, the scheme, the host, and our `Via` hop.
pub fn add_forwarding_headers(headers: &mut HeaderMap, client: IpAddr) {
    let forwarded_for = match headers
        .get(&X_FORWARDED_FOR)
        .and_then(|value| value.to_str().ok())
    {
        Some(earlier) => format!("{earlier}, {client}"),
        None => client.to_string(),
    };
    // From a `String` the value takes the text's buffer over: no second copy.
    if let Ok(value) = HeaderValue::try_from(forwarded_for) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    if let Some(host) = headers.get(header::HOST).cloned() {
        headers.insert(X_FORWARDED_HOST, host);
    }
    append_via(headers);
}

/// Appends `1.1 roundhouse` to any existing `Via` list (RFC 9110 section 7.6.3).
pub fn append_via(headers: &mut HeaderMap) {
    let via = match headers.get(header::VIA).and_then(|value| value.to_str().ok()) {
        Some(earlier) => HeaderValue::try_from(format!("{earlier}, 1.1 roundhouse")),
        None => Ok(HeaderValue::from_static("1.1 roundhouse")),
    };
    if let Ok(value) = via {
        headers.insert(header::VIA, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_hop_by_hop_and_named_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", "keep-alive, X-Secret".parse().unwrap());
        headers.insert("x-secret", "1".parse().unwrap());
        headers.append("connection", "close".parse().unwrap());
        headers.insert("keep-alive", "timeout=5".parse().unwrap());
        headers.insert("te", "trailers".parse().unwrap());
        headers.insert("upgrade", "websocket".parse().unwrap());
        headers.insert("x-named-twice", "1".parse().unwrap());
        headers.append("connection", "X-Named-Twice".parse().unwrap());
        headers.insert("accept", "*/*".parse().unwrap());
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("accept"));
    }

    #[test]
    fn appends_client_to_forwarded_for() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "10.0.0.1".parse().unwrap());
        headers.insert("host", "example.test".parse().unwrap());
        add_forwarding_headers(&mut headers, "127.0.0.1".parse().unwrap());
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(headers["x-forwarded-host"], "example.test");
        assert_eq!(headers["via"], "1.1 roundhouse");
    }
}
