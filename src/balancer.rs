//! Wiring: the front, the bounded queue, the worker pool and the backends, started and
//! stopped together.
//!
//! Follow one request: `front::server` accepts and parses it, `front::dispatch` puts it
//! in the bounded channel, a `pool` worker takes it, `strategy` picks a backend,
//! `forward` sends it there, and the response travels back the same way.
//!
//! OS concept: graceful shutdown. Stopping is ordered so nothing accepted is lost:
//! stop accepting, let every connection with a request finish it (workers keep
//! serving the queue meanwhile), then close the channel so the workers exit.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::backends::{BackendSet, BackendSpec};
use crate::forward::Proxy;
use crate::forward::UpstreamTimeouts;
use crate::front::dispatch::Dispatcher;
use crate::front::server::{self, ServerConfig, ServerHandle};
use crate::pool::WorkerPool;
use crate::stats::Stats;
use crate::strategy::{self, UnknownStrategy};

/// Everything a balancer needs to start.
#[derive(Debug, Clone)]
pub struct BalancerConfig {
    pub workers: usize,
    pub queue: usize,
    pub strategy: String,
    pub backends: Vec<BackendSpec>,
    pub server: ServerConfig,
    pub upstream: UpstreamTimeouts,
}

impl Default for BalancerConfig {
    fn default() -> Self {
        BalancerConfig {
            workers: 4,
            queue: 64,
            strategy: "round-robin".into(),
            backends: Vec::new(),
            server: ServerConfig::default(),
            upstream: UpstreamTimeouts {
                connect: Duration::from_secs(2),
                response: Duration::from_secs(10),
            },
        }
    }
}

/// Why a balancer could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Strategy(#[from] UnknownStrategy),
    #[error("no backends: give at least one --backend URL, or leave --sim-backends above 0")]
    NoBackends,
    #[error("--workers must be at least 1")]
    NoWorkers,
    #[error("--queue must be at least 1")]
    NoQueue,
    #[error("cannot start threads: {0}")]
    Threads(#[from] std::io::Error),
}

/// A running balancer.
pub struct Balancer {
    server: ServerHandle,
    pool: WorkerPool,
    stats: Arc<Stats>,
}

/// What a finished balancer reports.
#[derive(Debug)]
pub struct Summary {
    /// Requests each worker handled.
    pub per_worker: Vec<u64>,
    pub rejected: u64,
    /// False when connections were still busy at the end of the drain timeout.
    pub drained: bool,
}

impl Balancer {
    /// Starts serving on `listener` with `config`.
    pub fn start(listener: TcpListener, config: &BalancerConfig) -> Result<Self, StartError> {
        if config.workers == 0 {
            return Err(StartError::NoWorkers);
        }
        if config.queue == 0 {
            return Err(StartError::NoQueue);
        }
        if config.backends.is_empty() {
            return Err(StartError::NoBackends);
        }
        let strategy = strategy::by_name(&config.strategy)?;
        let stats = Arc::new(Stats::new(strategy.name(), config.workers));
        let backends = Arc::new(BackendSet::new(config.backends.clone()));
        let proxy = Arc::new(Proxy::new(
            Arc::clone(&backends),
            strategy,
            config.upstream,
            config.workers,
            Arc::clone(&stats),
        ));
        let (jobs, queue) = crossbeam_channel::bounded(config.queue);
        let pool = WorkerPool::start(config.workers, queue, proxy)?;
        let dispatcher = Dispatcher::new(jobs, config.queue, Arc::clone(&stats), backends);
        let server = server::start(listener, config.server.clone(), Arc::new(dispatcher))?;
        Ok(Balancer { server, pool, stats })
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Stops accepting, finishes every accepted request (up to `drain`), stops the
    /// workers, and reports what was done.
    pub fn shutdown(self, drain: Duration) -> Summary {
        let Balancer {
            mut server,
            pool,
            stats,
        } = self;
        let drained = server.shutdown(drain);
        // Dropping the server drops the dispatcher and with it the channel's sender;
        // the workers' `recv` then fails and they exit. If connections are still busy
        // after the drain timeout they hold the sender, so we do not wait for workers.
        drop(server);
        if drained {
            pool.join();
        }
        let load =
            |counter: &std::sync::atomic::AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
        Summary {
            per_worker: stats.workers.iter().map(|worker| load(&worker.handled)).collect(),
            rejected: load(&stats.rejected),
            drained,
        }
    }
}
