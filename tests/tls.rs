//! HTTPS: the listener with a certificate (curl, openssl and rustls clients), reloads
//! that keep the old certificate when the new one is bad, handshake counters, HTTPS
//! backends verified against a CA, and a WebSocket over TLS. What the listener does is
//! checked with both fronts: the threaded one handshakes on each connection's thread,
//! the event loop drives the sessions itself (`each_front`).

mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cluster_on, each_front, front_flag, wait_until};
use roundhouse::http1::transport::Duplex;
use roundhouse::lab::sim_backend::{SimBackend, SimConfig};
use roundhouse::proxy::backends::checker::CheckPolicy;
use roundhouse::proxy::balancer::{Balancer, BalancerConfig};
use roundhouse::proxy::front::FrontKind;
use roundhouse::proxy::front::server::{self, ServerConfig};
use roundhouse::proxy::tls::self_signed::write_self_signed;
use roundhouse::proxy::tls::{BackendTls, CertError, TlsAcceptor, TlsFiles, TlsStream};
use serde_json::Value;

/// A fresh self-signed pair for localhost in its own directory.
fn pair(dir: &Path, name: &str) -> TlsFiles {
    let (cert, key) = write_self_signed(&dir.join(name)).unwrap();
    TlsFiles { cert, key }
}

/// A certificate for localhost that expired in 2020.
fn expired(dir: &Path) -> TlsFiles {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2019, 1, 1);
    params.not_after = rcgen::date_time_ymd(2020, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let dir = dir.join("expired");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}

/// Puts `from`'s certificate and `key_from`'s key where `to` points.
fn install(to: &TlsFiles, from: &TlsFiles, key_from: &TlsFiles) {
    std::fs::copy(&from.cert, &to.cert).unwrap();
    std::fs::copy(&key_from.key, &to.key).unwrap();
}

fn https_cluster(
    front: FrontKind,
    files: &TlsFiles,
    adjust: impl FnOnce(&mut BalancerConfig),
) -> common::Cluster {
    let files = files.clone();
    cluster_on(front, 1, 0..=0, move |config| {
        config.tls = Some(files);
        adjust(config);
    })
}

/// A TLS connection to `addr` that trusts only `ca` (the name checked is localhost).
fn connect(addr: SocketAddr, ca: &Path) -> Result<TlsStream, String> {
    let trust = BackendTls::new(Some(ca)).unwrap();
    let socket = TcpStream::connect(addr).unwrap();
    trust
        .connect(socket, "localhost", Instant::now() + Duration::from_secs(10))
        .map_err(|error| error.to_string())
}

/// One GET on an open TLS connection; returns the status and the body.
fn get(stream: &TlsStream, path: &str) -> (u16, String) {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n").as_bytes())
        .unwrap();
    stream
        .socket()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(end) = received.windows(4).position(|window| window == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .map_or(0, |value| value.trim().parse().unwrap());
            if received.len() >= end + 4 + length {
                let status = head[9..12].parse().unwrap();
                let body = String::from_utf8_lossy(&received[end + 4..end + 4 + length]).into_owned();
                return (status, body);
            }
        }
        let count = Duplex::read(stream, &mut buffer).unwrap();
        assert!(count > 0, "closed mid-answer");
        received.extend_from_slice(&buffer[..count]);
    }
}

fn stats(addr: SocketAddr, ca: &Path) -> Value {
    let stream = connect(addr, ca).unwrap();
    serde_json::from_str(&get(&stream, "/stats").1).unwrap()
}

fn tls_stat(addr: SocketAddr, ca: &Path, field: &str) -> u64 {
    stats(addr, ca)["tls"][field].as_u64().unwrap()
}

fn has(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok() || Command::new(tool).arg("version").output().is_ok()
}

/// Whether curl is here; without it the test says it skipped (`.ci/run` installs it).
fn curl_here() -> bool {
    let here = has("curl");
    if !here {
        eprintln!("skipped: curl is not installed");
    }
    here
}

