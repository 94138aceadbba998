//! Layering: the configuration file under the command line.
//!
//! A flag overrides the file only when it was typed on the command line. clap fills
//! every flag with its default, so `ServeArgs` alone cannot tell `--workers 4` from no
//! flag at all; `ArgMatches::value_source` can, and `Explicit` keeps that answer.
//! Otherwise `--config f.toml` with `workers = 8` would silently run 4 workers.
//! (nginx has no such layering; HAProxy and Envoy let flags override few settings;
//! Caddy's `--config` plus flags works the same way as here.)
//!
//! OS concept: none of its own; it serves `check.rs` and `reload.rs`, which both need
//! the settings as the operator meant them, and `Collector`, which gathers every
//! problem with its line.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::ArgMatches;
use clap::parser::ValueSource;
use toml::Spanned;

use super::Problem;
use super::file::{self, BackendEntry, FileConfig};
use crate::config::args::ServeArgs;
use crate::lab::sim_backend::apps::currency::Rates;
use crate::proxy::access_log::AccessLogTarget;
use crate::proxy::backends::BackendSpec;
use crate::proxy::clients::parse_net;
use crate::proxy::front::FrontKind;
use crate::units::{parse_duration, parse_millis_range, parse_positive_duration, parse_size};

/// The flags given on the command line (clap's argument ids, which are `ServeArgs`'s
/// field names: `workers`, `cache_ttl`, `backends`...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Explicit(BTreeSet<String>);

impl Explicit {
    /// The flags of `matches` whose value came from the command line, not a default.
    pub fn of(matches: Option<&ArgMatches>) -> Self {
        let Some(matches) = matches else {
            return Explicit::default();
        };
        Explicit(
            matches
                .ids()
                .filter(|id| matches.value_source(id.as_str()) == Some(ValueSource::CommandLine))
                .map(|id| id.as_str().to_string())
                .collect(),
        )
    }

    /// Explicit flags given by name, for tests and library users.
    pub fn named(ids: &[&str]) -> Self {
        Explicit(ids.iter().map(|id| id.to_string()).collect())
    }

    pub fn contains(&self, id: &str) -> bool {
        self.0.contains(id)
    }
}

/// Every `ServeArgs` argument id and where the file sets it. A unit test checks that no
/// flag is missing here, so a new flag cannot be forgotten by the file.
pub const FLAG_KEYS: &[(&str, &str)] = &[
    ("config", ""),
    ("listen", "listen"),
    ("workers", "workers"),
    ("queue", "queue"),
    ("strategy", "strategy"),
    ("backends", "backends"),
    ("discovery", "discovery"),
    ("retries", "retries"),
    ("load_interval", "load_interval"),
    ("access_log", "access_log"),
    ("front", "front"),
    ("front_threads", "front_threads"),
    ("timeout", "timeouts.response"),
    ("connect_timeout", "timeouts.connect"),
    ("client_timeout", "timeouts.client"),
    ("keepalive_timeout", "timeouts.keepalive"),
    ("drain_timeout", "timeouts.drain"),
    ("upgrade_timeout", "timeouts.upgrade"),
    ("max_connections", "limits.max_connections"),
    ("max_body", "limits.max_body"),
    ("health_path", "health.path"),
    ("health_interval", "health.interval"),
    ("health_rise", "health.rise"),
    ("health_fall", "health.fall"),
    ("max_fails", "health.max_fails"),
    ("fail_timeout", "health.fail_timeout"),
    ("cache", "cache.enabled"),
    ("cache_ttl", "cache.ttl"),
    ("cache_max_bytes", "cache.max_bytes"),
    ("cache_max_object", "cache.max_object"),
    ("cache_dir", "cache.dir"),
    ("sim_backends", "simulated.backends"),
    ("sim_base_port", "simulated.base_port"),
    ("sim_latency", "simulated.latency"),
    ("static_dir", "simulated.static"),
    ("static_max_age", "simulated.static_max_age"),
    ("rates", "simulated.rates"),
    ("admin_allow", "admin.allow"),
    ("admin_listen", "admin.listen"),
    ("trust_proxy", "trust_proxy"),
    ("tls_cert", "tls.cert"),
    ("tls_key", "tls.key"),
    ("backend_ca", "tls.backend_ca"),
    ("max_tunnels", "tunnels.max"),
    ("tunnel_idle_timeout", "tunnels.idle_timeout"),
    ("sim_processes", "simulated.processes"),
];

