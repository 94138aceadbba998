//! A small etcd v3 client over HTTP/1.1: the JSON gateway every etcd member serves on
//! its client port, spoken with `ureq`. No gRPC and no async runtime: each call is one
//! blocking POST, and a watch is one long POST whose answer never ends, read a line at
//! a time (one JSON message per line).
//!
//! OS concept: failing over between replicas. Every member of an etcd cluster answers
//! reads and writes (a follower forwards writes to the leader), so the client keeps
//! one member in use and, when it cannot be reached, tries the next one; the answer is
//! the same from any member of the majority. Each request asks for a member that has a
//! leader (the `hasleader` metadata etcd's own client sends), so a member cut off from
//! the others says so at once instead of answering from a stale copy or hanging.

use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use super::wire::{self, ErrorBody, Streamed, WatchResponse};

/// The longest wait for a TCP connection to a member (they are on the local network).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a call may take by default. A member without quorum can hold a
/// linearizable read until its own request timeout (about 7 s), and a member whose
/// host was cut off never answers at all; giving up sooner moves on to a member that
/// can answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest single watch message accepted (one message holds the events of one
/// revision, so a huge transaction is the only way to come near it).
const MAX_MESSAGE: u64 = 16 << 20;
/// gRPC metadata travels as `Grpc-Metadata-*` headers through the gateway; this is
/// `rpctypes.MetadataRequireLeaderKey`, which makes a leaderless member refuse.
const REQUIRE_LEADER: (&str, &str) = ("Grpc-Metadata-Hasleader", "true");

/// gRPC status codes that mean "try another member".
const UNAVAILABLE: i64 = 14;
const DEADLINE_EXCEEDED: i64 = 4;

/// Why a call to etcd failed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum EtcdError {
    /// No answer from the member: refused, timed out, reset, or it has no leader.
    #[error("etcd at {endpoint} is unavailable: {reason}")]
    Unavailable { endpoint: String, reason: String },
    /// The member answered with an error about the request itself (gRPC code `code`).
    #[error("etcd at {endpoint} refused the request: {message} (gRPC code {code})")]
    Refused {
        endpoint: String,
        code: i64,
        message: String,
    },
    /// The answer is not the v3 JSON API (another program on that port?).
    #[error("etcd at {endpoint} sent an answer that is not etcd's v3 JSON API: {reason}")]
    Protocol { endpoint: String, reason: String },
}

impl EtcdError {
    /// Whether another member might do better.
    pub fn fails_over(&self) -> bool {
        !matches!(self, EtcdError::Refused { .. })
    }
}

/// A client for one etcd cluster; used by one thread at a time (each watcher and each
/// lease keeper has its own), so failing over needs no coordination.
pub struct EtcdClient {
    endpoints: Vec<String>,
    /// The index of the member in use; moved on when that member fails.
    current: AtomicUsize,
    /// For unary calls: every phase bounded.
    agent: ureq::Agent,
    /// For watches: the answer is endless, so only a quiet spell ends a read.
    watch_agent: ureq::Agent,
}

/// The open stream of one watch: messages as they come.
pub struct WatchStream {
    endpoint: String,
    reader: BufReader<Box<dyn Read + Send>>,
}

/// What reading a watch stream gave.
#[derive(Debug)]
pub enum WatchRead {
    Message(WatchResponse),
    /// Nothing arrived for the idle limit the stream was opened with.
    Quiet,
}

impl EtcdClient {
    /// A client for the members at `endpoints` (`host:port`) whose calls give up on a
    /// member after `answer` (then try the next); a watch read returns
    /// `WatchRead::Quiet` after `watch_idle` without a message.
    pub fn new(endpoints: &[String], answer: Duration, watch_idle: Duration) -> Self {
        let base = || {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .proxy(None)
                .timeout_connect(Some(CONNECT_TIMEOUT.min(answer)))
                .timeout_send_request(Some(answer))
                .timeout_send_body(Some(answer))
                .timeout_recv_response(Some(answer))
        };
        EtcdClient {
            endpoints: endpoints.to_vec(),
            current: AtomicUsize::new(0),
            agent: base().timeout_recv_body(Some(answer)).build().new_agent(),
            watch_agent: base().timeout_per_read(Some(watch_idle)).build().new_agent(),
        }
    }

    /// The member in use now.
    pub fn endpoint(&self) -> &str {
        &self.endpoints[self.current.load(Ordering::Relaxed) % self.endpoints.len()]
    }

    /// Moves on to the next member (after the one in use failed).
    pub fn next_endpoint(&self) {
        self.current.fetch_add(1, Ordering::Relaxed);
    }

