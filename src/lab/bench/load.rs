//! The closed loop: `-c` client threads, each sending its next request as soon as the
//! previous answer arrives, and one collector that owns every measurement.
//!
//! OS concept: message passing instead of shared state. Client threads own nothing
//! shared but two atomics (the stop flag and, with `-n`, a ticket counter); each result
//! goes to the collector as a message on a channel. The collector is the only owner of
//! the histogram and the tallies, so no lock is needed and the progress bar reads them
//! for free. Each client has its own ureq agent, so its keep-alive connection is its
//! own too, as in wrk (one connection per client) rather than one pool shared by all.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use hdrhistogram::Histogram;

/// How long a client waits after its connection was refused, before it tries again.
const REFUSED_PAUSE: Duration = Duration::from_millis(10);

/// When the run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopRule {
    /// After this long; requests still waiting then are left out (as wrk does).
    Duration(Duration),
    /// After exactly this many requests.
    Requests(u64),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub url: String,
    pub clients: usize,
    pub stop: StopRule,
    /// Per-phase timeout of each request.
    pub timeout: Duration,
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer with this status (any status: 503 is an answer too).
    Status(u16),
    /// No answer: the kind of transport failure (`refused`, `timeout`, `closed`, ...).
    Transport(&'static str),
}

/// One finished request, sent from a client thread to the collector.
#[derive(Debug)]
struct Sample {
    latency: Duration,
    outcome: Outcome,
}

/// Latencies are recorded in microseconds, up to an hour, to 3 significant digits.
const HISTOGRAM_MAX_US: u64 = 3_600_000_000;

/// Everything measured so far; owned by the collector alone.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Requests finished, answered or not.
    pub requests: u64,
    /// Answers by status code.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests that got no answer, by kind of failure.
    pub transport_errors: BTreeMap<&'static str, u64>,
    /// Latency of answered requests, in microseconds.
    pub latency_us: Histogram<u64>,
}

impl Tally {
    pub fn new() -> Self {
        Tally {
            requests: 0,
            by_status: BTreeMap::new(),
            transport_errors: BTreeMap::new(),
            latency_us: Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3).expect("valid histogram bounds"),
        }
    }

    fn record(&mut self, sample: Sample) {
        self.requests += 1;
        match sample.outcome {
            Outcome::Status(status) => {
                *self.by_status.entry(status).or_default() += 1;
                let micros = u64::try_from(sample.latency.as_micros()).unwrap_or(u64::MAX);
                self.latency_us
                    .saturating_record(micros.clamp(1, HISTOGRAM_MAX_US));
            }
            Outcome::Transport(kind) => *self.transport_errors.entry(kind).or_default() += 1,
        }
    }

    /// Answers with a 4xx or 5xx status plus requests with no answer at all.
    pub fn errors(&self) -> u64 {
        let bad_status: u64 = self
            .by_status
            .iter()
            .filter(|(status, _)| **status >= 400)
            .map(|(_, count)| count)
            .sum();
        bad_status + self.transport_errors.values().sum::<u64>()
    }
}

impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
}

/// A run that has finished.
#[derive(Debug, Clone)]
pub struct LoadOutcome {
    pub tally: Tally,
    /// From the start to the deadline (`-d`) or to the last answer (`-n`).
    pub elapsed: Duration,
    /// Requests sent but not answered when a `-d` run ended (always 0 with `-n`).
    pub unfinished: u64,
}

/// Client threads at work.
pub struct RunningLoad {
    samples: Receiver<Sample>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    clients: Vec<thread::JoinHandle<()>>,
    rule: StopRule,
    started: Instant,
}

/// Starts the client threads.
pub fn start(plan: &LoadPlan) -> io::Result<RunningLoad> {
    let (sender, samples) = crossbeam_channel::unbounded();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let limit = match plan.stop {
        StopRule::Requests(count) => Some(count),
        StopRule::Duration(_) => None,
    };
    let started = Instant::now();
    let mut clients = Vec::with_capacity(plan.clients);
    for id in 0..plan.clients {
        let client = Client {
            agent: agent(plan.timeout),
            url: plan.url.clone(),
            stop: Arc::clone(&stop),
            sent: Arc::clone(&sent),
            limit,
            samples: sender.clone(),
        };
        let spawned = thread::Builder::new()
            .name(format!("bench-client-{id}"))
            .spawn(move || client.run());
        match spawned {
            Ok(handle) => clients.push(handle),
            Err(error) => {
                stop.store(true, Ordering::Relaxed);
                return Err(error);
            }
        }
    }
    Ok(RunningLoad {
        samples,
        stop,
        sent,
        clients,
        rule: plan.stop,
        started,
    })
}

/// How often the collector wakes up to report progress when no answer arrives.
const TICK: Duration = Duration::from_millis(100);