#[test]
fn curl_with_cacert_gets_200_over_https_and_the_backend_hears_https() {
    if !curl_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = pair(dir.path(), "a");
    each_front(|front| {
        let cluster = https_cluster(front, &files, |_| {});
        let url = format!("https://localhost:{}/hello", cluster.addr.port());
        let output = Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&files.cert)
            .args(["-w", "\n%{http_code} %{http_version}", &url])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.ends_with("\n200 1.1"),
            "{text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(text.contains("\"x-forwarded-proto\": \"https\""), "{text}");
        assert!(text.contains("proto=https"), "{text}");
        // Without the CA, curl refuses the certificate: it really is the one we gave.
        let refused = Command::new("curl").args(["-sS", &url]).output().unwrap();
        assert!(!refused.status.success());
    });
}

#[test]
fn tls_1_1_is_refused_and_counted_while_1_2_and_1_3_are_served() {
    let Ok(help) = Command::new("openssl").args(["s_client", "-help"]).output() else {
        eprintln!("skipped: openssl is not installed");
        return;
    };
    if !String::from_utf8_lossy(&help.stderr).contains("-tls1_1") {
        eprintln!("skipped: this openssl has no -tls1_1 to try with");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = pair(dir.path(), "a");
    each_front(|front| {
        let cluster = https_cluster(front, &files, |_| {});
        let connect = format!("127.0.0.1:{}", cluster.addr.port());
        let s_client = |version: &str| {
            // SECLEVEL=0 lets this openssl offer TLS 1.1 at all, so the refusal is ours.
            Command::new("openssl")
                .args([
                    "s_client",
                    version,
                    "-cipher",
                    "DEFAULT:@SECLEVEL=0",
                    "-connect",
                    &connect,
                ])
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap()
        };
        let old = s_client("-tls1_1");
        let text = String::from_utf8_lossy(&old.stderr).to_string() + &String::from_utf8_lossy(&old.stdout);
        assert!(!old.status.success(), "TLS 1.1 must fail: {text}");
        assert!(text.contains("alert"), "the server refused with an alert: {text}");
        for version in ["-tls1_2", "-tls1_3"] {
            let output = s_client(version);
            let text = String::from_utf8_lossy(&output.stdout);
            assert!(
                text.contains("Verification") || text.contains("Cipher is"),
                "{version}: {text}"
            );
            assert!(
                !text.contains("Cipher is (NONE)"),
                "{version} must be served: {text}"
            );
        }
        assert_eq!(tls_stat(cluster.addr, &files.cert, "handshakes_failed"), 1);
    });
}

#[test]
fn a_mismatched_or_expired_pair_on_reload_keeps_the_old_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let served = pair(dir.path(), "served");
    let first = pair(dir.path(), "first");
    install(&served, &first, &first);
    let other = pair(dir.path(), "other");
    each_front(|front| {
        install(&served, &first, &first);
        let cluster = https_cluster(front, &served, |_| {});
        let addr = cluster.addr;
        let open = connect(addr, &first.cert).unwrap();
        assert_eq!(get(&open, "/hello").0, 200);

        // Other's certificate with first's key: refused, and first's certificate stays.
        install(&served, &other, &first);
        let error = cluster.balancer.reload_tls().unwrap().unwrap_err();
        assert!(matches!(error, CertError::Mismatch { .. }), "{error}");
        assert!(
            error.to_string().contains("does not belong to the certificate"),
            "{error}"
        );
        assert!(connect(addr, &first.cert).is_ok());

        let old = expired(dir.path());
        install(&served, &old, &old);
        let error = cluster.balancer.reload_tls().unwrap().unwrap_err();
        assert!(error.to_string().contains("expired on 2020-01-01"), "{error}");
        assert!(connect(addr, &first.cert).is_ok());

        // A good pair takes over for new connections; the open one keeps its session.
        install(&served, &other, &other);
        cluster.balancer.reload_tls().unwrap().unwrap();
        assert!(connect(addr, &first.cert).is_err());
        assert!(connect(addr, &other.cert).is_ok());
        assert_eq!(get(&open, "/hello").0, 200);
        let tls = &stats(addr, &other.cert)["tls"];
        assert_eq!(
            (tls["reloads"].as_u64(), tls["reload_failures"].as_u64()),
            (Some(1), Some(2))
        );
    });
}