/// Collects problems, turning a value's byte span into its line.
pub struct Collector<'a> {
    source: &'a str,
    pub problems: Vec<Problem>,
}

impl<'a> Collector<'a> {
    pub fn new(source: &'a str) -> Self {
        Collector {
            source,
            problems: Vec::new(),
        }
    }

    /// A problem with the value at `spanned` (a default, span-less value has no line).
    pub fn at<T>(&mut self, key: &str, spanned: &Spanned<T>, message: impl Into<String>) {
        let span = spanned.span();
        let line = (span != (0..0)).then(|| file::line_of(self.source, span.start));
        self.problems.push(Problem {
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// A problem that belongs to no line (a conflict between settings).
    pub fn general(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            line: None,
            key: key.to_string(),
            message: message.into(),
        });
    }
}

/// Applies one file value: parsed and checked always (a bad value is a problem even
/// when a flag overrides it), stored only if the flag `id` was not typed.
struct Layer<'c, 'a> {
    explicit: &'c Explicit,
    collector: &'c mut Collector<'a>,
}

impl Layer<'_, '_> {
    fn set<S, T>(
        &mut self,
        id: &str,
        value: Option<&Spanned<S>>,
        parse: impl FnOnce(&S) -> Result<T, String>,
        target: &mut T,
    ) {
        let Some(value) = value else { return };
        match parse(value.get_ref()) {
            Ok(parsed) if !self.explicit.contains(id) => *target = parsed,
            Ok(_) => {}
            Err(message) => {
                let key = key_of(id);
                self.collector.at(key, value, message);
            }
        }
    }
}

impl Layer<'_, '_> {
    /// A list of networks (`trust_proxy`, `admin.allow`): every entry is checked, and
    /// the list replaces the flag's only when the flag was not typed.
    fn nets(&mut self, id: &str, entries: Option<&Vec<Spanned<String>>>, target: &mut Vec<ipnet::IpNet>) {
        let Some(entries) = entries else { return };
        let mut nets = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            match parse_net(entry.get_ref()) {
                Ok(net) => nets.push(net),
                Err(message) => self
                    .collector
                    .at(&format!("{}[{index}]", key_of(id)), entry, message),
            }
        }
        if !self.explicit.contains(id) {
            *target = nets;
        }
    }
}

/// The file key of flag `id`.
pub fn key_of(id: &str) -> &'static str {
    FLAG_KEYS
        .iter()
        .find(|(flag, _)| *flag == id)
        .map_or("", |(_, key)| key)
}

/// An integer from `min` to `max`, converted to the flag's type.
fn int<T: TryFrom<i64>>(min: i64, max: i64) -> impl FnOnce(&i64) -> Result<T, String> {
    move |&value| {
        if value < min || value > max {
            return Err(if min == 1 && value < 1 {
                format!("must be at least 1 (got {value})")
            } else {
                format!("must be from {min} to {max} (got {value})")
            });
        }
        T::try_from(value).map_err(|_| format!("{value} is out of range"))
    }
}

/// A backend entry of the file as a `BackendSpec`.
pub fn backend_spec(entry: &BackendEntry) -> Result<BackendSpec, String> {
    match entry {
        BackendEntry::Url(url) => url.parse().map_err(|error| format!("{error}")),
        BackendEntry::Table { url, weight } => {
            let mut spec: BackendSpec = url.parse().map_err(|error| format!("{error}"))?;
            if let Some(weight) = weight {
                spec.weight = int::<u32>(1, 1000)(weight).map_err(|error| format!("weight {error}"))?;
            }
            Ok(spec)
        }
    }
}