    /// POSTs `body` to `path` on the member in use, and on a failure that another
    /// member might not have, on each of the others in turn. The member that answered
    /// stays in use.
    fn call<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T, EtcdError> {
        let body = serde_json::to_vec(body).expect("request bodies serialise");
        let mut last = None;
        for _ in 0..self.endpoints.len() {
            let endpoint = self.endpoint().to_string();
            match self.call_one(&endpoint, path, &body) {
                Err(error) if error.fails_over() => {
                    last = Some(error);
                    self.next_endpoint();
                }
                answer => return answer,
            }
        }
        Err(last.expect("a client has at least one endpoint"))
    }

    /// POSTs `body` to `path` on `endpoint` with `agent`: the answer's head, or why
    /// there is none.
    fn post(
        agent: &ureq::Agent,
        endpoint: &str,
        path: &str,
        body: &[u8],
    ) -> Result<ureq::http::Response<ureq::Body>, EtcdError> {
        agent
            .post(format!("http://{endpoint}{path}"))
            .header("content-type", "application/json")
            .header(REQUIRE_LEADER.0, REQUIRE_LEADER.1)
            .send(body)
            .map_err(|error| EtcdError::Unavailable {
                endpoint: endpoint.to_string(),
                reason: error.to_string(),
            })
    }

    fn call_one<T: DeserializeOwned>(&self, endpoint: &str, path: &str, body: &[u8]) -> Result<T, EtcdError> {
        let unavailable = |reason: String| EtcdError::Unavailable {
            endpoint: endpoint.to_string(),
            reason,
        };
        let mut response = Self::post(&self.agent, endpoint, path, body)?;
        let status = response.status();
        let text = response
            .body_mut()
            .read_to_vec()
            .map_err(|error| unavailable(error.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&text).map_err(|error| EtcdError::Protocol {
                endpoint: endpoint.to_string(),
                reason: error.to_string(),
            });
        }
        Err(error_answer(endpoint, status.as_u16(), &text))
    }

    /// Every key under `prefix`, and the revision the store was at.
    pub fn range_prefix(&self, prefix: &[u8]) -> Result<wire::RangeResponse, EtcdError> {
        self.call("/v3/kv/range", &wire::RangeRequest::prefix(prefix))
    }

    /// Sets `key` to `value`, attached to `lease` (0: none); returns the new revision.
    pub fn put(&self, key: &[u8], value: &[u8], lease: i64) -> Result<i64, EtcdError> {
        let body = serde_json::json!({
            "key": wire::encode(key),
            "value": wire::encode(value),
            "lease": lease.to_string(),
        });
        let answer: wire::PutResponse = self.call("/v3/kv/put", &body)?;
        Ok(answer.header.revision)
    }

    /// Removes `key`.
    pub fn delete(&self, key: &[u8]) -> Result<(), EtcdError> {
        let body = serde_json::json!({ "key": wire::encode(key) });
        let _: serde_json::Value = self.call("/v3/kv/deleterange", &body)?;
        Ok(())
    }

    /// Removes every revision before `revision` from the store's history.
    pub fn compact(&self, revision: i64) -> Result<(), EtcdError> {
        let body = serde_json::json!({ "revision": revision.to_string(), "physical": true });
        let _: serde_json::Value = self.call("/v3/kv/compaction", &body)?;
        Ok(())
    }

    /// A new lease of `ttl` seconds: its ID and the TTL granted.
    pub fn grant(&self, ttl: i64) -> Result<(i64, i64), EtcdError> {
        let body = serde_json::json!({ "TTL": ttl.to_string() });
        let answer: wire::LeaseGrantResponse = self.call("/v3/lease/grant", &body)?;
        if !answer.error.is_empty() || answer.id == 0 {
            return Err(EtcdError::Refused {
                endpoint: self.endpoint().to_string(),
                code: 0,
                message: format!("lease not granted: {}", answer.error),
            });
        }
        Ok((answer.id, answer.ttl))
    }

    /// Renews lease `id`; returns its TTL, or `None` when the lease no longer exists
    /// (it expired, or was revoked).
    ///
    /// The gateway turns this bidirectional stream into one POST: our one request in,
    /// one `{"result": ...}` out, and the stream ends with our request body.
    pub fn keep_alive(&self, id: i64) -> Result<Option<i64>, EtcdError> {
        let body = serde_json::json!({ "ID": id.to_string() });
        let answer: Streamed<wire::LeaseKeepAliveResponse> = self.call("/v3/lease/keepalive", &body)?;
        match (answer.result, answer.error) {
            (Some(result), _) => Ok((result.ttl > 0).then_some(result.ttl)),
            (None, error) => Err(EtcdError::Unavailable {
                endpoint: self.endpoint().to_string(),
                reason: format!("keep-alive failed: {}", error.unwrap_or_default()),
            }),
        }
    }

