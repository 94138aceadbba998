//! The JSON that etcd's v3 gateway speaks: the gRPC messages of `etcdserverpb`, turned
//! into JSON by grpc-gateway.
//!
//! Three things differ from JSON written by hand, and each is handled here once:
//! - keys and values are bytes, so they travel as base64 strings;
//! - 64-bit integers (revisions, lease IDs, TTLs) travel as strings, because a
//!   JavaScript number cannot hold every 64-bit value; fields at their default value
//!   (0, false, empty) are left out altogether;
//! - each message of a streamed answer (a watch, a lease keep-alive) is wrapped:
//!   `{"result": {...}}`, or `{"error": {...}}` when the stream failed.
//!
//! OS concept: none of its own; it serves `etcd.rs` (the client) and `watcher.rs`, so
//! that everything past this file deals in plain Rust values.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Base64 of `bytes`, as the gateway wants keys and values.
pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The end of the key range that holds every key starting with `prefix`: the prefix
/// with its last byte incremented, dropping trailing 0xff bytes first (what etcd's own
/// client does in `GetPrefixRangeEnd`). A prefix of only 0xff bytes has no such key;
/// etcd reads `"\0"` as "to the end of the keyspace".
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// An `int64` as the gateway writes it: a string (`"42"`), or a number from gateways
/// that do not quote; absent means 0.
fn int64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(text) => text.parse().map_err(de::Error::custom),
        Value::Number(number) => number
            .as_i64()
            .ok_or_else(|| de::Error::custom(format!("{number} is not a 64-bit integer"))),
        Value::Null => Ok(0),
        other => Err(de::Error::custom(format!("{other} is not an integer"))),
    }
}

/// Bytes as the gateway writes them: base64; absent means empty.
fn bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?.unwrap_or_default();
    STANDARD.decode(text.as_bytes()).map_err(de::Error::custom)
}

/// `ResponseHeader`: the store's revision when the answer was made.
#[derive(Debug, Default, Deserialize)]
pub struct Header {
    #[serde(default, deserialize_with = "int64")]
    pub revision: i64,
}

/// `mvccpb.KeyValue`.
#[derive(Debug, Default, Deserialize)]
pub struct KeyValue {
    #[serde(default, deserialize_with = "bytes")]
    pub key: Vec<u8>,
    #[serde(default, deserialize_with = "bytes")]
    pub value: Vec<u8>,
    /// The revision of the last change to this key.
    #[serde(default, deserialize_with = "int64")]
    pub mod_revision: i64,
    /// The lease the key is attached to, 0 for none.
    #[serde(default, deserialize_with = "int64")]
    pub lease: i64,
}

/// `RangeResponse` (POST /v3/kv/range).
#[derive(Debug, Deserialize)]
pub struct RangeResponse {
    #[serde(default)]
    pub header: Header,
    #[serde(default)]
    pub kvs: Vec<KeyValue>,
}

/// `PutResponse` (POST /v3/kv/put).
#[derive(Debug, Deserialize)]
pub struct PutResponse {
    #[serde(default)]
    pub header: Header,
}

/// `LeaseGrantResponse` (POST /v3/lease/grant): the lease and the TTL etcd granted,
/// which may be longer than asked (etcd has a minimum TTL).
#[derive(Debug, Deserialize)]
pub struct LeaseGrantResponse {
    #[serde(rename = "ID", default, deserialize_with = "int64")]
    pub id: i64,
    #[serde(rename = "TTL", default, deserialize_with = "int64")]
    pub ttl: i64,
    /// Set when the grant failed inside etcd.
    #[serde(default)]
    pub error: String,
}

/// `LeaseKeepAliveResponse`: a TTL of 0 (absent) means the lease no longer exists.
#[derive(Debug, Deserialize)]
pub struct LeaseKeepAliveResponse {
    #[serde(rename = "TTL", default, deserialize_with = "int64")]
    pub ttl: i64,
}

/// `mvccpb.Event`: a PUT (the type is left out, being the default) or a DELETE.
#[derive(Debug, Deserialize)]
pub struct Event {
    #[serde(rename = "type", default)]
    pub kind: EventKind,
    #[serde(default)]
    pub kv: KeyValue,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum EventKind {
    #[default]
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "DELETE")]
    Delete,
}

/// `WatchResponse`: the watch was created, or events happened, or the watch ended.
#[derive(Debug, Deserialize)]
pub struct WatchResponse {
    #[serde(default)]
    pub header: Header,
    #[serde(default)]
    pub created: bool,
    #[serde(default)]
    pub canceled: bool,
    /// Set on a cancelled watch whose start revision was compacted away: the oldest
    /// revision still kept.
    #[serde(default, deserialize_with = "int64")]
    pub compact_revision: i64,
    #[serde(default)]
    pub cancel_reason: String,
    #[serde(default)]
    pub events: Vec<Event>,
}

