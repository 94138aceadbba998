//! The event loop: backends as FIFO queues in virtual time, requests dispatched by a
//! real `Strategy`.
//!
//! OS concept: discrete-event simulation, the way an OS course studies schedulers
//! without hardware. Time is a number, not a clock: the loop pops the earliest pending
//! event from a binary heap (a priority queue keyed by time), jumps the clock to it, and
//! handles it, possibly scheduling later events. Nothing sleeps and nothing runs in
//! parallel, so a million requests take a fraction of a second and a run with the same
//! seed repeats exactly.
//!
//! Events: an arrival (a request comes in and is dispatched at once), a departure (a
//! backend finishes one request), and for `least-load` a load report (the poller's
//! refresh). Each backend is a single server with a FIFO queue, so a request's finish
//! time is known the moment it is dispatched (Lindley's recursion): it starts when the
//! backend has finished everything queued before it, `start = max(now, busy_until)`,
//! and ends `service` later. Its time in system is recorded then; the departure event
//! only gives back the in-flight slot the strategies see. The heap therefore holds one
//! event per request in the system, which grows with the backends and the load, never
//! with the number of requests.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr};

use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

use crate::proxy::strategy::{PickContext, StaticView, Strategy};

/// Histogram resolution: times are recorded in thousandths of a mean service time.
const TICKS_PER_UNIT: f64 = 1000.0;

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub backends: usize,
    /// λ: the arrival rate per backend, in requests per mean service time (0 < λ < 1).
    pub load: f64,
    /// Requests to simulate, warm-up included.
    pub requests: u64,
    /// Requests at the start whose figures are discarded, while the queues fill from
    /// empty toward their steady state.
    pub warmup: u64,
    pub seed: u64,
    /// Distinct client addresses the requests come from (for `ip-hash`).
    pub clients: u64,
    /// Virtual time between load reports (for `least-load`).
    pub load_interval: f64,
}

/// What a run measured. Times are in mean service times.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    /// Most requests in one backend (waiting plus in service) after the warm-up.
    pub max_queue: u64,
    /// Requests measured (after the warm-up).
    pub measured: u64,
    /// Virtual time at the last arrival.
    pub end_time: f64,
}

/// The strategy returned no backend although every simulated backend is healthy.
#[derive(Debug, thiserror::Error)]
#[error("strategy {0} chose no backend although all are healthy")]
pub struct NoChoice(pub &'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Departure { backend: u32 },
    LoadReport,
    Arrival,
}

#[derive(Debug, Clone, Copy)]
struct Event {
    time: f64,
    kind: Kind,
}

// `BinaryHeap` is a max-heap; reversing the order makes `pop` return the earliest event.
// Equal times (never seen with continuous random times, but possible in principle) are
// ordered by kind so that the run stays deterministic.
impl Ord for Event {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .time
            .total_cmp(&self.time)
            .then_with(|| other.kind.cmp(&self.kind))
    }
}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Event {}

/// An exponential random variable of the given rate, by inversion: if U is uniform on
/// (0, 1], then −ln(U)/rate is exponential. Poisson arrivals are exactly arrivals with
/// exponential gaps.
fn exponential(rng: &mut dyn Rng, rate: f64) -> f64 {
    let uniform: f64 = 1.0 - rng.random::<f64>();
    -uniform.ln() / rate
}

/// Work the backends have done, for the busy fraction that `least-load` reads.
struct LoadMeter {
    /// Total service time ever assigned to each backend.
    assigned: Vec<f64>,
    /// Work done by each backend at the previous report.
    done_before: Vec<f64>,
}

impl LoadMeter {
    /// Each backend's busy percentage since the last report, as a backend reporting its
    /// CPU would: work done in the interval over the interval.
    fn report(&mut self, now: f64, interval: f64, busy_until: &[f64], loads: &mut [Option<f64>]) {
        for backend in 0..loads.len() {
            let remaining = (busy_until[backend] - now).max(0.0);
            let done = self.assigned[backend] - remaining;
            loads[backend] = Some(100.0 * (done - self.done_before[backend]) / interval);
            self.done_before[backend] = done;
        }
    }
}