#[test]
fn a_client_that_trickles_ciphertext_is_timed_out_like_a_slow_client() {
    let dir = tempfile::tempdir().unwrap();
    let files = pair(dir.path(), "a");
    each_front(|front| {
        let cluster = https_cluster(front, &files, |config| {
            config.server.client_timeout = Duration::from_millis(500);
        });
        let session = connect(cluster.addr, &files.cert).unwrap();
        let socket = session.socket();
        // The header of a full-size application-data record, then its bytes one at a
        // time, each well inside the client timeout: no record ever completes, so no
        // plaintext ever comes out. Once every read(2) was within the socket's timeout
        // the server's TLS read never returned, however long the head took.
        let out: &TcpStream = socket;
        out.write_all(&[0x17, 0x03, 0x03, 0x40, 0x00]).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let input: &TcpStream = socket;
        let mut answer = [0u8; 256];
        let closed = loop {
            if Instant::now() > deadline {
                break false;
            }
            if out.write_all(&[0]).is_err() {
                break true;
            }
            match input.read(&mut answer) {
                // Session tickets, then the encrypted 408 and close_notify: read on.
                Ok(count) if count > 0 => {}
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                // The end of the stream or a reset: the server let the connection go.
                _ => break true,
            }
        };
        assert!(closed, "{front:?}: still open 10 s into a 0.5 s client timeout");
    });
}

#[test]
fn a_slow_handshake_times_out_like_a_slow_client_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let files = pair(dir.path(), "a");
    each_front(|front| {
        let cluster = https_cluster(front, &files, |config| {
            config.server.client_timeout = Duration::from_millis(300);
        });
        let mut silent = TcpStream::connect(cluster.addr).unwrap();
        silent.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut byte = [0u8; 1];
        // Closed by the server after the client timeout, without a worker involved.
        assert!(matches!(
            std::io::Read::read(&mut silent, &mut byte),
            Ok(0) | Err(_)
        ));
        assert!(wait_until(Duration::from_secs(5), || tls_stat(
            cluster.addr,
            &files.cert,
            "handshakes_timed_out"
        ) == 1));
        let metrics = connect(cluster.addr, &files.cert).unwrap();
        let page = get(&metrics, "/metrics").1;
        assert!(
            page.contains("roundhouse_tls_handshakes_total{outcome=\"timed_out\"} 1"),
            "{page}"
        );
    });
}

#[test]
fn connections_closed_right_after_the_handshake_or_the_connect_are_let_go_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let files = pair(dir.path(), "a");
    each_front(|front| {
        // A client timeout far longer than the wait below: only noticing the close counts.
        let cluster = https_cluster(front, &files, |config| {
            config.server.client_timeout = Duration::from_secs(60);
        });
        for _ in 0..20 {
            drop(connect(cluster.addr, &files.cert).unwrap());
            drop(TcpStream::connect(cluster.addr).unwrap());
        }
        assert!(
            wait_until(Duration::from_secs(5), || cluster.balancer.open_connections()
                == 0),
            "{} connections still open",
            cluster.balancer.open_connections()
        );
        assert_eq!(tls_stat(cluster.addr, &files.cert, "handshakes_timed_out"), 0);
    });
}

