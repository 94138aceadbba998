//! Cache directives read the way RFC 9111 section 5.2 and RFC 9213 define them: the
//! `Cache-Control` list and the targeted `CDN-Cache-Control` dictionary, parsed once into
//! one list of `(name, value)` pairs.
//!
//! OS concept: none new; this is parsing untrusted input into a form every later rule can
//! trust. Each cache rule asks this list, never the raw header text, so a directive means
//! the same thing everywhere: names compare without case (`No-Store` is `no-store`,
//! section 5.2), a value may be a token or a quoted string (`max-age="60"`), a comma inside
//! quotes does not split (`ext="a, max-age=9"` holds no `max-age`), and when a directive
//! appears twice the first one counts (section 4.2.1 allows "the first occurrence").
//!
//! `http-cache-semantics` splits on every comma and compares names with their case, so it
//! is never shown the raw fields: `policy` hands it the list written back out by
//! `Directives::to_header_value`, in lowercase and in a syntax it reads correctly.

use http::{HeaderMap, HeaderValue};
use sfv::{BareItem, Dictionary, ListEntry, Parser};

/// The largest delta-seconds value a cache must represent; larger ones (and overflows)
/// are read as this (RFC 9111 section 1.2.2).
pub const MAX_DELTA_SECONDS: u64 = 2_147_483_648;

/// The targeted field roundhouse honours as a gateway cache (RFC 9213 section 2).
pub const CDN_CACHE_CONTROL: &str = "cdn-cache-control";

/// One directive: its lowercase name, its value (unquoted), and whether its syntax was
/// broken (`max-age =60`, `max-age= 60`), so the rules can read it conservatively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub value: Option<String>,
    pub malformed: bool,
}

/// The directives of one field (or of the fields that stand in for it), first
/// occurrence of each name only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    list: Vec<Directive>,
}

impl Directives {
    /// The `Cache-Control` directives of a request or a response (every field line,
    /// RFC 9110 section 5.3: lines combine as one comma-separated list).
    pub fn cache_control(headers: &HeaderMap) -> Directives {
        let mut directives = Directives::default();
        for line in headers.get_all(http::header::CACHE_CONTROL) {
            for directive in parse_list(&String::from_utf8_lossy(line.as_bytes())) {
                directives.push(directive);
            }
        }
        directives
    }

    /// The directives of `CDN-Cache-Control` (RFC 9213), or `None` when the response has
    /// none or the field is not a valid Structured Field Dictionary (RFC 8941) with the
    /// value types the directives need. An invalid targeted field "MUST be ignored"
    /// (RFC 9213 section 2.1): the cache falls back to `Cache-Control`.
    pub fn targeted(headers: &HeaderMap) -> Option<Directives> {
        let lines: Vec<String> = headers
            .get_all(CDN_CACHE_CONTROL)
            .iter()
            .map(|line| String::from_utf8_lossy(line.as_bytes()).into_owned())
            .collect();
        if lines.is_empty() {
            return None;
        }
        let dictionary: Dictionary = Parser::new(&lines.join(", ")).parse().ok()?;
        let mut directives = Directives::default();
        for (name, entry) in &dictionary {
            directives.push(targeted_directive(name.as_str(), entry)?);
        }
        (!directives.list.is_empty()).then_some(directives)
    }

    fn push(&mut self, directive: Directive) {
        if !self.has(&directive.name) {
            self.list.push(directive);
        }
    }

    /// Whether the directive is present, with or without a value.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn get(&self, name: &str) -> Option<&Directive> {
        self.list.iter().find(|directive| directive.name == name)
    }

    /// The directive's value as delta-seconds (RFC 9111 section 1.2.2): `Some(n)` for a
    /// well-formed value, `Some(0)` for a present but broken one (for `max-age` and
    /// `s-maxage`, invalid freshness information makes the response stale, section 4.2.1),
    /// `None` when the directive is absent.
    pub fn seconds(&self, name: &str) -> Option<u64> {
        let directive = self.get(name)?;
        if directive.malformed {
            return Some(0);
        }
        Some(directive.value.as_deref().and_then(delta_seconds).unwrap_or(0))
    }

    /// Field names of a qualified `no-cache="a, b"` or `private="a"` (sections 5.2.2.4
    /// and 5.2.2.7), lowercased; empty for the unqualified form.
    pub fn field_names(&self, name: &str) -> Vec<String> {
        let Some(Directive {
            value: Some(value), ..
        }) = self.get(name)
        else {
            return Vec::new();
        };
        value
            .split(',')
            .map(|field| field.trim().to_ascii_lowercase())
            .filter(|field| !field.is_empty())
            .collect()
    }

    /// Whether `name` is present without field names (the form that applies to the
    /// whole response).
    pub fn unqualified(&self, name: &str) -> bool {
        self.has(name) && self.field_names(name).is_empty()
    }

    /// The directives written as one `Cache-Control` value, lowercase, values as tokens
    /// or quoted strings. `keep` chooses which go in.
    pub fn to_header_value(&self, keep: impl Fn(&Directive) -> bool) -> Option<HeaderValue> {
        let mut text = String::new();
        for directive in self.list.iter().filter(|directive| keep(directive)) {
            if !text.is_empty() {
                text.push_str(", ");
            }
            text.push_str(&directive.name);
            if let Some(value) = &directive.value {
                text.push('=');
                if !value.is_empty() && value.bytes().all(is_tchar) {
                    text.push_str(value);
                } else {
                    text.push('"');
                    text.push_str(&value.replace('\\', "\\\\").replace('"', "\\\""));
                    text.push('"');
                }
            }
        }
        HeaderValue::from_str(&text).ok().filter(|_| !text.is_empty())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Directive> {
        self.list.iter()
    }
}

