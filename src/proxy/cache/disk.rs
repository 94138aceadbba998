//! `--cache-dir`: stored responses written to files, so they survive a restart.
//!
//! OS concept: atomic file replacement and crash safety. A file is never written in
//! place: the entry goes to a temporary file in the same directory, which is then
//! `rename(2)`d over the final name. POSIX makes a rename within one file system atomic,
//! so a reader (or the next start) sees the old file or the new one, never half of
//! each; nginx writes its cache files the same way (`proxy_temp_path` + rename). A crash
//! can still leave a temporary file behind (deleted at the next start) or, after a power
//! loss without `fsync`, a truncated file: every file carries its length and a checksum,
//! and one that does not add up is skipped with a warning, never trusted and never a
//! crash.
//!
//! The format is text headers then the raw body, readable with `head`:
//!
//! ```text
//! roundhouse-cache 1 <checksum of everything after this line, 16 hex digits>
//! key <primary key>
//! target <request target>
//! time <seconds since 1970>.<nanoseconds>
//! status <code>
//! length <body bytes>
//! req <name>: <value>          (one line per kept request header)
//! res <name>: <value>          (one line per response header)
//!                              (an empty line)
//! <body>
//! ```

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use thiserror::Error;

use super::entry::{Entry, Parts};

const MAGIC: &str = "roundhouse-cache 1";
const EXTENSION: &str = "cache";
const TEMP_EXTENSION: &str = "tmp";

/// Why a cache file could not be read back.
#[derive(Debug, Error)]
pub enum CorruptFile {
    #[error("not a roundhouse cache file")]
    Magic,
    #[error("checksum mismatch (truncated or damaged)")]
    Checksum,
    #[error("bad line {0:?}")]
    Line(String),
    #[error("missing field {0}")]
    Missing(&'static str),
    #[error("body length does not match")]
    Length,
}

/// The cache directory.
pub struct Disk {
    dir: PathBuf,
    /// Makes temporary file names unique between threads writing the same key at once.
    temp_counter: AtomicU64,
}

impl Disk {
    /// Opens (creating if needed) the directory.
    pub fn open(dir: &Path) -> io::Result<Disk> {
        fs::create_dir_all(dir)?;
        Ok(Disk {
            dir: dir.to_path_buf(),
            temp_counter: AtomicU64::new(0),
        })
    }

    /// Reads every cache file back with its path, oldest first. Leftover temporary files
    /// are deleted; files that do not parse are skipped with a warning.
    pub fn load(&self) -> io::Result<Vec<(PathBuf, Parts)>> {
        let mut loaded = Vec::new();
        for dir_entry in fs::read_dir(&self.dir)? {
            let path = dir_entry?.path();
            match path.extension().and_then(|extension| extension.to_str()) {
                Some(TEMP_EXTENSION) => {
                    let _ = fs::remove_file(&path);
                }
                Some(EXTENSION) => match read(&path) {
                    Ok(parts) => loaded.push((path, parts)),
                    Err(error) => log::warn!("cache: skipping {}: {error}", path.display()),
                },
                _ => {}
            }
        }
        loaded.sort_by_key(|(_, parts)| parts.response_time);
        Ok(loaded)
    }

    /// Writes an entry: temporary file, then rename over the final name. Failures are
    /// logged, not returned: a cache that cannot persist still serves from memory.
    pub fn write(&self, entry: &Entry) {
        let path = self.path_of(entry);
        let temp = path.with_extension(format!(
            "{}.{}",
            self.temp_counter.fetch_add(1, Ordering::Relaxed),
            TEMP_EXTENSION
        ));
        let result = fs::File::create(&temp)
            .and_then(|mut file| file.write_all(&encode(entry)))
            .and_then(|()| fs::rename(&temp, &path));
        if let Err(error) = result {
            log::warn!("cache: cannot write {}: {error}", path.display());
            let _ = fs::remove_file(&temp);
        }
    }

