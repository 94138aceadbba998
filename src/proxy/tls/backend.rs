//! TLS to the backends (`--backend https://...`): the client configuration, whose
//! trust comes from the system's roots or from `--backend-ca`, and the handshake.
//!
//! OS concept: trust is a file on disk. "Verified" means the backend's certificate
//! chains to a root in a list we were given: the system's (`/etc/ssl/certs` on
//! Debian, read by rustls-native-certs the way curl and OpenSSL read it) or the
//! operator's own CA file. The name checked is the one we connect to (SNI), an IP
//! literal included. nginx does not verify backends unless `proxy_ssl_verify on`;
//! roundhouse always does, as HAProxy does with `verify required`.

use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::version::{TLS12, TLS13};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::acceptor::{ALPN_HTTP11, provider};
use super::certs::{CertError, read_certificates};
use super::stream::{TlsStream, rustls_error};

/// The certificates trusted as roots: those in `ca` (PEM), else the system's.
pub fn trusted_roots(ca: Option<&Path>) -> Result<Vec<CertificateDer<'static>>, CertError> {
    match ca {
        Some(path) => read_certificates(path),
        None => Ok(rustls_native_certs::load_native_certs().certs),
    }
}

/// The TLS configuration for connections to HTTPS backends.
#[derive(Clone)]
pub struct BackendTls {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for BackendTls {
    fn fmt(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("BackendTls")
    }
}

impl BackendTls {
    /// Trusts the certificates in `ca` (PEM) if given, else the system's roots.
    pub fn new(ca: Option<&Path>) -> Result<Self, CertError> {
        let mut roots = RootCertStore::empty();
        for cert in trusted_roots(ca)? {
            // Certificates the system store holds but rustls cannot parse are
            // skipped, as curl skips them; a CA file's must all be good.
            if let (Err(error), Some(path)) = (roots.add(cert), ca) {
                return Err(CertError::Unparsable {
                    path: path.to_path_buf(),
                    reason: error.to_string(),
                });
            }
        }
        let config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&TLS13, &TLS12])
            .map_err(|error| CertError::Unparsable {
                path: ca.map(Path::to_path_buf).unwrap_or_default(),
                reason: error.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut config = config;
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        Ok(BackendTls {
            config: Arc::new(config),
        })
    }

    /// Runs the client side of a handshake with the backend `host` (sent as SNI and
    /// checked against its certificate) on `socket`, until `deadline` at most.
    pub fn connect(
        &self,
        socket: TcpStream,
        host: &str,
        deadline: Instant,
    ) -> Result<TlsStream, HandshakeError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name =
            ServerName::try_from(host.to_string()).map_err(|_| HandshakeError::NotAName(host.to_string()))?;
        let session = ClientConnection::new(Arc::clone(&self.config), name).map_err(HandshakeError::Tls)?;
        let stream = TlsStream::new(Arc::new(socket), session);
        stream
            .handshake(deadline)
            .map_err(|error| match rustls_error(&error) {
                Some(rustls::Error::InvalidCertificate(reason)) => HandshakeError::Untrusted(reason.clone()),
                Some(other) => HandshakeError::Tls(other.clone()),
                None => HandshakeError::Io(error),
            })?;
        Ok(stream)
    }
}

/// Why a TLS handshake with a backend failed (each becomes a 502 naming it).
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("{0:?} is not a name TLS can check a certificate against")]
    NotAName(String),
    #[error("the backend's certificate was not accepted ({0:?}); trust its CA with --backend-ca FILE")]
    Untrusted(rustls::CertificateError),
    #[error("{0}")]
    Tls(rustls::Error),
    #[error("{0}")]
    Io(std::io::Error),
}
