//! A backend and a client that speak HTTP/1.1 byte for byte, for the cache tests that
//! need exactly the bytes in question: hop-by-hop fields the front's own writer would
//! rewrite (`Connection`, `Transfer-Encoding`), interim `1xx` answers before the final
//! one, an extension method.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// One request as the raw backend read it.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub method: String,
    pub target: String,
    /// Header lines in order, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

type Script = dyn Fn(&RawRequest, &mut TcpStream) + Send + Sync;

/// A backend that hands each request to a script writing raw bytes to the connection.
/// Connections are kept open between requests (the forwarding client pools them).
pub struct RawBackend {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    acceptor: Option<JoinHandle<()>>,
}

impl RawBackend {
    pub fn start(script: impl Fn(&RawRequest, &mut TcpStream) + Send + Sync + 'static) -> RawBackend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stopping = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let script: Arc<Script> = Arc::new(script);
        let (stop, count) = (Arc::clone(&stopping), Arc::clone(&requests));
        let acceptor = thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (script, count) = (Arc::clone(&script), Arc::clone(&count));
                thread::spawn(move || serve(stream, &*script, &count));
            }
        });
        RawBackend {
            addr,
            stopping,
            requests,
            acceptor: Some(acceptor),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn serve(stream: TcpStream, script: &Script, count: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        count.fetch_add(1, Ordering::SeqCst);
        script(&request, &mut writer);
        let _ = writer.flush();
    }
    let _ = writer.shutdown(Shutdown::Both);
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<RawRequest> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let headers = read_fields(reader)?;
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(RawRequest {
        method,
        target,
        headers,
        body,
    })
}

/// Header lines up to the empty line, names lowercased; `None` if the stream ends or a
/// line is not a field.
fn read_fields(reader: &mut BufReader<TcpStream>) -> Option<Vec<(String, String)>> {
    let mut fields = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            return Some(fields);
        }
        let (name, value) = line.split_once(':')?;
        fields.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
}

/// A response head and body written the way a script sends it: `head` is the status
/// line and header lines without the final empty line; a Content-Length is added.
pub fn raw_response(head: &str, body: &str) -> Vec<u8> {
    format!("{head}\r\ncontent-length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

/// One response the raw client read (interim or final).
#[derive(Debug, Clone)]
pub struct RawAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A client connection that reads answers head by head, so a test sees each interim
/// `1xx` as it arrives.
pub struct RawClient {
    reader: BufReader<TcpStream>,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        RawClient {
            reader: BufReader::new(stream),
        }
    }

    /// Sends `method target` with `headers` (Host is added) and an optional body.
    pub fn send(&mut self, method: &str, target: &str, headers: &[(&str, &str)], body: &str) {
        let mut text = format!("{method} {target} HTTP/1.1\r\nhost: raw.test\r\n");
        for (name, value) in headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || method != "GET" {
            text.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        text.push_str("\r\n");
        text.push_str(body);
        self.reader.get_mut().write_all(text.as_bytes()).unwrap();
    }

    /// Reads the next response head, and its body if it is a final response with a
    /// Content-Length (the front always sends one for these tests' small answers).
    pub fn read(&mut self) -> RawAnswer {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not a status line: {line:?}"));
        let headers = read_fields(&mut self.reader).expect("a header section");
        let mut answer = RawAnswer {
            status,
            headers,
            body: Vec::new(),
        };
        if status >= 200 {
            let length = answer
                .header("content-length")
                .and_then(|value| value.parse().ok())
                .unwrap_or(0);
            answer.body = vec![0; length];
            self.reader.read_exact(&mut answer.body).unwrap();
        }
        answer
    }

    /// Reads interim answers until the final one; returns them all, final last.
    pub fn read_until_final(&mut self) -> Vec<RawAnswer> {
        let mut answers = Vec::new();
        loop {
            let answer = self.read();
            let last = answer.status >= 200;
            answers.push(answer);
            if last {
                return answers;
            }
        }
    }
}
