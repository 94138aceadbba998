//! WebSocket and other upgrades through the balancer: a real WebSocket client
//! (tungstenite) talks to the simulated backend's `/ws/echo`; the tunnel is counted,
//! capped, closed when idle, passes each half-close on, and holds no worker, with both
//! fronts (the event loop hands an upgraded connection to the same tunnel code).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use common::{cluster_on, each_front, raise_descriptor_limit, wait_until};
use serde_json::Value;
use tungstenite::{Message, WebSocket};

fn stats(addr: SocketAddr) -> Value {
    let reply = common::get(addr, "/stats");
    serde_json::from_slice(&reply.body).expect("stats is JSON")
}

fn tunnels(addr: SocketAddr, field: &str) -> u64 {
    stats(addr)["tunnels"][field].as_u64().unwrap()
}

/// A WebSocket client connected to `/ws/echo` through the balancer at `addr`.
fn open(addr: SocketAddr) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (socket, response) =
        tungstenite::client::client(format!("ws://{addr}/ws/echo"), stream).expect("WebSocket handshake");
    assert_eq!(response.status(), 101);
    socket
}

#[test]
fn an_http_1_0_upgrade_is_ignored() {
    // RFC 9110 section 7.8: a server must ignore Upgrade in an HTTP/1.0 request. The
    // request is forwarded as a plain one; no 101, no tunnel.
    each_front(|front| {
        let cluster = cluster_on(front, 1, 0..=0, |_| {});
        let request = b"GET /ws/echo HTTP/1.0\r\nHost: test\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let reply = common::raw(cluster.addr, request).unwrap();
        assert_ne!(reply.status, 101, "{}", reply.text());
        assert_eq!(tunnels(cluster.addr, "opened"), 0);
    });
}

#[test]
fn a_websocket_client_exchanges_a_thousand_messages_with_the_echo_app() {
    each_front(|front| {
        let cluster = cluster_on(front, 1, 0..=0, |_| {});
        let mut socket = open(cluster.addr);
        for number in 0..1000 {
            let text = format!("message {number}");
            socket.send(Message::text(text.clone())).unwrap();
            assert_eq!(socket.read().unwrap(), Message::text(text));
        }
        socket.send(Message::binary(vec![0u8, 255, 7])).unwrap();
        assert_eq!(socket.read().unwrap(), Message::binary(vec![0u8, 255, 7]));
        assert_eq!(tunnels(cluster.addr, "opened"), 1);
        assert_eq!(tunnels(cluster.addr, "open"), 1);
        socket.close(None).unwrap();
        // The close handshake goes through the tunnel too, then both ends close.
        while socket.read().is_ok() {}
        drop(socket);
        assert!(
            wait_until(Duration::from_secs(10), || tunnels(cluster.addr, "open") == 0),
            "the tunnel's place is given back when it closes"
        );
        assert!(tunnels(cluster.addr, "bytes_up") > 1000 * 9);
    });
}

#[test]
fn upgrades_past_max_tunnels_get_503_and_idle_tunnels_are_closed() {
    each_front(|front| {
        let cluster = cluster_on(front, 1, 0..=0, |config| {
            config.max_tunnels = 1;
            // Long enough that the first tunnel is surely still open when the second asks.
            config.tunnel_idle_timeout = Duration::from_millis(1500);
        });
        let mut first = open(cluster.addr);
        let stream = TcpStream::connect(cluster.addr).unwrap();
        match tungstenite::client::client(format!("ws://{}/ws/echo", cluster.addr), stream) {
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                assert_eq!(response.status(), 503)
            }
            other => panic!("a second tunnel past --max-tunnels 1 must get 503, got {other:?}"),
        }
        assert_eq!(tunnels(cluster.addr, "refused"), 1);
        // Nothing moves: the idle timeout closes the tunnel, and its place is free again.
        assert!(wait_until(Duration::from_secs(10), || tunnels(
            cluster.addr,
            "idle_closed"
        ) == 1));
        assert!(first.read().is_err(), "the idle tunnel was closed");
        assert!(wait_until(Duration::from_secs(10), || tunnels(
            cluster.addr,
            "open"
        ) == 0));
        let mut again = open(cluster.addr);
        again.send(Message::text("back")).unwrap();
        assert_eq!(again.read().unwrap(), Message::text("back"));
    });
}

