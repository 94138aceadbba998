//! The listener's TLS: the rustls `ServerConfig` in force, swapped whole on SIGHUP,
//! and the handshake counters.
//!
//! OS concept: read-copy-update again (as the routing table does). A new certificate
//! is read and checked beside the old configuration; only a good pair replaces it, in
//! one pointer swap under a write lock held for nothing else. Each connection's
//! session keeps the `Arc` of the configuration it started with, so connections
//! already open keep their certificate, and a bad new pair leaves everything as it was
//! (nginx's reload behaves the same: the old workers keep the old certificate).
//!
//! Either front uses this module the same way: `config()` for each new connection's
//! `rustls::ServerConnection`, and `counters` for what became of its handshake.

use std::io::ErrorKind;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::RwLock;
use rustls::ServerConfig;
use rustls::ServerConnection;
use rustls::crypto::CryptoProvider;
use rustls::version::{TLS12, TLS13};

use super::certs::{CertError, load_pair};
use super::stream::{TlsStream, rustls_error};

/// The one ALPN protocol offered: roundhouse speaks HTTP/1.1 only.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The crypto provider for every TLS configuration: ring (see Cargo.toml for why).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Where the listener's certificate and key are read from (`--tls-cert`, `--tls-key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What became of the listener's handshakes, and of reloads.
#[derive(Debug, Default)]
pub struct TlsCounters {
    /// Handshakes completed.
    pub handshakes: AtomicU64,
    /// Handshakes the client broke off or got wrong (no common version or cipher,
    /// plain HTTP sent to the TLS port, a closed connection...).
    pub failed: AtomicU64,
    /// Handshakes that did not finish within the client timeout.
    pub timed_out: AtomicU64,
    /// Certificate reloads that took effect, and those refused.
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
}

/// The listener's TLS configuration and counters.
pub struct TlsAcceptor {
    files: TlsFiles,
    /// Protects which configuration new connections get. Held to clone the `Arc` or to
    /// swap it, never while reading files or during a handshake.
    current: RwLock<Arc<ServerConfig>>,
    /// Protects when the certificate in force expires, for the banner and the reload
    /// log; swapped just after `current` (a reader may see the two a moment apart, which
    /// only a log line could show). Held only to clone or replace the string.
    expires: RwLock<String>,
    pub counters: TlsCounters,
}

impl TlsAcceptor {
    /// Reads and checks the certificate and key.
    pub fn new(files: TlsFiles) -> Result<Self, CertError> {
        let (config, expires) = server_config(&files.cert, &files.key)?;
        Ok(TlsAcceptor {
            files,
            current: RwLock::new(config),
            expires: RwLock::new(expires),
            counters: TlsCounters::default(),
        })
    }

    /// The configuration for a new connection.
    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current.read())
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// When the certificate in force expires.
    pub fn expires(&self) -> String {
        self.expires.read().clone()
    }

    /// Reads the files again; a good pair serves every connection from now on, a bad
    /// one changes nothing and says why.
    pub fn reload(&self) -> Result<(), CertError> {
        match server_config(&self.files.cert, &self.files.key) {
            Ok((config, expires)) => {
                *self.current.write() = config;
                *self.expires.write() = expires;
                self.counters.reloads.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(error) => {
                self.counters.reload_failures.fetch_add(1, Ordering::Relaxed);
                Err(error)
            }
        }
    }

    /// A new server session with the configuration in force: what an event loop
    /// drives itself, non-blocking (`read_tls`, `process_new_packets`, `write_tls`),
    /// reporting the outcome with `count`.
    pub fn new_session(&self) -> Result<ServerConnection, rustls::Error> {
        ServerConnection::new(self.config())
    }

    /// Counts how a handshake ended: `Ok` for a finished one.
    pub fn count(&self, outcome: Result<(), &HandshakeFailure>) {
        let counter = match outcome {
            Ok(()) => &self.counters.handshakes,
            Err(HandshakeFailure::TimedOut) => &self.counters.timed_out,
            Err(HandshakeFailure::Failed(_)) => &self.counters.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs the server side of a handshake on `socket` (on the caller's thread, which
    /// it blocks until `deadline` at most) and counts how it ended.
    pub fn accept(&self, socket: Arc<TcpStream>, deadline: Instant) -> Result<TlsStream, HandshakeFailure> {
        let outcome = self
            .new_session()
            .map_err(|error| HandshakeFailure::Failed(error.to_string()))
            .and_then(|session| {
                let stream = TlsStream::new(socket, session);
                match stream.handshake(deadline) {
                    Ok(()) => Ok(stream),
                    Err(error) if matches!(error.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
                        Err(HandshakeFailure::TimedOut)
                    }
                    Err(error) => Err(HandshakeFailure::Failed(
                        rustls_error(&error).map_or_else(|| error.to_string(), ToString::to_string),
                    )),
                }
            });
        self.count(outcome.as_ref().map(|_| ()));
        outcome
    }
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(formatter, "TlsAcceptor({:?})", self.files)
    }
}

/// How a handshake did not end in a session.
#[derive(Debug)]
pub enum HandshakeFailure {
    TimedOut,
    Failed(String),
}

/// The rustls configuration for a certificate and key: TLS 1.2 and 1.3 only (rustls
/// has no TLS 1.0 or 1.1, nor any CBC, RC4 or export suite, so "no weak suites" is
/// its default), ALPN `http/1.1`. Returns it with the certificate's expiry.
pub fn server_config(cert: &Path, key: &Path) -> Result<(Arc<ServerConfig>, String), CertError> {
    let pair = load_pair(cert, key)?;
    let rejected = |error: rustls::Error| match error {
        rustls::Error::InconsistentKeys(_) => CertError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        },
        other => CertError::Rejected {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            reason: other.to_string(),
        },
    };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&TLS13, &TLS12])
        .map_err(rejected)?
        .with_no_client_auth()
        .with_single_cert(pair.chain, pair.key)
        .map_err(rejected)?;
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok((Arc::new(config), pair.expires))
}