/// Runs `scenario` with `strategy` choosing a backend for every request.
///
/// Two random streams: the workload's (arrival gaps, service times, clients) and the
/// strategy's. Every strategy run with one seed therefore faces the very same requests
/// (common random numbers), so differences between strategies are the strategies'.
pub fn run(scenario: &Scenario, strategy: &dyn Strategy) -> Result<Measured, NoChoice> {
    let count = scenario.backends;
    let mut workload = StdRng::seed_from_u64(scenario.seed);
    let mut choices = StdRng::seed_from_u64(scenario.seed ^ 0x5851_f42d_4c95_7f2d);
    let arrival_rate = scenario.load * count as f64;

    // The strategy's view: in-flight counts the loop keeps current, weight 1, all
    // healthy, loads only once a report has happened.
    let mut view = StaticView::uniform(count);
    let mut busy_until = vec![0.0_f64; count];
    let mut meter = (strategy.name() == "least-load").then(|| LoadMeter {
        assigned: vec![0.0; count],
        done_before: vec![0.0; count],
    });

    let mut events = BinaryHeap::with_capacity(2 * count + 2);
    events.push(Event {
        time: exponential(&mut workload, arrival_rate),
        kind: Kind::Arrival,
    });
    if meter.is_some() {
        events.push(Event {
            time: scenario.load_interval,
            kind: Kind::LoadReport,
        });
    }

    // Fixed bounds (a thousandth to ten million mean service times) make the memory
    // fixed too, about 300 KB, however many requests are recorded.
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3)
        .expect("the bounds and 3 significant figures are valid");
    let mut total_time = 0.0_f64;
    let mut max_queue = 0_u64;
    let mut arrived = 0_u64;
    let mut end_time = 0.0;

    while let Some(Event { time: now, kind }) = events.pop() {
        match kind {
            Kind::Departure { backend } => view.in_flight[backend as usize] -= 1,
            Kind::LoadReport => {
                if let Some(meter) = meter.as_mut() {
                    meter.report(now, scenario.load_interval, &busy_until, &mut view.loads);
                }
                events.push(Event {
                    time: now + scenario.load_interval,
                    kind: Kind::LoadReport,
                });
            }
            Kind::Arrival => {
                arrived += 1;
                let service = exponential(&mut workload, 1.0);
                let client = workload.random_range(0..scenario.clients.max(1));
                let mut context = PickContext {
                    client: Some(IpAddr::V4(Ipv4Addr::from(client as u32))),
                    exclude: &[],
                    rng: &mut choices,
                };
                let backend = strategy
                    .pick(&view, &mut context)
                    .ok_or(NoChoice(strategy.name()))?;
                let finish = busy_until[backend].max(now) + service;
                busy_until[backend] = finish;
                if let Some(meter) = meter.as_mut() {
                    meter.assigned[backend] += service;
                }
                view.in_flight[backend] += 1;
                events.push(Event {
                    time: finish,
                    kind: Kind::Departure {
                        backend: backend as u32,
                    },
                });
                if arrived > scenario.warmup {
                    let in_system = finish - now;
                    total_time += in_system;
                    let ticks = (in_system * TICKS_PER_UNIT).round().max(1.0) as u64;
                    histogram.saturating_record(ticks);
                    max_queue = max_queue.max(view.in_flight[backend]);
                }
                if arrived == scenario.requests {
                    end_time = now;
                    break;
                }
                events.push(Event {
                    time: now + exponential(&mut workload, arrival_rate),
                    kind: Kind::Arrival,
                });
            }
        }
    }

    let measured = scenario.requests - scenario.warmup.min(scenario.requests);
    let quantile = |q: f64| histogram.value_at_quantile(q) as f64 / TICKS_PER_UNIT;
    Ok(Measured {
        mean: if measured == 0 {
            0.0
        } else {
            total_time / measured as f64
        },
        p50: quantile(0.5),
        p99: quantile(0.99),
        p999: quantile(0.999),
        max_queue,
        measured,
        end_time,
    })
}
