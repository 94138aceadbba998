//! Helpers shared by the integration tests: start a balancer with simulated backends on
//! OS-chosen ports, speak raw HTTP, and wait for conditions with a deadline.
#![allow(dead_code)]

pub mod load;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use roundhouse::lab::sim_backend::{self, SimConfig};
use roundhouse::proxy::balancer::{Balancer, BalancerConfig};
use roundhouse::proxy::front::{FrontKind, ServerHandle};

/// Both fronts. A test that talks to the front runs its one body once for each
/// (`each_front`): the event loop must behave exactly as the threads do.
pub const FRONTS: [FrontKind; 2] = [FrontKind::Threads, FrontKind::Epoll];

/// Runs `body` for each front in turn; a failure says which front it failed with.
pub fn each_front(mut body: impl FnMut(FrontKind)) {
    for front in FRONTS {
        let _label = FrontLabel(front);
        body(front);
    }
}

/// The `--front` value of `front`.
pub fn front_flag(front: FrontKind) -> &'static str {
    match front {
        FrontKind::Threads => "threads",
        FrontKind::Epoll => "epoll",
    }
}

/// Names the front of a failing run (on the way out of a panic).
struct FrontLabel(FrontKind);

impl Drop for FrontLabel {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("(this failure was with --front {})", self.0);
        }
    }
}

/// `cluster` with the front of `front`.
pub fn cluster_on(
    front: FrontKind,
    count: usize,
    latency: RangeInclusive<u64>,
    adjust: impl FnOnce(&mut BalancerConfig),
) -> Cluster {
    cluster(count, latency, |config| {
        config.front = front;
        adjust(config);
    })
}

/// A balancer and the simulated backends behind it.
pub struct Cluster {
    pub balancer: Balancer,
    pub backends: Vec<ServerHandle>,
    pub addr: SocketAddr,
}

/// A port nothing listens on right now (bound, then released): for a backend started
/// later on a known port, or for one that must refuse connections.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn listener() -> TcpListener {
    roundhouse::sys::listen::bind("127.0.0.1:0".parse().unwrap()).expect("bind port 0")
}

/// An address that refuses connections for as long as the returned socket lives: bound
/// but never listening, so a connect gets RST (ECONNREFUSED) at once, and no other test
/// can take the port meanwhile (a dropped listener's port can be bound again by a
/// server that answers, or accepts and says nothing, while tests run in parallel).
pub fn refusing_addr() -> (socket2::Socket, SocketAddr) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .expect("bind port 0");
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    (socket, addr)
}

/// Starts `count` simulated backends with `latency` ms, then a balancer over them;
/// `adjust` can change the configuration first.
pub fn cluster(
    count: usize,
    latency: RangeInclusive<u64>,
    adjust: impl FnOnce(&mut BalancerConfig),
) -> Cluster {
    let mut backends = Vec::new();
    let mut config = BalancerConfig::default();
    for number in 0..count {
        let listener = listener();
        let port = listener.local_addr().unwrap().port();
        let sim = SimConfig {
            name: format!("backend-{}", number + 1),
            latency_ms: latency.clone(),
            ..SimConfig::default()
        };
        backends.push(sim_backend::start(listener, sim).unwrap());
        config
            .backends
            .push(format!("http://127.0.0.1:{port}").parse().unwrap());
    }
    adjust(&mut config);
    let balancer = Balancer::start(listener(), &config).expect("balancer starts");
    let addr = balancer.local_addr();
    Cluster {
        balancer,
        backends,
        addr,
    }
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text()))
    }
}

/// Reads one response from `stream` (Content-Length framed, or until close).
pub fn read_reply(stream: &mut TcpStream, head_request: bool) -> std::io::Result<Reply> {
    // `read` may return EINTR when a signal (a child exiting, in these tests) arrives.
    fn read_some(stream: &mut TcpStream, chunk: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match stream.read(chunk) {
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
    // Nothing past this response is consumed, so pipelined answers can be read one by
    // one: the head is peeked at and only its own bytes are taken, the body is read to
    // its length and no further.
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let peeked = loop {
            match stream.peek(&mut chunk) {
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if peeked == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed before a response",
            ));
        }
        let mut seen = buffer.clone();
        seen.extend_from_slice(&chunk[..peeked]);
        let end = seen
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .map(|position| position + 4);
        let take = end.map_or(peeked, |end| end - buffer.len());
        let mut taken = vec![0u8; take];
        stream.read_exact(&mut taken)?;
        buffer.extend_from_slice(&taken);
        if let Some(end) = end {
            break end;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter(|line| !line.is_empty())
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    let mut body = buffer[head_end..].to_vec();
    let length = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse::<usize>().ok());
    let no_body = head_request || status == 204 || status == 304 || (100..200).contains(&status);
    match length {
        _ if no_body => body.clear(),
        Some(length) => {
            while body.len() < length {
                let want = (length - body.len()).min(chunk.len());
                let read = read_some(stream, &mut chunk[..want])?;
                if read == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..read]);
            }
        }
        None => {
            stream.read_to_end(&mut body)?;
        }
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Sends raw bytes on a new connection and reads one response.
pub fn raw(addr: SocketAddr, request: &[u8]) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(request)?;
    read_reply(&mut stream, request.starts_with(b"HEAD "))
}