#[test]
fn five_hundred_open_tunnels_hold_no_worker() {
    let limit = raise_descriptor_limit();
    if limit < 8192 {
        eprintln!("skipped: 500 tunnels need about 5,000 descriptors here and the limit is {limit}");
        return;
    }
    each_front(|front| {
        let cluster = cluster_on(front, 1, 0..=0, |config| {
            config.workers = 4;
            config.max_tunnels = 600;
        });
        let mut sockets: Vec<WebSocket<TcpStream>> = (0..500).map(|_| open(cluster.addr)).collect();
        assert_eq!(tunnels(cluster.addr, "open"), 500);
        // Four workers, five hundred open WebSockets: a plain request is answered at once.
        let started = Instant::now();
        let reply = common::get(cluster.addr, "/hello");
        assert_eq!(reply.status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a GET waited {:?} behind the tunnels",
            started.elapsed()
        );
        let workers = &cluster.balancer.stats().workers;
        assert!(workers.iter().all(|worker| !worker.busy.load(Ordering::Relaxed)));
        // And every tunnel still works.
        for (number, socket) in sockets.iter_mut().enumerate().step_by(50) {
            socket.send(Message::text(format!("{number}"))).unwrap();
            assert_eq!(socket.read().unwrap(), Message::text(format!("{number}")));
        }
    });
}

/// A backend that accepts any upgrade (`Upgrade: echo`), echoes bytes until the
/// client's FIN, then sends `bye` and closes: a generic upgrade, and a half-close.
fn echo_until_fin_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_lowercase();
                if !head.contains("upgrade: echo") || !head.contains("connection: upgrade") {
                    let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
                    return;
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\nconnection: upgrade\r\n\r\n",
                );
                let mut buffer = [0u8; 1024];
                loop {
                    match stream.read(&mut buffer) {
                        Ok(0) | Err(_) => break,
                        Ok(count) => {
                            let _ = stream.write_all(&buffer[..count]);
                        }
                    }
                }
                let _ = stream.write_all(b"bye");
            });
        }
    });
    addr
}

#[test]
fn any_upgrade_the_backend_accepts_is_tunnelled_and_each_half_close_passed_on() {
    let backend = echo_until_fin_backend();
    each_front(|front| {
        let mut config = roundhouse::proxy::balancer::BalancerConfig {
            front,
            ..Default::default()
        };
        config.backends.push(format!("http://{backend}").parse().unwrap());
        let balancer = roundhouse::proxy::balancer::Balancer::start(common::listener(), &config).unwrap();
        let mut client = TcpStream::connect(balancer.local_addr()).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        client
            .write_all(b"GET /chat HTTP/1.1\r\nhost: test\r\nupgrade: echo\r\nconnection: upgrade\r\n\r\n")
            .unwrap();
        let mut received = Vec::new();
        let mut buffer = [0u8; 1024];
        while !received.windows(4).any(|window| window == b"\r\n\r\n") {
            let count = client.read(&mut buffer).unwrap();
            assert!(count > 0, "closed before the 101");
            received.extend_from_slice(&buffer[..count]);
        }
        let head = String::from_utf8_lossy(&received).to_lowercase();
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(
            head.contains("upgrade: echo") && head.contains("connection: upgrade"),
            "{head}"
        );
        client.write_all(b"ping").unwrap();
        let mut echoed = [0u8; 4];
        client.read_exact(&mut echoed).unwrap();
        assert_eq!(&echoed, b"ping");
        // Our FIN reaches the backend (it answers `bye` only then), and its FIN reaches us.
        client.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"bye");
    });
}