impl RunningLoad {
    /// Collects answers until the run is over, calling `progress(requests, elapsed)`
    /// about every 100 ms.
    pub fn collect(self, mut progress: impl FnMut(u64, Duration)) -> LoadOutcome {
        let mut tally = Tally::new();
        let mut next_tick = TICK;
        let deadline = match self.rule {
            StopRule::Duration(duration) => Some(duration),
            StopRule::Requests(_) => None,
        };
        loop {
            let elapsed = self.started.elapsed();
            if deadline.is_some_and(|deadline| elapsed >= deadline) {
                break;
            }
            let wait = deadline.map_or(TICK, |deadline| (deadline - elapsed).min(TICK));
            match self.samples.recv_timeout(wait) {
                Ok(sample) => tally.record(sample),
                Err(RecvTimeoutError::Timeout) => {}
                // Every client has exited: with `-n` that means all requests are in.
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let elapsed = self.started.elapsed();
            if elapsed >= next_tick {
                progress(tally.requests, elapsed);
                next_tick = elapsed + TICK;
            }
        }
        self.stop.store(true, Ordering::Relaxed);
        // Answers already in the channel arrived by now: they belong to the run.
        while let Ok(sample) = self.samples.try_recv() {
            tally.record(sample);
        }
        let elapsed = match deadline {
            Some(deadline) => deadline,
            None => self.started.elapsed(),
        };
        let unfinished = self.sent.load(Ordering::Relaxed).saturating_sub(tally.requests);
        if deadline.is_none() {
            for client in self.clients {
                let _ = client.join();
            }
        }
        // With `-d`, clients still waiting for an answer are not joined: behind a
        // long queue that could take many seconds. They see the stop flag (or the
        // closed channel) after their answer and exit on their own.
        LoadOutcome {
            tally,
            elapsed,
            unfinished: if deadline.is_some() { unfinished } else { 0 },
        }
    }
}

/// An agent for one client: keep-alive with one idle connection, every status
/// returned as an answer, per-phase timeouts. Never `timeout_global`: in ureq it starts
/// an extra thread per request.
fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .user_agent("roundhouse-bench")
        .timeout_connect(Some(timeout))
        .timeout_send_request(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_recv_body(Some(timeout))
        .max_idle_connections_per_host(1)
        .max_idle_connections(1)
        .build()
        .new_agent()
}

/// One client thread's state.
struct Client {
    agent: ureq::Agent,
    url: String,
    stop: Arc<AtomicBool>,
    /// Requests sent by all clients; with `-n`, also the ticket counter.
    sent: Arc<AtomicU64>,
    limit: Option<u64>,
    samples: Sender<Sample>,
}

impl Client {
    fn run(self) {
        while !self.stop.load(Ordering::Relaxed) {
            // `fetch_add` hands out each ticket exactly once, so with `-n` exactly
            // that many requests are sent, whichever clients send them.
            let ticket = self.sent.fetch_add(1, Ordering::Relaxed);
            if self.limit.is_some_and(|limit| ticket >= limit) {
                break;
            }
            let begin = Instant::now();
            let outcome = self.request();
            let refused = matches!(outcome, Outcome::Transport("refused" | "connect"));
            let sample = Sample {
                latency: begin.elapsed(),
                outcome,
            };
            if self.samples.send(sample).is_err() {
                break;
            }
            if refused {
                // Nothing listens: without a pause every client would retry in a busy
                // loop and burn the CPU the server under test may need.
                thread::sleep(REFUSED_PAUSE);
            }
        }
    }

    fn request(&self) -> Outcome {
        match self.agent.get(&self.url).call() {
            Ok(mut response) => {
                let status = response.status().as_u16();
                // Reading the body to its end is what returns the connection for reuse.
                match io::copy(&mut response.body_mut().as_reader(), &mut io::sink()) {
                    Ok(_) => Outcome::Status(status),
                    Err(error) => Outcome::Transport(io_kind(&error)),
                }
            }
            Err(error) => Outcome::Transport(ureq_kind(&error)),
        }
    }
}

/// A short name for a failed request, for the error table.
fn ureq_kind(error: &ureq::Error) -> &'static str {
    match error {
        ureq::Error::Timeout(_) => "timeout",
        ureq::Error::Io(io) => io_kind(io),
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => "connect",
        _ => "protocol",
    }
}

fn io_kind(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "refused",
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timeout",
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => "closed",
        io::ErrorKind::AddrNotAvailable
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable => "connect",
        _ => "io",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(millis: u64, outcome: Outcome) -> Sample {
        Sample {
            latency: Duration::from_millis(millis),
            outcome,
        }
    }

    #[test]
    fn tally_counts_statuses_transport_errors_and_latencies() {
        let mut tally = Tally::new();
        tally.record(sample(10, Outcome::Status(200)));
        tally.record(sample(20, Outcome::Status(200)));
        tally.record(sample(1, Outcome::Status(503)));
        tally.record(sample(0, Outcome::Transport("refused")));
        assert_eq!(tally.requests, 4);
        assert_eq!(tally.by_status[&200], 2);
        assert_eq!(tally.errors(), 2, "one 503 and one refused connection");
        assert_eq!(tally.latency_us.len(), 3, "only answers have a latency");
        assert!(tally.latency_us.max() >= 19_990);
    }

    #[test]
    fn a_refused_connection_is_counted_not_fatal() {
        // Port 1 on loopback has no listener: every request is refused at once.
        let plan = LoadPlan {
            url: "http://127.0.0.1:1/".into(),
            clients: 2,
            stop: StopRule::Requests(6),
            timeout: Duration::from_secs(2),
        };
        let outcome = start(&plan).unwrap().collect(|_, _| {});
        assert_eq!(outcome.tally.requests, 6);
        assert_eq!(outcome.tally.transport_errors.get("refused"), Some(&6));
        assert_eq!(outcome.unfinished, 0);
    }
}
