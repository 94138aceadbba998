//! `/site/...`: a static web server over one directory, as the seeds' servers that
//! returned index.html, CSS and images.
//!
//! What makes it real rather than a toy is what nginx's `root` + `location` does too:
//! the content type from the file's extension, validators (`ETag`, `Last-Modified`)
//! so a browser can revalidate with a `304 Not Modified` instead of downloading again,
//! `Cache-Control: max-age` so it need not even ask for a while, and above all, no way
//! out of the directory.
//!
//! OS concept: the file system namespace and its traps. A path from the network is
//! hostile: `..` climbs out, `%2e%2e` is `..` once decoded, `//etc/passwd` is absolute,
//! and a symbolic link inside the directory can point anywhere. So the path is decoded
//! once, any `.`/`..`/empty segment or encoded slash is refused, and the result is
//! resolved by the kernel (`realpath(3)`, which follows every symlink) and must still
//! lie under the directory's own resolved path. Every refusal is a plain 404, so a
//! probe learns nothing about what exists outside.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Method, StatusCode, header};

use super::percent;
use crate::http1::{Request, Response};

/// The URL prefix the site is served under.
pub const PREFIX: &str = "/site";

/// The served directory, resolved once at start.
pub struct StaticSite {
    root: Result<PathBuf, String>,
    max_age: u64,
}

impl StaticSite {
    /// Serves `dir` (if any) with `Cache-Control: max-age=<max_age>`. A directory that
    /// cannot be resolved is remembered as the reason, which each request then gets.
    pub fn new(dir: Option<&Path>, max_age: u64) -> Self {
        let root = match dir {
            None => Err("no static directory is configured; start with --static DIR".to_string()),
            Some(dir) => fs::canonicalize(dir).map_err(|error| {
                format!(
                    "static directory {} cannot be used ({error}); set --static DIR",
                    dir.display()
                )
            }),
        };
        StaticSite { root, max_age }
    }

    /// The directory being served, if there is one.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref().ok()
    }

    pub fn handle(&self, request: &Request) -> Response {
        if request.method != Method::GET && request.method != Method::HEAD {
            return Response::text(
                StatusCode::METHOD_NOT_ALLOWED,
                "a static site answers GET and HEAD",
            )
            .with_header(header::ALLOW, "GET, HEAD");
        }
        let root = match &self.root {
            Ok(root) => root,
            Err(reason) => return Response::text(StatusCode::NOT_FOUND, reason.as_str()),
        };
        let path = request.path();
        // `/site` is a directory: send the browser to `/site/`, as nginx does, or the
        // page's relative links (`style.css`) would resolve against `/`.
        if path == PREFIX {
            return Response::text(StatusCode::MOVED_PERMANENTLY, "moved to /site/")
                .with_header(header::LOCATION, "/site/");
        }
        let Some(relative) = path.strip_prefix(PREFIX).and_then(|rest| rest.strip_prefix('/')) else {
            return not_found();
        };
        let Some(file) = resolve(root, relative) else {
            return not_found();
        };
        match self.serve_file(&file, request) {
            Ok(response) => response,
            Err(error) if error.kind() == io::ErrorKind::NotFound => not_found(),
            Err(error) => {
                log::warn!("cannot read {}: {error}", file.display());
                Response::text(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file")
            }
        }
    }

    fn serve_file(&self, file: &Path, request: &Request) -> io::Result<Response> {
        let metadata = fs::metadata(file)?;
        let modified = metadata.modified().unwrap_or(UNIX_EPOCH);
        let validators = Validators::new(metadata.len(), modified);
        let mut response = if validators.not_modified(request) {
            Response::new(StatusCode::NOT_MODIFIED)
        } else {
            // Read whole: responses carry their body as a Vec, and the site's files are
            // small. nginx would `sendfile(2)` straight from the page cache instead.
            let body = fs::read(file)?;
            let mime = mime_guess::from_path(file).first_or_octet_stream();
            let content_type = if mime.type_() == mime_guess::mime::TEXT {
                format!("{mime}; charset=utf-8")
            } else {
                mime.to_string()
            };
            Response::new(StatusCode::OK)
                .with_header(header::CONTENT_TYPE, &content_type)
                .with_body(body)
        };
        // A 304 repeats the validators and caching headers a 200 would have had
        // (RFC 9110 section 15.4.5), so the cache can refresh its copy's lifetime.
        response = response
            .with_header(header::ETAG, &validators.etag)
            .with_header(
                header::LAST_MODIFIED,
                &httpdate::fmt_http_date(validators.modified),
            )
            .with_header(header::CACHE_CONTROL, &format!("max-age={}", self.max_age));
        Ok(response)
    }
}

fn not_found() -> Response {
    Response::text(StatusCode::NOT_FOUND, "not found")
}

