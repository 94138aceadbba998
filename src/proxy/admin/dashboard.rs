//! `GET /dashboard`: a live view of the balancer for a classroom projector.
//!
//! The page is one self-contained HTML file compiled into the binary (`include_str!`),
//! with its script inline and no outside resources, so it works offline and needs no
//! build step. It polls `/stats` twice a second and draws the workers, backends and
//! queue. OS concept: observing threads from outside: everything it shows comes from
//! the same atomic counters that `/stats` reads, without stopping any worker.
//! (HAProxy's stats page and Envoy's admin interface are the same idea.)

use http::{StatusCode, header};

use crate::http1::message::Response;

/// The page, as written in `src/proxy/admin/dashboard.html`.
pub const PAGE: &str = include_str!("dashboard.html");

/// The dashboard page.
pub fn response() -> Response {
    Response::new(StatusCode::OK)
        .with_header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .with_header(header::CACHE_CONTROL, "no-store")
        .with_body(PAGE.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_self_contained_and_polls_stats() {
        let page = PAGE;
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains(r#"fetch("/stats""#));
        assert!(page.contains("const POLL_MS = 500;"));
        // No outside resources: the classroom may be offline.
        for outside in ["<script src", "<link", "http://", "https://", "@import"] {
            assert!(!page.contains(outside), "the page refers to {outside}");
        }
        let response = response();
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    }
}
