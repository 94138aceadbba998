//! The worker pool: a fixed number of threads taking jobs from one bounded channel.
//!
//! OS concept: producer–consumer over a bounded buffer, and a thread pool. Connection
//! threads produce jobs (`front::dispatch`), workers consume them. The channel's
//! capacity is the buffer's size: when it is full the producer does not wait, it
//! answers 503 (admission control). The number of workers bounds how many requests are
//! forwarded at once, whatever the number of clients.
//!
//! A panic while one request is handled is caught around that request (the client gets
//! 500 and the worker goes on, as a Go `net/http` server recovers a handler's panic);
//! a worker whose thread dies anyway is replaced by a new thread under the same id, so
//! the pool never shrinks.
//!
//! Besides the bounded queue, workers take `Resume`s from a second channel: the next
//! pieces of streamed answers that an event loop could not write at once (`relay.rs`).
//! They go first, since each one is an answer already begun; there is at most one per
//! connection, so that channel is bounded by the connections, not by the clients' will.

pub mod direct;
pub mod handback;
pub mod relay;
pub mod reply;

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};

use crossbeam_channel::Receiver;
use http::StatusCode;
use parking_lot::Mutex;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::http1::{Request, Response};
use crate::proxy::cache::{Cache, Upstream};
use crate::proxy::clients::X_REQUEST_ID;
use crate::proxy::forward::Proxy;
use crate::proxy::forward::headers::{X_ROUNDHOUSE_BACKEND, X_ROUNDHOUSE_WORKER};
use crate::proxy::pool::direct::DirectAnswer;
use relay::Resume;
use reply::ReplySender;

/// One request waiting for a worker, with the way back to its connection thread.
pub struct Job {
    pub request: Request,
    pub answer: Answer,
    /// Whether the client may see which worker and backend answered, and why a backend
    /// failed (clients allowed to see the admin pages only).
    pub details: bool,
    /// Serve through this cache: set by the event-loop front, which answers fresh hits
    /// itself and must not wait for the misses (the threaded front waits for the
    /// response and stores it on its connection thread instead).
    pub cache: Option<CacheJob>,
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
    /// Protects the join handles of the live worker threads; a replacement adds its own.
    /// Held only to push or pop a handle, never while joining.
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// What a worker thread needs, kept so that a replacement can be started with it.
#[derive(Clone)]
struct Worker {
    id: usize,
    jobs: Receiver<Job>,
    resumes: Receiver<Resume>,
    proxy: Arc<Proxy>,
    /// The pool's own list (`WorkerPool::workers`), so that a replacement can add its
    /// handle; the same lock, held as briefly.
    handles: Arc<Mutex<Vec<JoinHandle<()>>>>,
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
        let workers = Arc::new(Mutex::new(Vec::with_capacity(count)));
        for id in 0..count {
            Worker {
                id,
                jobs: jobs.clone(),
                resumes: resumes.clone(),
                proxy: Arc::clone(&proxy),
                handles: Arc::clone(&workers),
            }
            .spawn()?;
        }
        Ok(WorkerPool { workers })
    }

    /// Waits for every worker (and every replacement) to finish the queue and exit.
    pub fn join(self) {
        // A dying worker pushes its replacement's handle before its own thread ends, so
        // the list is never empty while a worker still runs.
        loop {
            let next = self.workers.lock().pop();
            match next {
                Some(worker) => {
                    let _ = worker.join();
                }
                None => return,
            }
        }
    }
}

impl Worker {
    fn spawn(self) -> std::io::Result<()> {
        let handles = Arc::clone(&self.handles);
        let worker = thread::Builder::new()
            .name(format!("worker-{}", self.id))
            .spawn(move || {
                let _replace_on_death = ReplaceOnDeath(Some(self.clone()));
                work(self.id, &self.jobs, &self.resumes, &self.proxy);
            })?;
        handles.lock().push(worker);
        Ok(())
    }
}

/// Starts a new worker under the same id if this one's thread unwinds: the pool keeps
/// its size whatever happens to one thread (Erlang's supervisors restart a crashed
/// worker the same way). A normal exit (the queue closed) starts nothing.
struct ReplaceOnDeath(Option<Worker>);

impl Drop for ReplaceOnDeath {
    fn drop(&mut self) {
        let Some(worker) = self.0.take() else { return };
        if !thread::panicking() {
            return;
        }
        worker
            .proxy
            .stats()
            .worker_restarts
            .fetch_add(1, Ordering::Relaxed);
        worker.proxy.stats().workers[worker.id]
            .busy
            .store(false, Ordering::Relaxed);
        log::error!("worker {} died; starting a new one in its place", worker.id);
        if let Err(error) = worker.spawn() {
            log::error!("cannot start a replacement worker: {error}");
        }
    }
}

