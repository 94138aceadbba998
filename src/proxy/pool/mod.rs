//! The worker pool: a fixed number of threads taking jobs from one bounded channel.
//!
//! OS concept: producer–consumer over a bounded buffer, and a thread pool. Connection
//! threads produce jobs (`front::dispatch`), workers consume them. The channel's
//! capacity is the buffer's size: when it is full the producer does not wait, it
//! answers 503 (admission control). The number of workers bounds how many requests are
//! forwarded at once, whatever the number of clients.
//!
//! Besides the bounded queue, workers take `Resume`s from a second channel: the next
//! pieces of streamed answers that an event loop could not write at once (`relay.rs`).
//! They go first, since each one is an answer already begun; there is at most one per
//! connection, so that channel is bounded by the connections, not by the clients' will.

pub mod direct;
pub mod handback;
pub mod relay;
pub mod reply;

use std::thread::{self, JoinHandle};

use crossbeam_channel::Receiver;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::http1::Request;
use crate::proxy::cache::Cache;
use crate::proxy::forward::Proxy;
use crate::proxy::pool::direct::DirectAnswer;
use relay::Resume;
use reply::ReplySender;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// One request waiting for a worker, with the way back to its connection thread.
pub struct Job {
    pub request: Request,
    pub answer: Answer,
    /// Serve through this cache: set by the event-loop front, which answers fresh hits
    /// itself and must not wait for the misses (the threaded front waits for the
    /// response and stores it on its connection thread instead).
    pub cache: Option<Arc<Cache>>,
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
    pub fn start(
        count: usize,
        jobs: Receiver<Job>,
        resumes: Receiver<Resume>,
        proxy: Arc<Proxy>,
    ) -> std::io::Result<Self> {
        let mut workers = Vec::with_capacity(count);
        for id in 0..count {
            let (jobs, resumes) = (jobs.clone(), resumes.clone());
            let proxy = Arc::clone(&proxy);
            let worker = thread::Builder::new()
                .name(format!("worker-{id}"))
                .spawn(move || work(id, &jobs, &resumes, &proxy))?;
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
fn work(id: usize, jobs: &Receiver<Job>, resumes: &Receiver<Resume>, proxy: &Proxy) {
    crate::sys::sched::batch_current_thread();
    // Each worker owns its random number generator, so random strategies take no lock.
    let mut rng = StdRng::from_rng(&mut rand::rng());
    let stats = &proxy.stats().workers[id];
    while let Some(job) = next_job(jobs, resumes) {
        stats.busy.store(true, Ordering::Relaxed);
        let response = match &job.cache {
            Some(cache) => cache.serve(job.request, |request| proxy.handle(request, id, &mut rng)),
            None => proxy.handle(job.request, id, &mut rng),
        };
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

/// The next job, after running every resume waiting: resumes first (answers already
/// begun), then the queue. Blocks while both are empty; `None` once the queue's senders
/// are all gone and it is empty, which is how shutdown ends the workers.
fn next_job(jobs: &Receiver<Job>, resumes: &Receiver<Resume>) -> Option<Job> {
    loop {
        while let Ok(resume) = resumes.try_recv() {
            resume.run();
        }
        crossbeam_channel::select_biased! {
            recv(resumes) -> resume => match resume {
                Ok(resume) => resume.run(),
                // No front sends resumes (the threaded one): only the queue is left.
                Err(_) => return jobs.recv().ok(),
            },
            recv(jobs) -> job => return job.ok(),
        }
    }
}