/// One message of a streamed answer.
#[derive(Debug, Deserialize)]
pub struct Streamed<T> {
    pub result: Option<T>,
    /// grpc-gateway's error object (code, message), kept as JSON to be shown whole.
    pub error: Option<Value>,
}

/// The body of a unary error answer: `{"error": "...", "message": "...", "code": 5}`,
/// where `code` is the gRPC status code (5 not found, 11 out of range, 14 unavailable).
#[derive(Debug, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub code: i64,
}

/// The body of POST /v3/kv/range for every key under `prefix`.
#[derive(Debug, Serialize)]
pub struct RangeRequest {
    pub key: String,
    pub range_end: String,
}

impl RangeRequest {
    pub fn prefix(prefix: &[u8]) -> Self {
        RangeRequest {
            key: encode(prefix),
            range_end: encode(&prefix_end(prefix)),
        }
    }
}

/// The body of POST /v3/watch: one `create_request` for every key under `prefix`,
/// from `start_revision` on (0: from now).
pub fn watch_request(prefix: &[u8], start_revision: i64) -> Value {
    serde_json::json!({
        "create_request": {
            "key": encode(prefix),
            "range_end": encode(&prefix_end(prefix)),
            "start_revision": start_revision.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_end_is_the_next_key_after_every_key_with_the_prefix() {
        assert_eq!(prefix_end(b"/web/"), b"/web0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
        assert_eq!(prefix_end(b""), b"\0");
    }

    #[test]
    fn reads_the_gateway_s_strings_base64_and_missing_defaults() {
        let range: RangeResponse = serde_json::from_str(
            r#"{"header":{"cluster_id":"1","revision":"12"},"kvs":[{"key":"L3dlYi9h","create_revision":"2","mod_revision":"11","version":"1","value":"aHR0cDovL2E6MQ=="}],"count":"1"}"#,
        )
        .unwrap();
        assert_eq!(range.header.revision, 12);
        assert_eq!(range.kvs[0].key, b"/web/a");
        assert_eq!(range.kvs[0].value, b"http://a:1");
        assert_eq!(range.kvs[0].mod_revision, 11);
        assert_eq!(range.kvs[0].lease, 0, "absent is 0");
        let empty: RangeResponse = serde_json::from_str(r#"{"header":{"revision":"3"}}"#).unwrap();
        assert!(empty.kvs.is_empty());
        let watch: Streamed<WatchResponse> = serde_json::from_str(
            r#"{"result":{"header":{"revision":"4"},"events":[{"kv":{"key":"YQ==","mod_revision":"3","value":"Yg=="}},{"type":"DELETE","kv":{"key":"Yw==","mod_revision":"4"}}]}}"#,
        )
        .unwrap();
        let events = watch.result.unwrap().events;
        assert_eq!(events[0].kind, EventKind::Put);
        assert_eq!(events[1].kind, EventKind::Delete);
        assert_eq!(events[1].kv.key, b"c");
        let compacted: Streamed<WatchResponse> = serde_json::from_str(
            r#"{"result":{"header":{"raft_term":"2"},"canceled":true,"compact_revision":"4"}}"#,
        )
        .unwrap();
        let compacted = compacted.result.unwrap();
        assert!(compacted.canceled);
        assert_eq!(compacted.compact_revision, 4);
        let numbers: LeaseGrantResponse = serde_json::from_str(r#"{"ID":7,"TTL":5}"#).unwrap();
        assert_eq!((numbers.id, numbers.ttl), (7, 5), "unquoted numbers too");
        let gone: Streamed<LeaseKeepAliveResponse> =
            serde_json::from_str(r#"{"result":{"header":{},"ID":"12345"}}"#).unwrap();
        assert_eq!(gone.result.unwrap().ttl, 0, "a lost lease has no TTL");
        assert!(serde_json::from_str::<KeyValue>(r#"{"key":"not base64!"}"#).is_err());
    }

    #[test]
    fn requests_carry_base64_and_string_revisions() {
        let range = serde_json::to_value(RangeRequest::prefix(b"/web/")).unwrap();
        assert_eq!(range["key"], "L3dlYi8=");
        assert_eq!(range["range_end"], encode(b"/web0"));
        let watch = watch_request(b"/web/", 43);
        assert_eq!(watch["create_request"]["start_revision"], "43");
    }
}
