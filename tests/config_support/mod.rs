//! Helpers for the configuration, routing, reload and metrics tests: configuration
//! files in a temporary directory, simulated backends on OS-chosen ports, and the real
//! binary with its stderr collected (so its log can be asserted on, and a full pipe
//! never blocks it).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

use roundhouse::lab::sim_backend::{self, SimConfig};
use roundhouse::proxy::front::ServerHandle;

/// Writes `text` to `dir/name` and returns the path.
pub fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the configuration");
    path
}

/// `count` simulated backends named `prefix-1..` with `latency` ms, and their URLs.
pub fn sims(prefix: &str, count: usize, latency: RangeInclusive<u64>) -> (Vec<ServerHandle>, Vec<String>) {
    let mut handles = Vec::new();
    let mut urls = Vec::new();
    for number in 1..=count {
        let listener = roundhouse::sys::listen::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        urls.push(format!("http://{}", listener.local_addr().unwrap()));
        let config = SimConfig {
            name: format!("{prefix}-{number}"),
            latency_ms: latency.clone(),
            ..SimConfig::default()
        };
        handles.push(sim_backend::start(listener, config).unwrap());
    }
    (handles, urls)
}

/// A TOML array of quoted URLs.
pub fn toml_list(urls: &[String]) -> String {
    let quoted: Vec<String> = urls.iter().map(|url| format!("{url:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// Runs the binary to completion: exit code, stdout, stderr.
pub fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_roundhouse"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run roundhouse");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The balancer binary, running, with everything it writes on stderr collected.
pub struct Balancer {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<String>>,
    /// The banner and whatever else stdout said.
    pub stdout: Arc<Mutex<String>>,
}

impl Balancer {
    /// Starts `roundhouse ARGS` and waits for its `listening on http://ADDR` line.
    pub fn start(args: &[&str]) -> Balancer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_roundhouse"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start roundhouse");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(read) = pipe.read(&mut chunk) {
                if read == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..read]));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        let stdout = Arc::new(Mutex::new(String::new()));
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if lines.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.kill();
                let _ = child.wait();
                panic!("roundhouse exited before listening: {}", stderr.lock().unwrap());
            }
            stdout.lock().unwrap().push_str(&line);
            if let Some((_, rest)) = line.split_once("listening on http://") {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        let sink = Arc::clone(&stdout);
        thread::spawn(move || {
            let mut line = String::new();
            while lines.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        Balancer {
            child,
            addr,
            stderr,
            stdout,
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends `name` (`HUP`, `TERM`...) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
