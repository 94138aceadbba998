//! The worker pool: a fixed number of threads taking jobs from one bounded channel.
//!
//! OS concept: producer–consumer over a bounded buffer, and a thread pool. Connection
//! threads produce jobs (`front::dispatch`), workers consume them. The channel's
//! capacity is the buffer's size: when it is full the producer does not wait, it
//! answers 503 (admission control). The number of workers bounds how many requests are
//! forwarded at once, whatever the number of clients.

pub mod direct;
pub mod reply;

use std::thread::{self, JoinHandle};

use crossbeam_channel::Receiver;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::http1::Request;
use crate::proxy::forward::Proxy;
use crate::proxy::pool::direct::DirectAnswer;
use reply::ReplySender;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// One request waiting for a worker, with the way back to its connection thread.
pub struct Job {
    pub request: Request,
    pub answer: Answer,
}

/// Where the response goes.
pub enum Answer {
    /// The reply slot the connection thread is waiting on.
    Slot(ReplySender),
    /// Straight to the client: the connection thread is reading the next request.
    Direct(DirectAnswer),
}

/// The running worker threads.
pub struct WorkerPool {
    workers: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    /// Starts `count` workers consuming `jobs`. They run until every sender of the
    /// channel is dropped and the queue is empty: that is how shutdown drains it.
    pub fn start(count: usize, jobs: Receiver<Job>, proxy: Arc<Proxy>) -> std::io::Result<Self> {
        let mut workers = Vec::with_capacity(count);
        for id in 0..count {
            let jobs = jobs.clone();
            let proxy = Arc::clone(&proxy);
            let worker = thread::Builder::new()
                .name(format!("worker-{id}"))
                .spawn(move || work(id, &jobs, &proxy))?;
            workers.push(worker);
        }
        Ok(WorkerPool { workers })
    }

    /// Waits for every worker to finish the queue and exit.
    pub fn join(self) {
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

/// A worker's whole life: take a job, forward it, answer (or hand the answer back), repeat.
fn work(id: usize, jobs: &Receiver<Job>, proxy: &Proxy) {
    crate::sys::sched::batch_current_thread();
    // Each worker owns its random number generator, so random strategies take no lock.
    let mut rng = StdRng::from_rng(&mut rand::rng());
    let stats = &proxy.stats().workers[id];
    // `recv` blocks while the queue is empty and fails once all senders are gone.
    while let Ok(job) = jobs.recv() {
        stats.busy.store(true, Ordering::Relaxed);
        let response = proxy.handle(job.request, id, &mut rng);
        stats.handled.fetch_add(1, Ordering::Relaxed);
        stats.busy.store(false, Ordering::Relaxed);
        // Counted before the answer is written, so a client that reads it and then asks
        // /stats sees it. If the client has gone, the answer is simply dropped.
        match job.answer {
            Answer::Slot(reply) => reply.send(response),
            Answer::Direct(direct) => direct.answer(response),
        }
    }
}
