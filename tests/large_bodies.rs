//! 100 MiB up and 100 MiB down through the balancer, with memory bounded well under the
//! body size: uploads are spooled to a temporary file, downloads are streamed.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use roundhouse::http1::spool::BodyStream;
use roundhouse::http1::{Request, Response};
use roundhouse::proxy::front::server::{self, Handler, ServerConfig};

use common::{each_front, listener, read_reply, rss_kib};
use roundhouse::proxy::front::FrontKind;

const MIB: u64 = 1024 * 1024;

/// The byte at offset `index` of every test body: a pattern that catches reordering.
fn pattern(index: u64) -> u8 {
    (index % 251) as u8
}

/// 64 KiB of pattern plus one period, so any window of it starts anywhere in the period
/// (slices are compared and copied whole: fast even in a debug build).
fn reference() -> &'static [u8] {
    static REFERENCE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    REFERENCE.get_or_init(|| (0..64 * 1024 + 251).map(pattern).collect())
}

/// Reads `length` pattern bytes lazily.
struct PatternReader {
    position: u64,
    length: u64,
}

impl Read for PatternReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let count = (self.length - self.position).min(buffer.len().min(64 * 1024) as u64) as usize;
        let start = (self.position % 251) as usize;
        buffer[..count].copy_from_slice(&reference()[start..start + count]);
        self.position += count as u64;
        Ok(count)
    }
}

/// Counts bytes and checks each against the pattern.
fn verify(mut reader: impl Read) -> (u64, bool) {
    let mut buffer = vec![0u8; 64 * 1024];
    let (mut count, mut intact) = (0u64, true);
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => return (count, intact),
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => panic!("read failed after {count} bytes: {error}"),
        };
        let start = (count % 251) as usize;
        intact &= buffer[..read] == reference()[start..start + read];
        count += read as u64;
    }
}

/// A backend that streams pattern bodies out and verifies uploaded ones.
struct BigBackend;

impl Handler for BigBackend {
    fn handle(&self, request: Request) -> Response {
        let size_mib: u64 = request.query().and_then(|query| query.parse().ok()).unwrap_or(1);
        match request.path() {
            "/download" | "/chunked" => {
                let length = size_mib * MIB;
                let declared = (request.path() == "/download").then_some(length);
                let mut response = Response::new(StatusCode::OK);
                response.stream = Some(BodyStream::new(
                    Box::new(PatternReader { position: 0, length }),
                    declared,
                ));
                response
            }
            _ => {
                let (count, intact) = match &request.spooled {
                    Some(spooled) => verify(spooled.reader().unwrap()),
                    None => verify(request.body.as_slice()),
                };
                Response::text(
                    StatusCode::OK,
                    format!("{count} {intact} {}", request.spooled.is_some()),
                )
            }
        }
    }
}

fn start(
    front: FrontKind,
) -> (
    roundhouse::proxy::balancer::Balancer,
    roundhouse::proxy::front::ServerHandle,
) {
    start_with_workers(front, 4)
}

fn start_with_workers(
    front: FrontKind,
    workers: usize,
) -> (
    roundhouse::proxy::balancer::Balancer,
    roundhouse::proxy::front::ServerHandle,
) {
    let backend_listener = listener();
    let port = backend_listener.local_addr().unwrap().port();
    let config = ServerConfig {
        limits: roundhouse::http1::head::Limits {
            max_body: 300 * MIB,
            ..Default::default()
        },
        ..ServerConfig::default()
    };
    let backend = server::start(backend_listener, config, Arc::new(BigBackend)).unwrap();
    let mut balancer_config = roundhouse::proxy::balancer::BalancerConfig {
        backends: vec![format!("http://127.0.0.1:{port}").parse().unwrap()],
        ..Default::default()
    };
    balancer_config.server.limits.max_body = 200 * MIB;
    balancer_config.check.interval = Duration::ZERO;
    balancer_config.workers = workers;
    balancer_config.front = front;
    let balancer = roundhouse::proxy::balancer::Balancer::start(listener(), &balancer_config).unwrap();
    (balancer, backend)
}

#[test]
fn a_hundred_mebibytes_each_way_with_bounded_memory() {
    each_front(|front| {
        let (balancer, _backend) = start(front);
        let addr = balancer.local_addr();
        let before = rss_kib();

        // Upload: 100 MiB with Content-Length, written as it is generated.
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let length = 100 * MIB;
        write!(
            stream,
            "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {length}\r\n\r\n"
        )
        .unwrap();
        std::io::copy(&mut PatternReader { position: 0, length }, &mut stream).unwrap();
        let reply = read_reply(&mut stream, false).unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(
            reply.text().trim(),
            format!("{length} true true"),
            "arrived whole, in order, spooled"
        );
        let after_upload = rss_kib();

        // Download: 100 MiB with a known length, on the same keep-alive connection.
        stream
            .write_all(b"GET /download?100 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains(&format!("content-length: {length}")), "{head}");
        let (count, intact) = verify((&mut stream).take(length));
        assert_eq!(count, length);
        assert!(intact);
        let grown_mib = rss_kib().saturating_sub(before) / 1024;
        eprintln!(
            "RSS grew {} MiB after the upload and {grown_mib} MiB after both (bodies: 100 MiB each)",
            after_upload.saturating_sub(before) / 1024
        );
        // The test process holds the client, the balancer and the backend; each body
        // passes through 64 KiB buffers and 1 MiB thresholds.
        assert!(grown_mib < 40, "RSS grew {grown_mib} MiB for 200 MiB of bodies");
    });
}

#[test]
fn a_body_of_unknown_length_is_relayed_chunked() {
    each_front(|front| {
        let (balancer, _backend) = start(front);
        let mut stream = TcpStream::connect(balancer.local_addr()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        stream
            .write_all(b"GET /chunked?5 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut all = Vec::new();
        stream.read_to_end(&mut all).unwrap();
        let split = all.windows(4).position(|window| window == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&all[..split]).to_string();
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        // Decode the chunks.
        let mut body = Vec::new();
        let mut rest = &all[split..];
        loop {
            let line_end = rest.windows(2).position(|window| window == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16).unwrap();
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            body.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        let (count, intact) = verify(body.as_slice());
        assert_eq!(count, 5 * MIB);
        assert!(intact);
    });
}

#[test]
fn a_client_that_does_not_read_its_download_holds_no_worker() {
    each_front(|front| {
        // One worker. A client asks for 64 MiB and reads none of it: the answer cannot be
        // written, and whoever writes it waits until the client timeout (30 s).
        let (balancer, _backend) = start_with_workers(front, 1);
        let addr = balancer.local_addr();
        let mut stalled = TcpStream::connect(addr).unwrap();
        stalled
            .write_all(b"GET /download?64 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        // Once its first bytes arrive the worker has answered it, and is busy no more.
        let mut first = [0u8; 16];
        stalled.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stalled.read_exact(&mut first).unwrap();
        assert!(first.starts_with(b"HTTP/1.1 200"));
        // Another client is served by the same single worker, well before that timeout.
        let started = std::time::Instant::now();
        let mut other = TcpStream::connect(addr).unwrap();
        other.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        other
            .write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
            .unwrap();
        let reply = read_reply(&mut other, false).unwrap();
        assert_eq!(reply.status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the only worker waited {:?} for a client that does not read",
            started.elapsed()
        );
        drop(stalled);
    });
}
