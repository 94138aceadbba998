//! Percent-decoding of URL paths and query strings (RFC 3986 section 2.1), and query
//! parameters in the HTML form encoding, where `+` stands for a space.
//!
//! Written out rather than taken from a crate: it is twenty lines, and seeing that
//! `%2e%2e` *is* `..` after decoding is half the lesson of path traversal.
//!
//! OS concept: none of its own; it serves the file system lesson of `static_site.rs`.
//! `decode` returns bytes, a NUL or a slash included, so the caller judges the decoded
//! path, where `%2e%2e` has become `..`.

/// Decodes `%XX` escapes. `None` when a `%` is not followed by two hex digits.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let high = hex_value(*bytes.get(at + 1)?)?;
            let low = hex_value(*bytes.get(at + 2)?)?;
            decoded.push(high * 16 + low);
            at += 3;
        } else {
            decoded.push(bytes[at]);
            at += 1;
        }
    }
    Some(decoded)
}

fn hex_value(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|value| value as u8)
}

/// The value of parameter `name` in a query string `a=1&b=2`, form-decoded (`+` is a
/// space) into text. `None` when absent; `Some(Err(..))` when present but not valid
/// percent-encoded UTF-8.
pub fn query_param(query: Option<&str>, name: &str) -> Option<Result<String, String>> {
    let query = query?;
    let raw = query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })?;
    let spaced = raw.replace('+', " ");
    Some(
        decode(&spaced)
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| format!("parameter {name:?} is not valid percent-encoded UTF-8")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes() {
        assert_eq!(decode("%2e%2E/a%20b").unwrap(), b"../a b");
        assert_eq!(decode("plain").unwrap(), b"plain");
        assert!(decode("bad%2").is_none());
        assert!(decode("bad%zz").is_none());
    }

    #[test]
    fn finds_query_parameters() {
        let query = Some("amount=15&expr=3%2B4+*+2&empty=");
        assert_eq!(query_param(query, "expr").unwrap().unwrap(), "3+4 * 2");
        assert_eq!(query_param(query, "amount").unwrap().unwrap(), "15");
        assert_eq!(query_param(query, "empty").unwrap().unwrap(), "");
        assert!(query_param(query, "missing").is_none());
        assert!(query_param(None, "expr").is_none());
        assert!(query_param(Some("expr=%ff"), "expr").unwrap().is_err());
    }
}
