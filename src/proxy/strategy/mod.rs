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

pub mod ip_hash;
pub mod least_conn;
pub mod least_load;
pub mod p2c;
pub mod random;
pub mod round_robin;
pub mod weighted;

pub use ip_hash::IpHash;
pub use least_conn::LeastConn;
pub use least_load::LeastLoad;
pub use p2c::PowerOfTwo;
pub use random::Random;
pub use round_robin::RoundRobin;
pub use weighted::Weighted;

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
    /// A stable identity of backend `index` for consistent hashing (`ip-hash`): it must
    /// not change when other backends are added or removed, so that their clients stay.
    /// The index itself will do for a fixed list.
    fn key(&self, index: usize) -> u64 {
        index as u64
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
pub const STRATEGIES: &[(&str, &str)] = &[
    (
        "round-robin",
        "each backend in turn (an atomic counter); the design card's default",
    ),
    (
        "weighted",
        "nginx's smooth weighted round-robin: weight 5,1,1 gives a a b a c a a",
    ),
    (
        "least-conn",
        "fewest requests in flight, ties taken in turn (join the shortest queue)",
    ),
    (
        "p2c",
        "power of two choices: two random backends, the one with fewer in flight",
    ),
    ("random", "a backend drawn uniformly at random"),
    (
        "ip-hash",
        "sticky per client address (rendezvous hashing); losing 1 of N moves ~1/N",
    ),
    (
        "least-load",
        "lowest reported CPU load, ties by fewest in flight; unknown load = busiest",
    ),
];

/// Builds the strategy called `name`.
pub fn by_name(name: &str) -> Result<Box<dyn Strategy>, UnknownStrategy> {
    match name {
        "round-robin" => Ok(Box::new(RoundRobin::default())),
        "weighted" => Ok(Box::new(Weighted::default())),
        "least-conn" => Ok(Box::new(LeastConn::default())),
        "p2c" => Ok(Box::new(PowerOfTwo)),
        "random" => Ok(Box::new(Random)),
        "ip-hash" => Ok(Box::new(IpHash)),
        "least-load" => Ok(Box::new(LeastLoad::default())),
        _ => Err(UnknownStrategy(name.to_string())),
    }
}

/// A command-line parser accepting exactly the names of `STRATEGIES`; `--help` lists
/// each with its description, and a wrong name is refused before anything starts.
pub fn name_parser() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        STRATEGIES
            .iter()
            .map(|(name, description)| clap::builder::PossibleValue::new(*name).help(*description)),
    )
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

/// Every strategy builds under its own name, and the names are those of `STRATEGIES`.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_name_builds_a_strategy_of_that_name() {
        assert_eq!(STRATEGIES.len(), 7);
        for (name, description) in STRATEGIES {
            assert_eq!(by_name(name).unwrap().name(), *name);
            assert!(!description.is_empty());
        }
        let error = by_name("fastest").err().unwrap().to_string();
        assert!(
            error.contains("fastest") && error.contains("least-conn"),
            "{error}"
        );
    }
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
