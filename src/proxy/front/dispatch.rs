//! The balancer's request handler: answer `/stats` and `/metrics` here, queue
//! everything else.
//!
//! OS concept: the producer side of a bounded buffer, and admission control. The
//! connection thread `try_send`s the request into the bounded channel. If the channel
//! is full it does not wait: it answers `503 Retry-After: 1` at once, so the queue (and
//! the time a request can spend in it) never grows without bound. Otherwise the worker
//! answers the client itself (`pool::direct`), or, with the cache on, hands the
//! response back through a one-shot reply slot (`pool::reply`).
//!
//! With `--cache`, the cache is asked first (`crate::proxy::cache`): a fresh hit is answered
//! here on the connection thread and never takes a queue slot. With an access log, the
//! record of each request is sent to the logger thread once its response is known.
//!
//! The event-loop front may not wait at all (`answer_or_hand_off`): admin pages and
//! fresh cache hits are answered on the loop thread, everything else goes to a worker
//! with the cache attached, and the worker runs the miss path (coalescing, storing).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel::{Sender, TrySendError};
use http::{StatusCode, header};

use super::server::Handler;
use crate::http1::message::{Request, Response};
use crate::proxy::access_log::{AccessLogSender, Pending, Record};
use crate::proxy::admin::{AdminPages, Queue};
use crate::proxy::cache::Cache;
use crate::proxy::pool::direct::DirectAnswer;
use crate::proxy::pool::reply::reply_slot;
use crate::proxy::pool::{Answer, Job};
use crate::proxy::routing::RoutingTable;
use crate::proxy::stats::Stats;

pub struct Dispatcher {
    jobs: Sender<Job>,
    capacity: usize,
    stats: Arc<Stats>,
    cache: Option<Arc<Cache>>,
    access_log: Option<AccessLogSender>,
    admin: AdminPages,
}

impl Dispatcher {
    pub fn new(jobs: Sender<Job>, capacity: usize, stats: Arc<Stats>, routing: Arc<RoutingTable>) -> Self {
        Dispatcher {
            jobs,
            capacity,
            admin: AdminPages {
                stats: Arc::clone(&stats),
                routing,
                cache: None,
            },
            stats,
            cache: None,
            access_log: None,
        }
    }

    /// Answers cacheable requests from `cache` when it can.
    pub fn with_cache(mut self, cache: Option<Arc<Cache>>) -> Self {
        self.admin.cache.clone_from(&cache);
        self.cache = cache;
        self
    }

    /// Sends a record of every request to the access log.
    pub fn with_access_log(mut self, access_log: Option<AccessLogSender>) -> Self {
        self.access_log = access_log;
        self
    }
}

impl Handler for Dispatcher {
    fn handle(&self, request: Request) -> Response {
        let Some(access_log) = &self.access_log else {
            return self.respond(request);
        };
        let pending = Pending::of(&request);
        let response = self.respond(request);
        access_log.send(pending.finish(&response));
        response
    }

    /// Forwarded requests are answered by their worker; `/stats` and friends are
    /// answered here, and so is everything when the cache is on, since the cache must
    /// see each response on this thread to store it.
    fn can_hand_off(&self, request: &Request) -> bool {
        self.cache.is_none() && !AdminPages::is_admin_path(request.path())
    }

    fn hand_off(&self, request: Request, direct: DirectAnswer) -> Option<Response> {
        self.queue_direct(request, direct, None)
    }

    fn answer_or_hand_off(&self, request: Request, direct: DirectAnswer) -> Option<Response> {
        let now = self
            .admin
            .respond(&request, self.queue_now())
            .or_else(|| self.cache.as_ref().and_then(|cache| cache.fresh_hit(&request)));
        let Some(response) = now else {
            return self.queue_direct(request, direct, self.cache.clone());
        };
        if let Some(access_log) = &self.access_log {
            access_log.send(Pending::of(&request).finish(&response));
        }
        direct.take_back(&response);
        Some(response)
    }

    fn rejected(&self, peer: SocketAddr, status: StatusCode) {
        self.stats.record_status(status);
        if let Some(access_log) = &self.access_log {
            access_log.send(Record::rejected(peer, status));
        }
    }
}

impl Dispatcher {
    /// Queues a request whose worker answers the client itself; on refusal, the
    /// refusal to write instead.
    fn queue_direct(
        &self,
        request: Request,
        mut direct: DirectAnswer,
        cache: Option<Arc<Cache>>,
    ) -> Option<Response> {
        if let Some(access_log) = &self.access_log {
            let (access_log, pending) = (access_log.clone(), Pending::of(&request));
            direct.before_write(Box::new(move |response| {
                access_log.send(pending.finish(response))
            }));
        }
        let job = Job {
            request,
            answer: Answer::Direct(direct),
            cache,
        };
        let error = match self.jobs.try_send(job) {
            Ok(()) => return None,
            Err(error) => error,
        };
        let response = self.refusal(&error);
        if let Answer::Direct(direct) = error.into_inner().answer {
            direct.take_back(&response);
        }
        Some(response)
    }

    fn queue_now(&self) -> Queue {
        Queue {
            depth: self.jobs.len(),
            capacity: self.capacity,
        }
    }

    fn respond(&self, request: Request) -> Response {
        if let Some(page) = self.admin.respond(&request, self.queue_now()) {
            return page;
        }
        match &self.cache {
            Some(cache) => cache.serve(request, |request| self.queue(request)),
            None => self.queue(request),
        }
    }

    /// Hands the request to a worker through the bounded queue and waits for the answer.
    fn queue(&self, request: Request) -> Response {
        let (reply, answer) = reply_slot();
        let job = Job {
            request,
            answer: Answer::Slot(reply),
            cache: None,
        };
        if let Err(error) = self.jobs.try_send(job) {
            return self.refusal(&error);
        }
        // A worker always replies; if it died instead, its end of the slot is dropped
        // and we say so rather than hang.
        answer.recv().unwrap_or_else(|_| {
            Response::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "worker failed while serving this request",
            )
        })
    }

    /// The answer when the queue does not take a job: full (503 now, try again in a
    /// second) or closed because the balancer is shutting down.
    fn refusal(&self, error: &TrySendError<Job>) -> Response {
        self.stats.record_status(StatusCode::SERVICE_UNAVAILABLE);
        match error {
            TrySendError::Full(_) => {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                Response::text(StatusCode::SERVICE_UNAVAILABLE, "queue full, try again")
                    .with_header(header::RETRY_AFTER, "1")
            }
            TrySendError::Disconnected(_) => Response::text(StatusCode::SERVICE_UNAVAILABLE, "shutting down")
                .with_header(header::CONNECTION, "close"),
        }
    }
}
