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
/// `None` means "bypass": only GET and HEAD are cacheable methods here, and only
/// origin-form targets (`/path?query`) name something the cache can store.
pub fn primary_key(request: &Request) -> Option<String> {
    if request.method != Method::GET && request.method != Method::HEAD {
        return None;
    }
    if !request.target.starts_with('/') {
        return None;
    }
    Some(key_for(request))
}

/// Where stored `206` parts of `key` live: apart from the complete response, so a request
/// for the whole never finds a part (RFC 9111 section 3.3). A target has no spaces, so
/// this never names a real target.
pub fn partial_key(key: &str) -> String {
    format!("{key} partial")
}

/// The keys a successful unsafe request invalidates besides its own (RFC 9111 section
/// 4.4): those of its response's `Location` and `Content-Location`, when they name a URI
/// of the same origin (a cache "MUST NOT invalidate" another host's, against denial of
/// service). References are resolved against the request target (RFC 3986 section 5).
/// `host` is the request's Host, lowercased; `path` its target's path.
pub fn related_keys(host: &str, path: &str, response_headers: &HeaderMap) -> Vec<String> {
    let mut keys = Vec::new();
    for name in [header::LOCATION, header::CONTENT_LOCATION] {
        let Some(reference) = response_headers.get(name).and_then(|value| value.to_str().ok()) else {
            continue;
        };
        if let Some(target) = resolve_same_origin(host, path, reference.trim()) {
            let key = format!("{host}{target}");
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys
}

/// `reference` as an origin-form target, if it is on `host` over http.
fn resolve_same_origin(host: &str, base_path: &str, reference: &str) -> Option<String> {
    let reference = reference.split('#').next().unwrap_or("");
    let (authority_and_path, relative) = if let Some(rest) = reference.strip_prefix("//") {
        (Some(rest), None)
    } else if reference.len() > 7 && reference[..7].eq_ignore_ascii_case("http://") {
        (Some(&reference[7..]), None)
    } else if reference.contains(':') && !reference.starts_with('/') && !reference.starts_with('?') {
        // Another scheme (https:, mailto:): another origin.
        let scheme = reference.split(':').next().unwrap_or("");
        if scheme
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"+-.".contains(&byte))
        {
            return None;
        }
        (None, Some(reference))
    } else {
        (None, Some(reference))
    };
    let target = match (authority_and_path, relative) {
        (Some(rest), _) => {
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            if !rest[..end].eq_ignore_ascii_case(host) {
                return None;
            }
            let path = &rest[end..];
            if path.starts_with('?') || path.is_empty() {
                format!("/{path}")
            } else {
                path.to_string()
            }
        }
        (None, Some(relative)) if relative.starts_with('/') => relative.to_string(),
        (None, Some(relative)) if relative.starts_with('?') || relative.is_empty() => {
            format!("{base_path}{relative}")
        }
        (None, Some(relative)) => {
            let directory = &base_path[..base_path.rfind('/').map_or(0, |slash| slash + 1)];
            format!("{directory}{relative}")
        }
        (None, None) => return None,
    };
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target.as_str(), None),
    };
    let mut resolved = remove_dot_segments(path);
    if let Some(query) = query {
        resolved.push('?');
        resolved.push_str(query);
    }
    Some(resolved)
}

/// RFC 3986 section 5.2.4, on a path that starts with `/`.
fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    for (index, segment) in parts.iter().enumerate() {
        match *segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
        // A trailing "." or ".." still names a directory.
        if index == parts.len() - 1 && (*segment == "." || *segment == "..") {
            segments.push("");
        }
    }
    format!("/{}", segments.join("/"))
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
    fn location_and_content_location_resolve_on_the_same_origin_only() {
        let resolve = |reference| resolve_same_origin("h:1", "/a/b", reference);
        assert_eq!(resolve("c").as_deref(), Some("/a/c"));
        assert_eq!(resolve("/c?x=1#f").as_deref(), Some("/c?x=1"));
        assert_eq!(resolve("../c").as_deref(), Some("/c"));
        assert_eq!(resolve("./").as_deref(), Some("/a/"));
        assert_eq!(resolve("?q").as_deref(), Some("/a/b?q"));
        assert_eq!(resolve("http://H:1/d").as_deref(), Some("/d"));
        assert_eq!(resolve("//h:1").as_deref(), Some("/"));
        assert_eq!(resolve("http://other:1/d"), None);
        assert_eq!(resolve("https://h:1/d"), None);
        assert_eq!(resolve("mailto:x@h"), None);
    }

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
