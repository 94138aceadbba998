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

use crossbeam_channel::{Receiver, Sender, TrySendError};
use http::{StatusCode, header};

use super::server::Handler;
use crate::http1::message::{Request, Response};
use crate::proxy::access_log::{AccessLogSender, Pending, Record};
use crate::proxy::admin::{self, AdminPages};
use crate::proxy::cache::{Cache, Upstream};
use crate::proxy::clients::{self, ClientRules, X_REQUEST_ID};
use crate::proxy::discovery::Discovery;
use crate::proxy::forward::headers::{X_ROUNDHOUSE_BACKEND, X_ROUNDHOUSE_WORKER};
use crate::proxy::pool::direct::DirectAnswer;
use crate::proxy::pool::reply::reply_slot;
use crate::proxy::pool::{Answer, CacheJob, Job};
use crate::proxy::routing::RoutingTable;
use crate::proxy::stats::Stats;
use crate::proxy::tls::TlsAcceptor;
use crate::proxy::tunnel::Tunnels;

pub struct Dispatcher {
    jobs: Sender<Job>,
    stats: Arc<Stats>,
    cache: Option<Arc<Cache>>,
    access_log: Option<AccessLogSender>,
    admin: AdminPages,
    /// The queue as the cache's way to a backend: for public clients, then for admins.
    upstreams: [Arc<dyn Upstream>; 2],
    /// Whom to believe about client addresses, and whom to show the admin pages.
    rules: Arc<ClientRules>,
    /// False with `--admin-listen`: the admin pages live on their own listener, and
    /// their paths are forwarded here like any other.
    admin_here: bool,
}

