//! The forwarding client against small scripted backends on OS-chosen ports: each
//! framing of a response body, keep-alive reuse, the stale-connection retry rules,
//! and the mapping of failures to 502 and 504.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use http::{HeaderMap, Method, StatusCode};
use roundhouse::proxy::forward::UpstreamError;
use roundhouse::proxy::forward::UpstreamTimeouts;
use roundhouse::proxy::forward::conn_pool::with_worker_pool;
use roundhouse::proxy::forward::upstream::{ForwardClient, OutgoingRequest};

/// One request as a scripted backend saw it.
struct Seen {
    head: String,
    body: Vec<u8>,
}

/// Reads one request (head and Content-Length body); `None` when the peer closed.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Seen> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Seen { head, body })
}

/// A backend that runs `script` on each accepted connection (with the connection's
/// number, from 0), until the test ends. Counts connections and requests.
struct ScriptedBackend {
    authority: String,
    connections: Arc<AtomicUsize>,
}

fn scripted_backend<F>(script: F) -> ScriptedBackend
where
    F: Fn(usize, BufReader<TcpStream>) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let authority = listener.local_addr().unwrap().to_string();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    let script = Arc::new(script);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let number = counter.fetch_add(1, Ordering::SeqCst);
            let script = Arc::clone(&script);
            thread::spawn(move || script(number, BufReader::new(stream)));
        }
    });
    ScriptedBackend {
        authority,
        connections,
    }
}