/// Maps the part of the URL path after `/site/` to a file under `root`, or `None` when
/// the path is malformed, tries to leave `root`, or names nothing.
pub fn resolve(root: &Path, relative: &str) -> Option<PathBuf> {
    // An encoded slash or backslash would survive the segment split below and become a
    // separator afterwards; no real file name needs one, so refuse it outright.
    let lower = relative.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") {
        return None;
    }
    let decoded = String::from_utf8(percent::decode(relative)?).ok()?;
    let segments: Vec<&str> = decoded.split('/').collect();
    let mut path = root.to_path_buf();
    for (index, segment) in segments.iter().enumerate() {
        let last = index + 1 == segments.len();
        if segment.is_empty() && last {
            break; // a trailing slash: the directory itself
        }
        if segment.is_empty() || *segment == "." || *segment == ".." {
            return None; // `a//b` (an absolute path inside), `.`, `..`
        }
        if segment.contains('\\') || segment.contains('\0') {
            return None;
        }
        path.push(segment);
    }
    // The kernel resolves every symlink; what comes out must still be inside `root`
    // (itself resolved at start). `starts_with` compares whole components, so
    // `/srv/site-secrets` does not pass for `/srv/site`.
    let mut resolved = fs::canonicalize(&path).ok()?;
    if resolved.is_dir() {
        resolved = fs::canonicalize(resolved.join("index.html")).ok()?;
    }
    (resolved.starts_with(root) && resolved.is_file()).then_some(resolved)
}

/// The validators of one version of a file.
struct Validators {
    /// nginx's format: hex modification time (seconds), a dash, hex size.
    etag: String,
    /// Truncated to whole seconds, which is all `Last-Modified` can express.
    modified: SystemTime,
}

impl Validators {
    fn new(size: u64, modified: SystemTime) -> Self {
        let seconds = modified.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        Validators {
            etag: format!("\"{seconds:x}-{size:x}\""),
            modified: UNIX_EPOCH + Duration::from_secs(seconds),
        }
    }

    /// Whether the client's copy is current. `If-None-Match` wins when present;
    /// `If-Modified-Since` is only looked at without it (RFC 9110 section 13.2.2).
    fn not_modified(&self, request: &Request) -> bool {
        if let Some(tags) = request.header("if-none-match") {
            return tags.trim() == "*" || tags.split(',').any(|tag| same_entity(tag, &self.etag));
        }
        match request.header("if-modified-since").map(httpdate::parse_http_date) {
            Some(Ok(since)) => self.modified <= since,
            _ => false,
        }
    }
}

/// Weak comparison (RFC 9110 section 8.8.3.2): `W/"x"` matches `"x"`, which is what
/// `If-None-Match` uses.
fn same_entity(tag: &str, etag: &str) -> bool {
    let tag = tag.trim();
    tag.strip_prefix("W/").unwrap_or(tag) == etag
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("site")).unwrap();
        fs::write(dir.path().join("site/index.html"), "<h1>hi</h1>").unwrap();
        fs::write(dir.path().join("site/a b.txt"), "spaced").unwrap();
        fs::write(dir.path().join("secret.txt"), "secret").unwrap();
        dir
    }

    #[test]
    fn resolves_files_and_directories() {
        let dir = site();
        let root = fs::canonicalize(dir.path().join("site")).unwrap();
        assert_eq!(resolve(&root, ""), Some(root.join("index.html")));
        assert_eq!(resolve(&root, "index.html"), Some(root.join("index.html")));
        assert_eq!(resolve(&root, "a%20b.txt"), Some(root.join("a b.txt")));
        assert_eq!(resolve(&root, "missing.txt"), None);
    }

    #[test]
    fn refuses_every_way_out() {
        let dir = site();
        let root = fs::canonicalize(dir.path().join("site")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link.txt")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("up")).unwrap();
        for attempt in [
            "../secret.txt",
            "%2e%2e/secret.txt",
            "%2E%2E/secret.txt",
            ".%2e/secret.txt",
            "..%2fsecret.txt",
            "..%5csecret.txt",
            "/etc/passwd",
            "%2fetc%2fpasswd",
            "./index.html",
            "link.txt",
            "up/secret.txt",
            "index.html%00",
            "%ff",
        ] {
            assert_eq!(resolve(&root, attempt), None, "{attempt}");
        }
    }

    #[test]
    fn etags_compare_weakly() {
        let validators = Validators::new(10, UNIX_EPOCH + Duration::from_secs(0x10));
        assert_eq!(validators.etag, "\"10-a\"");
        assert!(same_entity(" W/\"10-a\"", &validators.etag));
        assert!(!same_entity("\"10-b\"", &validators.etag));
    }
}