impl Dispatcher {
    /// `queue` is the workers' end of `jobs`, read for its length on `/stats`.
    pub fn new(
        jobs: Sender<Job>,
        queue: Receiver<Job>,
        capacity: usize,
        stats: Arc<Stats>,
        routing: Arc<RoutingTable>,
    ) -> Self {
        let upstream = |details| -> Arc<dyn Upstream> {
            Arc::new(Queue {
                jobs: jobs.clone(),
                stats: Arc::clone(&stats),
                details,
            })
        };
        let upstreams = [upstream(false), upstream(true)];
        Dispatcher {
            jobs,
            upstreams,
            admin: AdminPages {
                stats: Arc::clone(&stats),
                routing,
                cache: None,
                jobs: queue,
                capacity,
                tls: None,
                tunnels: Arc::new(Tunnels::new(0, std::time::Duration::ZERO)),
                discovery: None,
            },
            stats,
            cache: None,
            access_log: None,
            rules: Arc::new(ClientRules::default()),
            admin_here: true,
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

    /// Shows the listener's TLS handshakes and the tunnels on the admin pages.
    pub fn with_admin_extras(mut self, tls: Option<Arc<TlsAcceptor>>, tunnels: Arc<Tunnels>) -> Self {
        self.admin.tls = tls;
        self.admin.tunnels = tunnels;
        self
    }

    /// Shows what the etcd watchers are doing in `/stats` and `/metrics`.
    pub fn with_discovery(mut self, discovery: Arc<Discovery>) -> Self {
        self.admin.discovery = Some(discovery);
        self
    }

    /// Applies `rules`; `admin_here` false when the admin pages have their own listener.
    pub fn with_clients(mut self, rules: Arc<ClientRules>, admin_here: bool) -> Self {
        self.rules = rules;
        self.admin_here = admin_here;
        self
    }

    /// Settles who the client is and gives the request its ID, before anything else
    /// (the access log, the admin check, the cache) looks at it. Returns whether the
    /// client may see the admin pages and debugging details.
    fn prepare(&self, request: &mut Request) -> bool {
        #[cfg(feature = "fault-injection")]
        if request
            .headers
            .get("x-roundhouse-fault")
            .is_some_and(|fault| fault == "panic-in-front")
        {
            panic!("fault injected by a test on the front's own thread (connection thread or event loop)");
        }
        request.client = self.rules.client_of(request.peer.ip(), &request.headers);
        let id = clients::request_id(&request.headers);
        request.headers.insert(X_REQUEST_ID, id);
        self.rules.is_admin(request.client)
    }

    fn is_admin_page(&self, request: &Request) -> bool {
        self.admin_here && AdminPages::is_admin_path(request.path())
    }
}

impl Handler for Dispatcher {
    fn handle(&self, mut request: Request) -> Response {
        let details = self.prepare(&mut request);
        let request_id = request.headers.get(&X_REQUEST_ID).cloned();
        let pending = self.access_log.as_ref().map(|_| Pending::of(&request));
        let mut response = self.respond(request, details);
        if !details {
            // A cached answer may carry headers stored for an admin client.
            response.headers.remove(X_ROUNDHOUSE_BACKEND);
            response.headers.remove(X_ROUNDHOUSE_WORKER);
        }
        if let Some(request_id) = request_id {
            response.headers.insert(X_REQUEST_ID, request_id);
        }
        if let (Some(access_log), Some(pending)) = (&self.access_log, pending) {
            access_log.send(pending.finish(&response));
        }
        response
    }

    /// Forwarded requests are answered by their worker; the admin pages are answered
    /// here, and so is everything when the cache is on, since the cache must see each
    /// response on this thread to store it.
    fn can_hand_off(&self, request: &Request) -> bool {
        // An upgrade's 101 must come back here: this thread turns into its tunnel.
        self.cache.is_none() && !self.is_admin_page(request) && !request.wants_upgrade()
    }

    fn hand_off(&self, mut request: Request, direct: DirectAnswer) -> Option<Response> {
        let details = self.prepare(&mut request);
        self.queue_direct(request, direct, details, None)
    }

    /// The event loop's way in: what can be answered at once (an admin page, a fresh
    /// cache hit) is answered here, on the loop's thread; everything else goes to a
    /// worker, cached requests with the cache to serve them there (a miss must not make
    /// the loop wait).
    fn answer_or_hand_off(&self, mut request: Request, direct: DirectAnswer) -> Option<Response> {
        let details = self.prepare(&mut request);
        let upgrade = request.wants_upgrade();
        let now = if self.is_admin_page(&request) {
            self.admin_page(&request, details)
        } else if upgrade {
            // An upgrade is a connection, not a cacheable answer: its worker forwards it
            // and hands the `101` back to the loop, which gives the connection to a
            // tunnel (`event_loop::connection`).
            None
        } else {
            self.cache.as_ref().and_then(|cache| cache.fresh_hit(&request))
        };
        let Some(mut response) = now else {
            let cache = self.cache.as_ref().filter(|_| !upgrade).map(|cache| CacheJob {
                cache: Arc::clone(cache),
                queue: Arc::clone(self.upstream(details)),
            });
            return self.queue_direct(request, direct, details, cache);
        };
        self.finish_here(&request, &mut response, details);
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
        details: bool,
        cache: Option<CacheJob>,
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
            details,
            cache,
        };
        let error = match self.jobs.try_send(job) {
            Ok(()) => return None,
            Err(error) => error,
        };
        let mut response = self.refusal(&error);
        let job = error.into_inner();
        if let Some(request_id) = job.request.headers.get(&X_REQUEST_ID) {
            response.headers.insert(X_REQUEST_ID, request_id.clone());
        }
        if let Answer::Direct(direct) = job.answer {
            direct.take_back(&response);
        }
        Some(response)
    }

    /// An admin page, or 403 for a client that may not see it (`None`: not a page).
    fn admin_page(&self, request: &Request, details: bool) -> Option<Response> {
        if !details {
            self.stats.record_status(StatusCode::FORBIDDEN);
            return Some(admin::forbidden());
        }
        self.admin.respond(request)
    }

    /// What every answer given here gets: the request's ID, and no debugging headers for
    /// a client that may not see them (a cached answer may carry some stored for an
    /// admin client).
    fn finish_here(&self, request: &Request, response: &mut Response, details: bool) {
        if !details {
            response.headers.remove(X_ROUNDHOUSE_BACKEND);
            response.headers.remove(X_ROUNDHOUSE_WORKER);
        }
        if let Some(request_id) = request.headers.get(&X_REQUEST_ID) {
            response.headers.insert(X_REQUEST_ID, request_id.clone());
        }
    }

    fn respond(&self, request: Request, details: bool) -> Response {
        if self.is_admin_page(&request)
            && let Some(page) = self.admin_page(&request, details)
        {
            return page;
        }
        match &self.cache {
            // An upgrade is a connection, not a cacheable answer.
            Some(cache) if !request.wants_upgrade() => cache.serve(request, self.upstream(details)),
            _ => self.queue(request, details),
        }
    }

    /// Hands the request to a worker through the bounded queue and waits for the answer.
    fn queue(&self, request: Request, details: bool) -> Response {
        self.upstream(details).fetch(request)
    }

    /// The queue as the cache's way to a backend; one for each disclosure, so a
    /// background revalidation keeps the one its request came with.
    fn upstream(&self, details: bool) -> &Arc<dyn Upstream> {
        if details {
            &self.upstreams[1]
        } else {
            &self.upstreams[0]
        }
    }

    fn refusal(&self, error: &TrySendError<Job>) -> Response {
        refusal(&self.stats, error)
    }
}

/// The bounded queue as a way to a backend that owns what it needs, so the cache can
/// keep one for a background revalidation.
struct Queue {
    jobs: Sender<Job>,
    stats: Arc<Stats>,
    /// What the worker may show the client (`Job::details`).
    details: bool,
}

impl Upstream for Queue {
    fn background(self: Arc<Self>) -> Arc<dyn Upstream> {
        self
    }

    /// Hands the request to a worker through the bounded queue and waits for the answer.
    fn fetch(&self, request: Request) -> Response {
        let (reply, answer) = reply_slot();
        let job = Job {
            request,
            answer: Answer::Slot(reply),
            details: self.details,
            cache: None,
        };
        if let Err(error) = self.jobs.try_send(job) {
            return refusal(&self.stats, &error);
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
}

/// The answer when the queue does not take a job: full (503 now, try again in a
/// second) or closed because the balancer is shutting down.
fn refusal(stats: &Stats, error: &TrySendError<Job>) -> Response {
    stats.record_status(StatusCode::SERVICE_UNAVAILABLE);
    match error {
        TrySendError::Full(_) => {
            stats.rejected.fetch_add(1, Ordering::Relaxed);
            Response::text(StatusCode::SERVICE_UNAVAILABLE, "queue full, try again")
                .with_header(header::RETRY_AFTER, "1")
        }
        TrySendError::Disconnected(_) => Response::text(StatusCode::SERVICE_UNAVAILABLE, "shutting down")
            .with_header(header::CONNECTION, "close"),
    }
}
