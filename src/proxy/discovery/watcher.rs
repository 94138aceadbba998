//! Following one etcd prefix: read every key under it once, then watch it, and hand
//! each new set of backends to the routing table.
//!
//! OS concept: event notification instead of polling, with a resumable position. A
//! watch is etcd's `inotify`: one request that blocks until something changes under
//! the prefix, then delivers the change. Every change carries the store's revision (a
//! global sequence number), and the watcher remembers the last one it applied. When
//! the watch breaks (a member dies, the network drops), the next watch starts right
//! after that revision, on whichever member answers, so no change is lost and none is
//! applied twice: the same idea as a log consumer's offset, or TCP's sequence numbers.
//! etcd keeps a bounded history; if the revision wanted has been compacted away, etcd
//! says so (`compact_revision`) and the watcher reads the whole prefix again.
//!
//! While no member answers, the pool keeps the last backends it had (the data plane
//! does not need the control plane to keep working), the outage is logged once, and
//! the watcher retries with backoff.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::backoff::Backoff;
use super::entry;
use super::etcd::{ANSWER_TIMEOUT, EtcdClient, EtcdError, WatchRead};
use super::status::{State, Status};
use super::wire::EventKind;
use crate::proxy::backends::BackendSpec;
use crate::proxy::routing::RoutingTable;
use crate::proxy::routing::spec::PoolSpec;
use crate::proxy::routing::target::EtcdTarget;

/// How long a watch may stay quiet before it is opened again. etcd sends nothing on a
/// quiet watch, so silence is the only sign of a member that vanished without closing
/// the connection (its host cut off); re-opening is the check, and it is also how soon
/// a stopped watcher notices. A new watch resumes at the same revision, so nothing is
/// lost by it.
pub const WATCH_IDLE: Duration = Duration::from_secs(5);
/// The first wait after every member failed, and the longest.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_LIMIT: Duration = Duration::from_secs(5);

/// A running watcher: dropping it tells the thread to stop (at its next wake-up, at
/// most `WATCH_IDLE` later; nothing waits for it, since all it holds is the routing
/// table, which can no longer be written with its source number).
pub struct Running {
    pub status: Arc<Status>,
    _stop: Sender<()>,
    _thread: JoinHandle<()>,
}

/// Starts the watcher of `pool`; the receiver returned disconnects when its first round
/// is over (the prefix read, or every member tried and failed).
pub fn start(
    table: Arc<RoutingTable>,
    pool: &PoolSpec,
    target: &EtcdTarget,
) -> std::io::Result<(Running, Receiver<()>)> {
    let status = Arc::new(Status::new(&pool.name, target));
    let (stop_sender, stop) = crossbeam_channel::bounded(0);
    let (first_round, first_round_over) = crossbeam_channel::bounded(0);
    let watcher = Watcher {
        pool: pool.name.clone(),
        prefix: target.prefix.clone().into_bytes(),
        source: table.attach_discovery(&pool.name, target),
        client: EtcdClient::new(&target.endpoints, ANSWER_TIMEOUT, WATCH_IDLE),
        endpoints: target.endpoints.len(),
        table,
        status: Arc::clone(&status),
        stop,
        members: BTreeMap::new(),
        skipped: BTreeMap::new(),
        applied: None,
        revision: 0,
        must_read: true,
        failures: 0,
        outage: false,
    };
    let thread = thread::Builder::new()
        .name(format!("discovery-{}", pool.name))
        .spawn(move || watcher.run(first_round))?;
    Ok((
        Running {
            status,
            _stop: stop_sender,
            _thread: thread,
        },
        first_round_over,
    ))
}

struct Watcher {
    pool: String,
    prefix: Vec<u8>,
    /// This watcher's right to write the pool (see `crate::proxy::routing::discovered`).
    source: u64,
    client: EtcdClient,
    endpoints: usize,
    table: Arc<RoutingTable>,
    status: Arc<Status>,
    /// Disconnects when the watcher must stop.
    stop: Receiver<()>,
    /// Every usable entry under the prefix, by key. A sorted map, so that every
    /// balancer lists the pool in the same order (key order) and `ip-hash` sends a
    /// client to the same backend whichever balancer it reaches.
    members: BTreeMap<Vec<u8>, BackendSpec>,
    /// Entries that describe no usable backend, with the reason (logged when seen).
    skipped: BTreeMap<Vec<u8>, String>,
    /// The backends last handed to the routing table.
    applied: Option<Vec<BackendSpec>>,
    /// The newest revision `members` reflects; 0 before the first read.
    revision: i64,
    /// Whether the prefix must be read whole (at the start, and after a compaction).
    must_read: bool,
    /// Failed calls since the last success: below the member count, the next member
    /// is tried at once; at it, every member has failed and the watcher backs off.
    failures: usize,
    /// Whether every member failed since the last success (logged once per outage).
    outage: bool,
}

