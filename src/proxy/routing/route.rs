//! Matching a request path against a route's prefix, and rewriting the target.
//!
//! Matching is by whole path segments, as Envoy's `path_separated_prefix` does: the
//! prefix `/api` takes `/api`, `/api/` and `/api/users` but not `/apiary`, which a
//! plain string prefix (nginx's `location /api`) would also take by surprise. The path
//! is compared as the client sent it, without percent-decoding (Envoy's default).
//!
//! OS concept: none of its own; `matches` applies the rule a file system applies to
//! paths (`/api` contains `/api/users`, not `/apiary`), and `Outcomes` holds the
//! route's request counters.

use std::sync::Arc;

use http::HeaderValue;

use crate::proxy::stats::requests::ClassCounts;

/// A live route: where a prefix goes and its counters.
#[derive(Debug)]
pub struct Route {
    /// Normalised: starts with `/`, no trailing `/` except for the root route `/`.
    pub prefix: String,
    /// Index into the routing's pools.
    pub pool: usize,
    pub strip_prefix: bool,
    pub host: Option<HeaderValue>,
    /// Per backend of the pool (by index), then one for "no backend answered".
    pub(super) outcomes: Outcomes,
}

/// The request counters of one route (or of the unrouted requests) against one pool.
#[derive(Debug)]
pub struct Outcomes {
    /// One per backend of the pool, by the backend's index in the pool.
    pub per_backend: Vec<Arc<ClassCounts>>,
    /// Requests that no backend answered (all down).
    pub none: Arc<ClassCounts>,
}

/// The canonical form of a prefix: a trailing slash is dropped (except from `/`), so
/// `/api/` and `/api` are the same route.
pub fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Whether `prefix` (normalised) matches `path`.
pub fn matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return path.starts_with('/');
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The target with `prefix` removed from its path (the query is kept): `/api/users?x=1`
/// becomes `/users?x=1`, and `/api` becomes `/`.
pub fn strip(prefix: &str, target: &str) -> String {
    if prefix == "/" {
        return target.to_string();
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let rest = path.strip_prefix(prefix).unwrap_or(path);
    let mut rewritten = if rest.is_empty() {
        "/".to_string()
    } else {
        rest.to_string()
    };
    if let Some(query) = query {
        rewritten.push('?');
        rewritten.push_str(query);
    }
    rewritten
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(matches("/api", "/api"));
        assert!(matches("/api", "/api/"));
        assert!(matches("/api", "/api/users"));
        assert!(!matches("/api", "/apiary"));
        assert!(!matches("/api", "/"));
        assert!(matches("/", "/anything/at/all"));
        assert!(!matches("/", "*"), "OPTIONS * is no path");
        assert_eq!(normalize_prefix("/api/"), "/api");
        assert_eq!(normalize_prefix("/"), "/");
        assert_eq!(normalize_prefix("//"), "/");
    }

    #[test]
    fn stripping_keeps_the_rest_and_the_query() {
        assert_eq!(strip("/api", "/api/users"), "/users");
        assert_eq!(strip("/api", "/api/users?id=3"), "/users?id=3");
        assert_eq!(strip("/api", "/api"), "/");
        assert_eq!(strip("/api", "/api?x=1"), "/?x=1");
        assert_eq!(strip("/", "/a/b"), "/a/b");
    }
}
