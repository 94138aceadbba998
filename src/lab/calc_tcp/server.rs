//! `roundhouse backend --calc-tcp`: the first seed's calculator server.
//!
//! OS concept: a process measuring itself. Two ports, two one-shot servers
//! (`one_shot.rs`):
//! - the service port reads an expression (`3 + 4`, a trailing newline is fine),
//!   computes it with the same safe parser as the HTTP backends' `/calc`
//!   (`crate::lab::calc`), answers `7` or `Erro: <message>`, and closes;
//! - the status port answers `LOAD` with this process's CPU percentage since the
//!   previous `LOAD`, read from the kernel's accounting (`crate::sys::cpu`).
//!
//! `--cpu-work MS` spins the CPU for that long on every expression, so load really
//! rises with traffic and `roundhouse tcp --strategy least-load` has something to see.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::one_shot::{self, OneShotConfig, OneShotServer};
use crate::lab::calc;
use crate::sys::cpu::{self, CpuMeter};

/// How a calculator server behaves.
#[derive(Debug, Clone)]
pub struct CalcServerConfig {
    /// CPU time spent on purpose for each expression.
    pub cpu_work: Duration,
    /// Connections answered at once on the service port.
    pub max_connections: usize,
}

impl Default for CalcServerConfig {
    fn default() -> Self {
        CalcServerConfig {
            cpu_work: Duration::ZERO,
            max_connections: 1024,
        }
    }
}

/// The answer to one expression, as the seed wrote it: the number, or `Erro: ...`.
pub fn answer(message: &[u8]) -> String {
    let Ok(text) = std::str::from_utf8(message) else {
        return "Erro: the expression is not UTF-8 text".into();
    };
    match calc::evaluate(text.trim()) {
        Ok(value) => calc::format_number(value),
        Err(error) => format!("Erro: {error}"),
    }
}

/// The status port's answer: the load for `LOAD`, an error for anything else.
fn status_answer(meter: &CpuMeter, message: &[u8]) -> String {
    match String::from_utf8_lossy(message).trim() {
        "LOAD" => format!("{:.1}", meter.read()),
        other => format!("Erro: unknown command {other:?}; the status port understands LOAD"),
    }
}

/// A running calculator server: its service port and, optionally, its status port.
pub struct CalcServer {
    service: OneShotServer,
    status: Option<OneShotServer>,
    served: Arc<AtomicU64>,
}

/// Starts the calculator on `service`, and the load probe on `status` if given.
pub fn start(
    service: TcpListener,
    status: Option<TcpListener>,
    config: &CalcServerConfig,
) -> io::Result<CalcServer> {
    let served = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&served);
    let work = config.cpu_work;
    let calculate = move |message: &[u8]| {
        cpu::burn(work);
        counter.fetch_add(1, Ordering::Relaxed);
        answer(message)
    };
    let service = one_shot::start(
        service,
        OneShotConfig {
            name: "calc".into(),
            // One byte more than the parser accepts, so a longer expression is
            // reported as too long instead of being cut silently.
            read_bytes: calc::MAX_INPUT_BYTES + 1,
            max_connections: config.max_connections,
            timeout: Duration::from_secs(10),
        },
        Arc::new(calculate),
    )?;
    let status = status
        .map(|listener| {
            let meter = CpuMeter::default();
            one_shot::start(
                listener,
                OneShotConfig {
                    name: "status".into(),
                    read_bytes: 64,
                    max_connections: 64,
                    timeout: Duration::from_secs(2),
                },
                Arc::new(move |message: &[u8]| status_answer(&meter, message)),
            )
        })
        .transpose()?;
    Ok(CalcServer {
        service,
        status,
        served,
    })
}

impl CalcServer {
    pub fn service_addr(&self) -> SocketAddr {
        self.service.local_addr()
    }

    pub fn status_addr(&self) -> Option<SocketAddr> {
        self.status.as_ref().map(OneShotServer::local_addr)
    }

    /// Expressions answered so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Stops accepting on both ports.
    pub fn shutdown(mut self) {
        self.service.shutdown();
        if let Some(status) = self.status.as_mut() {
            status.shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_like_the_seed() {
        assert_eq!(answer(b"3 + 4"), "7");
        assert_eq!(answer(b"3 + 4\n"), "7");
        assert_eq!(answer(b"10 / 4\r\n"), "2.5");
        assert_eq!(answer(b"1 / 0"), "Erro: division by zero (at position 2)");
        assert!(answer(b"3 +").starts_with("Erro: "));
        assert!(answer(&[b'1'; 1025]).starts_with("Erro: expression longer than"));
        assert_eq!(answer(&[0xff, 0xfe]), "Erro: the expression is not UTF-8 text");
    }

    #[test]
    fn the_status_port_understands_only_load() {
        let meter = CpuMeter::default();
        let load: f64 = status_answer(&meter, b"LOAD").parse().unwrap();
        assert!(load >= 0.0);
        assert!(status_answer(&meter, b"HELLO").starts_with("Erro: unknown command"));
    }
}
