//! One backend as stored in etcd: the value of its key.
//!
//! The value is JSON, `{"url": "http://10.0.0.2:9000", "weight": 2, "load":
//! "http://10.0.0.2:9100/load"}`, where only `url` is required: `weight` is the
//! weighted strategy's (1 to 1000, default 1) and `load` is where `least-load` asks
//! for the backend's load (default `URL/load`). Keys the balancer does not know are
//! ignored rather than refused, since other programs may write the same entries with
//! more in them (Kubernetes endpoints carry labels, Traefik's keys carry its own
//! settings). For people typing with `etcdctl put`, a bare URL in the flag's syntax
//! (`http://10.0.0.2:9000,weight=2`) is accepted too.
//!
//! OS concept: none of its own; it serves the watcher (`watcher.rs`) and registration
//! (`register.rs`, through `render`). A value another program wrote is input from
//! outside, so `parse` checks it as it checks a flag, and a bad entry is skipped, not
//! trusted.

use serde::{Deserialize, Serialize};

use crate::proxy::backends::BackendSpec;

/// The JSON form of an entry.
#[derive(Debug, Deserialize, Serialize)]
struct Entry {
    url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weight: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    load: Option<String>,
}

/// The backend an entry's value describes, or why it describes none.
pub fn parse(value: &[u8]) -> Result<BackendSpec, String> {
    let text = std::str::from_utf8(value).map_err(|_| "the value is not UTF-8 text".to_string())?;
    let text = text.trim();
    if !text.starts_with('{') {
        return text.parse().map_err(|error| format!("{error}"));
    }
    let entry: Entry = serde_json::from_str(text).map_err(|error| format!("not a backend entry: {error}"))?;
    let mut spec: BackendSpec = entry.url.parse().map_err(|error| format!("{error}"))?;
    if let Some(weight) = entry.weight {
        spec.weight = u32::try_from(weight)
            .ok()
            .filter(|weight| (1..=1000).contains(weight))
            .ok_or_else(|| format!("weight {weight} is not from 1 to 1000"))?;
    }
    if let Some(load) = entry.load {
        if !load.starts_with("http://") {
            return Err(format!("load {load:?} is not an http:// URL"));
        }
        spec.load = Some(load);
    }
    Ok(spec)
}

/// The value that describes `spec`, as `roundhouse backend --register` writes it.
pub fn render(spec: &BackendSpec) -> Vec<u8> {
    let entry = Entry {
        url: spec.url(),
        weight: (spec.weight != 1).then_some(i64::from(spec.weight)),
        load: spec.load.clone(),
    };
    serde_json::to_vec(&entry).expect("an entry serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json_entries_and_bare_urls() {
        let spec = parse(br#"{"url":"http://10.0.0.2:9000"}"#).unwrap();
        assert_eq!((spec.authority.as_str(), spec.weight), ("10.0.0.2:9000", 1));
        assert_eq!(spec.load, None);
        let full = parse(br#"{"url":"http://b:1","weight":3,"load":"http://b:2/load","zone":"x"}"#).unwrap();
        assert_eq!(full.weight, 3);
        assert_eq!(full.load.as_deref(), Some("http://b:2/load"));
        let bare = parse(b" http://c:7,weight=2\n").unwrap();
        assert_eq!((bare.authority.as_str(), bare.weight), ("c:7", 2));
        assert_eq!(parse(&render(&full)).unwrap(), full, "render and parse agree");
        assert_eq!(render(&bare), br#"{"url":"http://c:7","weight":2}"#);
    }

    #[test]
    fn says_what_is_wrong_with_a_bad_entry() {
        let error = |value: &[u8]| parse(value).unwrap_err();
        assert!(error(b"\xff").contains("UTF-8"));
        assert!(error(br#"{"weight":2}"#).contains("url"));
        assert!(error(br#"{"url":"ftp://a:1"}"#).contains("http://"));
        // https backends (verified like --backend https://...) are entries too.
        assert!(parse(br#"{"url":"https://a:1"}"#).unwrap().tls);
        assert!(error(br#"{"url":"http://a:1","weight":0}"#).contains("1 to 1000"));
        assert!(error(br#"{"url":"http://a:1","load":"a:2"}"#).contains("load"));
        assert!(error(b"{not json").contains("not a backend entry"));
    }
}
