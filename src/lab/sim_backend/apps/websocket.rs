//! `/ws/echo`: a WebSocket echo app, for the tunnel demo and tests. Every text or
//! binary message is sent straight back.
//!
//! OS concept: one connection, two protocols. The HTTP handler answers the handshake
//! (`101 Switching Protocols` with the `Sec-WebSocket-Accept` that proves it read the
//! client's key, RFC 6455 section 4.2.2); the server then gives this app the
//! connection, and tungstenite speaks WebSocket frames on it from the next byte on.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, StatusCode, header};
use tungstenite::protocol::{Role, WebSocket};
use tungstenite::{Error, Message};

use super::error_response;
use crate::http1::transport::Duplex;
use crate::http1::upgrade::{OnUpgrade, Upgrade};
use crate::http1::{Request, Response};

/// The app's path.
pub const PATH: &str = "/ws/echo";

/// An echo connection ends after this long with no message.
const IDLE: Duration = Duration::from_secs(300);

/// The handshake: `101` with the app attached, or why not.
pub fn handle(request: &Request) -> Response {
    let asks_websocket = request.wants_upgrade()
        && request
            .header("upgrade")
            .is_some_and(|protocol| protocol.eq_ignore_ascii_case("websocket"));
    let key = request.headers.get("sec-websocket-key");
    let (true, Some(key)) = (asks_websocket, key) else {
        return error_response(
            StatusCode::UPGRADE_REQUIRED,
            "this is a WebSocket endpoint: connect with a WebSocket client (Upgrade: websocket)",
        )
        .with_header(header::UPGRADE, "websocket");
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut response = Response::new(StatusCode::SWITCHING_PROTOCOLS);
    response
        .headers
        .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    response
        .headers
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        response.headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response.upgrade = Some(Upgrade::new(Box::new(Echo)));
    response
}

/// The echo loop, run on the connection's thread once the `101` is out.
struct Echo;

impl OnUpgrade for Echo {
    fn run(self: Box<Self>, client: Arc<dyn Duplex>, received: Vec<u8>) {
        let _ = client.socket().set_read_timeout(Some(IDLE));
        let mut socket = WebSocket::from_partially_read(Io(client), received, Role::Server, None);
        loop {
            match socket.read() {
                Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                    if socket.send(message).is_err() {
                        return;
                    }
                }
                // Pings are answered and a close is confirmed by tungstenite itself.
                Ok(_) => {}
                Err(Error::ConnectionClosed | Error::AlreadyClosed) => return,
                Err(_) => return,
            }
        }
    }
}

/// A shared `Duplex` as the `Read + Write` stream tungstenite wants.
struct Io(Arc<dyn Duplex>);

impl Read for Io {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.0.read(buffer)
    }
}

impl Write for Io {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.write_all(bytes).map(|()| bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
