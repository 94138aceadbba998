//! The effective configuration written as TOML: what `roundhouse check` prints, and
//! what a reload compares to find settings that changed.
//!
//! It uses the file's own schema, so the output can be saved and loaded again; every
//! key is present, defaults included, so nothing is left to guess.
//!
//! OS concept: none of its own; `to_toml` serves `check.rs`, and `flat` serves
//! `reload.rs`, which compares the old and new settings key by key to log each one
//! that needs a restart.

use std::ops::RangeInclusive;
use std::time::Duration;

use toml::Spanned;

use super::Effective;
use super::file::{self, BackendEntry, FileConfig};
use super::processes::ProcessConfig;
use crate::proxy::access_log::AccessLogTarget;
use crate::proxy::backends::BackendSpec;
use crate::proxy::routing::{PoolSpec, RouteSpec};

/// A value with no place in any file.
fn value<T>(value: T) -> Option<Spanned<T>> {
    Some(Spanned::new(0..0, value))
}

fn int(number: impl Into<i64>) -> Option<Spanned<i64>> {
    value(number.into())
}

/// `10s`, `500ms`, or plain seconds for anything finer.
pub fn duration(duration: Duration) -> Option<Spanned<String>> {
    let text = if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else if duration.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{}", duration.as_secs_f64())
    };
    value(text)
}

/// `10M`, `512K`, `1G`, or bytes.
pub fn size(bytes: u64) -> Option<Spanned<String>> {
    let text = [(30, "G"), (20, "M"), (10, "K")]
        .iter()
        .find(|(shift, _)| bytes != 0 && bytes.is_multiple_of(1u64 << shift))
        .map_or(bytes.to_string(), |(shift, unit)| {
            format!("{}{unit}", bytes >> shift)
        });
    value(text)
}

fn range(range: &RangeInclusive<u64>) -> Option<Spanned<String>> {
    value(format!("{}..{}", range.start(), range.end()))
}

fn backends(specs: &[BackendSpec]) -> Vec<Spanned<BackendEntry>> {
    specs
        .iter()
        .map(|spec| Spanned::new(0..0, BackendEntry::Url(spec.to_string())))
        .collect()
}

fn nets(list: &[ipnet::IpNet]) -> Vec<Spanned<String>> {
    list.iter()
        .map(|net| Spanned::new(0..0, net.to_string()))
        .collect()
}

fn path(path: Option<&std::path::PathBuf>) -> Option<Spanned<String>> {
    path.and_then(|path| value(path.display().to_string()))
}

fn access_log(target: &AccessLogTarget) -> String {
    match target {
        AccessLogTarget::Off => "off".into(),
        AccessLogTarget::Stdout => "-".into(),
        AccessLogTarget::File(path) => path.display().to_string(),
    }
}

