//! Under a descriptor limit of 1,024 (soft and hard, set with prlimit(1) on the real
//! binary, simulated backends in the same process), each front holds 900 keep-alive
//! clients, one descriptor each, and answers every client past what the limit holds
//! with `503 Retry-After` and a clean close: never a reset, never an unanswered
//! connection. The start-up line says how many fit. Alone in its own test binary
//! because it opens over a thousand connections.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{each_front, front_flag, read_reply, run_binary_under, wait_until};
use roundhouse::proxy::front::FrontKind;

const KEPT: usize = 900;
const PAST: usize = 250;

#[test]
fn nine_hundred_clients_fit_in_1024_descriptors_and_the_rest_get_503_not_a_reset() {
    // The test's own side of every connection needs a descriptor too.
    let own = roundhouse::sys::limits::raise_descriptor_limit();
    if own.soft < 2 * (KEPT + PAST) as u64 + 256 {
        eprintln!(
            "skipped: this test process may open only {} descriptors (it needs {})",
            own.soft,
            2 * (KEPT + PAST) + 256
        );
        return;
    }
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: prlimit(1) (util-linux) is not installed");
        return;
    }
    each_front(under_1024_descriptors);
}

fn under_1024_descriptors(front: FrontKind) {
    let mut running = run_binary_under(
        &["prlimit", "--nofile=1024:1024", "--"],
        &[
            "--front",
            front_flag(front),
            "--listen",
            "127.0.0.1:0",
            "--sim-base-port",
            "0",
            "--sim-latency",
            "0..1",
            "--max-connections",
            "4096",
            "--queue",
            "4096",
            "--access-log",
            "off",
        ],
    );
    let addr = running.addr;
    // The one line that says what fits, read from the log on stderr.
    let stderr = running.child.stderr.take().unwrap();
    let (lines, said) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut shortfall = String::new();
    assert!(
        wait_until(Duration::from_secs(5), || {
            shortfall.extend(said.try_iter().filter(|line| line.contains("descriptor limit")));
            !shortfall.is_empty()
        }),
        "no line about the descriptor limit"
    );
    assert!(
        shortfall.contains("(1024) holds 936 client connections, not --max-connections 4096"),
        "{shortfall}"
    );

    let mut kept: Vec<TcpStream> = (0..KEPT).map(|_| connect(addr)).collect();
    for stream in &mut kept {
        stream
            .write_all(b"GET /kept HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
    }
    for stream in &mut kept {
        assert_eq!(read_reply(stream, false).unwrap().status, 200);
    }
    // Past the limit: every client gets an answer, then a clean end of stream.
    let mut past: Vec<TcpStream> = (0..PAST).map(|_| connect(addr)).collect();
    for stream in &mut past {
        let _ = stream.write_all(b"GET /past HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    let (mut served, mut refused) = (0, 0);
    for stream in &mut past {
        let reply = read_reply(stream, false).expect("an answer, not a reset");
        match reply.status {
            200 => served += 1,
            503 => {
                assert_eq!(reply.header("retry-after"), Some("1"));
                let mut rest = Vec::new();
                stream
                    .read_to_end(&mut rest)
                    .expect("a clean close after the 503, not a reset");
                // As a client does after `connection: close`; it ends the lingering.
                let _ = stream.shutdown(std::net::Shutdown::Both);
                refused += 1;
            }
            other => panic!("status {other}: {}", reply.text()),
        }
    }
    eprintln!(
        "--front {front}: {KEPT} kept clients answered; of {PAST} more, {served} served and {refused} refused with 503"
    );
    // 936 fit: 36 of the later clients are served, the others refused.
    assert_eq!(served + refused, PAST);
    assert!(refused >= PAST - 40, "{refused} refused");
    // The kept connections still work.
    for stream in kept.iter_mut().take(10) {
        stream
            .write_all(b"GET /again HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(read_reply(stream, false).unwrap().status, 200);
    }
}

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream
}