/// A worker's whole life: take a job, forward it, answer (or hand the answer back), repeat.
fn work(id: usize, jobs: &Receiver<Job>, resumes: &Receiver<Resume>, proxy: &Arc<Proxy>) {
    crate::sys::sched::batch_current_thread();
    // Each worker owns its random number generator, so random strategies take no lock.
    let mut rng = StdRng::from_rng(&mut rand::rng());
    let stats = &proxy.stats().workers[id];
    // `next_job` blocks while there is nothing to do and ends once all senders are gone.
    while let Some(job) = next_job(jobs, resumes) {
        #[cfg(feature = "fault-injection")]
        if job
            .request
            .headers
            .get("x-roundhouse-fault")
            .is_some_and(|fault| fault == "kill-worker")
        {
            panic!("fault injected by a test: this worker thread dies");
        }
        stats.busy.store(true, Ordering::Relaxed);
        let response = match job.cache {
            Some(cache) => {
                let upstream = InlineUpstream::for_worker(proxy, id, job.details, &mut rng, cache.queue);
                handle_isolated(
                    proxy,
                    job.request,
                    id,
                    job.details,
                    &mut rng,
                    Some((&cache.cache, upstream)),
                )
            }
            None => handle_isolated(proxy, job.request, id, job.details, &mut rng, None),
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

/// Handles one request with a panic caught around it: the client gets 500 and the
/// worker lives on. The request line is kept aside (one small copy) so the log can say
/// which request it was. The answer carries the request's `X-Request-Id` either way.
fn handle_isolated(
    proxy: &Proxy,
    request: Request,
    id: usize,
    details: bool,
    rng: &mut StdRng,
    cache: Option<(&Arc<Cache>, Arc<dyn Upstream>)>,
) -> Response {
    let method = request.method.clone();
    let target = request.target.clone();
    let request_id = request.headers.get(&X_REQUEST_ID).cloned();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| match cache {
        Some((cache, upstream)) => cache.serve(request, &upstream),
        None => proxy.handle(request, id, details, rng),
    }));
    let mut response = outcome.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|text| text.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        log::error!("worker {id} panicked serving \"{method} {target}\": {message}");
        proxy.stats().panics.fetch_add(1, Ordering::Relaxed);
        proxy.stats().record_status(StatusCode::INTERNAL_SERVER_ERROR);
        Response::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error while serving this request",
        )
    });
    if !details {
        // A cached answer may carry these, stored when an admin client asked.
        response.headers.remove(X_ROUNDHOUSE_BACKEND);
        response.headers.remove(X_ROUNDHOUSE_WORKER);
    }
    if let Some(request_id) = request_id {
        response.headers.insert(X_REQUEST_ID, request_id);
    }
    response
}

/// A cached request for a worker to serve, from an event-loop front.
pub struct CacheJob {
    pub cache: Arc<Cache>,
    /// The bounded queue as a way to a backend, for a revalidation the cache runs in the
    /// background after the client is answered: it waits its turn like any request.
    pub queue: Arc<dyn Upstream>,
}

/// The cache's way to a backend from a worker that serves a cached request: forwarding
/// right here, on this worker (queueing it would have one worker wait for another, and
/// with every worker doing so, none would be left to answer).
struct InlineUpstream {
    proxy: Arc<Proxy>,
    worker: usize,
    details: bool,
    /// Seeds a generator for each fetch (`fetch` takes `&self`, and the trait is shared
    /// across threads); held only to draw that seed, never while forwarding.
    rng: Mutex<StdRng>,
    queue: Arc<dyn Upstream>,
}

impl InlineUpstream {
    fn for_worker(
        proxy: &Arc<Proxy>,
        worker: usize,
        details: bool,
        rng: &mut StdRng,
        queue: Arc<dyn Upstream>,
    ) -> Arc<dyn Upstream> {
        Arc::new(InlineUpstream {
            proxy: Arc::clone(proxy),
            worker,
            details,
            rng: Mutex::new(StdRng::from_rng(rng)),
            queue,
        })
    }
}

impl Upstream for InlineUpstream {
    fn fetch(&self, request: Request) -> Response {
        let mut rng = StdRng::from_rng(&mut *self.rng.lock());
        self.proxy.handle(request, self.worker, self.details, &mut rng)
    }

    fn background(self: Arc<Self>) -> Arc<dyn Upstream> {
        Arc::clone(&self.queue)
    }

    fn forwards_here(&self) -> bool {
        true
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
