//! The connection-level counters on `/stats` and `/metrics`: TLS handshakes and
//! tunnels, which happen to connections rather than to requests.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde_json::{Value, json};

use super::prometheus::{Exposition, Kind};
use crate::proxy::tls::TlsCounters;
use crate::proxy::tunnel::Tunnels;

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn gauge(value: &AtomicUsize) -> usize {
    value.load(Ordering::Relaxed)
}

/// `"tls"` (absent for a plain-HTTP listener) and `"tunnels"` for `/stats`.
pub fn stats(tls: Option<&TlsCounters>, tunnels: &Tunnels, document: &mut Value) {
    if let Some(tls) = tls {
        document["tls"] = json!({
            "handshakes": load(&tls.handshakes),
            "handshakes_failed": load(&tls.failed),
            "handshakes_timed_out": load(&tls.timed_out),
            "reloads": load(&tls.reloads),
            "reload_failures": load(&tls.reload_failures),
        });
    }
    document["tunnels"] = json!({
        "open": gauge(&tunnels.open),
        "max": tunnels.max,
        "opened": load(&tunnels.opened),
        "refused": load(&tunnels.refused),
        "idle_closed": load(&tunnels.idle_closed),
        "bytes_up": load(&tunnels.bytes_up),
        "bytes_down": load(&tunnels.bytes_down),
    });
}

/// The same counters as Prometheus families.
pub fn metrics(tls: Option<&TlsCounters>, tunnels: &Tunnels, page: &mut Exposition) {
    if let Some(tls) = tls {
        let name = "roundhouse_tls_handshakes_total";
        page.family(
            name,
            Kind::Counter,
            "TLS handshakes on the listener, by outcome (ok, failed, timed_out: not done within the client timeout).",
        );
        for (outcome, counter) in [
            ("ok", &tls.handshakes),
            ("failed", &tls.failed),
            ("timed_out", &tls.timed_out),
        ] {
            page.sample(name, &[("outcome", outcome)], load(counter));
        }
        let name = "roundhouse_tls_reloads_total";
        page.family(
            name,
            Kind::Counter,
            "Certificate reloads (SIGHUP), by outcome; a failed one keeps the old certificate.",
        );
        page.sample(name, &[("outcome", "ok")], load(&tls.reloads));
        page.sample(name, &[("outcome", "failed")], load(&tls.reload_failures));
    }
    let families: [(&str, Kind, &str, u64); 4] = [
        (
            "roundhouse_tunnels_open",
            Kind::Gauge,
            "Upgraded connections (WebSockets) open now, with upgrade requests waiting for their 101.",
            gauge(&tunnels.open) as u64,
        ),
        (
            "roundhouse_tunnels_opened_total",
            Kind::Counter,
            "Tunnels started after a 101 Switching Protocols.",
            load(&tunnels.opened),
        ),
        (
            "roundhouse_tunnels_refused_total",
            Kind::Counter,
            "Upgrade requests answered 503 because --max-tunnels tunnels were open.",
            load(&tunnels.refused),
        ),
        (
            "roundhouse_tunnels_idle_closed_total",
            Kind::Counter,
            "Tunnels closed after --tunnel-idle-timeout with nothing moving either way.",
            load(&tunnels.idle_closed),
        ),
    ];
    for (name, kind, help, value) in families {
        page.family(name, kind, help);
        page.sample(name, &[], value);
    }
    let name = "roundhouse_tunnel_bytes_total";
    page.family(name, Kind::Counter, "Bytes copied through tunnels, by direction.");
    page.sample(name, &[("direction", "up")], load(&tunnels.bytes_up));
    page.sample(name, &[("direction", "down")], load(&tunnels.bytes_down));
}
