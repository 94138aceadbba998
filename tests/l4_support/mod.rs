//! Helpers for the L4 tests: tiny TCP backends written for one purpose each, a fake
//! status port, and a balancer started on OS-chosen ports.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;
use roundhouse::l4::{TcpBalancer, TcpConfig};

/// How long any test socket waits before the test fails instead of hanging.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind port 0")
}

/// Accepts connections forever on its own thread, each served by `serve` on another.
fn serve_forever(listener: TcpListener, serve: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let addr = listener.local_addr().unwrap();
    let serve = Arc::new(serve);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let serve = Arc::clone(&serve);
            thread::spawn(move || serve(stream));
        }
    });
    addr
}

/// Sends back every byte it receives; after the client's FIN it sends its own.
pub fn echo_server() -> SocketAddr {
    serve_forever(listener(), |stream| {
        let mut reader = stream.try_clone().unwrap();
        let mut writer = stream;
        let _ = std::io::copy(&mut reader, &mut writer);
        let _ = writer.shutdown(Shutdown::Write);
    })
}

/// Reads until the client's FIN and only then answers `got N bytes`: it can answer
/// only if the half-close reached it.
pub fn answer_after_eof_server() -> SocketAddr {
    serve_forever(listener(), |mut stream| {
        let mut received = Vec::new();
        if stream.read_to_end(&mut received).is_ok() {
            let _ = write!(stream, "got {} bytes", received.len());
        }
    })
}

/// Accepts and never says anything; reads until the other side goes away.
pub fn silent_server() -> SocketAddr {
    serve_forever(listener(), |mut stream| {
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
    })
}

/// A port on which nothing listens: connecting is refused at once.
pub fn refusing_addr() -> SocketAddr {
    let listener = listener();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// A fake status port answering `LOAD` with whatever `value` holds at that moment, and
/// recording every command it was sent.
pub struct FakeStatus {
    pub addr: SocketAddr,
    pub value: Arc<Mutex<String>>,
    pub commands: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl FakeStatus {
    pub fn start(initial: &str) -> Self {
        let value = Arc::new(Mutex::new(initial.to_string()));
        let commands = Arc::new(Mutex::new(Vec::new()));
        let (answer, seen) = (Arc::clone(&value), Arc::clone(&commands));
        let addr = serve_forever(listener(), move |mut stream| {
            let mut command = [0u8; 16];
            let read = stream.read(&mut command).unwrap_or(0);
            seen.lock().push(command[..read].to_vec());
            let text = answer.lock().clone();
            let _ = stream.write_all(text.as_bytes());
        });
        FakeStatus {
            addr,
            value,
            commands,
        }
    }

    pub fn set(&self, value: &str) {
        *self.value.lock() = value.to_string();
    }
}

/// Starts a TCP balancer over `backends` (written as on the command line).
pub fn balancer(backends: &[String], adjust: impl FnOnce(&mut TcpConfig)) -> TcpBalancer {
    let mut config = TcpConfig {
        backends: backends.iter().map(|spec| spec.parse().unwrap()).collect(),
        ..TcpConfig::default()
    };
    adjust(&mut config);
    TcpBalancer::start(listener(), Some(listener()), &config).expect("balancer starts")
}

/// Connects, sends `data`, half-closes, and reads the answer until the server closes.
pub fn exchange(addr: SocketAddr, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.write_all(data)?;
    stream.shutdown(Shutdown::Write)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(answer)
}

/// A deterministic stream of pseudo-random bytes (xorshift64), so a large transfer
/// can be checked byte for byte without keeping a copy of it.
pub struct Pattern(u64);

impl Pattern {
    pub fn new(seed: u64) -> Self {
        Pattern(seed | 1)
    }

    pub fn fill(&mut self, buffer: &mut [u8]) {
        for chunk in buffer.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            chunk.copy_from_slice(&self.0.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// A `roundhouse` process started by a test, killed when dropped.
pub struct Process {
    pub child: std::process::Child,
    pub stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Process {
    /// Starts the binary with `args` (stdin closed, output piped).
    pub fn start(args: &[&str]) -> Self {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_roundhouse"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start roundhouse");
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        Process { child, stdout }
    }

    /// Reads lines until one contains `marker`, and returns the address after it.
    pub fn address_after(&mut self, marker: &str) -> SocketAddr {
        use std::io::BufRead;
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line).unwrap() == 0 {
                let mut stderr = String::new();
                let _ = self.child.stderr.take().unwrap().read_to_string(&mut stderr);
                panic!("roundhouse ended before printing {marker:?}: {stderr}");
            }
            if let Some((_, rest)) = line.split_once(marker) {
                return rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        }
    }

    /// Everything else the process prints until it exits.
    pub fn rest_of_output(&mut self) -> String {
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        rest
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