/// The flags' values with the file's under them: every setting that has a flag.
pub fn settings(
    file: &FileConfig,
    flags: &ServeArgs,
    explicit: &Explicit,
    collector: &mut Collector,
) -> ServeArgs {
    let duration = |text: &String| -> Result<Duration, String> { parse_duration(text) };
    let size = |text: &String| -> Result<u64, String> { parse_size(text) };
    let mut args = flags.clone();
    let mut layer = Layer { explicit, collector };
    layer.set(
        "listen",
        file.listen.as_ref(),
        |text: &String| {
            text.parse::<SocketAddr>()
                .map_err(|_| format!("{text:?} is not an address like 127.0.0.1:8080"))
        },
        &mut args.listen,
    );
    layer.set("workers", file.workers.as_ref(), int(1, 4096), &mut args.workers);
    layer.set("queue", file.queue.as_ref(), int(1, 1_000_000), &mut args.queue);
    layer.set(
        "strategy",
        file.strategy.as_ref(),
        |name: &String| {
            crate::proxy::strategy::by_name(name)
                .map(|_| name.clone())
                .map_err(|error| error.to_string())
        },
        &mut args.strategy,
    );
    if let Some(entries) = &file.backends {
        let mut specs = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            match backend_spec(entry.get_ref()) {
                Ok(spec) => specs.push(spec),
                Err(message) => layer.collector.at(&format!("backends[{index}]"), entry, message),
            }
        }
        // `--backend` and `--discovery` both say where the `default` pool's backends
        // come from, so either one typed replaces the file's answer.
        if !explicit.contains("backends") && !explicit.contains("discovery") {
            args.backends = specs;
        }
    }
    let discovery = |text: &String| {
        text.parse::<crate::proxy::discovery::EtcdTarget>()
            .map(Some)
            .map_err(|error| error.to_string())
    };
    if explicit.contains("backends") {
        // Checked, not applied: the typed --backend wins.
        let mut ignored = None;
        layer.set("discovery", file.discovery.as_ref(), discovery, &mut ignored);
    } else {
        layer.set(
            "discovery",
            file.discovery.as_ref(),
            discovery,
            &mut args.discovery,
        );
    }
    layer.set("retries", file.retries.as_ref(), int(0, 16), &mut args.retries);
    layer.set(
        "load_interval",
        file.load_interval.as_ref(),
        duration,
        &mut args.load_interval,
    );
    layer.set(
        "access_log",
        file.access_log.as_ref(),
        |text: &String| text.parse::<AccessLogTarget>(),
        &mut args.access_log.access_log,
    );
    layer.nets("trust_proxy", file.trust_proxy.as_ref(), &mut args.trust_proxy);
    if let Some(admin) = &file.admin {
        layer.nets("admin_allow", admin.allow.as_ref(), &mut args.admin_allow);
        layer.set(
            "admin_listen",
            admin.listen.as_ref(),
            |text: &String| {
                text.parse::<SocketAddr>()
                    .map(Some)
                    .map_err(|_| format!("{text:?} is not an address like 127.0.0.1:9000"))
            },
            &mut args.admin_listen,
        );
    }
    layer.set(
        "front",
        file.front.as_ref(),
        |text: &String| text.parse::<FrontKind>(),
        &mut args.front,
    );
    layer.set(
        "front_threads",
        file.front_threads.as_ref(),
        int(1, 64),
        &mut args.front_threads,
    );
    if let Some(tls) = &file.tls {
        let path = |text: &String| Ok(Some(std::path::PathBuf::from(text)));
        layer.set("tls_cert", tls.cert.as_ref(), path, &mut args.tls_cert);
        layer.set("tls_key", tls.key.as_ref(), path, &mut args.tls_key);
        layer.set("backend_ca", tls.backend_ca.as_ref(), path, &mut args.backend_ca);
    }
    if let Some(tunnels) = &file.tunnels {
        layer.set(
            "max_tunnels",
            tunnels.max.as_ref(),
            int(0, 1_000_000),
            &mut args.max_tunnels,
        );
        layer.set(
            "tunnel_idle_timeout",
            tunnels.idle_timeout.as_ref(),
            |text: &String| parse_positive_duration(text),
            &mut args.tunnel_idle_timeout,
        );
    }
    let timeouts = file.timeouts.as_ref();
    let get = |pick: fn(&file::Timeouts) -> Option<&Spanned<String>>| timeouts.and_then(pick);
    layer.set(
        "timeout",
        get(|t| t.response.as_ref()),
        duration,
        &mut args.timeout,
    );
    layer.set(
        "connect_timeout",
        get(|t| t.connect.as_ref()),
        duration,
        &mut args.connect_timeout,
    );
    layer.set(
        "client_timeout",
        get(|t| t.client.as_ref()),
        duration,
        &mut args.client_timeout,
    );
    layer.set(
        "keepalive_timeout",
        get(|t| t.keepalive.as_ref()),
        duration,
        &mut args.keepalive_timeout,
    );
    layer.set(
        "drain_timeout",
        get(|t| t.drain.as_ref()),
        duration,
        &mut args.drain_timeout,
    );
    layer.set(
        "upgrade_timeout",
        get(|t| t.upgrade.as_ref()),
        duration,
        &mut args.processes.upgrade_timeout,
    );
    if let Some(limits) = &file.limits {
        layer.set(
            "max_connections",
            limits.max_connections.as_ref(),
            int(1, 1_000_000),
            &mut args.max_connections,
        );
        layer.set("max_body", limits.max_body.as_ref(), size, &mut args.max_body);
    }
    if let Some(health) = &file.health {
        layer.set(
            "health_path",
            health.path.as_ref(),
            |path: &String| {
                if path.starts_with('/') {
                    Ok(path.clone())
                } else {
                    Err(format!("{path:?} must start with /"))
                }
            },
            &mut args.health_path,
        );
        layer.set(
            "health_interval",
            health.interval.as_ref(),
            duration,
            &mut args.health_interval,
        );
        layer.set(
            "health_rise",
            health.rise.as_ref(),
            int(1, 100),
            &mut args.health_rise,
        );
        layer.set(
            "health_fall",
            health.fall.as_ref(),
            int(1, 100),
            &mut args.health_fall,
        );
        layer.set(
            "max_fails",
            health.max_fails.as_ref(),
            int(0, i64::from(u32::MAX)),
            &mut args.max_fails,
        );
        layer.set(
            "fail_timeout",
            health.fail_timeout.as_ref(),
            duration,
            &mut args.fail_timeout,
        );
    }
    if let Some(cache) = &file.cache {
        layer.set(
            "cache",
            cache.enabled.as_ref(),
            |on: &bool| Ok(*on),
            &mut args.cache.cache,
        );
        layer.set(
            "cache_ttl",
            cache.ttl.as_ref(),
            duration,
            &mut args.cache.cache_ttl,
        );
        layer.set(
            "cache_max_bytes",
            cache.max_bytes.as_ref(),
            size,
            &mut args.cache.cache_max_bytes,
        );
        layer.set(
            "cache_max_object",
            cache.max_object.as_ref(),
            size,
            &mut args.cache.cache_max_object,
        );
        layer.set(
            "cache_dir",
            cache.dir.as_ref(),
            |dir: &String| Ok(Some(PathBuf::from(dir))),
            &mut args.cache.cache_dir,
        );
    }
    if let Some(simulated) = &file.simulated {
        layer.set(
            "sim_backends",
            simulated.backends.as_ref(),
            int(0, 256),
            &mut args.sim_backends,
        );
        layer.set(
            "sim_base_port",
            simulated.base_port.as_ref(),
            int(0, 65535),
            &mut args.sim_base_port,
        );
        layer.set(
            "sim_latency",
            simulated.latency.as_ref(),
            |text: &String| parse_millis_range(text),
            &mut args.sim_latency,
        );
        layer.set(
            "static_dir",
            simulated.static_dir.as_ref(),
            |dir: &String| {
                let path = PathBuf::from(dir);
                if path.is_dir() {
                    Ok(Some(path))
                } else {
                    Err(format!("{dir:?}: no such directory"))
                }
            },
            &mut args.apps.static_dir,
        );
        layer.set(
            "static_max_age",
            simulated.static_max_age.as_ref(),
            int(0, i64::MAX),
            &mut args.apps.static_max_age,
        );
        layer.set(
            "rates",
            simulated.rates.as_ref(),
            |text: &String| text.parse::<Rates>(),
            &mut args.apps.rates,
        );
        layer.set(
            "sim_processes",
            simulated.processes.as_ref(),
            |&on: &bool| Ok(on),
            &mut args.processes.sim_processes,
        );
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, Command};

    #[test]
    fn every_serve_flag_has_a_place_in_the_file() {
        let command = ServeArgs::augment_args(Command::new("serve"));
        for argument in command.get_arguments() {
            let id = argument.get_id().as_str();
            assert!(
                FLAG_KEYS.iter().any(|(flag, _)| *flag == id),
                "the flag {id:?} has no key in the configuration file: add it to FLAG_KEYS and merge.rs"
            );
        }
    }
}