/// Answers every request on the connection with `answer`, keeping it open.
fn answer_each(answer: &'static str) -> impl Fn(usize, BufReader<TcpStream>) + Send + Sync + 'static {
    move |_, mut reader| {
        while read_request(&mut reader).is_some() {
            if reader.get_mut().write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    }
}

fn client(response_timeout: Duration) -> ForwardClient {
    ForwardClient::new(UpstreamTimeouts {
        connect: Duration::from_secs(2),
        response: response_timeout,
    })
}

fn send(
    client: &ForwardClient,
    authority: &str,
    method: Method,
    body: &[u8],
) -> Result<roundhouse::http1::Response, UpstreamError> {
    let headers = HeaderMap::new();
    let request = OutgoingRequest {
        method: &method,
        target: "/path?q=1",
        headers: &headers,
        body,
        spooled: None,
        interim: None,
        tunnel: None,
    };
    client.send(authority, &request)
}

#[test]
fn content_length_body_and_connection_reuse() {
    let backend = scripted_backend(answer_each(
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Answer: yes\r\n\r\nhello",
    ));
    let client = client(Duration::from_secs(5));
    for _ in 0..3 {
        let response = send(&client, &backend.authority, Method::GET, b"").unwrap();
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.body, b"hello");
        assert_eq!(response.headers["x-answer"], "yes");
    }
    assert_eq!(
        backend.connections.load(Ordering::SeqCst),
        1,
        "keep-alive reused one connection"
    );
}

#[test]
fn chunked_body_is_decoded_and_connection_kept() {
    let backend = scripted_backend(answer_each(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    ));
    let client = client(Duration::from_secs(5));
    for _ in 0..2 {
        let response = send(&client, &backend.authority, Method::GET, b"").unwrap();
        assert_eq!(response.body, b"hello world");
    }
    assert_eq!(backend.connections.load(Ordering::SeqCst), 1);
}

#[test]
fn close_delimited_body_reads_to_the_end_and_is_not_reused() {
    let backend = scripted_backend(|_, mut reader| {
        if read_request(&mut reader).is_some() {
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end");
        }
        // Dropping the stream closes it: that ends the body.
    });
    let client = client(Duration::from_secs(5));
    for _ in 0..2 {
        let response = send(&client, &backend.authority, Method::GET, b"").unwrap();
        assert_eq!(response.body, b"until the end");
    }
    assert_eq!(backend.connections.load(Ordering::SeqCst), 2);
}

#[test]
fn head_204_and_304_have_no_body_even_with_a_length() {
    // Each answer declares a length but sends no body; reading one would hang until
    // the timeout and the next answer would be misread.
    let backend = scripted_backend(|_, mut reader| {
        let answers = [
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
            "HTTP/1.1 204 No Content\r\n\r\n",
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ];
        for answer in answers {
            if read_request(&mut reader).is_none() {
                return;
            }
            let _ = reader.get_mut().write_all(answer.as_bytes());
        }
    });
    let client = client(Duration::from_secs(2));
    let head = send(&client, &backend.authority, Method::HEAD, b"").unwrap();
    assert!(head.body.is_empty());
    assert_eq!(head.headers["content-length"], "100");
    let no_content = send(&client, &backend.authority, Method::GET, b"").unwrap();
    assert_eq!(no_content.status, StatusCode::NO_CONTENT);
    let not_modified = send(&client, &backend.authority, Method::GET, b"").unwrap();
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    assert!(not_modified.body.is_empty());
    let last = send(&client, &backend.authority, Method::GET, b"").unwrap();
    assert_eq!(last.body, b"ok");
    assert_eq!(backend.connections.load(Ordering::SeqCst), 1);
}

#[test]
fn interim_100_continue_is_skipped_and_body_is_sent() {
    let backend = scripted_backend(|_, mut reader| {
        while let Some(seen) = read_request(&mut reader) {
            let answer = format!(
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: {}\r\n\r\n",
                seen.body.len()
            );
            let stream = reader.get_mut();
            let _ = stream.write_all(answer.as_bytes());
            let _ = stream.write_all(&seen.body);
        }
    });
    let client = client(Duration::from_secs(5));
    let response = send(&client, &backend.authority, Method::POST, b"payload").unwrap();
    assert_eq!(response.status, StatusCode::CREATED);
    assert_eq!(response.body, b"payload");
}

#[test]
fn request_head_reaches_the_backend_as_written() {
    let (sender, received) = std::sync::mpsc::channel();
    let backend = scripted_backend(move |_, mut reader| {
        if let Some(seen) = read_request(&mut reader) {
            let _ = sender.send((seen.head, seen.body));
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let client = client(Duration::from_secs(5));
    let mut headers = HeaderMap::new();
    headers.insert("host", "site.example".parse().unwrap());
    headers.insert("x-forwarded-for", "10.1.2.3".parse().unwrap());
    headers.insert("content-length", "999".parse().unwrap());
    let request = OutgoingRequest {
        method: &Method::PUT,
        target: "/items/7?x=y",
        headers: &headers,
        body: b"abc",
        spooled: None,
        interim: None,
        tunnel: None,
    };
    client.send(&backend.authority, &request).unwrap();
    let (head, body) = received.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(head.starts_with("PUT /items/7?x=y HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("host: site.example\r\n"), "{head}");
    assert!(head.contains("x-forwarded-for: 10.1.2.3\r\n"), "{head}");
    assert!(head.contains("content-length: 3\r\n"), "{head}");
    assert!(!head.contains("999"), "{head}");
    assert_eq!(body, b"abc");
}

/// A backend whose first connection answers one request and then closes: a pooled
/// connection the backend closed. Later connections answer every request.
fn closes_after_first_answer() -> ScriptedBackend {
    scripted_backend(|number, mut reader| {
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        if number == 0 {
            if read_request(&mut reader).is_some() {
                let _ = reader.get_mut().write_all(answer);
            }
            return;
        }
        while read_request(&mut reader).is_some() {
            let _ = reader.get_mut().write_all(answer);
        }
    })
}

#[test]
fn get_on_a_connection_the_backend_closed_is_retried_transparently() {
    let backend = closes_after_first_answer();
    let client = client(Duration::from_secs(5));
    send(&client, &backend.authority, Method::GET, b"").unwrap();
    let response = send(&client, &backend.authority, Method::GET, b"").unwrap();
    assert_eq!(response.body, b"ok");
    assert_eq!(backend.connections.load(Ordering::SeqCst), 2);
}

#[test]
fn post_on_a_connection_closed_while_idle_goes_out_on_a_fresh_one() {
    let backend = closes_after_first_answer();
    let client = client(Duration::from_secs(5));
    send(&client, &backend.authority, Method::GET, b"").unwrap();
    // Wait until this thread's pooled connection has seen the backend's close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let closed = with_worker_pool(|pool| {
            let conn = pool.take(&backend.authority, Duration::from_secs(60)).unwrap();
            let closed = conn.closed_by_peer();
            pool.put(&backend.authority, conn);
            closed
        });
        if closed {
            break;
        }
        assert!(Instant::now() < deadline, "the backend's close never arrived");
        thread::yield_now();
    }
    // The client checks a pooled connection before sending a POST on it.
    let response = send(&client, &backend.authority, Method::POST, b"data").unwrap();
    assert_eq!(response.body, b"ok");
    assert_eq!(backend.connections.load(Ordering::SeqCst), 2);
}

#[test]
fn post_is_not_sent_twice_once_it_went_out() {
    let posts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&posts);
    // The first connection answers a GET, then reads the POST and closes without a
    // word: the POST may have been acted on, so it must not be repeated.
    let backend = scripted_backend(move |_, mut reader| {
        while let Some(seen) = read_request(&mut reader) {
            if seen.head.starts_with("POST") {
                counted.fetch_add(1, Ordering::SeqCst);
                return;
            }
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    let client = client(Duration::from_secs(5));
    send(&client, &backend.authority, Method::GET, b"").unwrap();
    let error = send(&client, &backend.authority, Method::POST, b"data").unwrap_err();
    assert!(matches!(error, UpstreamError::Broken(_)), "{error:?}");
    assert_eq!(error.status(), StatusCode::BAD_GATEWAY);
    assert!(error.may_have_reached_backend());
    assert_eq!(posts.load(Ordering::SeqCst), 1);
    assert_eq!(
        backend.connections.load(Ordering::SeqCst),
        1,
        "no second connection for a retry"
    );
}

#[test]
fn connection_refused_is_502_and_never_reached_the_backend() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The listener is dropped: nothing listens on that port now.
    let client = client(Duration::from_secs(5));
    let error = send(&client, &format!("127.0.0.1:{port}"), Method::POST, b"x").unwrap_err();
    assert!(matches!(error, UpstreamError::Connect(_)), "{error:?}");
    assert_eq!(error.status(), StatusCode::BAD_GATEWAY);
    assert!(!error.may_have_reached_backend());
}

#[test]
fn silent_backend_is_504_after_the_timeout() {
    let backend = scripted_backend(|_, mut reader| {
        // Read the request, then say nothing until the client gives up and closes.
        let _ = read_request(&mut reader);
        let _ = read_request(&mut reader);
    });
    let client = client(Duration::from_millis(200));
    let error = send(&client, &backend.authority, Method::GET, b"").unwrap_err();
    assert!(matches!(error, UpstreamError::Timeout(_)), "{error:?}");
    assert_eq!(error.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(error.may_have_reached_backend());
}

#[test]
fn a_backend_that_stalls_inside_its_head_is_504_and_not_retried() {
    let backend = scripted_backend(|_, mut reader| {
        // Half a status line, then silence until the client gives up and closes.
        if read_request(&mut reader).is_some() {
            let _ = reader.get_mut().write_all(b"HTTP/1.1 200");
            let _ = read_request(&mut reader);
        }
    });
    let client = client(Duration::from_millis(200));
    let error = send(&client, &backend.authority, Method::GET, b"").unwrap_err();
    assert!(matches!(error, UpstreamError::Stalled(_)), "{error:?}");
    assert_eq!(error.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(!roundhouse::proxy::forward::retry::may_retry(
        &Method::GET,
        &error
    ));
}

#[test]
fn garbage_and_mid_body_close_are_502() {
    let garbage = scripted_backend(|_, mut reader| {
        if read_request(&mut reader).is_some() {
            let _ = reader.get_mut().write_all(b"SMTP ready\r\n\r\n");
        }
    });
    let short = scripted_backend(|_, mut reader| {
        if read_request(&mut reader).is_some() {
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        }
    });
    let client = client(Duration::from_secs(5));
    let error = send(&client, &garbage.authority, Method::GET, b"").unwrap_err();
    assert!(matches!(error, UpstreamError::Protocol(_)), "{error:?}");
    let error = send(&client, &short.authority, Method::GET, b"").unwrap_err();
    assert!(matches!(error, UpstreamError::Incomplete(_)), "{error:?}");
    assert_eq!(error.status(), StatusCode::BAD_GATEWAY, "{error:?}");
}

#[test]
fn a_stall_after_the_answer_began_is_incomplete_not_a_timeout() {
    let backend = scripted_backend(|_, mut reader| {
        if read_request(&mut reader).is_some() {
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
            // Then nothing more until the client gives up.
            let _ = read_request(&mut reader);
        }
    });
    let client = client(Duration::from_millis(200));
    let error = send(&client, &backend.authority, Method::GET, b"").unwrap_err();
    assert!(matches!(error, UpstreamError::Incomplete(_)), "{error:?}");
    assert_eq!(error.status(), StatusCode::BAD_GATEWAY);
}

#[test]
fn large_bodies_go_both_ways() {
    let backend = scripted_backend(|_, mut reader| {
        while let Some(seen) = read_request(&mut reader) {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", seen.body.len());
            let stream = reader.get_mut();
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&seen.body);
        }
    });
    let client = client(Duration::from_secs(10));
    let body: Vec<u8> = (0..3_000_000u32).map(|n| (n % 251) as u8).collect();
    let response = send(&client, &backend.authority, Method::POST, &body).unwrap();
    // Over the 1 MiB threshold the answer comes as a stream, not in memory.
    assert!(response.body.is_empty());
    let stream = response.stream.expect("a large answer is streamed");
    assert_eq!(stream.length, Some(body.len() as u64));
    let mut received = Vec::new();
    std::io::Read::read_to_end(&mut stream.take().unwrap(), &mut received).unwrap();
    assert!(received == body);
}

#[test]
fn through_the_balancer_the_client_carries_requests_end_to_end() {
    use roundhouse::proxy::balancer::{Balancer, BalancerConfig};
    let backend = scripted_backend(|_, mut reader| {
        while let Some(seen) = read_request(&mut reader) {
            let forwarded = seen
                .head
                .lines()
                .find(|line| line.to_ascii_lowercase().starts_with("x-forwarded-for:"))
                .unwrap_or("none")
                .to_string();
            let answer = format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n{:x}\r\n{forwarded}\r\n0\r\n\r\n",
                forwarded.len()
            );
            let _ = reader.get_mut().write_all(answer.as_bytes());
        }
    });
    let config = BalancerConfig {
        backends: vec![format!("http://{}", backend.authority).parse().unwrap()],
        ..BalancerConfig::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let balancer = Balancer::start(listener, &config).unwrap();
    let addr: SocketAddr = balancer.local_addr();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream
        .write_all(b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("x-forwarded-for: 127.0.0.1"), "{answer}");
    // Hop-by-hop headers of the backend's answer do not reach the client.
    assert!(
        !answer.to_ascii_lowercase().contains("transfer-encoding"),
        "{answer}"
    );
    assert!(answer.contains("x-roundhouse-backend: http://"), "{answer}");
    balancer.shutdown(Duration::from_secs(2));
}
