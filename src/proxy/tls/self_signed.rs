//! `roundhouse cert --self-signed --out DIR`: a development certificate for localhost
//! and 127.0.0.1, made with rcgen, so HTTPS can be tried in two commands.
//!
//! The certificate is its own issuer: no client trusts it unless told to (`curl
//! --cacert DIR/cert.pem`), which is exactly what a self-signed certificate is for.

use std::fs;
use std::path::{Path, PathBuf};

/// Writes `cert.pem` and `key.pem` into `dir` (made if missing); returns their paths.
pub fn write_self_signed(dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    fs::create_dir_all(dir).map_err(|error| format!("cannot make {}: {error}", dir.display()))?;
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|error| format!("cannot make a certificate: {error}"))?;
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    fs::write(&cert, certified.cert.pem())
        .map_err(|error| format!("cannot write {}: {error}", cert.display()))?;
    write_private(&key, certified.signing_key.serialize_pem().as_bytes())?;
    Ok((cert, key))
}

/// Writes a private key readable by its owner only (mode 0600), as ssh-keygen does.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    file.write_all(bytes)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}
