//! 2,000 concurrent keep-alive connections against the real binary, with each front:
//! every request answered, with the thread count and memory reported and bounded (the
//! threaded front: a thread per connection; the event loop: a handful in all). Alone in
//! its own test binary because it makes thousands of threads.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::{each_front, get, read_reply, rss_kib_of, run_binary, wait_until};
use roundhouse::proxy::front::FrontKind;

#[test]
fn two_thousand_keep_alive_connections_are_all_answered_with_bounded_threads_and_memory() {
    each_front(two_thousand_connections);
}

fn two_thousand_connections(front: FrontKind) {
    let front_name = front.to_string();
    let running = run_binary(&[
        "--front",
        &front_name,
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
    // The simulated backends run in the same process; their threads are named after
    // them and are not the front's.
    let own_threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| !name.starts_with("backend-"))
        .count();
    let rss_mib = rss_kib_of(pid) / 1024;
    eprintln!(
        "--front {front}: 2000 keep-alive connections: {answered} answered, {threads} threads \
         ({own_threads} not the simulated backends'), RSS {rss_mib} MiB"
    );
    assert_eq!(answered, 2000);
    match front {
        // One thread per open connection, plus workers, backends' and housekeeping threads.
        FrontKind::Threads => assert!(threads <= 2000 + 64, "{threads} threads"),
        // 4 workers and at most 8 more (the loop, signals, health, load, log, main).
        FrontKind::Epoll => assert!(own_threads <= 4 + 8, "{own_threads} threads"),
    }
    // Each connection thread costs a small touched stack and an 8 KiB read buffer.
    assert!(rss_mib <= 96, "RSS {rss_mib} MiB");
    assert!(wait_until(Duration::from_secs(5), || get(addr, "/stats").status == 200));
}
