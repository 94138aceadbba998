//! What a connection becomes after `101 Switching Protocols`.
//!
//! OS concept: a connection is a byte stream, and HTTP is only the first protocol on
//! it. A request with `Upgrade: websocket` asks to switch; a `101` answer agrees, and
//! from the byte after that answer's head on, the stream carries the new protocol. The
//! codec writes the `101` and then hands the stream over: to a tunnel to a backend (the
//! balancer), or to a WebSocket app (the simulated backend).

use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

use super::transport::Duplex;

/// The new protocol, ready to take over a client's connection.
pub trait OnUpgrade: Send {
    /// Runs the new protocol on `client`, the stream the `101` went out on;
    /// `received` holds what the client sent after its request and was already read.
    /// Runs on a thread that HTTP no longer needs (the threaded front's connection
    /// thread, or one the event loop starts for it) and may keep it as long as it lasts.
    fn run(self: Box<Self>, client: Arc<dyn Duplex>, received: Vec<u8>);
}

/// A response's upgrade, taken once by whoever writes the `101`. Shared, because a
/// `Response` is `Clone` (the cache copies responses; it never stores a 101); the mutex
/// protects that one taking, held only to `take` it.
#[derive(Clone)]
pub struct Upgrade(Arc<Mutex<Option<Box<dyn OnUpgrade>>>>);

impl Upgrade {
    pub fn new(on_upgrade: Box<dyn OnUpgrade>) -> Self {
        Upgrade(Arc::new(Mutex::new(Some(on_upgrade))))
    }

    /// The new protocol, the first time it is asked for.
    pub fn take(&self) -> Option<Box<dyn OnUpgrade>> {
        self.0.lock().take()
    }
}

impl fmt::Debug for Upgrade {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("Upgrade")
    }
}
