//! The configuration file's schema: what a `roundhouse.toml` may contain.
//!
//! Every key is optional (a missing one keeps the flag's default) and every table
//! refuses keys it does not know (`deny_unknown_fields`): a misspelt `wokers = 8` is an
//! error with its line number, never a silently ignored setting. Values are written as
//! on the command line (`"10s"`, `"10M"`, `"200..800"`), and parsed by the same
//! functions, so the file and the flags cannot disagree about what `"1.5s"` means.
//! Values are wrapped in `Spanned` so a problem found later can name its line.
//!
//! The same types serialise the effective configuration (`roundhouse check`), so what
//! `check` prints is itself a valid configuration file.
//!
//! OS concept: none of its own; this is the shape of the data a daemon reads at start
//! and again on SIGHUP (`reload.rs`), kept strict so that a reload never half-applies
//! a file it misread.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use toml::Spanned;

/// A whole configuration file.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `--listen`
    pub listen: Option<Spanned<String>>,
    /// `--workers`
    pub workers: Option<Spanned<i64>>,
    /// `--queue`
    pub queue: Option<Spanned<i64>>,
    /// `--strategy`: of the `default` pool, and of every pool that names none.
    pub strategy: Option<Spanned<String>>,
    /// `--backend`: the `default` pool's backends.
    pub backends: Option<Vec<Spanned<BackendEntry>>>,
    /// `--discovery`: where the `default` pool finds its backends instead (etcd).
    pub discovery: Option<Spanned<String>>,
    /// `--retries`
    pub retries: Option<Spanned<i64>>,
    /// `--load-interval`
    pub load_interval: Option<Spanned<String>>,
    /// `--access-log`
    pub access_log: Option<Spanned<String>>,
    /// `--trust-proxy`: networks whose X-Forwarded-For is believed.
    pub trust_proxy: Option<Vec<Spanned<String>>>,
    pub admin: Option<Admin>,
    /// `--front`: `"threads"` or `"epoll"`.
    pub front: Option<Spanned<String>>,
    /// `--front-threads`
    pub front_threads: Option<Spanned<i64>>,
    pub timeouts: Option<Timeouts>,
    pub limits: Option<Limits>,
    pub health: Option<Health>,
    pub cache: Option<Cache>,
    pub simulated: Option<Simulated>,
    pub tls: Option<Tls>,
    pub tunnels: Option<Tunnels>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<Pool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<Process>,
}

/// `[[processes]]`: a command to start and supervise (checked in `processes.rs`).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Process {
    pub name: Spanned<String>,
    /// The program and its arguments, not a shell line.
    pub command: Spanned<Vec<String>>,
    /// Bound by the balancer and passed at descriptor 3 (socket activation).
    pub listen: Option<Spanned<String>>,
    /// The backend URL the process serves: marked down while it is not running.
    pub backend: Option<Spanned<String>>,
    pub restart_sec: Option<Spanned<String>>,
    pub restart_max_delay: Option<Spanned<String>>,
    pub start_limit_burst: Option<Spanned<i64>>,
    pub start_limit_interval: Option<Spanned<String>>,
}

/// `[admin]`: who sees the admin pages, and where.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// `--admin-allow`: networks besides loopback.
    pub allow: Option<Vec<Spanned<String>>>,
    /// `--admin-listen`
    pub listen: Option<Spanned<String>>,
}

/// `[timeouts]`
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// `--timeout`: the backend's answer.
    pub response: Option<Spanned<String>>,
    /// `--connect-timeout`
    pub connect: Option<Spanned<String>>,
    /// `--client-timeout`
    pub client: Option<Spanned<String>>,
    /// `--keepalive-timeout`
    pub keepalive: Option<Spanned<String>>,
    /// `--drain-timeout`
    pub drain: Option<Spanned<String>>,
    /// `--upgrade-timeout`
    pub upgrade: Option<Spanned<String>>,
}

/// `[tls]`: HTTPS on the listener, and whom to trust among HTTPS backends.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// `--tls-cert`
    pub cert: Option<Spanned<String>>,
    /// `--tls-key`
    pub key: Option<Spanned<String>>,
    /// `--backend-ca`
    pub backend_ca: Option<Spanned<String>>,
}

/// `[tunnels]`: connections upgraded to WebSocket (or another protocol).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tunnels {
    /// `--max-tunnels`
    pub max: Option<Spanned<i64>>,
    /// `--tunnel-idle-timeout`
    pub idle_timeout: Option<Spanned<String>>,
}

/// `[limits]`
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// `--max-connections`
    pub max_connections: Option<Spanned<i64>>,
    /// `--max-body`
    pub max_body: Option<Spanned<String>>,
}

/// `[health]`: passive (`max_fails`, `fail_timeout`) and active checks.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// `--health-path`
    pub path: Option<Spanned<String>>,
    /// `--health-interval`
    pub interval: Option<Spanned<String>>,
    /// `--health-rise`
    pub rise: Option<Spanned<i64>>,
    /// `--health-fall`
    pub fall: Option<Spanned<i64>>,
    /// `--max-fails`
    pub max_fails: Option<Spanned<i64>>,
    /// `--fail-timeout`
    pub fail_timeout: Option<Spanned<String>>,
}