    /// Deletes an entry's file, if any.
    pub fn remove(&self, entry: &Entry) {
        let path = self.path_of(entry);
        if let Err(error) = fs::remove_file(&path)
            && error.kind() != io::ErrorKind::NotFound
        {
            log::warn!("cache: cannot delete {}: {error}", path.display());
        }
    }

    /// One file per variant, named by a hash of the variant key (nginx names its files
    /// by the MD5 of the key; any stable hash does).
    fn path_of(&self, entry: &Entry) -> PathBuf {
        self.dir
            .join(format!("{:016x}.{EXTENSION}", fnv1a(entry.variant.as_bytes())))
    }
}

fn read(path: &Path) -> Result<Parts, String> {
    let bytes = fs::read(path).map_err(|error| error.to_string())?;
    decode(&bytes).map_err(|error| error.to_string())
}

/// FNV-1a, 64 bits: a tiny hash that never changes between builds (unlike std's
/// `DefaultHasher`), which file names and checksums need.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn encode(entry: &Entry) -> Vec<u8> {
    let mut rest = Vec::with_capacity(entry.body.len() + 1024);
    let since_epoch = entry.response_time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let _ = write!(
        rest,
        "key {}\ntarget {}\ntime {}.{:09}\nstatus {}\nlength {}\n",
        entry.key,
        entry.target,
        since_epoch.as_secs(),
        since_epoch.subsec_nanos(),
        entry.status.as_u16(),
        entry.body.len()
    );
    for (prefix, headers) in [("req", &entry.request_headers), ("res", &entry.headers)] {
        for (name, value) in headers {
            let _ = write!(rest, "{prefix} {}: ", name.as_str());
            rest.extend_from_slice(value.as_bytes());
            rest.push(b'\n');
        }
    }
    rest.push(b'\n');
    rest.extend_from_slice(&entry.body);
    let mut file = format!("{MAGIC} {:016x}\n", fnv1a(&rest)).into_bytes();
    file.extend_from_slice(&rest);
    file
}

fn decode(bytes: &[u8]) -> Result<Parts, CorruptFile> {
    let (first, rest) = split_line(bytes).ok_or(CorruptFile::Magic)?;
    let first = std::str::from_utf8(first).map_err(|_| CorruptFile::Magic)?;
    let checksum = first
        .strip_prefix(MAGIC)
        .map(str::trim)
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .ok_or(CorruptFile::Magic)?;
    if fnv1a(rest) != checksum {
        return Err(CorruptFile::Checksum);
    }
    let mut fields = Fields::default();
    let mut remaining = rest;
    loop {
        let (line, after) = split_line(remaining).ok_or(CorruptFile::Missing("blank line"))?;
        remaining = after;
        if line.is_empty() {
            break;
        }
        fields.read(line)?;
    }
    let length = fields.length.ok_or(CorruptFile::Missing("length"))?;
    if remaining.len() != length {
        return Err(CorruptFile::Length);
    }
    Ok(Parts {
        key: fields.key.ok_or(CorruptFile::Missing("key"))?,
        target: fields.target.ok_or(CorruptFile::Missing("target"))?,
        status: fields.status.ok_or(CorruptFile::Missing("status"))?,
        headers: fields.response_headers,
        body: remaining.to_vec(),
        request_headers: fields.request_headers,
        response_time: fields.time.ok_or(CorruptFile::Missing("time"))?,
    })
}

/// The header fields of a cache file, as they are read.
#[derive(Default)]
struct Fields {
    key: Option<String>,
    target: Option<String>,
    time: Option<SystemTime>,
    status: Option<StatusCode>,
    length: Option<usize>,
    request_headers: HeaderMap,
    response_headers: HeaderMap,
}

