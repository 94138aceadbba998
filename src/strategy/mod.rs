//! Balancing strategies: which backend serves the next request.
//!
//! OS concept: scheduling policy. A balancer choosing a backend is a scheduler choosing
//! a CPU for a task; round-robin, least-connections and random choices all have CPU
//! scheduling twins (see docs/strategies.md).
//!
//! A strategy sees backends only through the small `BackendsView` (in-flight count,
//! weight, health), never sockets or threads, so the same code runs in the live
//! balancer and in the discrete-event simulator. Each strategy is one file; to add one,
//! write a file, implement `Strategy`, and list it in `STRATEGIES` and `by_name`.

use std::net::IpAddr;

use rand::Rng;

pub mod round_robin;

pub use round_robin::RoundRobin;

/// What a strategy may know about the backends.
pub trait BackendsView {
    /// Number of backends; they are numbered `0..len()`.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Requests sent to backend `index` and not yet answered.
    fn in_flight(&self, index: usize) -> u64;
    /// Relative share of traffic (nginx `weight=`); 1 unless configured.
    fn weight(&self, index: usize) -> u32;
    /// False while the health checks consider the backend down.
    fn is_healthy(&self, index: usize) -> bool;
    /// Last reported CPU load in percent, if known and fresh (for `least-load`).
    fn load(&self, _index: usize) -> Option<f64> {
        None
    }
}

/// Everything about one pick that is not the backends themselves.
pub struct PickContext<'a> {
    /// The client's address (for hashing strategies).
    pub client: Option<IpAddr>,
    /// Backends already tried for this request: a retry must go elsewhere.
    pub exclude: &'a [usize],
    /// The caller's random number generator. Each worker owns one, so picking takes no
    /// lock; the simulator passes a seeded one, so its runs repeat exactly.
    pub rng: &'a mut dyn Rng,
}

impl PickContext<'_> {
    /// A backend the strategy may return: healthy and not already tried.
    pub fn is_eligible(&self, backends: &dyn BackendsView, index: usize) -> bool {
        backends.is_healthy(index) && !self.exclude.contains(&index)
    }
}

/// A balancing policy. Implementations must be cheap and must never block: they run
/// on every request, on every worker thread at once.
pub trait Strategy: Send + Sync {
    /// The name used on the command line and in `/stats`.
    fn name(&self) -> &'static str;
    /// The index of the backend for the next request, or `None` when no backend is
    /// eligible (the client then gets a 503).
    fn pick(&self, backends: &dyn BackendsView, context: &mut PickContext) -> Option<usize>;
}

/// Every strategy name with a one-line description, for `--help` and errors.
pub const STRATEGIES: &[(&str, &str)] = &[(
    "round-robin",
    "each backend in turn (an atomic counter); the design card's default",
)];

/// Builds the strategy called `name`.
pub fn by_name(name: &str) -> Result<Box<dyn Strategy>, UnknownStrategy> {
    match name {
        "round-robin" => Ok(Box::new(RoundRobin::default())),
        _ => Err(UnknownStrategy(name.to_string())),
    }
}

/// A strategy name that `by_name` does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown strategy {0:?}; choose one of: {names}", names = strategy_names())]
pub struct UnknownStrategy(pub String);

/// The strategy names, comma-separated.
pub fn strategy_names() -> String {
    STRATEGIES
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A plain list of backends for unit tests and the simulator.
#[derive(Debug, Clone, Default)]
pub struct StaticView {
    pub in_flight: Vec<u64>,
    pub weights: Vec<u32>,
    pub healthy: Vec<bool>,
    pub loads: Vec<Option<f64>>,
}

impl StaticView {
    /// `count` healthy backends of weight 1 with nothing in flight.
    pub fn uniform(count: usize) -> Self {
        StaticView {
            in_flight: vec![0; count],
            weights: vec![1; count],
            healthy: vec![true; count],
            loads: vec![None; count],
        }
    }
}

impl BackendsView for StaticView {
    fn len(&self) -> usize {
        self.in_flight.len()
    }
    fn in_flight(&self, index: usize) -> u64 {
        self.in_flight[index]
    }
    fn weight(&self, index: usize) -> u32 {
        self.weights[index]
    }
    fn is_healthy(&self, index: usize) -> bool {
        self.healthy[index]
    }
    fn load(&self, index: usize) -> Option<f64> {
        self.loads[index]
    }
}
