//! The header fields freshness is computed from, read the way RFC 9111 says to read
//! them when they are odd: `Age` (section 5.1), and the HTTP-dates of `Date`, `Expires`
//! and `Last-Modified` (RFC 9110 section 5.6.7).
//!
//! OS concept: none new; input validation. A backend's header is untrusted text, and each
//! odd form has one defined reading here rather than whatever a parser happens to do:
//! - `Age: 1, 2` (or two `Age` lines): the first member counts, the rest are discarded;
//!   `Age: 10a`, `1.5`, `-3`: not a non-negative integer, so the field is ignored.
//! - an HTTP-date is accepted in its three forms (IMF-fixdate, the obsolete RFC 850 and
//!   asctime forms), after trimming the whitespace around the field value; anything else
//!   (extra spaces inside, a zone other than GMT, a one-digit hour) is not a date. An
//!   `Expires` that is not a date means "already expired" (RFC 9111 section 5.3).

use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue, header};

use super::directives::delta_seconds;

/// The value of `Age` in seconds, or `None` when it is absent or invalid.
pub fn age(headers: &HeaderMap) -> Option<u64> {
    let first_line = headers.get(header::AGE)?.to_str().ok()?;
    let first_member = first_line.split(',').next()?.trim();
    delta_seconds(first_member)
}

/// An HTTP-date field, or `None` when it is absent, not a date, or given twice with
/// different values (a singleton field with two values is invalid, section 5.6.7).
pub fn date(headers: &HeaderMap, name: HeaderName) -> Option<SystemTime> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.any(|other| other != first) {
        return None;
    }
    parse_http_date(first)
}

/// One HTTP-date value in any of its three forms.
pub fn parse_http_date(value: &HeaderValue) -> Option<SystemTime> {
    let text = value.to_str().ok()?.trim_matches([' ', '\t']);
    httpdate::parse_http_date(text).ok()
}

/// A date in the one form every reader accepts (IMF-fixdate).
pub fn format_http_date(time: SystemTime) -> HeaderValue {
    HeaderValue::from_str(&httpdate::fmt_http_date(time)).unwrap_or(HeaderValue::from_static(EPOCH))
}

/// What an invalid `Expires` stands for: a time in the past.
pub const EPOCH: &str = "Thu, 01 Jan 1970 00:00:00 GMT";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::fields::header_map as headers;
    use std::time::Duration;

    #[test]
    fn age_takes_the_first_member_or_nothing() {
        let age_of = |lines: &[&str]| {
            let pairs: Vec<(&str, &str)> = lines.iter().map(|line| ("age", *line)).collect();
            age(&headers(&pairs))
        };
        assert_eq!(age_of(&["15"]), Some(15));
        assert_eq!(age_of(&["1, 2"]), Some(1));
        assert_eq!(age_of(&["7200,0"]), Some(7200));
        assert_eq!(age_of(&["0", "7200"]), Some(0));
        assert_eq!(age_of(&["10a"]), None);
        assert_eq!(age_of(&["1.5"]), None);
        assert_eq!(age_of(&["-7200"]), None);
        assert_eq!(age_of(&["abc"]), None);
        assert_eq!(age_of(&["99999999999999"]), Some(2_147_483_648));
        assert_eq!(age_of(&[]), None);
    }

    #[test]
    fn http_dates_in_three_forms_and_nothing_else() {
        let expected = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "  Sun, 06 Nov 1994 08:49:37 GMT ",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            let value = HeaderValue::from_str(form).unwrap();
            assert_eq!(parse_http_date(&value), Some(expected), "{form:?}");
        }
        for invalid in [
            "Thu, 18 Aug 2050 02:01:18 UTC",
            "Thu, 18 Aug 2050 02:01:18 AEST",
            "Thu 18 Aug 2050 02:01:18 GMT",
            "Thu, 18  Aug  2050 02:01:18 GMT",
            "Thu, 18-Aug-2050 02:01:18 GMT",
            "Thu, 18 Aug 2050 02.01.18 GMT",
            "Thu, 18 Aug 2050 2:01:18 GMT",
            "0",
        ] {
            let value = HeaderValue::from_str(invalid).unwrap();
            assert_eq!(parse_http_date(&value), None, "{invalid:?}");
        }
        let twice = headers(&[
            ("expires", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("expires", "Sun, 06 Nov 1994 08:49:38 GMT"),
        ]);
        assert_eq!(date(&twice, header::EXPIRES), None);
    }
}