/// How one round of reading and watching ended.
enum Round {
    /// Told to stop, or replaced by a newer watcher of the pool.
    Stopped,
    /// The watch went quiet, or etcd compacted past it: go round again at once.
    Again,
    /// A call failed; `everyone` when it had already tried every member (a read
    /// fails over inside the client; a watch is opened on one member at a time).
    Failed { error: EtcdError, everyone: bool },
}

impl Watcher {
    fn run(mut self, first_round: Sender<()>) {
        let mut first_round = Some(first_round);
        let mut backoff = Backoff::new(RETRY_FIRST, RETRY_LIMIT);
        loop {
            match self.round(&mut first_round) {
                Round::Stopped => return,
                Round::Again => backoff.reset(),
                Round::Failed { error, everyone } => {
                    if !self.failed(&error, everyone) {
                        continue;
                    }
                    // Every member failed: the first round is over, with what we had.
                    first_round.take();
                    match self.stop.recv_timeout(backoff.next_wait()) {
                        Err(RecvTimeoutError::Timeout) => continue,
                        _ => return,
                    }
                }
            }
        }
    }

    fn stopped(&self) -> bool {
        matches!(self.stop.try_recv(), Err(TryRecvError::Disconnected))
    }

    fn round(&mut self, first_round: &mut Option<Sender<()>>) -> Round {
        if self.stopped() {
            return Round::Stopped;
        }
        if self.must_read {
            self.status.set_state(State::Reading);
            if let Err(error) = self.read() {
                return Round::Failed {
                    error,
                    everyone: true,
                };
            }
            let applied = self.apply();
            // Only now: start-up waits for this to find the pool filled.
            first_round.take();
            if !applied {
                return Round::Stopped;
            }
        }
        self.follow()
    }

    /// Reads every key under the prefix, replacing what the watcher knew.
    fn read(&mut self) -> Result<(), EtcdError> {
        let answer = self.client.range_prefix(&self.prefix)?;
        self.succeeded();
        self.status
            .reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.members.clear();
        self.skipped.clear();
        for kv in answer.kvs {
            self.put(kv.key, &kv.value);
        }
        self.revision = answer.header.revision;
        self.must_read = false;
        Ok(())
    }

    /// Opens a watch right after the last revision applied and follows it until it
    /// goes quiet, ends, or the watcher is stopped.
    fn follow(&mut self) -> Round {
        let mut stream = match self.client.watch(&self.prefix, self.revision.saturating_add(1)) {
            Ok(stream) => stream,
            Err(error) => {
                return Round::Failed {
                    error,
                    everyone: false,
                };
            }
        };
        self.status
            .watches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        loop {
            if self.stopped() {
                return Round::Stopped;
            }
            let message = match stream.read_message() {
                Ok(WatchRead::Quiet) => return Round::Again,
                Ok(WatchRead::Message(message)) => message,
                Err(error) => {
                    return Round::Failed {
                        error,
                        everyone: false,
                    };
                }
            };
            if message.created {
                self.succeeded();
                self.status.set_state(State::Watching);
                // Events read just before the last watch broke may still wait to be
                // applied (see below).
                if !self.apply() {
                    return Round::Stopped;
                }
                continue;
            }
            if message.canceled {
                if message.compact_revision > 0 {
                    log::info!(
                        "pool {}: etcd compacted its history past revision {} (oldest kept: {}); reading {} again",
                        self.pool,
                        self.revision.saturating_add(1),
                        message.compact_revision,
                        String::from_utf8_lossy(&self.prefix)
                    );
                    self.must_read = true;
                    return Round::Again;
                }
                return Round::Failed {
                    error: EtcdError::Unavailable {
                        endpoint: self.client.endpoint().to_string(),
                        reason: format!("the watch was cancelled: {}", message.cancel_reason),
                    },
                    everyone: false,
                };
            }
            for event in message.events {
                match event.kind {
                    EventKind::Put => self.put(event.kv.key, &event.kv.value),
                    EventKind::Delete => self.remove(&event.kv.key),
                }
                self.revision = self.revision.max(event.kv.mod_revision);
            }
            // Applied once per burst: the events of one transaction arrive in one
            // message and must change the pool together, and messages that arrived
            // together (a backend's old key deleted and its new one put) are applied
            // together, so the pool never passes through the state in between.
            if !stream.has_next_ready() && !self.apply() {
                return Round::Stopped;
            }
        }
    }

