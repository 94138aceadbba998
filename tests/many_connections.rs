//! 2,000 concurrent keep-alive connections against the real binary: every request
//! answered, with the thread count and memory reported and bounded. Alone in its own
//! test binary because it makes thousands of threads.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::{get, read_reply, rss_kib_of, run_binary, wait_until};

#[test]
fn two_thousand_keep_alive_connections_are_all_answered_with_bounded_threads_and_memory() {
    let running = run_binary(&[
        "--listen",
        "127.0.0.1:0",
        "--sim-base-port",
        "0",
        "--sim-latency",
        "0..2",
        "--max-connections",
        "4096",
        "--queue",
        "4096",
    ]);
    let addr = running.addr;
    let pid = running.child.id();
    let mut connections: Vec<TcpStream> = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        connections.push(stream);
    }
    for stream in &mut connections {
        stream
            .write_all(b"GET /many HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
    }
    let mut answered = 0;
    for stream in &mut connections {
        assert_eq!(read_reply(stream, false).unwrap().status, 200);
        answered += 1;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let threads: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let rss_mib = rss_kib_of(pid) / 1024;
    eprintln!("2000 keep-alive connections: {answered} answered, {threads} threads, RSS {rss_mib} MiB");
    assert_eq!(answered, 2000);
    // One thread per open connection, plus workers, backends' and housekeeping threads.
    assert!(threads <= 2000 + 64, "{threads} threads");
    // Each connection thread costs a small touched stack and an 8 KiB read buffer.
    assert!(rss_mib <= 96, "RSS {rss_mib} MiB");
    assert!(wait_until(Duration::from_secs(5), || get(addr, "/stats").status == 200));
}
