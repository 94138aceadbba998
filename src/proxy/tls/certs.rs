//! Reading a certificate chain and its private key from PEM files, and refusing a pair
//! that cannot work.
//!
//! OS concept: configuration read from files at run time, checked before it is used.
//! Three mistakes are common and each gets its own sentence: a file that is not there
//! (or holds no PEM block of the right kind), a key that belongs to another
//! certificate, and a certificate outside its validity period. nginx catches the first
//! two at start (`SSL_CTX_use_PrivateKey_file ... key values mismatch`) and loads an
//! expired certificate without a word, so clients fail one by one; Caddy refuses to
//! serve one. roundhouse refuses it, at start and on reload, since an expired
//! certificate is never what an operator meant to install.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

/// Why a certificate and key cannot be used.
#[derive(Debug, Error)]
pub enum CertError {
    #[error("cannot read {}: {error}", path.display())]
    Read { path: PathBuf, error: String },
    #[error("{} holds no PEM certificate (a block starting -----BEGIN CERTIFICATE-----)", .0.display())]
    NoCertificate(PathBuf),
    #[error("{} holds no PEM private key (a block starting -----BEGIN PRIVATE KEY-----)", .0.display())]
    NoKey(PathBuf),
    #[error("the key in {} does not belong to the certificate in {}", key.display(), cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("the certificate in {} expired on {when}", path.display())]
    Expired { path: PathBuf, when: String },
    #[error("the certificate in {} is not valid until {when}", path.display())]
    NotYetValid { path: PathBuf, when: String },
    #[error("the certificate in {} cannot be parsed: {reason}", path.display())]
    Unparsable { path: PathBuf, reason: String },
    #[error("cannot use the certificate in {} with the key in {}: {reason}", cert.display(), key.display())]
    Rejected {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// A certificate chain (the server's own first) and its private key.
#[derive(Debug)]
pub struct CertPair {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// When the server's certificate expires, as text, for the start-up banner.
    pub expires: String,
}

/// Reads every certificate in `path`, in order (the server's own first, then the
/// intermediates, as nginx's `ssl_certificate` expects them).
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let read_error = |error: String| CertError::Read {
        path: path.to_path_buf(),
        error,
    };
    std::fs::metadata(path).map_err(|error| read_error(error.to_string()))?;
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|error| read_error(error.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| read_error(error.to_string()))?;
    if chain.is_empty() {
        return Err(CertError::NoCertificate(path.to_path_buf()));
    }
    Ok(chain)
}

/// Reads and checks a certificate chain and key. The key's match with the certificate
/// is checked when the rustls configuration is built (`config::server_config`).
pub fn load_pair(cert: &Path, key: &Path) -> Result<CertPair, CertError> {
    let chain = read_certificates(cert)?;
    std::fs::metadata(key).map_err(|error| CertError::Read {
        path: key.to_path_buf(),
        error: error.to_string(),
    })?;
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|error| match error {
        rustls::pki_types::pem::Error::NoItemsFound => CertError::NoKey(key.to_path_buf()),
        other => CertError::Read {
            path: key.to_path_buf(),
            error: other.to_string(),
        },
    })?;
    let expires = check_validity(cert, &chain[0], SystemTime::now())?;
    Ok(CertPair {
        chain,
        key: private_key,
        expires,
    })
}

/// Refuses a certificate outside its validity period at `now`; returns its expiry.
pub fn check_validity(path: &Path, cert: &CertificateDer, now: SystemTime) -> Result<String, CertError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).map_err(|error| CertError::Unparsable {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })?;
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64);
    let validity = parsed.validity();
    let (not_before, not_after) = (validity.not_before.timestamp(), validity.not_after.timestamp());
    if now > not_after {
        return Err(CertError::Expired {
            path: path.to_path_buf(),
            when: date(not_after),
        });
    }
    if now < not_before {
        return Err(CertError::NotYetValid {
            path: path.to_path_buf(),
            when: date(not_before),
        });
    }
    Ok(date(not_after))
}

/// A Unix time as an RFC 3339 date, as the logs write times.
fn date(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds).map_or_else(|_| seconds.to_string(), |time| time.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::tls::acceptor::server_config;
    use crate::proxy::tls::self_signed::write_self_signed;
    use std::time::Duration;

    #[test]
    fn bad_pairs_are_refused_with_their_reason() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_self_signed(&dir.path().join("a")).unwrap();
        let (_, other_key) = write_self_signed(&dir.path().join("b")).unwrap();
        assert!(server_config(&cert, &key).is_ok());
        let mismatch = server_config(&cert, &other_key).unwrap_err();
        assert!(matches!(mismatch, CertError::Mismatch { .. }), "{mismatch}");
        let missing = load_pair(&dir.path().join("none.pem"), &key).unwrap_err();
        assert!(missing.to_string().starts_with("cannot read"), "{missing}");
        // A key file given as the certificate: no certificate in it.
        let swapped = load_pair(&key, &key).unwrap_err();
        assert!(matches!(swapped, CertError::NoCertificate(_)), "{swapped}");
        let chain = read_certificates(&cert).unwrap();
        let far_future = SystemTime::UNIX_EPOCH + Duration::from_secs(4_200 * 365 * 86_400);
        let expired = check_validity(&cert, &chain[0], far_future).unwrap_err();
        assert!(matches!(expired, CertError::Expired { .. }), "{expired}");
        let too_early = check_validity(&cert, &chain[0], SystemTime::UNIX_EPOCH).unwrap_err();
        assert!(matches!(too_early, CertError::NotYetValid { .. }), "{too_early}");
    }
}
