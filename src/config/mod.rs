//! The configuration file (`--config FILE.toml`): reading it, layering the command
//! line over it, checking it (`roundhouse check`), and reloading it on SIGHUP.
//!
//! - `args.rs`: every setting with its flag, the one schema the command line fills.
//! - `file.rs`: the TOML file's shape, with each value's place for error messages.
//! - `merge.rs`: file + flags → the effective configuration (flags given on the
//!   command line win; a flag's default never overrides the file).
//! - `check.rs`: every problem collected, each naming its key and line; `check`.
//! - `render.rs`: the effective configuration written back as TOML.
//! - `processes.rs`: `[[processes]]`, the commands the balancer supervises.
//! - `reload.rs`: SIGHUP: re-read, check, swap the routing table (the signal itself
//!   becomes a message in src/sys/signals.rs).
//!
//! OS concept: configuration as data read at run time, and signals as the classic way
//! to tell a daemon "read your configuration again" (nginx, HAProxy, sshd all reload on
//! SIGHUP).

pub mod args;
pub mod check;
pub mod file;
pub mod merge;
pub mod processes;
pub mod reload;
pub mod render;

use std::fmt;
use std::path::PathBuf;

use crate::proxy::backends::BackendSpec;
use crate::proxy::balancer::BalancerConfig;
use crate::proxy::routing::{PoolSpec, RouteSpec};
pub use args::ServeArgs;
pub use merge::Explicit;

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The 1-based line in the file, when the problem comes from the file.
    pub line: Option<usize>,
    /// The key in TOML's dotted form (`timeouts.response`, `pools[1].strategy`); empty
    /// for a file that cannot be read or parsed at all.
    pub key: String,
    pub message: String,
}

/// Every problem of one configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems {
    /// The file, if there is one.
    pub file: Option<PathBuf>,
    pub list: Vec<Problem>,
}

impl Problems {
    /// One line per problem: `FILE:LINE: key: message`, like a compiler's.
    pub fn lines(&self) -> Vec<String> {
        let file = self
            .file
            .as_ref()
            .map_or("command line".to_string(), |file| file.display().to_string());
        self.list
            .iter()
            .map(|problem| {
                let place = match problem.line {
                    Some(line) => format!("{file}:{line}"),
                    None => file.clone(),
                };
                if problem.key.is_empty() {
                    format!("{place}: {}", problem.message)
                } else {
                    format!("{place}: {}: {}", problem.key, problem.message)
                }
            })
            .collect()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        write!(formatter, "{}", self.lines().join("\n"))
    }
}

/// The configuration in force: the file's settings with the command line's over them.
#[derive(Debug, Clone)]
pub struct Effective {
    /// Every setting that has a flag; `args.backends` is the `default` pool's backends.
    pub args: ServeArgs,
    /// The named pools.
    pub pools: Vec<PoolSpec>,
    pub routes: Vec<RouteSpec>,
    /// `[[processes]]`: commands to supervise.
    pub processes: Vec<processes::ProcessConfig>,
}

impl Effective {
    /// Whether any backend is named, or found by discovery (else simulated backends
    /// start).
    pub fn names_backends(&self) -> bool {
        !self.args.backends.is_empty() || self.args.discovery.is_some() || !self.pools.is_empty()
    }

    /// The balancer's configuration; `backends` is the `default` pool (the named ones,
    /// or the simulated backends started for it).
    pub fn balancer_config(&self, backends: Vec<BackendSpec>) -> BalancerConfig {
        let mut config = self.args.balancer_config(backends);
        config.pools = self.pools.clone();
        config.routes = self.routes.clone();
        config
    }
}

/// Reads `flags.config` (if given), lays the explicitly given flags over it, and checks
/// the result. Without a file, the flags alone are checked the same way.
pub fn load(flags: &ServeArgs, explicit: &Explicit) -> Result<Effective, Problems> {
    let Some(path) = &flags.config else {
        return check::resolve(&file::FileConfig::default(), "", flags, explicit)
            .map_err(|list| Problems { file: None, list });
    };
    let problems = |list| Problems {
        file: Some(path.clone()),
        list,
    };
    let source = std::fs::read_to_string(path).map_err(|error| {
        problems(vec![Problem {
            line: None,
            key: String::new(),
            message: format!("cannot read the configuration: {error}"),
        }])
    })?;
    let parsed = file::parse(&source).map_err(|error| {
        problems(vec![Problem {
            line: error.line,
            key: String::new(),
            message: error.message,
        }])
    })?;
    check::resolve(&parsed, &source, flags, explicit).map_err(problems)
}

/// Lines describing pools and routes, for the start-up banner (nothing when there is
/// only the `default` pool, which the banner already lists).
pub fn describe_routing(config: &BalancerConfig) -> Vec<String> {
    let mut lines = Vec::new();
    for pool in &config.pools {
        let mut backends: Vec<String> = pool.backends.iter().map(ToString::to_string).collect();
        if let Some(target) = &pool.discovery {
            backends.push(format!("from {target}"));
        }
        lines.push(format!(
            "pool {} ({}): {}",
            pool.name,
            pool.strategy,
            backends.join(" ")
        ));
    }
    for route in &config.routes {
        let mut line = format!("route {} -> pool {}", route.prefix, route.pool);
        if route.strip_prefix {
            line.push_str(", prefix stripped");
        }
        if let Some(host) = &route.host {
            line.push_str(&format!(", Host: {host}"));
        }
        lines.push(line);
    }
    lines
}