impl Fields {
    fn read(&mut self, line: &[u8]) -> Result<(), CorruptFile> {
        let bad = || CorruptFile::Line(String::from_utf8_lossy(line).into_owned());
        let space = line.iter().position(|&byte| byte == b' ').ok_or_else(bad)?;
        let (name, value) = (&line[..space], &line[space + 1..]);
        if name == b"req" || name == b"res" {
            let colon = value.windows(2).position(|pair| pair == b": ").ok_or_else(bad)?;
            let header = HeaderName::from_bytes(&value[..colon]).map_err(|_| bad())?;
            let header_value = HeaderValue::from_bytes(&value[colon + 2..]).map_err(|_| bad())?;
            let headers = if name == b"req" {
                &mut self.request_headers
            } else {
                &mut self.response_headers
            };
            headers.append(header, header_value);
            return Ok(());
        }
        let value = std::str::from_utf8(value).map_err(|_| bad())?;
        match name {
            b"key" => self.key = Some(value.to_string()),
            b"target" => self.target = Some(value.to_string()),
            b"status" => self.status = Some(value.parse().map_err(|_| bad())?),
            b"length" => self.length = Some(value.parse().map_err(|_| bad())?),
            b"time" => {
                let (seconds, nanos) = value.split_once('.').ok_or_else(bad)?;
                let seconds: u64 = seconds.parse().map_err(|_| bad())?;
                let nanos: u32 = nanos.parse().map_err(|_| bad())?;
                self.time = Some(UNIX_EPOCH + Duration::new(seconds, nanos));
            }
            _ => return Err(bad()),
        }
        Ok(())
    }
}

fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let newline = bytes.iter().position(|&byte| byte == b'\n')?;
    Some((&bytes[..newline], &bytes[newline + 1..]))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::header;

    use super::*;

    fn entry() -> Entry {
        let mut headers = HeaderMap::new();
        headers.insert(header::CACHE_CONTROL, "max-age=60".parse().unwrap());
        headers.insert(header::ETAG, "\"v1\"".parse().unwrap());
        let mut request_headers = HeaderMap::new();
        request_headers.insert(header::HOST, "example.test".parse().unwrap());
        let parts = Parts {
            key: "example.test/a?b=1".into(),
            target: "/a?b=1".into(),
            status: StatusCode::OK,
            headers,
            body: b"hello\nworld\n\x00\xff".to_vec(),
            request_headers,
            response_time: SystemTime::now(),
        };
        Entry::build(parts, Duration::ZERO, u64::MAX).unwrap()
    }

    #[test]
    fn round_trips() {
        let entry = entry();
        let parts = decode(&encode(&entry)).unwrap();
        assert_eq!(parts.key, entry.key);
        assert_eq!(parts.target, entry.target);
        assert_eq!(parts.body, entry.body);
        assert_eq!(parts.headers, entry.headers);
        assert_eq!(parts.request_headers, entry.request_headers);
        assert_eq!(parts.response_time, entry.response_time);
    }

    #[test]
    fn truncated_or_damaged_files_are_refused() {
        let bytes = encode(&entry());
        assert!(matches!(
            decode(&bytes[..bytes.len() - 1]),
            Err(CorruptFile::Checksum)
        ));
        let mut damaged = bytes.clone();
        let last = damaged.len() - 3;
        damaged[last] ^= 1;
        assert!(matches!(decode(&damaged), Err(CorruptFile::Checksum)));
        assert!(matches!(decode(b"garbage"), Err(CorruptFile::Magic)));
        assert!(matches!(decode(b""), Err(CorruptFile::Magic)));
    }

    #[test]
    fn writes_and_loads_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::open(dir.path()).unwrap();
        disk.write(&entry());
        fs::write(dir.path().join("0000000000000000.cache"), b"not a cache file").unwrap();
        fs::write(dir.path().join("leftover.3.tmp"), b"half").unwrap();
        let loaded = disk.load().unwrap();
        assert_eq!(loaded.len(), 1);
        assert!(!dir.path().join("leftover.3.tmp").exists());
        disk.remove(&entry());
        assert!(disk.load().unwrap().is_empty());
    }
}
