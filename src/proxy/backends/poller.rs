//! The shape every background poller of roundhouse shares (the health checker, the
//! `/load` poller, the L4 status-port prober): one named thread doing a round of work,
//! then waiting, again and again, until told to stop.
//!
//! OS concept: a periodic background thread, and waiting with a timeout. The thread
//! waits on a channel with `recv_timeout(interval)`: the timeout is its clock tick, and
//! the channel closing (its sender dropped) is its signal to stop, so shutdown never
//! waits out a sleep.

use std::io;
use std::path::PathBuf;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use rustls::pki_types::CertificateDer;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

use crate::proxy::tls;

/// Starts a thread called `name` that runs `round` at once and then every `interval`,
/// and ends when `stop`'s sender is dropped. One place for the loop, so that every
/// poller stops the same way and at once.
pub fn spawn(
    name: &str,
    interval: Duration,
    stop: Receiver<()>,
    mut round: impl FnMut() + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    thread::Builder::new().name(name.into()).spawn(move || {
        loop {
            round();
            match stop.recv_timeout(interval) {
                Err(RecvTimeoutError::Timeout) => continue,
                _ => return,
            }
        }
    })
}

/// An HTTP agent for a poller's small requests to the backends: every status is an
/// answer (a 503 from a health check is a verdict, not a transport error), redirects
/// are not followed, no proxy from the environment is used, and connecting, waiting
/// for the answer and reading its body each give up after `limit`, so a hung backend
/// cannot stall a round.
pub fn agent(limit: Duration) -> ureq::Agent {
    agent_trusting(limit, Vec::new())
}

/// A poller's agents: one for http backends, and one for https backends made on the
/// first one met (reading the system's roots takes time a plain setup need not pay).
pub struct Agents {
    limit: Duration,
    backend_ca: Option<PathBuf>,
    plain: ureq::Agent,
    secure: Option<Result<ureq::Agent, String>>,
}

impl Agents {
    /// Agents giving up after `limit`; https backends verified against `backend_ca`,
    /// else the system's roots, as forwarding verifies them.
    pub fn new(limit: Duration, backend_ca: Option<PathBuf>) -> Self {
        Agents {
            limit,
            backend_ca,
            plain: agent(limit),
            secure: None,
        }
    }

    /// The agent for a backend, or why there is none (its roots could not be read).
    pub fn for_backend(&mut self, tls: bool) -> Result<&ureq::Agent, &str> {
        if !tls {
            return Ok(&self.plain);
        }
        let (limit, backend_ca) = (self.limit, self.backend_ca.as_deref());
        let made = self.secure.get_or_insert_with(|| {
            tls::backend::trusted_roots(backend_ca)
                .map(|roots| agent_trusting(limit, roots))
                .map_err(|error| error.to_string())
        });
        made.as_ref().map_err(String::as_str)
    }
}

/// The same agent, for https backends too: their certificates must chain to one of
/// `roots` (as the forwarding client's do, `crate::proxy::tls::backend`).
pub fn agent_trusting(limit: Duration, roots: Vec<CertificateDer<'static>>) -> ureq::Agent {
    let roots: Vec<Certificate<'static>> = roots
        .iter()
        .map(|root| Certificate::from_der(root.as_ref()).to_owned())
        .collect();
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(tls::acceptor::provider())
        .root_certs(RootCerts::new_with_certs(&roots))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .timeout_connect(Some(limit))
        .timeout_recv_response(Some(limit))
        .timeout_recv_body(Some(limit))
        .build()
        .new_agent()
}