/// The effective configuration in the file's schema.
pub fn to_file(effective: &Effective) -> FileConfig {
    let args = &effective.args;
    let cache = &args.cache;
    FileConfig {
        listen: value(args.listen.to_string()),
        workers: int(args.workers),
        queue: int(args.queue),
        strategy: value(args.strategy.clone()),
        backends: args.discovery.is_none().then(|| backends(&args.backends)),
        discovery: args
            .discovery
            .as_ref()
            .and_then(|target| value(target.to_string())),
        retries: int(args.retries),
        load_interval: duration(args.load_interval),
        access_log: value(access_log(&args.access_log.access_log)),
        trust_proxy: Some(nets(&args.trust_proxy)),
        admin: Some(file::Admin {
            allow: Some(nets(&args.admin_allow)),
            listen: args.admin_listen.and_then(|addr| value(addr.to_string())),
        }),
        front: value(args.front.to_string()),
        front_threads: int(args.front_threads),
        timeouts: Some(file::Timeouts {
            response: duration(args.timeout),
            connect: duration(args.connect_timeout),
            client: duration(args.client_timeout),
            keepalive: duration(args.keepalive_timeout),
            drain: duration(args.drain_timeout),
            upgrade: duration(args.processes.upgrade_timeout),
        }),
        tls: Some(file::Tls {
            cert: path(args.tls_cert.as_ref()),
            key: path(args.tls_key.as_ref()),
            backend_ca: path(args.backend_ca.as_ref()),
        }),
        tunnels: Some(file::Tunnels {
            max: int(args.max_tunnels),
            idle_timeout: duration(args.tunnel_idle_timeout),
        }),
        limits: Some(file::Limits {
            max_connections: int(args.max_connections),
            max_body: size(args.max_body),
        }),
        health: Some(file::Health {
            path: value(args.health_path.clone()),
            interval: duration(args.health_interval),
            rise: int(args.health_rise),
            fall: int(args.health_fall),
            max_fails: int(args.max_fails),
            fail_timeout: duration(args.fail_timeout),
        }),
        cache: Some(file::Cache {
            enabled: value(cache.cache),
            ttl: duration(cache.cache_ttl),
            max_bytes: size(cache.cache_max_bytes),
            max_object: size(cache.cache_max_object),
            dir: cache
                .cache_dir
                .as_ref()
                .and_then(|dir| value(dir.display().to_string())),
        }),
        simulated: Some(file::Simulated {
            backends: int(args.sim_backends),
            base_port: int(args.sim_base_port),
            latency: range(&args.sim_latency),
            static_dir: args
                .apps
                .static_dir
                .as_ref()
                .and_then(|dir| value(dir.display().to_string())),
            static_max_age: int(i64::try_from(args.apps.static_max_age).unwrap_or(i64::MAX)),
            rates: value(args.apps.rates.to_string()),
            processes: value(args.processes.sim_processes),
        }),
        pools: effective.pools.iter().map(pool).collect(),
        routes: effective.routes.iter().map(route).collect(),
        processes: effective.processes.iter().map(process).collect(),
    }
}

fn pool(spec: &PoolSpec) -> file::Pool {
    file::Pool {
        name: Spanned::new(0..0, spec.name.clone()),
        strategy: value(spec.strategy.clone()),
        // A discovery pool's members are etcd's to say, not the file's.
        backends: if spec.discovery.is_some() {
            Vec::new()
        } else {
            backends(&spec.backends)
        },
        discovery: spec
            .discovery
            .as_ref()
            .and_then(|target| value(target.to_string())),
    }
}

/// `config` in the file's schema, for `roundhouse check`.
fn process(config: &ProcessConfig) -> file::Process {
    let value = |text: String| Some(Spanned::new(0..0, text));
    file::Process {
        name: Spanned::new(0..0, config.name.clone()),
        command: Spanned::new(0..0, config.command.clone()),
        listen: config.listen.map(|addr| addr.to_string()).and_then(value),
        backend: config.backend.clone().and_then(value),
        restart_sec: duration(config.restart.delay),
        restart_max_delay: duration(config.restart.max_delay),
        start_limit_burst: Some(Spanned::new(0..0, i64::from(config.restart.burst))),
        start_limit_interval: duration(config.restart.interval),
    }
}

fn route(spec: &RouteSpec) -> file::Route {
    file::Route {
        prefix: Spanned::new(0..0, spec.prefix.clone()),
        pool: Spanned::new(0..0, spec.pool.clone()),
        strip_prefix: spec.strip_prefix,
        host: spec.host.clone().and_then(value),
    }
}

/// The effective configuration as a TOML document.
pub fn to_toml(effective: &Effective) -> String {
    toml::to_string_pretty(&to_file(effective))
        .unwrap_or_else(|error| format!("# cannot write the configuration as TOML: {error}\n"))
}

/// The effective configuration as flat `key = value` pairs (`timeouts.response`,
/// `pools`...), for comparing two configurations setting by setting.
pub fn flat(effective: &Effective) -> Vec<(String, String)> {
    let table: toml::Table = toml::from_str(&to_toml(effective)).unwrap_or_default();
    let mut pairs = Vec::new();
    for (key, item) in &table {
        match item {
            toml::Value::Table(section) => {
                for (inner, item) in section {
                    pairs.push((format!("{key}.{inner}"), item.to_string()));
                }
            }
            other => pairs.push((key.clone(), other.to_string())),
        }
    }
    pairs
}
