//! `[[processes]]`: commands the balancer starts and supervises (`crate::process`),
//! checked like every other table: each problem names its key and line.
//!
//! ```toml
//! [[processes]]
//! name = "calc-1"
//! command = ["roundhouse", "backend", "--port", "9001", "--cpu-work", "5"]
//! backend = "http://127.0.0.1:9001"   # marked down while the process is not running
//! listen = "127.0.0.1:9001"            # optional: bound here, passed at descriptor 3
//! restart_sec = "100ms"                # systemd's RestartSec
//! restart_max_delay = "5s"             # the pause doubles per crash up to this
//! start_limit_burst = 5                # StartLimitBurst ...
//! start_limit_interval = "10s"         # ... within StartLimitIntervalSec
//! ```
//!
//! The command is an argument vector, not a shell line: nothing is split or expanded
//! (write `["sh", "-c", "..."]` for a shell). A program without a `/` is looked up in
//! `PATH`. Processes start with the balancer and are a restart-only setting.
//!
//! OS concept: a command as `execve(2)` takes it: a program and its `argv`, each word
//! passed as written, which is why `command` is a list and never goes through a shell
//! (the `PATH` lookup is in src/process/exec.rs). `ProcessConfig::spec` pairs it with
//! the `listen` socket, bound by the balancer so that it outlives every restart.

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use toml::Spanned;

use super::file::{FileConfig, Process};
use super::merge::Collector;
use crate::process::restart::RestartPolicy;
use crate::process::supervisor::ProcessSpec;
use crate::units::parse_duration;

/// One checked `[[processes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessConfig {
    pub name: String,
    /// The program, then its arguments.
    pub command: Vec<String>,
    pub listen: Option<SocketAddr>,
    pub backend: Option<String>,
    pub restart: RestartPolicy,
}

impl ProcessConfig {
    /// What the supervisor runs for this entry, with its `listen` socket if it has one.
    pub fn spec(&self, socket: Option<TcpListener>) -> ProcessSpec {
        let mut command = self.command.iter().map(OsString::from);
        ProcessSpec {
            name: self.name.clone(),
            program: command.next().unwrap_or_default().into(),
            arg0: None,
            args: command.collect(),
            listeners: socket
                .map(|socket| (self.name.clone(), socket))
                .into_iter()
                .collect(),
            backend: self.backend.clone(),
            restart: self.restart,
        }
    }
}

/// Every `[[processes]]` entry, checked.
pub fn processes(file: &FileConfig, collector: &mut Collector) -> Vec<ProcessConfig> {
    let mut configs = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, entry) in file.processes.iter().enumerate() {
        let key = |field: &str| format!("processes[{index}].{field}");
        let name = entry.name.get_ref().trim().to_string();
        if name.is_empty() || name.contains(':') {
            collector.at(&key("name"), &entry.name, "a process needs a name, without `:`");
        } else if let Some(first) = seen.get(&name) {
            collector.at(
                &key("name"),
                &entry.name,
                format!("process {name:?} is already defined (processes[{first}]); names must be unique"),
            );
        }
        seen.entry(name.clone()).or_insert(index);
        let command = entry.command.get_ref().clone();
        if command.first().is_none_or(|program| program.trim().is_empty()) {
            collector.at(
                &key("command"),
                &entry.command,
                "a command needs at least a program: [\"program\", \"argument\", ...]",
            );
        }
        let listen = entry.listen.as_ref().and_then(|listen| {
            listen
                .get_ref()
                .parse::<SocketAddr>()
                .map_err(|_| {
                    collector.at(
                        &key("listen"),
                        listen,
                        format!("{:?} is not an address like 127.0.0.1:9001", listen.get_ref()),
                    )
                })
                .ok()
        });
        let backend = entry.backend.as_ref().and_then(|backend| {
            match super::merge::backend_spec(&super::file::BackendEntry::Url(backend.get_ref().clone())) {
                Ok(spec) => Some(spec.url()),
                Err(message) => {
                    collector.at(&key("backend"), backend, message);
                    None
                }
            }
        });
        let restart = restart_policy(entry, &key, collector);
        configs.push(ProcessConfig {
            name,
            command,
            listen,
            backend,
            restart,
        });
    }
    configs
}

fn restart_policy(entry: &Process, key: &dyn Fn(&str) -> String, collector: &mut Collector) -> RestartPolicy {
    let mut policy = RestartPolicy::default();
    let mut duration = |field: &str, value: &Option<Spanned<String>>, target: &mut Duration| {
        if let Some(value) = value {
            match parse_duration(value.get_ref()) {
                Ok(parsed) => *target = parsed,
                Err(message) => collector.at(&key(field), value, message),
            }
        }
    };
    duration("restart_sec", &entry.restart_sec, &mut policy.delay);
    duration(
        "restart_max_delay",
        &entry.restart_max_delay,
        &mut policy.max_delay,
    );
    duration(
        "start_limit_interval",
        &entry.start_limit_interval,
        &mut policy.interval,
    );
    if let Some(burst) = &entry.start_limit_burst {
        match u32::try_from(*burst.get_ref()) {
            Ok(burst) if (1..=1000).contains(&burst) => policy.burst = burst,
            _ => collector.at(
                &key("start_limit_burst"),
                burst,
                format!("must be from 1 to 1000 (got {})", burst.get_ref()),
            ),
        }
    }
    policy
}
