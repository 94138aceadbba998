//! Cache keys and `Vary`: which stored response may answer which request.
//!
//! OS concept: naming shared data. The cache is one table shared by every connection
//! thread; the key decides which requests share an answer. Like nginx's default
//! `proxy_cache_key $scheme$proxy_host$request_uri`, the primary key is the host and the
//! request target; the method is left out because HEAD is answered from a stored GET.
//!
//! A response with `Vary: Accept` is only right for requests with the same `Accept`
//! (RFC 9111 section 4.1). Each such response is stored as a *variant* under the primary
//! key, named by the primary key plus the values of the headers it varies on, the way
//! nginx adds a "variant" hash to its cache files.

use http::{HeaderMap, HeaderName, Method, header};

use crate::http1::Request;
use crate::http1::fields::list_items;

/// Whether the cache may look at a request at all, and under which primary key.
///
/// `None` means "bypass": only GET and HEAD are cacheable methods here, and range requests
/// go straight to the backend because this cache stores whole responses only.
pub fn primary_key(request: &Request) -> Option<String> {
    if request.method != Method::GET && request.method != Method::HEAD {
        return None;
    }
    if request.headers.contains_key(header::RANGE) || !request.target.starts_with('/') {
        return None;
    }
    Some(key_for(request))
}

/// The key of the request's target, whatever its method (unsafe methods use it to
/// invalidate what is stored, RFC 9111 section 4.4).
pub fn key_for(request: &Request) -> String {
    let host = request.header("host").unwrap_or("").to_ascii_lowercase();
    format!("{host}{}", request.target)
}

/// The header names a response varies on, lowercased, in the order given.
/// `None` for `Vary: *`, which no later request can ever match.
pub fn vary_names(response_headers: &HeaderMap) -> Option<Vec<HeaderName>> {
    let mut names = Vec::new();
    for name in list_items(response_headers, header::VARY) {
        if name == "*" {
            return None;
        }
        if let Ok(name) = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            && !names.contains(&name)
        {
            names.push(name);
        }
    }
    Some(names)
}

/// The name of one variant: the primary key plus each varied header's values.
pub fn variant_key(primary: &str, vary: &[HeaderName], request_headers: &HeaderMap) -> String {
    let mut key = primary.to_string();
    for name in vary {
        key.push('\n');
        key.push_str(name.as_str());
        key.push(':');
        for (index, value) in request_headers.get_all(name).iter().enumerate() {
            if index > 0 {
                key.push(',');
            }
            key.push_str(&String::from_utf8_lossy(value.as_bytes()));
        }
    }
    key
}

/// Whether a request carries the same values as a stored request for every varied header
/// (an absent header matches only an absent header).
pub fn vary_matches(vary: &[HeaderName], stored: &HeaderMap, request: &HeaderMap) -> bool {
    vary.iter()
        .all(|name| stored.get_all(name).iter().eq(request.get_all(name).iter()))
}

/// The request headers worth keeping with a stored response: `Host` and the varied ones.
/// Keeping only these means cookies and credentials never sit in the cache (or on disk).
pub fn kept_request_headers(vary: &[HeaderName], request: &HeaderMap) -> HeaderMap {
    let mut kept = HeaderMap::new();
    for name in std::iter::once(&header::HOST).chain(vary) {
        for value in request.get_all(name) {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::fields::header_map as headers;

    #[test]
    fn vary_names_are_lowercased_and_star_is_refused() {
        let names = vary_names(&headers(&[
            ("vary", "Accept, accept-Encoding"),
            ("vary", "Accept"),
        ]))
        .unwrap();
        assert_eq!(names, vec![header::ACCEPT, header::ACCEPT_ENCODING]);
        assert!(vary_names(&headers(&[("vary", "Accept, *")])).is_none());
    }

    #[test]
    fn variants_differ_by_varied_values_only() {
        let vary = [header::ACCEPT];
        let json = headers(&[("accept", "application/json"), ("cookie", "a=1")]);
        let html = headers(&[("accept", "text/html"), ("cookie", "a=1")]);
        assert_ne!(variant_key("h/x", &vary, &json), variant_key("h/x", &vary, &html));
        assert!(vary_matches(
            &vary,
            &json,
            &headers(&[("accept", "application/json")])
        ));
        assert!(!vary_matches(&vary, &json, &html));
        assert!(!vary_matches(&vary, &json, &HeaderMap::new()));
        let kept = kept_request_headers(&vary, &json);
        assert!(kept.contains_key("accept") && !kept.contains_key("cookie"));
    }
}
