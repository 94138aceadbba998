//! Header rewriting between client and backend.
//!
//! Hop-by-hop headers describe one connection, not the message (RFC 9110 section
//! 7.6.1), so a proxy removes them in both directions; nginx and HAProxy do the same.
//! `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host` and `Forwarded` tell the
//! backend who the real client was; `Via` names the proxies on the way.
//!
//! OS concept: a socket's peer address. Behind a proxy, the address the backend's
//! `accept(2)` reports is the balancer's, not the client's; `add_forwarding_headers`
//! carries the client's (the peer our own `accept(2)` saw, or what trusted proxies
//! said) in the headers instead.

use http::{HeaderMap, HeaderName, HeaderValue, header};

use super::Hop;
use crate::http1::fields::list_items;
use crate::proxy::clients::push_forwarded_element;

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

/// Fields that `Connection` may never remove: the client's Host, and every field
/// roundhouse itself sets. Otherwise `Connection: close, host` would make the backend
/// see its own address as Host, and a client could erase what we tell the backend
/// about it. (HAProxy never lets Connection remove Host either.)
fn is_protected(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host"
            | "x-forwarded-for"
            | "x-forwarded-proto"
            | "x-forwarded-host"
            | "forwarded"
            | "via"
            | "x-request-id"
    )
}

/// Removes Connection, every header it names (but the protected ones), and the fixed
/// hop-by-hop set.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Only tokens that name another header need a `HeaderName`; the usual
    // `Connection: keep-alive` or `close` allocates nothing.
    let mut named = Vec::new();
    for token in list_items(headers, header::CONNECTION) {
        if token.eq_ignore_ascii_case("close") || token.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        if let Ok(name) = HeaderName::from_bytes(token.as_bytes())
            && !is_protected(&name)
        {
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

/// Adds what the backend needs to know about the original request: the hop's address
/// appended to `X-Forwarded-For`, the scheme, the host, an RFC 7239 `Forwarded` element
/// for the client, and our `Via` hop.
pub fn add_forwarding_headers(headers: &mut HeaderMap, hop: &Hop) {
    // The peer's address as text once: X-Forwarded-For and (usually) Forwarded use it.
    let peer_text = hop.peer.to_string();
    let forwarded_for = match headers
        .get(&X_FORWARDED_FOR)
        .and_then(|value| value.to_str().ok())
    {
        Some(earlier) => format!("{earlier}, {peer_text}"),
        None => peer_text.clone(),
    };
    // From a `String` the value takes the text's buffer over: no second copy.
    if let Ok(value) = HeaderValue::try_from(forwarded_for) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    // The scheme of the listener the request came in on (nginx's `$scheme`).
    let proto = if hop.tls { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if let Some(host) = headers.get(header::HOST).cloned() {
        headers.insert(X_FORWARDED_HOST, host);
    }
    // `Forwarded` names the client as far as trusted proxies say (`--trust-proxy`),
    // appended to any earlier elements, like X-Forwarded-For (HAProxy's `option
    // forwarded` writes the same three parameters).
    let mut forwarded = String::with_capacity(64);
    if let Some(earlier) = headers
        .get(header::FORWARDED)
        .and_then(|value| value.to_str().ok())
    {
        forwarded.push_str(earlier);
        forwarded.push_str(", ");
    }
    let client = hop.client.to_canonical();
    let client_text = if client == hop.peer {
        peer_text
    } else {
        client.to_string()
    };
    push_forwarded_element(
        &mut forwarded,
        client,
        &client_text,
        headers.get(header::HOST),
        proto,
    );
    if let Ok(value) = HeaderValue::try_from(forwarded) {
        headers.insert(header::FORWARDED, value);
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
        let hop = Hop {
            peer: "127.0.0.1".parse().unwrap(),
            client: "203.0.113.4".parse().unwrap(),
            tls: false,
        };
        add_forwarding_headers(&mut headers, &hop);
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(headers["x-forwarded-host"], "example.test");
        assert_eq!(
            headers["forwarded"],
            "for=203.0.113.4;host=example.test;proto=http"
        );
        assert_eq!(headers["via"], "1.1 roundhouse");
    }

    #[test]
    fn connection_cannot_remove_host_or_our_fields() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "connection",
            "close, Host, x-forwarded-for, forwarded, via, x-request-id"
                .parse()
                .unwrap(),
        );
        headers.insert("host", "example.test".parse().unwrap());
        headers.insert("x-request-id", "abc".parse().unwrap());
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers["host"], "example.test");
        assert_eq!(headers["x-request-id"], "abc");
        assert!(!headers.contains_key("connection"));
    }
}
