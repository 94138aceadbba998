//! Hostile and unusual traffic: broken backends, pipelining, bodiless answers, foreign
//! targets, slow clients and many clients. The balancer keeps serving and tells the
//! truth through all of it.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use http::StatusCode;
use roundhouse::http1::{Request, Response};
use roundhouse::proxy::front::server::{self, Handler, ServerConfig};

use common::{cluster_on, each_front, get, listener, raw, read_reply};

/// A backend that misbehaves in one fixed way on every connection.
fn broken_backend(behaviour: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut held = Vec::new();
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            match behaviour {
                "silent" => held.push(stream),
                "cut" => {
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part");
                }
                _ => {
                    let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2\r\nthis is not HTTP\r\n\r\n");
                }
            }
        }
    });
    port
}

#[test]
fn silent_cut_and_garbage_backends_give_504_502_502_and_are_marked_down() {
    each_front(|front| {
        for (behaviour, status) in [("silent", 504), ("cut", 502), ("garbage", 502)] {
            let port = broken_backend(behaviour);
            let cluster = cluster_on(front, 0, 0..=0, |config| {
                config.workers = 1;
                config.backends = vec![format!("http://127.0.0.1:{port}").parse().unwrap()];
                // Short for the silent backend (the 504 is the point), generous for the others
                // so that a loaded machine cannot turn their 502 into a 504.
                config.upstream.response =
                    Duration::from_millis(if behaviour == "silent" { 300 } else { 5000 });
                config.check.interval = Duration::ZERO;
            });
            for attempt in 0..3 {
                let reply = get(cluster.addr, "/x");
                assert_eq!(
                    reply.status,
                    status,
                    "{behaviour} attempt {attempt}: {}",
                    reply.text()
                );
                assert!(
                    reply.text().contains(&port.to_string()),
                    "names the backend: {}",
                    reply.text()
                );
            }
            let stats = get(cluster.addr, "/stats").json();
            // The single worker was freed after every failure...
            assert_eq!(stats["workers"][0]["handled"], 3, "{behaviour}");
            assert_eq!(stats["workers"][0]["busy"], false);
            // ...and three failures in a row took the backend out (passive health).
            assert_eq!(stats["backends"][0]["healthy"], false, "{behaviour}: {stats}");
            let reply = get(cluster.addr, "/x");
            assert_eq!(
                reply.status,
                503,
                "{behaviour}: no backend left: {}",
                reply.text()
            );
        }
    });
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    each_front(|front| {
        let cluster = cluster_on(front, 2, 0..=3, |_| {});
        let mut stream = TcpStream::connect(cluster.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream
            .write_all(
                b"GET /one HTTP/1.1\r\nHost: t\r\n\r\nGET /two HTTP/1.1\r\nHost: t\r\n\r\n\
POST /three HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabcGET /four HTTP/1.1\r\nHost: t\r\n\r\n",
            )
            .unwrap();
        for path in ["/one", "/two", "/three", "/four"] {
            let reply = read_reply(&mut stream, false).unwrap();
            assert_eq!(reply.status, 200);
            assert_eq!(reply.json()["path"], path);
        }
    });
}

#[test]
fn a_client_that_pipelines_and_never_reads_holds_no_worker() {
    each_front(|front| {
        // One worker. A client with a tiny receive buffer sends thousands of requests at
        // once and reads no answer: soon no answer fits in the socket's buffers, and
        // whoever writes the next one waits for the client timeout (30 s).
        let backend = server::start(listener(), ServerConfig::default(), Arc::new(SixtyKib)).unwrap();
        let backend_url = format!("http://{}", backend.local_addr());
        let cluster = cluster_on(front, 0, 0..=0, |config| {
            config.backends = vec![backend_url.parse().unwrap()];
            config.workers = 1;
        });
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(&cluster.addr.into()).unwrap();
        let mut flood: TcpStream = socket.into();
        let requests = b"GET /flood HTTP/1.1\r\nHost: t\r\n\r\n".repeat(1000);
        let writer = thread::spawn(move || {
            // This write itself stops once the balancer stops reading: that is expected.
            flood.set_write_timeout(Some(Duration::from_secs(15))).unwrap();
            let _ = flood.write_all(&requests);
            flood
        });
        // Wait until the flood has filled the way back: the worker's count stops growing.
        let handled = || {
            get(cluster.addr, "/stats").json()["workers"][0]["handled"]
                .as_u64()
                .unwrap()
        };
        let (mut last, mut changed_at) = (handled(), std::time::Instant::now());
        let stalled = common::wait_until(Duration::from_secs(20), || {
            let now = handled();
            if now != last {
                (last, changed_at) = (now, std::time::Instant::now());
            }
            now > 0 && changed_at.elapsed() > Duration::from_millis(500)
        });
        assert!(stalled, "the flood never stalled (answers kept flowing: {last})");
        let started = std::time::Instant::now();
        let reply = get(cluster.addr, "/other");
        assert_eq!(reply.status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the only worker waited {:?} on a client that does not read",
            started.elapsed()
        );
        drop(writer);
    });
}

/// Answers everything with 60 KiB: small enough to be sent in one write, large enough
/// to fill socket buffers quickly.
struct SixtyKib;

impl Handler for SixtyKib {
    fn handle(&self, _request: Request) -> Response {
        Response::text(StatusCode::OK, "x".repeat(60 * 1024))
    }
}

/// Answers `/204`, `/304` and `/head` with bodiless statuses.
struct Bodiless;

impl Handler for Bodiless {
    fn handle(&self, request: Request) -> Response {
        match request.path() {
            "/204" => Response::new(StatusCode::NO_CONTENT)
                .with_header(http::header::HeaderName::from_static("x-kind"), "204"),
            "/304" => Response::new(StatusCode::NOT_MODIFIED).with_header(http::header::ETAG, "\"v1\""),
            _ => Response::text(
                StatusCode::OK,
                format!("host={}", request.header("host").unwrap_or("-")),
            ),
        }
    }
}

#[test]
fn bodiless_answers_absolute_targets_and_http_1_0_behave() {
    each_front(|front| {
        let backend_listener = listener();
        let port = backend_listener.local_addr().unwrap().port();
        let _backend = server::start(backend_listener, ServerConfig::default(), Arc::new(Bodiless)).unwrap();
        let cluster = cluster_on(front, 0, 0..=0, |config| {
            config.backends = vec![format!("http://127.0.0.1:{port}").parse().unwrap()];
            config.check.interval = Duration::ZERO;
        });
        // 204 and 304 carry no body: the next response on the connection parses cleanly.
        let mut stream = TcpStream::connect(cluster.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        for (path, status) in [("/204", 204), ("/304", 304), ("/plain", 200)] {
            write!(stream, "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            let reply = read_reply(&mut stream, false).unwrap();
            assert_eq!(reply.status, status);
            if status != 200 {
                assert!(reply.body.is_empty());
                assert!(reply.header("content-length").is_none() || status == 304);
            }
        }
        // An absolute-form target is served by the configured backend, with its Host:
        // never forwarded to the named host (not an open proxy).
        let reply = raw(
            cluster.addr,
            b"GET http://other.example/x HTTP/1.1\r\nHost: ignored\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.text().trim(), "host=other.example");
        // HTTP/1.0 with Host, asking for keep-alive, gets it.
        let mut old = TcpStream::connect(cluster.addr).unwrap();
        old.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        for _ in 0..2 {
            old.write_all(b"GET /plain HTTP/1.0\r\nHost: old.test\r\nConnection: keep-alive\r\n\r\n")
                .unwrap();
            let reply = read_reply(&mut old, false).unwrap();
            assert_eq!(reply.status, 200);
            assert_eq!(reply.header("connection"), Some("keep-alive"));
        }
    });
}