/// Reads from `stream` until `done` says the bytes so far are enough (or 10 s pass).
fn read_until(stream: &TlsStream, done: impl Fn(&str) -> bool) -> String {
    stream
        .socket()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while !done(&String::from_utf8_lossy(&received)) {
        match Duplex::read(stream, &mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(count) => received.extend_from_slice(&buffer[..count]),
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

#[test]
fn pipelined_requests_and_100_continue_are_served_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let files = pair(dir.path(), "a");
    each_front(|front| {
        let cluster = https_cluster(front, &files, |_| {});
        let stream = connect(cluster.addr, &files.cert).unwrap();
        // The client waits for `100 Continue` before it sends its body.
        let post =
            "POST /hello HTTP/1.1\r\nhost: localhost\r\nexpect: 100-continue\r\ncontent-length: 5\r\n\r\n";
        stream.write_all(post.as_bytes()).unwrap();
        let interim = read_until(&stream, |text| text.contains("\r\n\r\n"));
        assert!(interim.starts_with("HTTP/1.1 100 Continue\r\n"), "{interim}");
        stream.write_all(b"hello").unwrap();
        let answer = read_until(&stream, |text| text.contains("\"body_bytes\": 5"));
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        // Two requests in one write: both answered, in order, then closed as asked.
        let two = "GET /first HTTP/1.1\r\nhost: localhost\r\n\r\n\
                   GET /second HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";
        stream.write_all(two.as_bytes()).unwrap();
        let answers = read_until(&stream, |_| false);
        assert_eq!(answers.matches("HTTP/1.1 200 OK").count(), 2, "{answers}");
        let (first, second) = (answers.find("/first").unwrap(), answers.find("/second").unwrap());
        assert!(first < second, "answered in order: {answers}");
    });
}

/// The byte at `index` of a large test body: a pattern that shows loss or reordering.
fn pattern(index: usize) -> u8 {
    (index % 251) as u8
}

/// A backend streaming `?N` MiB of pattern: `/length` with a Content-Length, anything
/// else chunked.
struct Patterns;

struct PatternReader(usize, usize);

impl std::io::Read for PatternReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let count = (self.1 - self.0).min(buffer.len());
        for (offset, byte) in buffer[..count].iter_mut().enumerate() {
            *byte = pattern(self.0 + offset);
        }
        self.0 += count;
        Ok(count)
    }
}

impl server::Handler for Patterns {
    fn handle(&self, request: roundhouse::http1::Request) -> roundhouse::http1::Response {
        let length = request.query().and_then(|query| query.parse().ok()).unwrap_or(1) << 20;
        let declared = (request.path() == "/length").then_some(length as u64);
        let mut response = roundhouse::http1::Response::new(http::StatusCode::OK);
        response.stream = Some(roundhouse::http1::spool::BodyStream::new(
            Box::new(PatternReader(0, length)),
            declared,
        ));
        response
    }
}

/// An HTTPS balancer in front of a `Patterns` backend on `port`.
fn patterns_balancer(front: FrontKind, files: &TlsFiles, port: u16, workers: usize) -> Balancer {
    let config = BalancerConfig {
        backends: vec![format!("http://127.0.0.1:{port}").parse().unwrap()],
        tls: Some(files.clone()),
        front,
        workers,
        check: CheckPolicy {
            interval: Duration::ZERO,
            ..CheckPolicy::default()
        },
        ..BalancerConfig::default()
    };
    Balancer::start(common::listener(), &config).unwrap()
}