    fn put(&mut self, key: Vec<u8>, value: &[u8]) {
        match entry::parse(value) {
            Ok(spec) => {
                self.skipped.remove(&key);
                self.members.insert(key, spec);
            }
            Err(reason) => {
                log::warn!(
                    "pool {}: ignoring etcd key {}: {reason}",
                    self.pool,
                    String::from_utf8_lossy(&key)
                );
                self.members.remove(&key);
                self.skipped.insert(key, reason);
            }
        }
    }

    fn remove(&mut self, key: &[u8]) {
        self.members.remove(key);
        self.skipped.remove(key);
    }

    /// Hands the members to the routing table if they changed; false when this
    /// watcher has been replaced and must stop.
    fn apply(&mut self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        // Two keys naming one address are one backend; the first key wins.
        let mut backends: Vec<BackendSpec> = Vec::new();
        for spec in self.members.values() {
            if !backends.iter().any(|seen| seen.authority == spec.authority) {
                backends.push(spec.clone());
            }
        }
        self.status.revision.store(self.revision, Relaxed);
        self.status.skipped.store(self.skipped.len() as u64, Relaxed);
        if self.applied.as_ref() == Some(&backends) {
            return true;
        }
        match self
            .table
            .set_discovered(&self.pool, self.source, backends.clone())
        {
            Ok(true) => {}
            Ok(false) => return false,
            Err(error) => {
                log::error!(
                    "pool {}: cannot apply the backends found in etcd: {error}",
                    self.pool
                );
                return true;
            }
        }
        log::info!(
            "pool {}: {} (revision {})",
            self.pool,
            describe_change(self.applied.as_deref().unwrap_or_default(), &backends),
            self.revision
        );
        self.status.record_change(backends.len());
        self.applied = Some(backends);
        true
    }

    /// Notes an answer from etcd, ending an outage if there was one.
    fn succeeded(&mut self) {
        let endpoint = self.client.endpoint().to_string();
        self.status.record_success(&endpoint);
        if self.outage {
            log::warn!(
                "pool {}: etcd answers again at {endpoint} after {} failed attempts; resuming from revision {}",
                self.pool,
                self.failures,
                self.revision
            );
        }
        self.failures = 0;
        self.outage = false;
    }

    /// Counts a failure and moves to the next member; true when every member has
    /// failed since the last success (time to back off).
    fn failed(&mut self, error: &EtcdError, everyone: bool) -> bool {
        self.status.record_error(&error.to_string());
        self.failures += 1;
        if error.fails_over() {
            self.client.next_endpoint();
        }
        let everyone_failed = everyone || self.failures >= self.endpoints || !error.fails_over();
        if !everyone_failed {
            self.status.set_state(State::Connecting);
            self.status.set_endpoint(self.client.endpoint());
            log::info!(
                "pool {}: {error}; trying the next member, {}",
                self.pool,
                self.client.endpoint()
            );
            return false;
        }
        self.status.set_state(State::Retrying);
        if !self.outage {
            self.outage = true;
            log::warn!(
                "pool {}: no etcd member answers ({error}); keeping the last {} backends and retrying with backoff",
                self.pool,
                self.applied.as_ref().map_or(0, Vec::len)
            );
        }
        true
    }
}

/// `+http://a -http://b, 3 backends`: what a change did, for the log.
fn describe_change(before: &[BackendSpec], after: &[BackendSpec]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for spec in after {
        if !before.contains(spec) {
            parts.push(format!("+{spec}"));
        }
    }
    for spec in before {
        if !after.iter().any(|now| now.authority == spec.authority) {
            parts.push(format!("-{spec}"));
        }
    }
    parts.push(format!(
        "{} backend{}",
        after.len(),
        if after.len() == 1 { "" } else { "s" }
    ));
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_described_by_what_came_and_went() {
        let specs =
            |urls: &[&str]| -> Vec<BackendSpec> { urls.iter().map(|url| url.parse().unwrap()).collect() };
        assert_eq!(
            describe_change(
                &specs(&["http://a:1", "http://b:1"]),
                &specs(&["http://b:1", "http://c:1"])
            ),
            "+http://c:1 -http://a:1 2 backends"
        );
        assert_eq!(
            describe_change(&[], &specs(&["http://a:1"])),
            "+http://a:1 1 backend"
        );
        assert_eq!(
            describe_change(&specs(&["http://a:1"]), &specs(&["http://a:1,weight=3"])),
            "+http://a:1,weight=3 1 backend",
            "a new weight is a change"
        );
    }
}