/// Reads `1*DIGIT`, saturating at `MAX_DELTA_SECONDS`; anything else is not delta-seconds.
pub fn delta_seconds(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    // Leading zeros are allowed (`003600` is 3600); very long numbers saturate.
    let digits = text.trim_start_matches('0');
    if digits.len() > 10 {
        return Some(MAX_DELTA_SECONDS);
    }
    Some(digits.parse::<u64>().unwrap_or(0).min(MAX_DELTA_SECONDS))
}

/// RFC 9110 section 5.6.2: the characters of a token.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Parses `#cache-directive`, `cache-directive = token [ "=" ( token / quoted-string ) ]`
/// (RFC 9111 section 5.2, RFC 9110 sections 5.6.1 and 5.6.4). A member that does not fit
/// the grammar is kept, marked `malformed`, under the token it starts with.
fn parse_list(text: &str) -> Vec<Directive> {
    let bytes = text.as_bytes();
    let mut directives = Vec::new();
    let mut at = 0;
    let skip_ows = |at: &mut usize| {
        while *at < bytes.len() && (bytes[*at] == b' ' || bytes[*at] == b'\t') {
            *at += 1;
        }
    };
    while at < bytes.len() {
        skip_ows(&mut at);
        if at < bytes.len() && bytes[at] == b',' {
            at += 1;
            continue;
        }
        let start = at;
        while at < bytes.len() && is_tchar(bytes[at]) {
            at += 1;
        }
        let name = text[start..at].to_ascii_lowercase();
        let mut value = None;
        let mut malformed = name.is_empty();
        if at < bytes.len() && bytes[at] == b'=' {
            at += 1;
            if at < bytes.len() && bytes[at] == b'"' {
                let (unquoted, end) = quoted_string(bytes, at);
                malformed |= end.is_none();
                value = Some(unquoted);
                at = end.unwrap_or(bytes.len());
            } else {
                let start = at;
                while at < bytes.len() && is_tchar(bytes[at]) {
                    at += 1;
                }
                malformed |= at == start;
                value = Some(text[start..at].to_string());
            }
        }
        skip_ows(&mut at);
        if at < bytes.len() && bytes[at] != b',' {
            // Something else before the next comma (`max-age =60`): skip the rest of
            // this member, minding quotes so a quoted comma does not end it.
            malformed = true;
            let mut quoted = false;
            while at < bytes.len() && (quoted || bytes[at] != b',') {
                match bytes[at] {
                    b'"' => quoted = !quoted,
                    b'\\' if quoted => at += 1,
                    _ => {}
                }
                at += 1;
            }
        }
        if !name.is_empty() {
            directives.push(Directive {
                name,
                value,
                malformed,
            });
        }
    }
    directives
}

/// The text of the quoted string starting at `bytes[start] == '"'`, and the index after
/// its closing quote (`None` when it never closes).
fn quoted_string(bytes: &[u8], start: usize) -> (String, Option<usize>) {
    let mut text = Vec::new();
    let mut at = start + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => return (String::from_utf8_lossy(&text).into_owned(), Some(at + 1)),
            b'\\' if at + 1 < bytes.len() => {
                text.push(bytes[at + 1]);
                at += 2;
            }
            byte => {
                text.push(byte);
                at += 1;
            }
        }
    }
    (String::from_utf8_lossy(&text).into_owned(), None)
}

/// Directives whose value RFC 9213 section 2.1 reads as an sf-integer.
const INTEGER_DIRECTIVES: [&str; 4] = ["max-age", "s-maxage", "stale-while-revalidate", "stale-if-error"];

