//! Checking a configuration, and `roundhouse check` (like `nginx -t`).
//!
//! Every problem is collected before anything is reported: an operator who fixes one
//! line should not discover the next problem only on the next run. (A file that is not
//! valid TOML, or has a key the schema does not know, stops at that first error, as a
//! compiler's parser does; everything after parsing is checked in full.)
//!
//! OS concept: the exit status as a program's answer. `run` exits 0 for a valid
//! configuration and 2 (`EXIT_INVALID`, clap's code for bad flags) otherwise, with the
//! problems on stderr and the configuration on stdout, so a script or a service
//! manager can run `roundhouse check` before sending SIGHUP, as `nginx -t` is used.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::Args;
use http::HeaderValue;

use super::file::FileConfig;
use super::merge::{self, Collector, Explicit};
use super::{Effective, Problem, load, render};
use crate::config::args::ServeArgs;
use crate::proxy::routing::route::normalize_prefix;
use crate::proxy::routing::{DEFAULT_POOL, PoolSpec, RouteSpec};

/// `roundhouse check`: the same options as `serve`, checked instead of run.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Exit status of an invalid configuration (the same as for bad flags).
const EXIT_INVALID: u8 = 2;

/// Prints the effective configuration as TOML and exits 0, or prints every problem,
/// one per line, on stderr and exits 2.
pub fn run(args: &ServeArgs, explicit: &Explicit) -> ExitCode {
    match load(args, explicit) {
        Ok(effective) => {
            print!("{}", render::to_toml(&effective));
            let source = args
                .config
                .as_ref()
                .map_or("the command line".to_string(), |path| path.display().to_string());
            println!(
                "# {source}: configuration ok ({} named pools, {} routes)",
                effective.pools.len(),
                effective.routes.len()
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for line in problems.lines() {
                eprintln!("{line}");
            }
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// The effective configuration of `file` (whose text is `source`) under `flags`, or
/// every problem found.
pub fn resolve(
    file: &FileConfig,
    source: &str,
    flags: &ServeArgs,
    explicit: &Explicit,
) -> Result<Effective, Vec<Problem>> {
    let mut collector = Collector::new(source);
    let args = merge::settings(file, flags, explicit, &mut collector);
    let pools = pools(file, &args, &mut collector);
    let routes = routes(file, &args, &pools, &mut collector);
    let processes = super::processes::processes(file, &mut collector);
    if args.backends.is_empty() && args.discovery.is_none() && file.pools.is_empty() && args.sim_backends == 0
    {
        collector.general(
            "backends",
            "no backends: list some under `backends` or `[[pools]]`, set `discovery`, or set simulated.backends above 0",
        );
    }
    if !args.backends.is_empty() && args.discovery.is_some() {
        match &file.discovery {
            Some(discovery) if !explicit.contains("discovery") => collector.at(
                "discovery",
                discovery,
                "the `default` pool takes its backends from `backends` or from `discovery`, not both",
            ),
            _ => collector.general(
                "discovery",
                "the `default` pool takes its backends from `backends` or from `discovery`, not both",
            ),
        }
    }
    if args.cache.cache_dir.is_some() && !args.cache.cache {
        match file.cache.as_ref().and_then(|cache| cache.dir.as_ref()) {
            Some(dir) => collector.at(
                "cache.dir",
                dir,
                "set, but the cache is off (cache.enabled = false)",
            ),
            None => collector.general("cache.dir", "set, but the cache is off"),
        }
    }
    check_tls(file, &args, &mut collector);
    if collector.problems.is_empty() {
        Ok(Effective {
            args,
            pools,
            routes,
            processes,
        })
    } else {
        // In file order, as a compiler reports; problems without a line come last.
        let mut problems = collector.problems;
        problems.sort_by_key(|problem| problem.line.unwrap_or(usize::MAX));
        Err(problems)
    }
}

/// Both halves of the certificate pair or neither; the pair (and the backend CA)
/// readable and good, so `check` catches what would stop the start.
fn check_tls(file: &FileConfig, args: &ServeArgs, collector: &mut Collector) {
    let table = file.tls.as_ref();
    let at = |collector: &mut Collector,
              key: &str,
              value: Option<&toml::Spanned<String>>,
              message: String| match value {
        Some(value) => collector.at(key, value, message),
        None => collector.general(key, &message),
    };
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            if let Err(error) = crate::proxy::tls::acceptor::server_config(cert, key) {
                at(
                    collector,
                    "tls.cert",
                    table.and_then(|tls| tls.cert.as_ref()),
                    error.to_string(),
                );
            }
        }
        (Some(_), None) => at(
            collector,
            "tls.key",
            table.and_then(|tls| tls.cert.as_ref()),
            "tls.cert is set but tls.key is not: HTTPS needs both".into(),
        ),
        (None, Some(_)) => at(
            collector,
            "tls.cert",
            table.and_then(|tls| tls.key.as_ref()),
            "tls.key is set but tls.cert is not: HTTPS needs both".into(),
        ),
        (None, None) => {}
    }
    if let Some(ca) = &args.backend_ca
        && let Err(error) = crate::proxy::tls::BackendTls::new(Some(ca))
    {
        at(
            collector,
            "tls.backend_ca",
            table.and_then(|tls| tls.backend_ca.as_ref()),
            error.to_string(),
        );
    }
}

/// The `[[pools]]`, each checked: a name given once, a known strategy, at least one
/// backend, every backend an `http://host:port` URL.
fn pools(file: &FileConfig, args: &ServeArgs, collector: &mut Collector) -> Vec<PoolSpec> {
    let mut specs = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, pool) in file.pools.iter().enumerate() {
        let key = |field: &str| format!("pools[{index}].{field}");
        let name = pool.name.get_ref().trim().to_string();
        if name.is_empty() {
            collector.at(&key("name"), &pool.name, "a pool needs a name");
        } else if let Some(first) = seen.get(&name) {
            collector.at(
                &key("name"),
                &pool.name,
                format!("pool {name:?} is already defined (pools[{first}]); pool names must be unique"),
            );
        } else if name == DEFAULT_POOL && (!args.backends.is_empty() || args.discovery.is_some()) {
            collector.at(
                &key("name"),
                &pool.name,
                "\"default\" is already the pool of the top-level `backends` or `discovery`; rename this pool or move those backends into it",
            );
        }
        seen.entry(name.clone()).or_insert(index);
        let strategy = match &pool.strategy {
            Some(strategy) => {
                if let Err(error) = crate::proxy::strategy::by_name(strategy.get_ref()) {
                    collector.at(&key("strategy"), strategy, error.to_string());
                }
                strategy.get_ref().clone()
            }
            None => args.strategy.clone(),
        };
        let discovery = pool.discovery.as_ref().and_then(|text| {
            match text.get_ref().parse::<crate::proxy::discovery::EtcdTarget>() {
                Ok(target) => Some(target),
                Err(error) => {
                    collector.at(&key("discovery"), text, error.to_string());
                    None
                }
            }
        });
        match (&pool.discovery, pool.backends.is_empty()) {
            (None, true) => collector.at(
                &key("backends"),
                &pool.name,
                format!("pool {name:?} has no backends: list some, or set `discovery` to find them in etcd"),
            ),
            (Some(text), false) => collector.at(
                &key("discovery"),
                text,
                format!("pool {name:?} takes its backends from `backends` or from `discovery`, not both"),
            ),
            _ => {}
        }
        let mut backends = Vec::new();
        for (position, entry) in pool.backends.iter().enumerate() {
            match merge::backend_spec(entry.get_ref()) {
                Ok(spec) => backends.push(spec),
                Err(message) => collector.at(&key(&format!("backends[{position}]")), entry, message),
            }
        }
        specs.push(PoolSpec {
            name,
            strategy,
            backends,
            discovery,
        });
    }
    specs
}

/// The `[[routes]]`, each checked: a prefix starting with `/` and given once, a pool
/// that exists, a `host` that is a valid header value.
fn routes(
    file: &FileConfig,
    args: &ServeArgs,
    pools: &[PoolSpec],
    collector: &mut Collector,
) -> Vec<RouteSpec> {
    // `default` exists when top-level backends are named, or when nothing is named
    // and simulated backends will make it.
    let has_default = !args.backends.is_empty() || args.discovery.is_some() || pools.is_empty();
    let mut specs = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, route) in file.routes.iter().enumerate() {
        let key = |field: &str| format!("routes[{index}].{field}");
        let prefix = route.prefix.get_ref();
        if !prefix.starts_with('/') {
            collector.at(
                &key("prefix"),
                &route.prefix,
                format!("{prefix:?} must start with /"),
            );
        } else if let Some(first) = seen.get(&normalize_prefix(prefix)) {
            collector.at(
                &key("prefix"),
                &route.prefix,
                format!("prefix {prefix:?} is already routed (routes[{first}])"),
            );
        }
        seen.entry(normalize_prefix(prefix)).or_insert(index);
        let pool = route.pool.get_ref();
        let exists = pools.iter().any(|known| &known.name == pool) || (pool == DEFAULT_POOL && has_default);
        if !exists {
            let mut names: Vec<&str> = pools.iter().map(|known| known.name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            if has_default {
                names.insert(0, DEFAULT_POOL);
            }
            collector.at(
                &key("pool"),
                &route.pool,
                format!("no pool is named {pool:?} (pools: {})", names.join(", ")),
            );
        }
        if let Some(host) = &route.host
            && (host.get_ref().is_empty() || HeaderValue::from_str(host.get_ref()).is_err())
        {
            collector.at(
                &key("host"),
                host,
                format!("{:?} is not a valid Host header", host.get_ref()),
            );
        }
        specs.push(RouteSpec {
            prefix: prefix.clone(),
            pool: pool.clone(),
            strip_prefix: route.strip_prefix,
            host: route.host.as_ref().map(|host| host.get_ref().clone()),
        });
    }
    specs
}
