//! One access-log record, and its line in nginx's combined format plus roundhouse's
//! fields:
//!
//! ```text
//! $remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_referer"
//! "$http_user_agent" upstream=$addr worker=$id rt=$request_time urt=$upstream_time
//! cache=$status id=$request_id
//! ```
//!
//! The connection thread only copies a few values into a `Record` (cheap); all
//! formatting happens on the logger thread, off the request's path.
//!
//! OS concept: two clocks. `Record::time` is the wall clock (`SystemTime`), right for
//! the date on the line but free to jump when the clock is set; `request_time` is
//! measured from `Pending`'s `Instant`, the monotonic clock, so a duration is never
//! negative or inflated by a clock change.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderValue, Method, StatusCode, header};

use crate::http1::writer::body_allowed;
use crate::http1::{Request, Response, ResponseMeta};

/// What one finished request leaves in the access log.
#[derive(Debug, Clone)]
pub struct Record {
    pub remote: IpAddr,
    /// When the response was ready (nginx logs the end of the request too).
    pub time: SystemTime,
    /// `GET /path HTTP/1.1`, or `None` for a request that could not be read.
    pub request_line: Option<String>,
    pub status: StatusCode,
    pub body_bytes: usize,
    pub referer: Option<HeaderValue>,
    pub user_agent: Option<HeaderValue>,
    /// Upstream, worker, upstream time and cache verdict.
    pub meta: ResponseMeta,
    /// From the complete request head to the response being ready.
    pub request_time: Duration,
    /// The request's `X-Request-Id` (`None` for a request that could not be read).
    pub request_id: Option<HeaderValue>,
}

/// What must be kept of a request before it is handed on (the request itself moves to
/// a worker), to write its record once the response is known.
pub struct Pending {
    remote: IpAddr,
    request_line: String,
    method: Method,
    referer: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
    received_at: Instant,
    request_id: Option<HeaderValue>,
}

impl Pending {
    pub fn of(request: &Request) -> Pending {
        Pending {
            remote: request.client,
            request_line: format!("{} {} {:?}", request.method, request.target, request.version),
            method: request.method.clone(),
            referer: request.headers.get(header::REFERER).cloned(),
            user_agent: request.headers.get(header::USER_AGENT).cloned(),
            received_at: request.received_at,
            request_id: request.headers.get("x-request-id").cloned(),
        }
    }

    pub fn finish(self, response: &Response) -> Record {
        let body_bytes = if body_allowed(&self.method, response.status) {
            response.body.len()
        } else {
            0
        };
        Record {
            remote: self.remote,
            time: SystemTime::now(),
            request_line: Some(self.request_line),
            status: response.status,
            body_bytes,
            referer: self.referer,
            user_agent: self.user_agent,
            meta: response.meta.clone(),
            request_time: self.received_at.elapsed(),
            request_id: self.request_id,
        }
    }
}

impl Record {
    /// A request the front answered itself because it could not be read (400, 413...):
    /// there is no request line to log, and its time is unknown, so logged as 0.
    pub fn rejected(peer: SocketAddr, status: StatusCode) -> Record {
        Record {
            remote: peer.ip(),
            time: SystemTime::now(),
            request_line: None,
            status,
            body_bytes: 0,
            referer: None,
            user_agent: None,
            meta: ResponseMeta::default(),
            request_time: Duration::ZERO,
            request_id: None,
        }
    }

    /// Appends the record's line (with its newline) to `out`; `time_local` is the
    /// record's time already formatted, `10/Oct/2000:13:55:36 -0700`.
    pub fn write_line(&self, out: &mut Vec<u8>, time_local: &str) {
        use std::io::Write;
        let _ = write!(out, "{} - - [{time_local}] \"", self.remote);
        match &self.request_line {
            Some(line) => escape_into(out, line.as_bytes()),
            None => out.push(b'-'),
        }
        let _ = write!(out, "\" {} {} \"", self.status.as_u16(), self.body_bytes);
        quoted_header(out, self.referer.as_ref());
        out.extend_from_slice(b"\" \"");
        quoted_header(out, self.user_agent.as_ref());
        out.extend_from_slice(b"\" upstream=");
        match &self.meta.upstream {
            Some(upstream) => escape_into(out, upstream.as_bytes()),
            None => out.push(b'-'),
        }
        match self.meta.worker {
            Some(worker) => {
                let _ = write!(out, " worker={worker}");
            }
            None => out.extend_from_slice(b" worker=-"),
        }
        let _ = write!(out, " rt={:.3}", self.request_time.as_secs_f64());
        match self.meta.upstream_time {
            Some(time) => {
                let _ = write!(out, " urt={:.3}", time.as_secs_f64());
            }
            None => out.extend_from_slice(b" urt=-"),
        }
        let _ = write!(out, " cache={}", self.meta.cache.unwrap_or("-"));
        out.extend_from_slice(b" id=");
        match &self.request_id {
            // A client's own ID is a visible-ASCII token, but written escaped anyway.
            Some(id) => escape_into(out, id.as_bytes()),
            None => out.push(b'-'),
        }
        out.push(b'\n');
    }
}

/// A header's value, or `-` when absent, as nginx writes an empty variable.
fn quoted_header(out: &mut Vec<u8>, value: Option<&HeaderValue>) {
    match value {
        Some(value) if !value.is_empty() => escape_into(out, value.as_bytes()),
        _ => out.push(b'-'),
    }
}

/// Copies bytes, writing `"`, `\`, control and non-ASCII bytes as `\xHH` like nginx, so
/// a client cannot forge a second log line or break the quoting.
fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in bytes {
        if byte == b'"' || byte == b'\\' || !(0x20..0x7f).contains(&byte) {
            out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 15)],
            ]);
        } else {
            out.push(byte);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_a_combined_line_with_our_fields() {
        let record = Record {
            remote: "10.0.0.7".parse().unwrap(),
            time: SystemTime::now(),
            request_line: Some("GET /a\"b HTTP/1.1".into()),
            status: StatusCode::OK,
            body_bytes: 42,
            referer: None,
            user_agent: Some(HeaderValue::from_static("curl/8.0")),
            meta: ResponseMeta {
                upstream: Some("127.0.0.1:9001".into()),
                worker: Some(3),
                upstream_time: Some(Duration::from_millis(12)),
                cache: Some("MISS"),
            },
            request_time: Duration::from_millis(15),
            request_id: Some(HeaderValue::from_static("4bf92f3577b34da6a3ce929d0e0e4736")),
        };
        let mut out = Vec::new();
        record.write_line(&mut out, "10/Oct/2000:13:55:36 -0700");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "10.0.0.7 - - [10/Oct/2000:13:55:36 -0700] \"GET /a\\x22b HTTP/1.1\" 200 42 \"-\" \"curl/8.0\" \
             upstream=127.0.0.1:9001 worker=3 rt=0.015 urt=0.012 cache=MISS \
             id=4bf92f3577b34da6a3ce929d0e0e4736\n"
        );
    }

    #[test]
    fn a_rejected_request_has_dashes() {
        let mut out = Vec::new();
        Record::rejected("127.0.0.1:5".parse().unwrap(), StatusCode::BAD_REQUEST).write_line(&mut out, "T");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "127.0.0.1 - - [T] \"-\" 400 0 \"-\" \"-\" upstream=- worker=- rt=0.000 urt=- cache=- id=-\n"
        );
    }
}
