//! Closed-loop keep-alive clients for tests that change processes under load: every
//! answer, refused connection and failure counted, nothing retried.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::read_reply;

/// A balancer for load through process changes: OS-chosen ports, fast simulated
/// backends, room in the queue for every client, no access log.
pub const BALANCER: &[&str] = &[
    "--listen",
    "127.0.0.1:0",
    "--sim-base-port",
    "0",
    "--sim-latency",
    "2..10",
    "--queue",
    "256",
    "--workers",
    "8",
    "--access-log",
    "off",
];

/// What one client saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub answered: u64,
    /// Connections refused by the kernel: nothing was listening.
    pub refused: u64,
    /// Every other failure: an error status, a reset, a connection closed before its
    /// answer. Each with a description.
    pub failed: Vec<String>,
    /// New connections after an answer with `Connection: close`.
    pub reconnects: u64,
}

/// `clients` closed-loop keep-alive clients, each on its own connection until an answer
/// says `Connection: close`, then on a new one.
pub struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    clients: Vec<JoinHandle<Tally>>,
}

impl Load {
    pub fn start(addr: SocketAddr, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let clients = (0..clients)
            .map(|_| {
                let (stop, answered) = (Arc::clone(&stop), Arc::clone(&answered));
                thread::spawn(move || client(addr, &stop, &answered))
            })
            .collect();
        Load {
            stop,
            answered,
            clients,
        }
    }

    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    pub fn finish(mut self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        for client in std::mem::take(&mut self.clients) {
            let tally = client.join().unwrap();
            total.answered += tally.answered;
            total.refused += tally.refused;
            total.reconnects += tally.reconnects;
            total.failed.extend(tally.failed);
        }
        total
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn client(addr: SocketAddr, stop: &AtomicBool, answered: &AtomicU64) -> Tally {
    let mut tally = Tally::default();
    let mut connection: Option<TcpStream> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut stream = match connection.take() {
            Some(stream) => stream,
            None => match TcpStream::connect(addr) {
                Ok(stream) => stream,
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
                    tally.refused += 1;
                    thread::sleep(Duration::from_millis(1));
                    continue;
                }
                Err(error) => {
                    tally.failed.push(format!("connect: {error}"));
                    continue;
                }
            },
        };
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        if let Err(error) = stream.write_all(b"GET /work HTTP/1.1\r\nHost: t\r\n\r\n") {
            tally.failed.push(format!("send: {error}"));
            continue;
        }
        match read_reply(&mut stream, false) {
            Ok(reply) if reply.status == 200 => {
                tally.answered += 1;
                answered.fetch_add(1, Ordering::Relaxed);
                if reply.header("connection") == Some("close") {
                    tally.reconnects += 1;
                } else {
                    connection = Some(stream);
                }
            }
            Ok(reply) => tally
                .failed
                .push(format!("status {}: {}", reply.status, reply.text())),
            Err(error) => tally.failed.push(format!("answer: {error}")),
        }
    }
    tally
}
