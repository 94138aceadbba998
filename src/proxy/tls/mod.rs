//! TLS: certificates from files, the listener's rustls configuration (reloaded on
//! SIGHUP), the client configuration for HTTPS backends, and a TLS session as a byte
//! stream (`TlsStream`, a `crate::http1::transport::Duplex`) for blocking threads.
//!
//! OS concept: a protocol layered on a byte stream. TLS sits between TCP and HTTP; the
//! codec above reads and writes plaintext through `Duplex` and never knows. The
//! handshake costs a round trip (TLS 1.3) or two (TLS 1.2) and a public-key signature
//! on the server, far more CPU than parsing a request, so a client's handshake runs on
//! the connection's own thread (or the event loop), never on a worker. The handshake
//! with an https backend is the worker's own: it happens once per kept-alive backend
//! connection, inside the connect timeout.
//!
//! Why rustls: memory-safe, no C library to link (OpenSSL's API is large and its
//! defaults must be tightened by hand), TLS 1.0 and 1.1 and every weak suite simply
//! absent, and a session object that works both over a blocking stream and driven by
//! an event loop (`read_tls` / `process_new_packets` / `write_tls`).
//!
//! Read in this order: `certs` (PEM files, checked), `acceptor` (the listener's
//! configuration, swapped on reload, and the handshake counters), `stream` (a session
//! shared by a reading and a writing thread), `backend` (TLS to backends),
//! `self_signed` (`roundhouse cert`).

pub mod acceptor;
pub mod backend;
pub mod certs;
pub mod self_signed;
pub mod stream;

pub use acceptor::{TlsAcceptor, TlsCounters, TlsFiles};
pub use backend::BackendTls;
pub use certs::CertError;
pub use stream::TlsStream;
