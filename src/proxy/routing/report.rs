//! What `/stats` says about pools and routes (fields added beside the existing ones,
//! see docs/stats.md).
//!
//! OS concept: a consistent snapshot without holding a lock. `extend_stats` is handed one
//! `Routing`, the `Arc` its caller took, so the pools and routes it reports belong to
//! one table even if a reload swaps in another meanwhile.

use serde_json::{Value, json};

use super::{Routing, RoutingTable};
use crate::proxy::stats::requests::NONE;

/// Adds `pools`, `routes` and `unrouted` to a `/stats` document, and sets `strategy` to
/// the default pool's (it may have changed in a reload).
pub fn extend_stats(table: &RoutingTable, routing: &Routing, snapshot: &mut Value) {
    let series = table.series();
    let pools: Vec<Value> = routing
        .pools()
        .iter()
        .map(|pool| {
            json!({
                "name": pool.name,
                "strategy": pool.strategy.name(),
                "backends": pool.backends.iter().map(|backend| backend.url.clone()).collect::<Vec<_>>(),
                "requests": series.total_where(|key| key.pool == pool.name),
            })
        })
        .collect();
    let routes: Vec<Value> = routing
        .routes()
        .iter()
        .map(|route| {
            json!({
                "prefix": route.prefix,
                "pool": routing.pools()[route.pool].name,
                "strip_prefix": route.strip_prefix,
                "host": route.host.as_ref().and_then(|host| host.to_str().ok()),
                "requests": series.total_where(|key| key.route == route.prefix),
            })
        })
        .collect();
    if let Some(pool) = routing.default_pool() {
        snapshot["strategy"] = json!(pool.strategy.name());
    }
    snapshot["pools"] = json!(pools);
    snapshot["routes"] = json!(routes);
    snapshot["unrouted"] = json!(series.total_where(|key| key.route == NONE));
}
