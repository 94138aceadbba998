//! A backend registering itself in etcd: its key under a lease, and the lease kept
//! alive for as long as the backend runs (`roundhouse backend --register`).
//!
//! OS concept: leases, or failure detection by heartbeat. A lease is a promise that
//! expires unless renewed: the backend renews it every third of its TTL (what etcd's
//! own client does), and etcd deletes every key attached to a lease that was not
//! renewed in time. So a backend that is killed, hangs, or loses its network drops out
//! of every balancer's pool within one TTL, with nobody having to notice it first. A
//! backend that stops on purpose revokes its lease instead, and drops out at once,
//! before it stops serving: the balancers stop sending it requests while it finishes
//! the ones it has (Kubernetes removes a pod from its endpoints before stopping it for
//! the same reason).

use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};

use super::backoff::Backoff;
use super::entry;
use super::etcd::{ANSWER_TIMEOUT, EtcdClient, EtcdError};
use super::watcher::WATCH_IDLE;
use crate::proxy::backends::BackendSpec;
use crate::proxy::routing::target::EtcdTarget;
use crate::units::parse_duration;

/// A registration being kept alive; `stop` revokes it.
pub struct Registration {
    /// The key the backend is listed under.
    pub key: String,
    /// The TTL etcd granted (it may raise a TTL below its minimum).
    pub ttl: Duration,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// `--register-ttl`: whole seconds (etcd's leases count in seconds), from 1 s to a day.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = parse_duration(text)?;
    if ttl.subsec_nanos() != 0 || ttl < Duration::from_secs(1) || ttl > Duration::from_secs(86_400) {
        return Err(format!(
            "{text:?}: a lease lasts whole seconds, from 1s to 86400s (etcd counts leases in seconds)"
        ));
    }
    Ok(ttl)
}

/// The lease keeper's thread state.
struct Keeper {
    client: EtcdClient,
    key: String,
    value: Vec<u8>,
    /// The TTL asked for, in seconds.
    ttl: i64,
    /// The lease the key is attached to; 0 while not registered.
    lease: i64,
    /// Whether the last attempt failed (an outage is logged once).
    failing: bool,
}

impl Keeper {
    /// A new lease and the key attached to it; returns the TTL granted.
    fn register(&mut self) -> Result<i64, EtcdError> {
        let (lease, granted) = self.client.grant(self.ttl)?;
        self.lease = lease;
        self.client.put(self.key.as_bytes(), &self.value, lease)?;
        Ok(granted)
    }

    /// Renews the lease, registering again if etcd no longer has it.
    fn renew(&mut self) -> Result<(), EtcdError> {
        if self.lease != 0 && self.client.keep_alive(self.lease)?.is_some() {
            return Ok(());
        }
        if self.lease != 0 {
            log::warn!(
                "etcd no longer has the lease of {} (it expired while etcd was out of reach?); registering again",
                self.key
            );
        }
        self.lease = 0;
        self.register().map(|_| ())
    }

    /// Renews every third of the TTL until stopped, then revokes the lease.
    fn run(mut self, stop: crossbeam_channel::Receiver<()>) {
        let every = Duration::from_secs(self.ttl as u64) / 3;
        // After a failure, retry sooner than the renewal period, but never busily.
        let mut backoff = Backoff::new(Duration::from_millis(200), every);
        // Not registered yet (etcd was out of reach at the start): try again soon.
        let mut wait = if self.lease == 0 {
            backoff.next_wait()
        } else {
            every
        };
        // Until the stop channel disconnects: a timeout is the next renewal's turn.
        while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(wait) {
            match self.renew() {
                Ok(()) => {
                    if self.failing {
                        log::warn!("etcd answers again; registered {}", self.key);
                    }
                    self.failing = false;
                    backoff.reset();
                    wait = every;
                }
                Err(error) => {
                    if !self.failing {
                        log::warn!("cannot renew the registration of {}: {error}; retrying", self.key);
                    }
                    self.failing = true;
                    wait = backoff.next_wait();
                }
            }
        }
        if self.lease != 0 {
            match self.client.revoke(self.lease) {
                Ok(()) => log::info!("revoked the lease of {}; balancers drop it now", self.key),
                Err(error) => log::warn!(
                    "cannot revoke the lease of {} ({error}); balancers drop it when the lease expires",
                    self.key
                ),
            }
        }
    }
}

/// Registers `advertise` under `target`'s prefix with a lease of `ttl`, and keeps the
/// lease alive on a thread of its own. The first attempt is made before this returns:
/// its error, if any, comes back beside the registration, which keeps trying.
pub fn start(
    target: &EtcdTarget,
    advertise: &BackendSpec,
    ttl: Duration,
) -> std::io::Result<(Registration, Result<(), EtcdError>)> {
    let mut keeper = Keeper {
        // A renewal stuck on a member that vanished must give up early enough to
        // renew through another before the lease runs out: renewals come every third
        // of the TTL, and each member gets a quarter of it, but never under a second
        // (a busy member may take that long to commit a grant).
        client: EtcdClient::new(
            &target.endpoints,
            (ttl / 4).clamp(Duration::from_secs(1), ANSWER_TIMEOUT),
            WATCH_IDLE,
        ),
        key: target.key_for(&advertise.authority),
        value: entry::render(advertise),
        ttl: ttl.as_secs().max(1) as i64,
        lease: 0,
        failing: false,
    };
    let first = keeper.register();
    let granted = match &first {
        Ok(granted) => Duration::from_secs((*granted).max(1) as u64),
        Err(_) => ttl,
    };
    keeper.failing = first.is_err();
    let key = keeper.key.clone();
    let (stop, stopped) = crossbeam_channel::bounded(0);
    let thread = thread::Builder::new()
        .name("lease-keeper".into())
        .spawn(move || keeper.run(stopped))?;
    Ok((
        Registration {
            key,
            ttl: granted,
            stop: Some(stop),
            thread: Some(thread),
        },
        first.map(|_| ()),
    ))
}

impl Registration {
    /// Revokes the lease (the key disappears from every balancer's pool) and waits for
    /// the keeper to finish.
    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ttl_is_whole_seconds_from_one_to_a_day() {
        assert_eq!(parse_ttl("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_ttl("2").unwrap(), Duration::from_secs(2));
        assert!(parse_ttl("1500ms").unwrap_err().contains("whole seconds"));
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("2d").is_err());
    }
}
