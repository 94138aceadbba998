//! Where a pool's backends live in etcd: `etcd://HOST:PORT[,HOST:PORT...]/PREFIX`.
//!
//! Plain data, part of a pool's configuration like its list of backends: the routing
//! table names a pool's discovery source without depending on the code that talks to
//! etcd (src/proxy/discovery/), which sits above it.
//!
//! OS concept: none of its own; the several members listed are what the etcd client
//! fails over between, and `EtcdTarget::key_for` is the key a backend registers under.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// An etcd cluster (one or more members' client addresses) and a key prefix: every key
/// under the prefix is one backend.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EtcdTarget {
    /// `host:port` of each member to try, in the order given.
    pub endpoints: Vec<String>,
    /// The key prefix, always starting and ending with `/`, so that `/web` never
    /// matches the keys of a pool named `/website` (etcd itself compares raw bytes).
    pub prefix: String,
}

/// A discovery URL that cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("{0:?}: a discovery source starts with etcd:// (write etcd://HOST:PORT/PREFIX)")]
    Scheme(String),
    #[error("{0:?}: give a key prefix after the address, as in etcd://127.0.0.1:2379/roundhouse/web")]
    NoPrefix(String),
    #[error("{0:?}: {1:?} is not HOST:PORT (a port from 1 to 65535)")]
    Endpoint(String, String),
    #[error("{0:?}: the key prefix {1:?} has a character that is not allowed (use letters, digits and -_./)")]
    Prefix(String, String),
}

impl EtcdTarget {
    /// The key of the backend at `authority` (`host:port`) under this prefix.
    pub fn key_for(&self, authority: &str) -> String {
        format!("{}{authority}", self.prefix)
    }
}

impl fmt::Display for EtcdTarget {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        write!(formatter, "etcd://{}{}", self.endpoints.join(","), self.prefix)
    }
}

impl FromStr for EtcdTarget {
    type Err = TargetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let rest = text
            .trim()
            .strip_prefix("etcd://")
            .ok_or_else(|| TargetError::Scheme(text.to_string()))?;
        let (hosts, path) = rest
            .split_once('/')
            .ok_or_else(|| TargetError::NoPrefix(text.to_string()))?;
        let mut endpoints = Vec::new();
        for endpoint in hosts.split(',') {
            let endpoint = endpoint.trim();
            let valid = endpoint.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|port| port != 0)
            });
            if !valid {
                return Err(TargetError::Endpoint(text.to_string(), endpoint.to_string()));
            }
            endpoints.push(endpoint.to_string());
        }
        let path = path.trim_matches('/');
        if path.is_empty() {
            return Err(TargetError::NoPrefix(text.to_string()));
        }
        // Keys are bytes to etcd, but a prefix that also appears in URLs, logs and
        // metric labels is easier to live with when it is plain.
        if !path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        {
            return Err(TargetError::Prefix(text.to_string(), path.to_string()));
        }
        Ok(EtcdTarget {
            endpoints,
            prefix: format!("/{path}/"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_one_or_more_endpoints_and_normalises_the_prefix() {
        let target: EtcdTarget = "etcd://127.0.0.1:2379/roundhouse/web".parse().unwrap();
        assert_eq!(target.endpoints, ["127.0.0.1:2379"]);
        assert_eq!(target.prefix, "/roundhouse/web/");
        assert_eq!(target.to_string(), "etcd://127.0.0.1:2379/roundhouse/web/");
        assert_eq!(target.key_for("10.0.0.1:9000"), "/roundhouse/web/10.0.0.1:9000");
        let cluster: EtcdTarget = "etcd://a:1, b:2,c:3/web/".parse().unwrap();
        assert_eq!(cluster.endpoints, ["a:1", "b:2", "c:3"]);
        assert_eq!(cluster.prefix, "/web/");
        assert_eq!(
            cluster.to_string().parse::<EtcdTarget>().unwrap(),
            cluster,
            "Display and FromStr agree"
        );
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        let error = |text: &str| text.parse::<EtcdTarget>().unwrap_err();
        assert!(matches!(error("http://a:1/web"), TargetError::Scheme(_)));
        assert!(matches!(error("etcd://a:1"), TargetError::NoPrefix(_)));
        assert!(matches!(error("etcd://a:1/"), TargetError::NoPrefix(_)));
        assert!(matches!(error("etcd://a/web"), TargetError::Endpoint(..)));
        assert!(matches!(error("etcd://a:0/web"), TargetError::Endpoint(..)));
        assert!(matches!(error("etcd://a:1,/web"), TargetError::Endpoint(..)));
        assert!(matches!(error("etcd://:1/web"), TargetError::Endpoint(..)));
        assert!(matches!(error("etcd://a:1/we b"), TargetError::Prefix(..)));
        assert!(error("etcd://a/web").to_string().contains("HOST:PORT"));
    }
}
