//! Helpers for the discovery tests: a real etcd (Debian's `etcd-server`) of one or
//! more members on loopback ports with a temporary data directory, killed when
//! dropped; and a TCP relay the test can cut, to break a watch without stopping etcd.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;
use roundhouse::proxy::discovery::etcd::EtcdClient;

use crate::common::{free_port, wait_until};

/// Why a test without etcd skips: printed, and the test passes.
pub fn etcd_missing() -> Option<String> {
    let found = Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    (!found).then(|| "etcd is not installed (Debian's etcd-server package; .ci/run installs it)".to_string())
}

/// One member: its ports and data directory outlive its process, so it can be
/// killed and started again as the same member.
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    process: Option<Child>,
}

/// An etcd cluster of one or more members, all killed when dropped.
pub struct Etcd {
    members: Vec<Member>,
    initial_cluster: String,
    _dir: tempfile::TempDir,
}

impl Etcd {
    /// Starts `size` members and waits until every one answers. Ports come from the
    /// OS (bound, then released); if another process takes one in between, a member
    /// exits at once and the whole start is tried again with new ports.
    pub fn start(size: usize) -> Result<Etcd, String> {
        if let Some(reason) = etcd_missing() {
            return Err(reason);
        }
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(size) {
                Ok(etcd) => return Ok(etcd),
                Err(reason) => last = reason,
            }
        }
        panic!("etcd did not start: {last}");
    }

    fn try_start(size: usize) -> Result<Etcd, String> {
        let dir = tempfile::tempdir().map_err(|error| error.to_string())?;
        let members: Vec<Member> = (0..size)
            .map(|index| Member {
                name: format!("m{index}"),
                client_port: free_port(),
                peer_port: free_port(),
                data_dir: dir.path().join(format!("m{index}.etcd")),
                log: dir.path().join(format!("m{index}.log")),
                process: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|member| format!("{}=http://127.0.0.1:{}", member.name, member.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut etcd = Etcd {
            members,
            initial_cluster,
            _dir: dir,
        };
        for index in 0..size {
            etcd.spawn(index);
        }
        for index in 0..size {
            etcd.wait_ready(index)?;
        }
        Ok(etcd)
    }

    /// Starts member `index` (again, keeping its data if it ran before).
    fn spawn(&mut self, index: usize) {
        let cluster = self.initial_cluster.clone();
        let member = &mut self.members[index];
        let client = format!("http://127.0.0.1:{}", member.client_port);
        let peer = format!("http://127.0.0.1:{}", member.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&member.log)
            .expect("open the etcd log");
        let child = Command::new("etcd")
            .args(["--name", &member.name])
            .arg("--data-dir")
            .arg(&member.data_dir)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &cluster, "--initial-cluster-state", "new"])
            .args([
                "--initial-cluster-token",
                &format!("roundhouse-test-{}", std::process::id()),
            ])
            // Fast elections on loopback: a restarted cluster has a leader in well
            // under a second (the defaults are 100 ms and 1 s).
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start etcd");
        member.process = Some(child);
    }

    /// Waits until member `index` answers a read (which needs a leader).
    fn wait_ready(&mut self, index: usize) -> Result<(), String> {
        let second = Duration::from_secs(1);
        let client = EtcdClient::new(&[self.endpoint(index)], second, second);
        let ready = wait_until(Duration::from_secs(20), || {
            let exited = self.members[index]
                .process
                .as_mut()
                .is_some_and(|child| matches!(child.try_wait(), Ok(Some(_))));
            exited || client.range_prefix(b"/ready/").is_ok()
        });
        let member = &mut self.members[index];
        let exited = member
            .process
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(Some(_))));
        if ready && !exited {
            return Ok(());
        }
        let log = std::fs::read_to_string(&member.log).unwrap_or_default();
        let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join("\n");
        Err(format!("member {} did not become ready: {tail}", member.name))
    }

    /// `127.0.0.1:PORT` of member `index`'s client port.
    pub fn endpoint(&self, index: usize) -> String {
        format!("127.0.0.1:{}", self.members[index].client_port)
    }

    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len())
            .map(|index| self.endpoint(index))
            .collect()
    }

    /// `etcd://EVERY,MEMBER/prefix`.
    pub fn url(&self, prefix: &str) -> String {
        format!("etcd://{}/{prefix}", self.endpoints().join(","))
    }

    /// A client of the whole cluster, for the test's own reads and writes.
    pub fn client(&self) -> EtcdClient {
        let second = Duration::from_secs(1);
        EtcdClient::new(&self.endpoints(), second, second)
    }

    /// Which member listens at `endpoint`.
    pub fn index_of(&self, endpoint: &str) -> usize {
        (0..self.members.len())
            .find(|&index| self.endpoint(index) == endpoint)
            .unwrap_or_else(|| panic!("{endpoint} is no member"))
    }

    /// `kill -9` of member `index`.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.members[index].process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts every killed member again with its data, and waits until all answer.
    pub fn restart_killed(&mut self) {
        let killed: Vec<usize> = (0..self.members.len())
            .filter(|&index| self.members[index].process.is_none())
            .collect();
        for &index in &killed {
            self.spawn(index);
        }
        for index in killed {
            self.wait_ready(index).expect("a restarted member answers");
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for index in 0..self.members.len() {
            self.kill(index);
        }
    }
}

/// A TCP relay in front of one address. `cut` closes every connection through it and
/// makes new ones close at once (a member that vanished, with etcd itself untouched);
/// `restore` lets connections through again. Its threads stop when it is dropped.
pub struct Relay {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    /// Both ends of every connection relayed, to close them on a cut.
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    pub fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let stopped = Arc::new(AtomicBool::new(false));
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (accept_open, accept_stopped, accept_streams) =
            (Arc::clone(&open), Arc::clone(&stopped), Arc::clone(&streams));
        thread::spawn(move || {
            for client in listener.incoming() {
                if accept_stopped.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                if !accept_open.load(Ordering::Relaxed) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let mut held = accept_streams.lock();
                for stream in [&client, &server] {
                    if let Ok(clone) = stream.try_clone() {
                        held.push(clone);
                    }
                }
                drop(held);
                copy_both_ways(client, server);
            }
        });
        Relay {
            addr,
            open,
            stopped,
            streams,
        }
    }

    pub fn cut(&self) {
        self.open.store(false, Ordering::Relaxed);
        for stream in self.streams.lock().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::Relaxed);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.stopped.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees `stopped`.
        let _ = TcpStream::connect(self.addr);
    }
}

fn copy_both_ways(client: TcpStream, server: TcpStream) {
    let pairs = [
        (client.try_clone(), server.try_clone()),
        (server.try_clone(), client.try_clone()),
    ];
    for (from, to) in pairs {
        let (Ok(mut from), Ok(mut to)) = (from, to) else {
            continue;
        };
        thread::spawn(move || {
            let mut buffer = [0u8; 16 * 1024];
            while let Ok(read) = from.read(&mut buffer) {
                if read == 0 || to.write_all(&buffer[..read]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        });
    }
}