#[test]
fn an_https_client_that_does_not_read_its_download_holds_no_worker() {
    let dir = tempfile::tempdir().unwrap();
    let files = pair(dir.path(), "a");
    let backend_listener = common::listener();
    let port = backend_listener.local_addr().unwrap().port();
    let backend = server::start(backend_listener, ServerConfig::default(), Arc::new(Patterns)).unwrap();
    each_front(|front| {
        // One worker; a client asks for 64 MiB and reads only the first bytes.
        let balancer = patterns_balancer(front, &files, port, 1);
        let stalled = connect(balancer.local_addr(), &files.cert).unwrap();
        stalled
            .write_all(b"GET /length?64 HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .unwrap();
        let first = read_until(&stalled, |text| text.len() >= 12);
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
        // The same single worker serves another client meanwhile.
        let started = Instant::now();
        let other = connect(balancer.local_addr(), &files.cert).unwrap();
        other
            .write_all(b"GET /length?0 HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .unwrap();
        let answer = read_until(&other, |_| false);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the only worker waited {:?} for a client that does not read",
            started.elapsed()
        );
        drop(stalled);
    });
    drop(backend);
}

#[test]
fn large_answers_arrive_intact_over_https_on_one_kept_alive_connection() {
    if !curl_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = pair(dir.path(), "a");
    let backend_listener = common::listener();
    let port = backend_listener.local_addr().unwrap().port();
    let backend = server::start(backend_listener, ServerConfig::default(), Arc::new(Patterns)).unwrap();
    let expected: Vec<u8> = (0..6 << 20).map(pattern).collect();
    each_front(|front| {
        let balancer = patterns_balancer(front, &files, port, 4);
        let base = format!("https://localhost:{}", balancer.local_addr().port());
        let (with_length, chunked) = (dir.path().join("length"), dir.path().join("chunked"));
        let output = Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&files.cert)
            .arg(format!("{base}/length?6"))
            .arg("-o")
            .arg(&with_length)
            .arg(format!("{base}/chunked?6"))
            .arg("-o")
            .arg(&chunked)
            .args(["-w", "%{http_code} %{num_connects}\n"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            text,
            "200 1\n200 0\n",
            "two 200s, the second on the first's connection: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        for path in [&with_length, &chunked] {
            let body = std::fs::read(path).unwrap();
            assert_eq!(body.len(), expected.len(), "{path:?}");
            assert!(body == expected, "{path:?}: the bytes differ from the pattern");
        }
    });
    drop(backend);
}

/// A simulated backend that speaks only HTTPS, with `files`.
fn https_backend(files: &TlsFiles) -> (server::ServerHandle, Arc<TlsAcceptor>) {
    let acceptor = Arc::new(TlsAcceptor::new(files.clone()).unwrap());
    let listener = common::listener();
    let port = listener.local_addr().unwrap().port();
    let config = ServerConfig {
        tls: Some(Arc::clone(&acceptor)),
        ..ServerConfig::default()
    };
    let handler = Arc::new(SimBackend::new(SimConfig::default(), port));
    (server::start(listener, config, handler).unwrap(), acceptor)
}

#[test]
fn https_backends_are_verified_and_kept_alive() {
    let dir = tempfile::tempdir().unwrap();
    let files = pair(dir.path(), "backend");
    let (backend, acceptor) = https_backend(&files);
    let url = format!("https://127.0.0.1:{}", backend.local_addr().port());
    let start = |ca: Option<PathBuf>, interval: Duration| {
        let config = BalancerConfig {
            backends: vec![url.parse().unwrap()],
            workers: 1,
            backend_ca: ca,
            check: CheckPolicy {
                interval,
                ..CheckPolicy::default()
            },
            ..BalancerConfig::default()
        };
        Balancer::start(common::listener(), &config).unwrap()
    };

    // The system's roots do not know a self-signed certificate: 502, and why. (Health
    // checks off: they would fail the same way and mark the backend down, 503.)
    let untrusting = start(None, Duration::ZERO);
    let reply = common::get(untrusting.local_addr(), "/hello");
    assert_eq!(reply.status, 502);
    let body = reply.text();
    assert!(body.contains("certificate was not accepted"), "{body}");
    assert!(
        body.contains("UnknownIssuer") && body.contains("--backend-ca"),
        "{body}"
    );

    let handshakes = || {
        acceptor
            .counters
            .handshakes
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(
        handshakes(),
        0,
        "no handshake with an untrusted backend ever finished"
    );
    drop(untrusting);

    let trusting = start(Some(files.cert.clone()), Duration::from_millis(50));
    // The health checker verifies the backend the same way, and keeps it up.
    assert!(wait_until(Duration::from_secs(5), || handshakes() >= 1));
    let before = handshakes();
    for _ in 0..3 {
        let reply = common::get(trusting.local_addr(), "/hello");
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    // Three requests, one worker, one kept-alive TLS connection: one more handshake
    // (the health checker's own connection is kept alive too, by ureq's pool).
    let made = handshakes() - before;
    assert!((1..3).contains(&made), "{made} handshakes for 3 requests");
    // An HTTP/1.0 client may send no Host; the backend then gets its own host:port
    // (once it got the pool's key, `https://host:port`).
    let reply = common::raw(trusting.local_addr(), b"GET /no-host HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    let host = &reply.json()["headers"]["host"];
    assert_eq!(
        host,
        &format!("127.0.0.1:{}", backend.local_addr().port()),
        "{}",
        reply.text()
    );
    let stats = common::get(trusting.local_addr(), "/stats").json();
    assert_eq!(stats["backends"][0]["healthy"], true, "{stats}");
}

/// A TLS session as the `Read + Write` stream tungstenite wants.
struct Io(TlsStream);

impl std::io::Read for Io {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        Duplex::read(&self.0, buffer)
    }
}

impl std::io::Write for Io {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        Duplex::write_all(&self.0, bytes).map(|()| bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_websocket_over_tls_is_tunnelled() {
    use tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let files = pair(dir.path(), "a");
    each_front(|front| {
        let cluster = https_cluster(front, &files, |_| {});
        let stream = connect(cluster.addr, &files.cert).unwrap();
        stream
            .socket()
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let url = format!("wss://localhost:{}/ws/echo", cluster.addr.port());
        let (mut socket, _) = tungstenite::client::client(url, Io(stream)).expect("wss handshake");
        for number in 0..200 {
            let text = format!("secret {number}");
            socket.send(Message::text(text.clone())).unwrap();
            assert_eq!(socket.read().unwrap(), Message::text(text));
        }
    });
}

#[test]
fn check_names_a_missing_certificate() {
    let output = Command::new(env!("CARGO_BIN_EXE_roundhouse"))
        .args([
            "check",
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tls.cert: cannot read /nonexistent/cert.pem"),
        "{stderr}"
    );
}

/// Lines the child writes to stderr, read on a thread of their own.
fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().unwrap();
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    lines
}

/// Waits up to 10 s for a line containing `text`.
fn expect_line(lines: &std::sync::mpsc::Receiver<String>, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(text) => return line,
            Ok(_) => {}
            Err(_) => panic!("no line with {text:?} within 10 s"),
        }
    }
}

#[test]
fn sighup_reloads_the_certificate_of_the_running_binary_and_keeps_it_when_the_new_pair_is_bad() {
    let dir = tempfile::tempdir().unwrap();
    let served = pair(dir.path(), "served");
    let first = pair(dir.path(), "first");
    let other = pair(dir.path(), "other");
    each_front(|front| {
        install(&served, &first, &first);
        let (cert, key) = (served.cert.to_str().unwrap(), served.key.to_str().unwrap());
        let args = [
            "--listen",
            "127.0.0.1:0",
            "--sim-base-port",
            "0",
            "--sim-latency",
            "0..1",
        ];
        let tls = ["--tls-cert", cert, "--tls-key", key, "--front", front_flag(front)];
        let mut running = common::run_binary(&[&args[..], &tls].concat());
        let lines = stderr_lines(&mut running.child);
        let addr = running.addr;
        assert!(connect(addr, &first.cert).is_ok());

        install(&served, &first, &other);
        common::signal(&running.child, "HUP");
        let line = expect_line(&lines, "reload of the TLS certificate failed");
        assert!(line.contains("does not belong to the certificate"), "{line}");
        assert!(line.contains("the old certificate stays in force"), "{line}");
        assert!(
            connect(addr, &first.cert).is_ok(),
            "the old certificate is still served"
        );

        install(&served, &other, &other);
        common::signal(&running.child, "HUP");
        assert!(wait_until(Duration::from_secs(10), || connect(addr, &other.cert).is_ok()));
        assert!(connect(addr, &first.cert).is_err());
    });
}