/// `[cache]`
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    /// `--cache`
    pub enabled: Option<Spanned<bool>>,
    /// `--cache-ttl`
    pub ttl: Option<Spanned<String>>,
    /// `--cache-max-bytes`
    pub max_bytes: Option<Spanned<String>>,
    /// `--cache-max-object`
    pub max_object: Option<Spanned<String>>,
    /// `--cache-dir`
    pub dir: Option<Spanned<String>>,
}

/// `[simulated]`: the in-process backends started when no backend is named anywhere.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Simulated {
    /// `--sim-backends`
    pub backends: Option<Spanned<i64>>,
    /// `--sim-base-port`
    pub base_port: Option<Spanned<i64>>,
    /// `--sim-latency`
    pub latency: Option<Spanned<String>>,
    /// `--static`
    #[serde(rename = "static")]
    pub static_dir: Option<Spanned<String>>,
    /// `--static-max-age`
    pub static_max_age: Option<Spanned<i64>>,
    /// `--rates`
    pub rates: Option<Spanned<String>>,
    /// `--sim-processes`
    pub processes: Option<Spanned<bool>>,
}

/// `[[pools]]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub name: Spanned<String>,
    /// Defaults to the top-level `strategy`.
    pub strategy: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<Spanned<BackendEntry>>,
    /// `etcd://HOST:PORT/PREFIX`: the pool's backends come from etcd instead of
    /// `backends` (see src/proxy/discovery/).
    pub discovery: Option<Spanned<String>>,
}

/// `[[routes]]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub prefix: Spanned<String>,
    pub pool: Spanned<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strip_prefix: bool,
    /// The `Host` header sent to the backend.
    pub host: Option<Spanned<String>>,
}

/// One backend: `"http://host:port"` (the flag's syntax, `,weight=N` allowed) or a
/// table `{ url = "http://host:port", weight = N }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendEntry {
    Url(String),
    Table { url: String, weight: Option<i64> },
}

/// The table form of a backend.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct BackendTable {
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    weight: Option<i64>,
}

impl<'de> Deserialize<'de> for BackendEntry {
    // By hand rather than `#[serde(untagged)]`, so an unknown key in the table form is
    // reported by name instead of as "did not match any variant".
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = BackendEntry;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a backend URL or a table { url = \"http://host:port\", weight = N }")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<BackendEntry, E> {
                Ok(BackendEntry::Url(text.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<BackendEntry, A::Error> {
                let table = BackendTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(BackendEntry::Table {
                    url: table.url,
                    weight: table.weight,
                })
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}

impl Serialize for BackendEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            BackendEntry::Url(url) => serializer.serialize_str(url),
            BackendEntry::Table { url, weight } => BackendTable {
                url: url.clone(),
                weight: *weight,
            }
            .serialize(serializer),
        }
    }
}

/// A TOML syntax or schema error, with the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: Option<usize>,
    pub message: String,
}

/// Parses a configuration file's text.
pub fn parse(source: &str) -> Result<FileConfig, ParseError> {
    toml::from_str(source).map_err(|error: toml::de::Error| ParseError {
        line: error.span().map(|span| line_of(source, span.start)),
        // The message alone: the error's `Display` draws a multi-line excerpt, and a
        // problem must fit one line.
        message: error.message().trim().replace('\n', " "),
    })
}

/// The 1-based line of byte `offset` in `source`.
pub fn line_of(source: &str, offset: usize) -> usize {
    let offset = offset.min(source.len());
    source.as_bytes()[..offset]
        .iter()
        .filter(|&&byte| byte == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_section_and_both_backend_forms() {
        let file = parse(
            r#"
workers = 8
backends = ["http://127.0.0.1:9001", { url = "http://127.0.0.1:9002", weight = 5 }]

[timeouts]
response = "3s"

[[pools]]
name = "api"
backends = ["http://127.0.0.1:9101"]

[[routes]]
prefix = "/api"
pool = "api"
strip_prefix = true
"#,
        )
        .unwrap();
        assert_eq!(*file.workers.unwrap().get_ref(), 8);
        let backends = file.backends.unwrap();
        assert_eq!(
            backends[1].get_ref(),
            &BackendEntry::Table {
                url: "http://127.0.0.1:9002".into(),
                weight: Some(5)
            }
        );
        assert_eq!(line_of_span(&backends[0]), 3);
        assert!(file.routes[0].strip_prefix);
        assert_eq!(file.pools[0].name.get_ref(), "api");
    }

    fn line_of_span<T>(value: &Spanned<T>) -> usize {
        line_of(
            "\nworkers = 8\nbackends = [\"http://127.0.0.1:9001\", { url",
            value.span().start,
        )
    }

    #[test]
    fn unknown_keys_are_errors_with_their_line() {
        let error = parse("workers = 2\n\n[health]\nintervall = \"1s\"\n").unwrap_err();
        assert_eq!(error.line, Some(4));
        assert!(
            error.message.contains("unknown field `intervall`"),
            "{}",
            error.message
        );
        assert!(
            error.message.contains("`interval`"),
            "names the valid keys: {}",
            error.message
        );
        let error = parse("backends = [{ url = \"http://a:1\", wieght = 2 }]\n").unwrap_err();
        assert!(error.message.contains("wieght"), "{}", error.message);
        let error = parse("[[pools]]\nname = \"a\"\nbackends = []\ncolour = 1\n").unwrap_err();
        assert_eq!(error.line, Some(4));
    }
}
