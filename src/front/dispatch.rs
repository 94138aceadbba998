//! The balancer's request handler: answer `/stats` and `/metrics` here, queue
//! everything else.
//!
//! OS concept: the producer side of a bounded buffer, and admission control. The
//! connection thread `try_send`s the request into the bounded channel. If the channel
//! is full it does not wait: it answers `503 Retry-After: 1` at once, so the queue (and
//! the time a request can spend in it) never grows without bound. Otherwise the worker
//! answers the client itself (`front::direct`), or, with the cache on, hands the
//! response back through a one-shot reply slot (`pool::reply`).
//!
//! With `--cache`, the cache is asked first (`crate::cache`): a fresh hit is answered
//! here on the connection thread and never takes a queue slot. With an access log, the
//! record of each request is sent to the logger thread once its response is known.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel::{Sender, TrySendError};
use http::{Method, StatusCode, header};

use super::direct::DirectAnswer;
use super::message::{Request, Response};
use super::server::Handler;
use crate::access_log::{AccessLogSender, Pending, Record};
use crate::cache::Cache;
use crate::discovery::Discovery;
use crate::pool::reply::reply_slot;
use crate::pool::{Answer, Job};
use crate::routing::RoutingTable;
use crate::stats::Stats;

pub struct Dispatcher {
    jobs: Sender<Job>,
    capacity: usize,
    stats: Arc<Stats>,
    routing: Arc<RoutingTable>,
    cache: Option<Arc<Cache>>,
    access_log: Option<AccessLogSender>,
    discovery: Option<Arc<Discovery>>,
}

impl Dispatcher {
    pub fn new(jobs: Sender<Job>, capacity: usize, stats: Arc<Stats>, routing: Arc<RoutingTable>) -> Self {
        Dispatcher {
            jobs,
            capacity,
            stats,
            routing,
            cache: None,
            access_log: None,
            discovery: None,
        }
    }

    /// Answers cacheable requests from `cache` when it can.
    pub fn with_cache(mut self, cache: Option<Arc<Cache>>) -> Self {
        self.cache = cache;
        self
    }

    /// Sends a record of every request to the access log.
    pub fn with_access_log(mut self, access_log: Option<AccessLogSender>) -> Self {
        self.access_log = access_log;
        self
    }

    /// Shows what the etcd watchers are doing in `/stats` and `/metrics`.
    pub fn with_discovery(mut self, discovery: Arc<Discovery>) -> Self {
        self.discovery = Some(discovery);
        self
    }

    fn discovery_statuses(&self) -> Vec<Arc<crate::discovery::Status>> {
        self.discovery
            .as_ref()
            .map_or_else(Vec::new, |discovery| discovery.statuses())
    }

    fn stats_response(&self) -> Response {
        let routing = self.routing.current();
        let mut snapshot = self
            .stats
            .snapshot(routing.all_backends(), self.jobs.len(), self.capacity);
        crate::routing::report::extend_stats(&self.routing, &routing, &mut snapshot);
        snapshot["discovery"] = crate::discovery::stats_json(&self.discovery_statuses());
        Response::json(StatusCode::OK, &snapshot).with_header(header::CACHE_CONTROL, "no-store")
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
        self.cache.is_none() && !matches!(request.path(), "/stats" | "/dashboard" | "/metrics")
    }

    fn hand_off(&self, request: Request, mut direct: DirectAnswer) -> Option<Response> {
        if let Some(access_log) = &self.access_log {
            let (access_log, pending) = (access_log.clone(), Pending::of(&request));
            direct.before_write(Box::new(move |response| {
                access_log.send(pending.finish(response))
            }));
        }
        let job = Job {
            request,
            answer: Answer::Direct(direct),
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

    fn rejected(&self, peer: SocketAddr, status: StatusCode) {
        self.stats.record_status(status);
        if let Some(access_log) = &self.access_log {
            access_log.send(Record::rejected(peer, status));
        }
    }
}

impl Dispatcher {
    fn respond(&self, request: Request) -> Response {
        if request.path() == "/stats" && (request.method == Method::GET || request.method == Method::HEAD) {
            return self.stats_response();
        }
        if request.path() == "/dashboard" && [Method::GET, Method::HEAD].contains(&request.method) {
            return super::dashboard::response();
        }
        if request.path() == "/metrics" && (request.method == Method::GET || request.method == Method::HEAD) {
            let page = crate::metrics::Page {
                stats: &self.stats,
                routing: &self.routing,
                discovery: &self.discovery_statuses(),
                queue_depth: self.jobs.len(),
                queue_capacity: self.capacity,
            };
            return page.response();
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