/// A GET on a new connection, closed afterwards.
pub fn get(addr: SocketAddr, path: &str) -> Reply {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    raw(addr, request.as_bytes()).unwrap_or_else(|error| panic!("GET {path}: {error}"))
}

/// Polls `condition` until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    condition()
}

/// Raises this process's descriptor limit to its hard limit (tests that hold
/// hundreds of connections at once, each with both ends in this process).
pub fn raise_descriptor_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Resident memory of this process in KiB, from /proc.
pub fn rss_kib() -> u64 {
    vm_rss_kib("/proc/self/status")
}

/// The real `roundhouse` binary, started with arguments, its banner read.
pub struct Running {
    pub child: std::process::Child,
    /// The balancer's (or backend's) address, read from the banner.
    pub addr: SocketAddr,
    pub stdout: std::io::BufReader<std::process::ChildStdout>,
}

/// Starts the binary and waits for its `listening on http://ADDR` (or https) line.
pub fn run_binary(args: &[&str]) -> Running {
    run_binary_with_env(args, &[])
}

/// `run_binary` with environment variables set for the process.
pub fn run_binary_with_env(args: &[&str], env: &[(&str, &str)]) -> Running {
    run_binary_under_with_env(&[], args, env)
}

/// `run_binary` through a wrapper command (`prlimit --nofile=...`), when not empty.
pub fn run_binary_under(wrapper: &[&str], args: &[&str]) -> Running {
    run_binary_under_with_env(wrapper, args, &[])
}

// The child is handed to the caller, and `Running`'s Drop kills and waits for it.
#[allow(clippy::zombie_processes)]
fn run_binary_under_with_env(wrapper: &[&str], args: &[&str], env: &[(&str, &str)]) -> Running {
    use std::io::BufRead;
    let binary = env!("CARGO_BIN_EXE_roundhouse");
    let mut command = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut command = std::process::Command::new(program);
            command.args(rest).arg(binary);
            command
        }
        None => std::process::Command::new(binary),
    };
    let mut child = command
        .args(args)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start roundhouse");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            let _ = child.wait();
            let mut stderr = String::new();
            child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
            panic!("roundhouse exited before listening: {stderr}");
        }
        let rest = line.split_once("listening on ").map(|(_, rest)| rest);
        if let Some(rest) = rest.and_then(|rest| {
            rest.strip_prefix("http://")
                .or_else(|| rest.strip_prefix("https://"))
        }) {
            let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
            return Running { child, addr, stdout };
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Sends a signal by name (`INT`, `TERM`) with kill(1): no unsafe code needed.
pub fn signal(child: &std::process::Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Resident memory of another process in KiB.
pub fn rss_kib_of(pid: u32) -> u64 {
    vm_rss_kib(&format!("/proc/{pid}/status"))
}

/// The `VmRSS:` line of a /proc status file, in KiB (0 when it cannot be read).
fn vm_rss_kib(status_file: &str) -> u64 {
    let status = std::fs::read_to_string(status_file).unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// A process this test did not start itself (it was started by one that did, and may
/// have been reparented since): SIGTERM on drop, then SIGKILL if it lingers.
pub struct ProcessGuard(pub u32);

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        let alive =
            |pid: u32| std::path::Path::new(&format!("/proc/{pid}")).exists() && state_of(pid) != Some('Z');
        if !alive(self.0) {
            return;
        }
        kill_pid(self.0, "TERM");
        if !wait_until(Duration::from_secs(10), || !alive(self.0)) {
            kill_pid(self.0, "KILL");
        }
    }
}

/// Sends a signal by name to a PID with kill(1).
pub fn kill_pid(pid: u32, name: &str) {
    let _ = std::process::Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status();
}

/// The state letter of a process (`R`, `S`, `Z` for a zombie...), from /proc/PID/stat.
pub fn state_of(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.trim_start().chars().next()
}

/// The children of `parent` (PID and state letter), by scanning /proc: field 4 of each
/// /proc/PID/stat is the parent's PID.
pub fn children_of(parent: u32) -> Vec<(u32, char)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (_, after_name) = stat.rsplit_once(')')?;
            let mut fields = after_name.split_whitespace();
            let state = fields.next()?.chars().next()?;
            let ppid: u32 = fields.next()?.parse().ok()?;
            (ppid == parent).then_some((pid, state))
        })
        .collect()
}
