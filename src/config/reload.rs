//! Reloading the configuration on SIGHUP without dropping a request.
//!
//! The file is read and checked in full first; only a valid file changes anything, and
//! an invalid one leaves the running configuration as it was, with every problem
//! logged (nginx and HAProxy behave the same). What changes live is the routing: the
//! `default` pool's strategy and backends, the named pools and the routes. The new
//! routing table is built beside the old one and swapped in at once (see
//! `crate::proxy::routing::table`); requests in flight finish on the old table, and backends
//! in both keep their health. Every other setting (listen address, workers, queue,
//! timeouts, health checks, cache, access log...) belongs to threads and sockets made
//! at start-up: a change there is logged as needing a restart, and not applied.
//!
//! OS concept: signals: SIGHUP as "read your configuration again" (nginx, HAProxy,
//! sshd). The signal only becomes a message; `Reloader::reload` runs on the main
//! thread, never in a handler, and the new table is swapped whole, so a request sees
//! the old one or the new one, never a mix.

use crate::config::args::ServeArgs;
use crate::proxy::backends::BackendSpec;
use crate::proxy::balancer::Balancer;

use super::{Effective, Explicit, load, render};

/// Top-level keys that a reload applies; everything else needs a restart.
const LIVE_KEYS: &[&str] = &["strategy", "backends", "discovery", "pools", "routes"];

/// What the running balancer was started with, and how to read its configuration again.
pub struct Reloader {
    flags: ServeArgs,
    explicit: Explicit,
    /// The configuration in force: restart-only settings as started, the rest as of
    /// the last successful reload.
    running: Effective,
    /// The simulated backends started for the `default` pool (empty if none were).
    simulated: Vec<BackendSpec>,
}

/// How a reload went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No `--config`: nothing to read.
    NoFile,
    /// Applied; the settings listed need a restart and were not applied.
    Reloaded { needs_restart: Vec<String> },
    /// The file was invalid or could not be applied; the old configuration stays.
    Kept { problems: Vec<String> },
}

impl Reloader {
    pub fn new(
        flags: ServeArgs,
        explicit: Explicit,
        running: Effective,
        simulated: Vec<BackendSpec>,
    ) -> Self {
        Reloader {
            flags,
            explicit,
            running,
            simulated,
        }
    }

    /// Re-reads the file and applies it to `balancer`, logging what happened.
    pub fn reload(&mut self, balancer: &Balancer) -> Outcome {
        let outcome = self.try_reload(balancer);
        match &outcome {
            Outcome::NoFile => {
                log::warn!("SIGHUP ignored: roundhouse runs without --config, so there is nothing to reload")
            }
            Outcome::Reloaded { needs_restart } => {
                for change in needs_restart {
                    log::warn!(
                        "reload: {change} changed but needs a restart; still running with the old value"
                    );
                }
                let config = self.config_file();
                log::info!(
                    "reloaded {config}: {} named pools, {} routes",
                    self.running.pools.len(),
                    self.running.routes.len()
                );
            }
            Outcome::Kept { problems } => {
                for problem in problems {
                    log::error!("reload: {problem}");
                }
                let count = problems.len();
                log::error!(
                    "reload of {} failed ({count} problem{}); the old configuration stays in force",
                    self.config_file(),
                    if count == 1 { "" } else { "s" }
                );
            }
        }
        outcome
    }

    fn config_file(&self) -> String {
        self.flags
            .config
            .as_ref()
            .map_or_else(String::new, |path| path.display().to_string())
    }

    fn try_reload(&mut self, balancer: &Balancer) -> Outcome {
        if self.flags.config.is_none() {
            return Outcome::NoFile;
        }
        let routing = balancer.routing();
        let fresh = match load(&self.flags, &self.explicit) {
            Ok(fresh) => fresh,
            Err(problems) => {
                routing.record_reload(false);
                return Outcome::Kept {
                    problems: problems.lines(),
                };
            }
        };
        let backends = if fresh.names_backends() {
            fresh.args.backends.clone()
        } else if !self.simulated.is_empty() {
            self.simulated.clone()
        } else {
            routing.record_reload(false);
            return Outcome::Kept {
                problems: vec![
                    "the file names no backends, and simulated backends only start at start-up".into(),
                ],
            };
        };
        let needs_restart = changed_restart_settings(&self.running, &fresh);
        if let Err(error) = balancer.reload(&fresh.balancer_config(backends)) {
            return Outcome::Kept {
                problems: vec![error.to_string()],
            };
        }
        self.running.args.strategy = fresh.args.strategy;
        self.running.args.backends = fresh.args.backends;
        self.running.args.discovery = fresh.args.discovery;
        self.running.pools = fresh.pools;
        self.running.routes = fresh.routes;
        Outcome::Reloaded { needs_restart }
    }
}

/// The settings outside `LIVE_KEYS` whose values differ, as `key: old -> new`.
pub fn changed_restart_settings(running: &Effective, fresh: &Effective) -> Vec<String> {
    let old = render::flat(running);
    let new = render::flat(fresh);
    let live = |key: &str| LIVE_KEYS.contains(&key);
    let value_in = |pairs: &[(String, String)], key: &str| {
        pairs
            .iter()
            .find(|(name, _)| name == key)
            .map_or("(unset)".to_string(), |(_, value)| value.clone())
    };
    let mut keys: Vec<&String> = old.iter().chain(new.iter()).map(|(key, _)| key).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|key| !live(key))
        .filter_map(|key| {
            let before = value_in(&old, key);
            let after = value_in(&new, key);
            (before != after).then(|| format!("{key} ({before} -> {after})"))
        })
        .collect()
}