/// One member of the targeted dictionary as a directive, or `None` when its value has the
/// wrong type (then the whole field is ignored, as the targeted-field tests expect).
fn targeted_directive(name: &str, entry: &ListEntry) -> Option<Directive> {
    let value = match entry {
        ListEntry::Item(item) if INTEGER_DIRECTIVES.contains(&name) => {
            let seconds = i64::from(item.bare_item.as_integer()?);
            Some(u64::try_from(seconds).ok()?.min(MAX_DELTA_SECONDS).to_string())
        }
        _ if INTEGER_DIRECTIVES.contains(&name) => return None,
        // `no-cache=("a" "b")`, `private=("a")`: the qualified forms, as lists of names.
        ListEntry::InnerList(list) => {
            let names: Vec<String> = list
                .items
                .iter()
                .filter_map(|item| match &item.bare_item {
                    BareItem::String(text) => Some(text.as_str().to_string()),
                    BareItem::Token(token) => Some(token.as_str().to_string()),
                    _ => None,
                })
                .collect();
            Some(names.join(", "))
        }
        // A boolean true is the bare directive; other values carry nothing we use.
        ListEntry::Item(_) => None,
    };
    Some(Directive {
        name: name.to_string(),
        value,
        malformed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::fields::header_map as headers;

    fn cc(value: &str) -> Directives {
        Directives::cache_control(&headers(&[("cache-control", value)]))
    }

    #[test]
    fn names_are_case_insensitive_and_first_wins() {
        let parsed = cc("No-Store, MAX-AGE=10, max-age=99");
        assert!(parsed.has("no-store"));
        assert_eq!(parsed.seconds("max-age"), Some(10));
        let two_lines = Directives::cache_control(&headers(&[
            ("cache-control", "max-age=1"),
            ("cache-control", "Max-Age=1800"),
        ]));
        assert_eq!(two_lines.seconds("max-age"), Some(1));
    }

    #[test]
    fn quoted_strings_hold_commas_and_values() {
        let parsed = cc("extension=\"max-age=3600, x\", max-age=1");
        assert_eq!(parsed.seconds("max-age"), Some(1));
        assert_eq!(cc("max-age=\"3600\"").seconds("max-age"), Some(3600));
        let qualified = cc("no-cache=\"Set-Cookie, X-A\", private=x-b");
        assert_eq!(qualified.field_names("no-cache"), vec!["set-cookie", "x-a"]);
        assert_eq!(qualified.field_names("private"), vec!["x-b"]);
        assert!(!qualified.unqualified("no-cache"));
        assert!(cc("no-cache").unqualified("no-cache"));
    }

    #[test]
    fn odd_max_age_syntax_has_one_reading_each() {
        for (value, seconds) in [
            ("max-age=003600", 3600),
            ("max-age=99999999999", MAX_DELTA_SECONDS),
            ("max-age='3600'", 0),
            ("max-age=3600a", 0),
            ("max-age=a3600", 0),
            ("max-age=-100", 0),
            ("max-age=3600.0", 0),
            ("max-age =100", 0),
            ("max-age= 100", 0),
        ] {
            assert_eq!(cc(value).seconds("max-age"), Some(seconds), "{value}");
        }
        assert_eq!(cc("public").seconds("max-age"), None);
        let spaced = cc("max-age =100, public");
        assert!(spaced.get("max-age").unwrap().malformed && spaced.has("public"));
    }

    #[test]
    fn written_back_in_a_syntax_the_crate_reads() {
        let parsed = cc("Max-Age=\"60\", Ext=\"a, b\", No-Transform");
        assert_eq!(
            parsed.to_header_value(|_| true).unwrap(),
            "max-age=60, ext=\"a, b\", no-transform"
        );
    }

    #[test]
    fn targeted_field_is_a_dictionary_or_ignored() {
        let parse = |value: &str| Directives::targeted(&headers(&[("cdn-cache-control", value)]));
        let parsed = parse("max-age=3600, no-cache=(\"a\" \"b\")").unwrap();
        assert_eq!(parsed.seconds("max-age"), Some(3600));
        assert_eq!(parsed.field_names("no-cache"), vec!["a", "b"]);
        assert!(parse("private").unwrap().unqualified("private"));
        assert!(parse("max-age=10000, &&&&&").is_none(), "not a dictionary");
        assert!(
            parse("max-age=\"10000\"").is_none(),
            "a string where an integer belongs"
        );
        assert!(parse("max-age =100").is_none());
        assert!(parse("MaX-aGe=3600").is_none(), "dictionary keys are lowercase");
        assert!(Directives::targeted(&HeaderMap::new()).is_none());
    }
}
