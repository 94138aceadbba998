//! Header fields: reading them from httparse, and the rules about them that requests
//! and responses share (Content-Length, Transfer-Encoding, Connection, lists).
//!
//! OS concept: none of its own; this is the part of the codec every reader of a head
//! (the fronts, the forwarding client, the cache, the simulated backend) uses, so each
//! rule is written once.

use http::{HeaderMap, HeaderName, HeaderValue, Version, header};

use super::error::RequestError;

/// A header field httparse let through that `http` refuses (RFC 9110 section 5.5).
#[derive(Debug, thiserror::Error)]
pub enum BadField {
    #[error("bad header name {0:?}")]
    Name(String),
    #[error("bad value for header {0}")]
    Value(HeaderName),
}

/// The header fields httparse found, as a `HeaderMap`. Shared with the forwarding
/// client, which reads response heads the same way.
pub fn parsed_headers(fields: &[httparse::Header<'_>]) -> Result<HeaderMap, BadField> {
    // Room for the fields a proxy adds (X-Forwarded-*, Forwarded, Via, X-Request-Id,
    // x-roundhouse-*): adding them then never makes the map grow and rehash.
    let mut headers = HeaderMap::with_capacity(fields.len() + 8);
    for field in fields {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| BadField::Name(field.name.to_string()))?;
        let value = HeaderValue::from_bytes(field.value).map_err(|_| BadField::Value(name.clone()))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// The Content-Length, if any; several that disagree (or do not parse) are an error.
pub fn content_length(headers: &HeaderMap) -> Result<Option<u64>, RequestError> {
    let mut found: Option<u64> = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        let text = value
            .to_str()
            .map_err(|_| RequestError::Smuggling("non-text Content-Length".into()))?;
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(RequestError::Smuggling(format!("bad Content-Length {text:?}")));
            }
            let length: u64 = part
                .parse()
                .map_err(|_| RequestError::Smuggling(format!("bad Content-Length {text:?}")))?;
            if found.is_some_and(|earlier| earlier != length) {
                return Err(RequestError::Smuggling("differing Content-Length values".into()));
            }
            found = Some(length);
        }
    }
    Ok(found)
}

/// True when Transfer-Encoding is exactly one `chunked` coding.
pub fn is_only_chunked(headers: &HeaderMap) -> bool {
    let codings: Vec<String> = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| value.to_str().unwrap_or("?").split(','))
        .map(|coding| coding.trim().to_ascii_lowercase())
        .filter(|coding| !coding.is_empty())
        .collect();
    codings == ["chunked"]
}

/// Whether the client wants the connection kept open after this exchange.
pub fn wants_keep_alive(version: Version, headers: &HeaderMap) -> bool {
    let tokens = connection_tokens(headers);
    if tokens.iter().any(|token| token == "close") {
        return false;
    }
    version == Version::HTTP_11 || tokens.iter().any(|token| token == "keep-alive")
}

/// The lower-cased tokens of every Connection header.
pub fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    list_items(headers, header::CONNECTION)
        .map(str::to_ascii_lowercase)
        .collect()
}

/// The items of a comma-separated list header (RFC 9110 section 5.6.1), over every
/// field of that name, trimmed, empty items dropped; a field that is not text is
/// skipped. Connection, Cache-Control, Vary and If-None-Match are all such lists, and
/// a sender may split one list over several fields or join several into one, so every
/// reader of a list header goes through here.
pub fn list_items(headers: &HeaderMap, name: HeaderName) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// A header map from (name, value) pairs, for tests.
#[cfg(test)]
pub fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

#[cfg(test)]
mod tests {
    use super::header_map as headers;
    use super::*;

    #[test]
    fn keep_alive_follows_version_and_connection_header() {
        assert!(wants_keep_alive(Version::HTTP_11, &HeaderMap::new()));
        assert!(!wants_keep_alive(Version::HTTP_10, &HeaderMap::new()));
        assert!(wants_keep_alive(
            Version::HTTP_10,
            &headers(&[("connection", "Keep-Alive")])
        ));
        assert!(!wants_keep_alive(
            Version::HTTP_11,
            &headers(&[("connection", "foo, close")])
        ));
    }
}
