//! Range requests against stored responses (RFC 9110 section 14, RFC 9111 section 3.3).
//!
//! OS concept: none new; slicing shared immutable data. A stored body is an `Arc`-held
//! `Vec<u8>`, so a range is a copy of a slice of it, made without any lock.
//!
//! Two kinds of stored response answer a `Range: bytes=...` request:
//! - a complete `200`: any single satisfiable range is answered `206` with the stored
//!   fields plus `Content-Range`; a range past the end is `416`; a range we do not serve
//!   (several ranges, another unit, bad syntax) gets the whole `200`, which a server may
//!   always do (section 14.2: "a server MAY ignore the Range header field").
//! - a stored `206` with one `Content-Range: bytes first-last/length`: only requests for a
//!   range wholly inside it; it never answers a request for the whole representation
//!   (RFC 9111 section 3.3: an incomplete response answers only ranges within it).
//!
//! Like Squid with its default `range_offset_limit`, a range that misses is forwarded with
//! its `Range`, and what comes back (a `206` or a whole `200`) is stored.

use http::{HeaderMap, HeaderValue, header};

use super::conditional;

/// One resolved byte range, both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

/// A single range as asked: `first-last`, `first-`, or the suffix `-length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec {
    From { first: u64, last: Option<u64> },
    Suffix(u64),
}

/// The request's single byte range, or `None` for no Range, several ranges, another unit
/// or bad syntax (all answered as if there were no Range).
pub fn requested(headers: &HeaderMap) -> Option<Spec> {
    let value = headers.get(header::RANGE)?.to_str().ok()?.trim();
    let (unit, set) = value.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return None;
    }
    let (first, last) = set.trim().split_once('-')?;
    let number = |text: &str| -> Option<u64> {
        let text = text.trim();
        (!text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    };
    if first.trim().is_empty() {
        return number(last).filter(|&length| length > 0).map(Spec::Suffix);
    }
    let first = number(first)?;
    let last = if last.trim().is_empty() {
        None
    } else {
        Some(number(last)?)
    };
    if last.is_some_and(|last| last < first) {
        return None;
    }
    Some(Spec::From { first, last })
}

impl Spec {
    /// The range within a representation of `length` bytes, or `None` when no byte of
    /// it is there (unsatisfiable, section 14.1.2).
    pub fn resolve(self, length: u64) -> Option<ByteRange> {
        if length == 0 {
            return None;
        }
        match self {
            Spec::From { first, last } if first < length => Some(ByteRange {
                first,
                last: last.unwrap_or(u64::MAX).min(length - 1),
            }),
            Spec::From { .. } => None,
            Spec::Suffix(count) => Some(ByteRange {
                first: length.saturating_sub(count),
                last: length - 1,
            }),
        }
    }
}

/// What a stored `206` holds: its `Content-Range: bytes first-last/length`.
pub fn stored_part(headers: &HeaderMap) -> Option<(ByteRange, u64)> {
    let value = headers.get(header::CONTENT_RANGE)?.to_str().ok()?.trim();
    let rest = value.strip_prefix("bytes ")?;
    let (span, length) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let part = ByteRange {
        first: first.trim().parse().ok()?,
        last: last.trim().parse().ok()?,
    };
    let length: u64 = length.trim().parse().ok()?;
    (part.first <= part.last && part.last < length).then_some((part, length))
}

/// Whether `If-Range` lets the range apply to the stored response (section 13.1.5): an
/// entity tag must match the stored one strongly, a date must equal `Last-Modified`.
/// Without `If-Range` the range always applies.
pub fn if_range_allows(request: &HeaderMap, stored: &HeaderMap) -> bool {
    let Some(condition) = request
        .get(header::IF_RANGE)
        .and_then(|value| value.to_str().ok())
    else {
        return true;
    };
    let condition = condition.trim();
    if condition.starts_with('"') || condition.starts_with("W/") {
        return stored
            .get(header::ETAG)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|etag| conditional::strong_eq(condition, etag));
    }
    stored
        .get(header::LAST_MODIFIED)
        .is_some_and(|modified| modified.as_bytes() == condition.as_bytes())
}

/// `Content-Range` for a part of a representation of `length` bytes.
pub fn content_range(part: ByteRange, length: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("bytes {}-{}/{length}", part.first, part.last))
        .unwrap_or(HeaderValue::from_static("bytes */0"))
}

/// `Content-Range` of a 416: the length only.
pub fn unsatisfied_range(length: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("bytes */{length}")).unwrap_or(HeaderValue::from_static("bytes */0"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::fields::header_map as headers;

    fn range(value: &str) -> Option<Spec> {
        requested(&headers(&[("range", value)]))
    }

    #[test]
    fn single_byte_ranges_resolve_and_others_are_ignored() {
        assert_eq!(
            range("bytes=0-1").unwrap().resolve(11),
            Some(ByteRange { first: 0, last: 1 })
        );
        assert_eq!(
            range("bytes=1-").unwrap().resolve(11),
            Some(ByteRange { first: 1, last: 10 })
        );
        assert_eq!(
            range("bytes=-1").unwrap().resolve(11),
            Some(ByteRange { first: 10, last: 10 })
        );
        assert_eq!(
            range("bytes=-50").unwrap().resolve(11),
            Some(ByteRange { first: 0, last: 10 })
        );
        assert_eq!(
            range("bytes=5-99").unwrap().resolve(11),
            Some(ByteRange { first: 5, last: 10 })
        );
        assert_eq!(range("bytes=11-").unwrap().resolve(11), None, "unsatisfiable");
        for ignored in [
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=3-1",
            "bytes=a-",
            "bytes=-0",
            "bytes",
        ] {
            assert_eq!(range(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn a_stored_part_and_if_range() {
        let stored = headers(&[
            ("content-range", "bytes 4-9/10"),
            ("etag", "\"v1\""),
            ("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ]);
        assert_eq!(stored_part(&stored), Some((ByteRange { first: 4, last: 9 }, 10)));
        assert_eq!(stored_part(&headers(&[("content-range", "bytes 4-10/10")])), None);
        assert!(if_range_allows(&HeaderMap::new(), &stored));
        assert!(if_range_allows(&headers(&[("if-range", "\"v1\"")]), &stored));
        assert!(!if_range_allows(&headers(&[("if-range", "W/\"v1\"")]), &stored));
        assert!(!if_range_allows(&headers(&[("if-range", "\"v2\"")]), &stored));
        assert!(if_range_allows(
            &headers(&[("if-range", "Mon, 01 Jan 2024 00:00:00 GMT")]),
            &stored
        ));
    }
}
