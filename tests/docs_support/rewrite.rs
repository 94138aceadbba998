//! What the docs test changes in a block before running it: `cargo run` becomes the
//! built binary, and the ports the docs use become ports the OS gave this run.

use std::collections::BTreeMap;
use std::net::TcpListener;

use regex::Regex;

/// The balancer's port in the docs, and the first simulated backend's.
pub const DOC_LISTEN: u16 = 8080;
pub const DOC_SIM_BASE: u16 = 9001;
/// `roundhouse tcp`'s default listening port.
pub const DOC_TCP_LISTEN: u16 = 5000;

/// Ways the docs start the program, longest first, all meaning `roundhouse`.
const LAUNCHERS: &[&str] = &[
    "cargo run --release -q --",
    "cargo run -q --release --",
    "cargo run --release --",
    "cargo run -q --",
    "cargo run --",
    "cargo run --release",
    "cargo run -q",
    "cargo run",
    "./target/release/roundhouse",
    "target/release/roundhouse",
    "./target/debug/roundhouse",
];

/// `cargo run ...` and `target/release/roundhouse` written as `roundhouse`.
pub fn launcher_to_binary(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for launcher in LAUNCHERS {
            if let Some(after) = rest.strip_prefix(launcher)
                && after.chars().next().is_none_or(char::is_whitespace)
                && !after.lines().next().unwrap_or_default().contains("--example")
            {
                out.push_str("roundhouse");
                rest = after;
                continue 'scan;
            }
        }
        let next = rest.chars().next().expect("not empty");
        out.push(next);
        rest = &rest[next.len_utf8()..];
    }
    out
}

/// The docs' ports and the free ones standing in for them in this run.
#[derive(Debug)]
pub struct PortMap {
    map: BTreeMap<u16, u16>,
    pattern: Regex,
}

impl PortMap {
    /// Maps 8080, 5000 and 9001..9004 (the last four onto four consecutive free ports,
    /// since the simulated backends take `--sim-base-port` and the next ones), and every
    /// other port that `texts` name.
    pub fn for_texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> PortMap {
        let pattern = Regex::new(r"(:|--port |--status-port |--sim-base-port |--listen |/dev/tcp/127\.0\.0\.1/|/dev/tcp/localhost/)(\d{4,5})\b").unwrap();
        let mut map = BTreeMap::new();
        let base = consecutive_free_ports(4);
        for offset in 0..4 {
            map.insert(DOC_SIM_BASE + offset, base + offset);
        }
        for port in [DOC_LISTEN, DOC_TCP_LISTEN] {
            map.insert(port, free_port());
        }
        for text in texts {
            for captures in pattern.captures_iter(text) {
                if let Ok(port) = captures[2].parse::<u16>()
                    && port >= 1024
                {
                    map.entry(port).or_insert_with(free_port);
                }
            }
        }
        PortMap { map, pattern }
    }

    /// The port standing in for the docs' `port`.
    pub fn get(&self, port: u16) -> u16 {
        self.map[&port]
    }

    /// `text` with every docs port replaced by its stand-in.
    pub fn apply(&self, text: &str) -> String {
        self.pattern
            .replace_all(text, |captures: &regex::Captures| {
                let port = captures[2].parse::<u16>().ok();
                match port.and_then(|port| self.map.get(&port)) {
                    Some(mapped) => format!("{}{mapped}", &captures[1]),
                    None => captures[0].to_string(),
                }
            })
            .into_owned()
    }

    /// The ports a command (already mapped) would listen on: those after `--port`,
    /// `--status-port`, `--listen`, `--admin`, `--admin-listen`.
    pub fn listened_by(command: &str) -> Vec<u16> {
        let pattern =
            Regex::new(r"--(?:port|status-port|listen|admin|admin-listen)[ =](?:[0-9.]+:)?(\d{4,5})\b")
                .unwrap();
        pattern
            .captures_iter(command)
            .filter_map(|captures| captures[1].parse::<u16>().ok())
            .collect()
    }
}

/// A port nothing uses now (bound, then released), below the kernel's range of
/// ephemeral ports: a port from that range (what binding port 0 gives) can be taken
/// between two blocks as the local end of some client's connection, and the server
/// block that wants it next would then find it busy.
pub fn free_port() -> u16 {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let low = 10_000.min(ephemeral_low / 2);
    for _ in 0..1000 {
        let port = rand::random_range(low..ephemeral_low);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below {ephemeral_low}");
}

/// The first of `count` consecutive ports that are all free now.
fn consecutive_free_ports(count: u16) -> u16 {
    for _ in 0..200 {
        let first = free_port();
        let held: Vec<_> = (1..count)
            .map_while(|offset| TcpListener::bind(("127.0.0.1", first + offset)).ok())
            .collect();
        if held.len() == usize::from(count - 1) {
            return first;
        }
    }
    panic!("found no {count} consecutive free ports");
}

/// Whether a command line starts a balancer (`roundhouse`, `roundhouse serve`,
/// `roundhouse --flag ...`), possibly behind `nice`, `taskset` or `chrt`.
pub fn starts_balancer(command: &str) -> bool {
    let words: Vec<&str> = command.split_whitespace().collect();
    let Some(at) = words.iter().position(|word| *word == "roundhouse") else {
        return false;
    };
    match words.get(at + 1) {
        None => true,
        Some(next) => *next == "serve" || *next == "\\" || next.starts_with('-'),
    }
}
