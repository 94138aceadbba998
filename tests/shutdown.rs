//! SIGTERM in the middle of a 64-client load: every request the balancer accepted gets
//! a complete response and an access-log line, and the process exits 0 in time.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{each_front, front_flag, read_reply, run_binary, signal, wait_until};

#[test]
fn sigterm_under_load_loses_no_accepted_request_and_no_log_line() {
    each_front(|front| {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        let mut running = run_binary(&[
            "--front",
            front_flag(front),
            "--listen",
            "127.0.0.1:0",
            "--sim-base-port",
            "0",
            "--sim-latency",
            "5..20",
            "--queue",
            "128",
            "--access-log",
            log.to_str().unwrap(),
            "--drain-timeout",
            "10s",
        ]);
        let addr = running.addr;
        let answered = Arc::new(AtomicU64::new(0));
        let clients: Vec<_> = (0..64)
            .map(|_| {
                let answered = Arc::clone(&answered);
                thread::spawn(move || {
                    let mut complete = 0u64;
                    let Ok(mut stream) = TcpStream::connect(addr) else {
                        return complete;
                    };
                    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                    loop {
                        if stream
                            .write_all(b"GET /work HTTP/1.1\r\nHost: t\r\n\r\n")
                            .is_err()
                        {
                            return complete;
                        }
                        // A connection closed before an answer began is a request the
                        // balancer never read (the keep-alive race every server has).
                        let Ok(reply) = read_reply(&mut stream, false) else {
                            return complete;
                        };
                        assert_eq!(reply.status, 200, "{}", reply.text());
                        let length: usize = reply.header("content-length").unwrap().parse().unwrap();
                        assert_eq!(reply.body.len(), length, "a complete body");
                        assert!(serde_json::from_slice::<serde_json::Value>(&reply.body).is_ok());
                        complete += 1;
                        answered.fetch_add(1, Ordering::Relaxed);
                        if reply.header("connection") == Some("close") {
                            return complete;
                        }
                    }
                })
            })
            .collect();
        assert!(wait_until(Duration::from_secs(20), || answered
            .load(Ordering::Relaxed)
            >= 500));
        let signalled = Instant::now();
        signal(&running.child, "TERM");
        let status = running.child.wait().unwrap();
        let exit_after = signalled.elapsed();
        let complete: u64 = clients.into_iter().map(|client| client.join().unwrap()).sum();
        assert_eq!(status.code(), Some(0));
        assert!(
            exit_after < Duration::from_secs(10),
            "exited {exit_after:?} after SIGTERM"
        );
        let lines = std::fs::read_to_string(&log).unwrap();
        let logged_ok = lines
            .lines()
            .filter(|line| line.contains("\"GET /work HTTP/1.1\" 200 "))
            .count() as u64;
        eprintln!("{complete} complete responses, {logged_ok} access-log lines, exit 0 after {exit_after:?}");
        assert_eq!(
            logged_ok, complete,
            "one access-log line for every answered request"
        );
    });
}