    /// Ends lease `id` now; etcd deletes every key attached to it.
    pub fn revoke(&self, id: i64) -> Result<(), EtcdError> {
        let body = serde_json::json!({ "ID": id.to_string() });
        match self.call::<serde_json::Value>("/v3/lease/revoke", &body) {
            Ok(_) => Ok(()),
            // Already gone is what we wanted.
            Err(EtcdError::Refused { code: 5, .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Opens a watch of every key under `prefix` from `start_revision` on the member in
    /// use (no failing over here: the caller decides, since it also has to re-read
    /// after some failures).
    pub fn watch(&self, prefix: &[u8], start_revision: i64) -> Result<WatchStream, EtcdError> {
        let endpoint = self.endpoint().to_string();
        let body = serde_json::to_vec(&wire::watch_request(prefix, start_revision))
            .expect("request bodies serialise");
        let mut response = Self::post(&self.watch_agent, &endpoint, "/v3/watch", &body)?;
        let status = response.status();
        if !status.is_success() {
            let text = response.body_mut().read_to_vec().unwrap_or_default();
            return Err(error_answer(&endpoint, status.as_u16(), &text));
        }
        let reader: Box<dyn Read + Send> = Box::new(response.into_body().into_reader());
        Ok(WatchStream {
            endpoint,
            reader: BufReader::new(reader),
        })
    }
}

impl WatchStream {
    /// Whether another whole message has already arrived (is in the buffer), so the
    /// next `read_message` returns it without waiting.
    pub fn has_next_ready(&self) -> bool {
        self.reader.buffer().contains(&b'\n')
    }

    /// The next message, `Quiet` after the idle limit, or why the stream ended.
    pub fn read_message(&mut self) -> Result<WatchRead, EtcdError> {
        let unavailable = |reason: String| EtcdError::Unavailable {
            endpoint: self.endpoint.clone(),
            reason,
        };
        let mut line = String::new();
        let read = (&mut self.reader)
            .take(MAX_MESSAGE)
            .read_line(&mut line)
            .map_err(|error| match ureq::Error::from(error) {
                ureq::Error::Timeout(_) => None,
                other => Some(other.to_string()),
            });
        match read {
            Err(None) => return Ok(WatchRead::Quiet),
            Err(Some(reason)) => return Err(unavailable(format!("the watch broke: {reason}"))),
            Ok(0) => return Err(unavailable("the watch ended (the member closed it)".into())),
            Ok(_) if !line.ends_with('\n') && line.len() as u64 >= MAX_MESSAGE => {
                return Err(EtcdError::Protocol {
                    endpoint: self.endpoint.clone(),
                    reason: format!("a watch message over {MAX_MESSAGE} bytes"),
                });
            }
            Ok(_) => {}
        }
        let message: Streamed<WatchResponse> =
            serde_json::from_str(&line).map_err(|error| EtcdError::Protocol {
                endpoint: self.endpoint.clone(),
                reason: format!("{error} in {:?}", line.trim_end()),
            })?;
        match (message.result, message.error) {
            (Some(result), _) => Ok(WatchRead::Message(result)),
            (None, error) => Err(unavailable(format!(
                "the watch failed: {}",
                error.unwrap_or_default()
            ))),
        }
    }
}

/// The error in a non-2xx answer: the gateway's `{"message", "code"}` when it has one.
fn error_answer(endpoint: &str, status: u16, body: &[u8]) -> EtcdError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let Some(error) = parsed else {
        return EtcdError::Protocol {
            endpoint: endpoint.to_string(),
            reason: format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ),
        };
    };
    if matches!(error.code, UNAVAILABLE | DEADLINE_EXCEEDED) || status >= 500 {
        return EtcdError::Unavailable {
            endpoint: endpoint.to_string(),
            reason: error.message,
        };
    }
    EtcdError::Refused {
        endpoint: endpoint.to_string(),
        code: error.code,
        message: error.message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_errors_are_sorted_into_try_elsewhere_or_not() {
        let no_leader = error_answer(
            "a:1",
            503,
            br#"{"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14}"#,
        );
        assert!(no_leader.fails_over(), "{no_leader}");
        let not_found = error_answer(
            "a:1",
            404,
            br#"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#,
        );
        assert!(!not_found.fails_over());
        assert!(matches!(not_found, EtcdError::Refused { code: 5, .. }));
        let other_program = error_answer("a:1", 404, b"<html>not found</html>");
        assert!(matches!(other_program, EtcdError::Protocol { .. }));
        assert!(other_program.to_string().contains("not etcd"));
    }

    #[test]
    fn an_unreachable_member_is_skipped_and_every_failure_reported() {
        // Two ports that refuse connections: nothing listens after the listener goes.
        let refused = || {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let second = Duration::from_secs(1);
        let client = EtcdClient::new(&[refused(), refused()], second, second);
        let first = client.endpoint().to_string();
        let error = client.range_prefix(b"/x/").unwrap_err();
        assert!(matches!(error, EtcdError::Unavailable { .. }), "{error}");
        assert_eq!(client.endpoint(), first, "both tried, back at the first");
        assert!(client.watch(b"/x/", 1).is_err());
    }
}
