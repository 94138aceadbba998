//! The seed's load probe: ask each backend's status port `LOAD`, read back a number.
//!
//! OS concept: a periodic background thread polling over short-lived connections. The
//! protocol is the first seed's: connect to the status port, send the four bytes `LOAD`,
//! read until the server closes (end of file), and parse the text as a CPU percentage
//! such as `12.5`. Reading to end of file is the framing: the server's `close` says the
//! answer is complete.
//!
//! A status port that cannot be reached, answers late, or answers something that is not
//! a number counts as *busiest* (+infinity; the seed did the same), so `least-load`
//! sends new connections elsewhere at once instead of trusting an old, low number.
//! HTTP backends are still asked `GET /load` by `crate::proxy::backends::load`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;
use thiserror::Error;

use super::backends::TcpBackends;
use crate::proxy::backends::health::now_ms;
use crate::proxy::backends::poller;

/// Longest answer read from a status port; a number needs a few bytes.
const MAX_ANSWER: u64 = 64;

/// Why a probe gave no load.
#[derive(Debug, Error)]
pub enum ProbeError {
    #[error("status port unreachable: {0}")]
    Io(#[from] io::Error),
    #[error("status port answered {0:?}, not a percentage")]
    Garbled(String),
}

/// Asks `addr` for its load once, waiting at most `timeout` for each step.
pub fn probe(addr: SocketAddr, timeout: Duration) -> Result<f64, ProbeError> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(b"LOAD")?;
    // Our FIN tells a server that reads to end of file that the command is complete;
    // the seed's server, which reads once, is not bothered by it.
    let _ = stream.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    (&mut stream).take(MAX_ANSWER).read_to_end(&mut answer)?;
    parse_load(&answer)
}

/// Parses a status answer: a finite, non-negative decimal, surrounding space allowed.
pub fn parse_load(answer: &[u8]) -> Result<f64, ProbeError> {
    let text = String::from_utf8_lossy(answer);
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|load| load.is_finite() && *load >= 0.0)
        .ok_or_else(|| ProbeError::Garbled(text.into_owned()))
}

/// Starts the poller thread; it stops when `stop`'s sender is dropped.
pub fn start(
    backends: Arc<TcpBackends>,
    interval: Duration,
    stop: Receiver<()>,
) -> io::Result<JoinHandle<()>> {
    // A status port that takes longer than a second is not answering; a fixed limit
    // (not the interval) keeps a short test interval from failing every probe on a
    // busy machine.
    let timeout = Duration::from_secs(1);
    // `poller::spawn` waits on `stop` with a timeout: the timeout is the poller's clock,
    // the channel closing is its stop signal.
    poller::spawn("status-poller", interval, stop, move || {
        for index in 0..backends.len() {
            let Some(addr) = backends.target(index).status_addr else {
                continue;
            };
            let load = match probe(addr, timeout) {
                Ok(load) => load,
                Err(error) => {
                    log::debug!("load probe of {addr}: {error}");
                    f64::INFINITY
                }
            };
            backends.counters(index).load.store(load, now_ms());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    #[test]
    fn parses_only_percentages() {
        assert_eq!(parse_load(b"12.5").unwrap(), 12.5);
        assert_eq!(parse_load(b" 80\n").unwrap(), 80.0);
        assert!(matches!(parse_load(b"busy"), Err(ProbeError::Garbled(_))));
        assert!(matches!(parse_load(b"-1"), Err(ProbeError::Garbled(_))));
        assert!(matches!(parse_load(b"inf"), Err(ProbeError::Garbled(_))));
        assert!(matches!(parse_load(b""), Err(ProbeError::Garbled(_))));
    }

    #[test]
    fn probes_a_status_port_with_the_seed_protocol() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut command = Vec::new();
            stream.read_to_end(&mut command).unwrap();
            stream.write_all(b"37.5").unwrap();
            command
        });
        assert_eq!(probe(addr, Duration::from_secs(10)).unwrap(), 37.5);
        assert_eq!(server.join().unwrap(), b"LOAD");
        // Nobody listening any more: an error, which the poller turns into +infinity.
        assert!(matches!(
            probe(addr, Duration::from_secs(10)),
            Err(ProbeError::Io(_))
        ));
    }
}
