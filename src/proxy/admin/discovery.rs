//! The `roundhouse_discovery_*` families: one sample per discovery pool, from the
//! watcher's atomics (see `src/proxy/discovery/status.rs`). Left out altogether when no
//! pool takes its backends from etcd.
//!
//! OS concept: reading shared state without waiting for its writer. Each number is one
//! relaxed atomic load and the endpoint a string copied under its own short lock, so a
//! scrape never waits for a watcher blocked on etcd; the price is that the samples of
//! one pool are not one snapshot, which numbers scraped every few seconds can afford.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::prometheus::{Exposition, Kind, float};
use crate::proxy::discovery::Status;

/// One family: its name, its help, and how to read one pool's value.
type Family<T> = (&'static str, &'static str, fn(&Status) -> T);

/// Writes the discovery families for `statuses`.
pub fn render(statuses: &[Arc<Status>], page: &mut Exposition) {
    if statuses.is_empty() {
        return;
    }
    let gauges: [Family<String>; 5] = [
        (
            "roundhouse_discovery_connected",
            "1 while the pool's watcher is reading or watching etcd, 0 while no member answers (the pool keeps its last backends).",
            |status| u8::from(status.connected()).to_string(),
        ),
        (
            "roundhouse_discovery_revision",
            "The etcd store revision the pool's backends reflect.",
            |status| status.revision.load(Ordering::Relaxed).to_string(),
        ),
        (
            "roundhouse_discovery_backends",
            "Backends the pool has from etcd now.",
            |status| status.backends.load(Ordering::Relaxed).to_string(),
        ),
        (
            "roundhouse_discovery_skipped_entries",
            "Keys under the pool's prefix whose value describes no usable backend.",
            |status| status.skipped.load(Ordering::Relaxed).to_string(),
        ),
        (
            "roundhouse_discovery_last_change_timestamp_seconds",
            "When the pool's backends last changed, in seconds since the Unix epoch (0: not yet).",
            |status| float(status.last_change_unix_ms.load(Ordering::Relaxed) as f64 / 1000.0),
        ),
    ];
    families(page, Kind::Gauge, &gauges, statuses);
    let counters: [Family<u64>; 4] = [
        (
            "roundhouse_discovery_changes_total",
            "Changes of the pool's backends applied to the routing table.",
            |status| status.changes.load(Ordering::Relaxed),
        ),
        (
            "roundhouse_discovery_reads_total",
            "Whole-prefix reads: the first, and one after each compaction that outran the watch.",
            |status| status.reads.load(Ordering::Relaxed),
        ),
        (
            "roundhouse_discovery_watches_total",
            "Watches opened on etcd (a new one after each quiet spell or lost member).",
            |status| status.watches.load(Ordering::Relaxed),
        ),
        (
            "roundhouse_discovery_errors_total",
            "Failed calls to etcd members.",
            |status| status.errors.load(Ordering::Relaxed),
        ),
    ];
    families(page, Kind::Counter, &counters, statuses);
    let name = "roundhouse_discovery_endpoint_info";
    page.family(
        name,
        Kind::Gauge,
        "Always 1; the endpoint label is the etcd member the pool's watcher uses (or tries) now.",
    );
    for status in statuses {
        let endpoint = status.endpoint();
        page.sample(
            name,
            &[("pool", status.pool.as_str()), ("endpoint", endpoint.as_str())],
            1,
        );
    }
}

/// Each family of `kind` with one sample per pool.
fn families<T: std::fmt::Display>(
    page: &mut Exposition,
    kind: Kind,
    families: &[Family<T>],
    statuses: &[Arc<Status>],
) {
    for (name, help, value) in families {
        page.family(name, kind, help);
        for status in statuses {
            page.sample(name, &[("pool", status.pool.as_str())], value(status));
        }
    }
}
