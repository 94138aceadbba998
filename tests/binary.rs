//! The real binary: signals, bad configuration, memory under a hostile header.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use common::{each_front, front_flag, get, raw, rss_kib_of, run_binary, signal, wait_until};

const FAST: &[&str] = &["--listen", "127.0.0.1:0", "--sim-base-port", "0"];

fn args(extra: &[&'static str]) -> Vec<&'static str> {
    FAST.iter().chain(extra).copied().collect()
}

#[test]
fn sigint_lets_the_request_in_flight_finish_then_exits_0() {
    each_front(|front| {
        let mut running = run_binary(&args(&[
            "--front",
            front_flag(front),
            "--sim-latency",
            "400..400",
        ]));
        let addr = running.addr;
        let in_flight = thread::spawn(move || get(addr, "/slow"));
        // Wait until a worker holds the request before signalling.
        assert!(wait_until(Duration::from_secs(10), || {
            get(addr, "/stats").json()["backends"]
                .as_array()
                .unwrap()
                .iter()
                .any(|backend| backend["in_flight"] == 1)
        }));
        signal(&running.child, "INT");
        let reply = in_flight.join().unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
        let status = running.child.wait().unwrap();
        assert_eq!(status.code(), Some(0));
        let mut rest = String::new();
        running.stdout.read_to_string(&mut rest).unwrap();
        assert!(
            rest.contains("drained; served 1 requests"),
            "summary line: {rest}"
        );
    });
}

fn exit_of(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_roundhouse"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_port_in_use_is_one_line_and_exit_2() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, stderr) = exit_of(&["--listen", &addr, "--sim-base-port", "0"]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("already in use") && stderr.contains("--listen"),
        "{stderr}"
    );
    // The same for a simulated backend's port.
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, stderr) = exit_of(&["--listen", "127.0.0.1:0", "--sim-base-port", &port]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--sim-base-port"), "{stderr}");
}

#[test]
fn bad_configuration_is_refused_with_exit_2_and_no_panic() {
    for bad in [
        vec!["--workers", "0"],
        vec!["--queue", "0"],
        vec!["--sim-latency", "800..200"],
        vec!["--backend", "localhost:9001"],
        vec!["--backend", "http://x:99999"],
        vec!["--timeout", "soon"],
        vec!["--strategy", "fastest"],
    ] {
        let mut all = vec!["--listen", "127.0.0.1:0", "--sim-base-port", "0"];
        all.extend(&bad);
        let (code, stderr) = exit_of(&all);
        assert_eq!(code, Some(2), "{bad:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{bad:?}: {stderr}");
        assert!(!stderr.trim().is_empty());
    }
}

#[test]
fn a_one_mebibyte_header_line_gets_431_and_rss_stays_flat() {
    each_front(|front| {
        let mut running = run_binary(&args(&["--front", front_flag(front), "--sim-latency", "0..1"]));
        let pid = running.child.id();
        assert_eq!(get(running.addr, "/warm").status, 200);
        let before = rss_kib_of(pid);
        let mut request = b"GET / HTTP/1.1\r\nHost: test\r\nX-Huge: ".to_vec();
        request.extend(std::iter::repeat_n(b'a', 1 << 20));
        request.extend_from_slice(b"\r\n\r\n");
        for _ in 0..4 {
            assert_eq!(raw(running.addr, &request).unwrap().status, 431);
        }
        let grown = rss_kib_of(pid).saturating_sub(before);
        // 4 MiB of headers were sent; at most the 16 KiB head limit is ever buffered.
        assert!(grown < 2048, "RSS grew by {grown} KiB");
        assert_eq!(get(running.addr, "/after").status, 200);
        running.child.kill().unwrap();
        running.child.wait().unwrap();
    });
}
