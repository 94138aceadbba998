//! How a simulated backend spends its time on a request: a random service time, and
//! optionally a limit on how many requests it serves at once.
//!
//! OS concept: the counting semaphore. `--servers 1` turns the backend into a single
//! server: a request takes the one permit (waiting on a condition variable while
//! another holds it), sleeps out its service time, and gives the permit back. The
//! requests waiting for the permit are the backend's queue, which is exactly the model
//! of `roundhouse simulate` (one FIFO server with exponential service per backend), so
//! the live balancer can be checked against it at small scale. Without a limit every
//! request has its own thread and they all "run" at once (an infinite-server queue).
//!
//! Waking order: a condition variable does not promise FIFO, so waiting requests may
//! overtake each other. That changes the percentiles a little but not the mean: for a
//! single server that is never idle while work waits, and whose order does not look at
//! service times, the mean number in the system (and, by Little's law, the mean time
//! in it) is the same for every order.

use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use rand::{Rng, RngExt};

/// The distribution of a backend's service time.
#[derive(Debug, Clone, PartialEq)]
pub enum LatencyDist {
    /// Uniform over MIN..=MAX milliseconds (`uniform:200..800`, the default shape).
    Uniform(RangeInclusive<u64>),
    /// Exponential with this mean in milliseconds (`exp:20`): the service time of the
    /// queueing models, memoryless.
    Exponential { mean_ms: f64 },
}

impl LatencyDist {
    /// One service time.
    pub fn sample(&self, rng: &mut dyn Rng) -> Duration {
        match self {
            LatencyDist::Uniform(range) => Duration::from_millis(rng.random_range(range.clone())),
            LatencyDist::Exponential { mean_ms } => {
                // Inversion: −ln U is exponential of mean 1 for U uniform on (0, 1].
                let uniform = 1.0 - rng.random::<f64>();
                Duration::from_secs_f64(-uniform.ln() * mean_ms / 1000.0)
            }
        }
    }
}

impl std::fmt::Display for LatencyDist {
    fn fmt(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            LatencyDist::Uniform(range) => write!(formatter, "{}..{} ms", range.start(), range.end()),
            LatencyDist::Exponential { mean_ms } => write!(formatter, "exponential, mean {mean_ms} ms"),
        }
    }
}

impl FromStr for LatencyDist {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{text:?} is not a latency distribution (examples: exp:20, uniform:200..800)");
        let (kind, value) = text.trim().split_once(':').ok_or_else(bad)?;
        match kind {
            "exp" => {
                let mean_ms: f64 = value.trim().trim_end_matches("ms").parse().map_err(|_| bad())?;
                if !(mean_ms > 0.0 && mean_ms <= 3_600_000.0) {
                    return Err(format!(
                        "{text:?}: the mean must be above 0 and at most an hour, in ms"
                    ));
                }
                Ok(LatencyDist::Exponential { mean_ms })
            }
            "uniform" => crate::units::parse_millis_range(value).map(LatencyDist::Uniform),
            _ => Err(bad()),
        }
    }
}

/// `roundhouse backend --latency-dist`/`--servers`: options beyond `SimConfig`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceOptions {
    /// Service-time distribution; replaces `SimConfig::latency_ms` when set.
    pub latency: Option<LatencyDist>,
    /// Requests served at once; 0 means no limit.
    pub servers: usize,
}

/// At most `limit` requests in service at once; the others wait their turn.
#[derive(Debug)]
pub struct Servers {
    limit: usize,
    /// Protects the number of requests in service now.
    busy: Mutex<usize>,
    /// Signalled when a request leaves service.
    freed: Condvar,
}

impl Servers {
    pub fn new(limit: usize) -> Self {
        Servers {
            limit: limit.max(1),
            busy: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free server; the guard gives it back when dropped.
    pub fn acquire(&self) -> ServerGuard<'_> {
        let mut busy = self.busy.lock();
        while *busy >= self.limit {
            self.freed.wait(&mut busy);
        }
        *busy += 1;
        ServerGuard { servers: self }
    }
}

/// A server held by one request.
pub struct ServerGuard<'a> {
    servers: &'a Servers,
}

impl Drop for ServerGuard<'_> {
    fn drop(&mut self) {
        *self.servers.busy.lock() -= 1;
        self.servers.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn parses_distributions_and_refuses_nonsense() {
        assert_eq!("exp:20".parse(), Ok(LatencyDist::Exponential { mean_ms: 20.0 }));
        assert_eq!("exp:2.5ms".parse(), Ok(LatencyDist::Exponential { mean_ms: 2.5 }));
        assert_eq!("uniform:1..5".parse(), Ok(LatencyDist::Uniform(1..=5)));
        for bad in ["exp:0", "exp:-3", "exp:abc", "gauss:3", "20", "uniform:9..1"] {
            assert!(bad.parse::<LatencyDist>().is_err(), "{bad}");
        }
    }

    #[test]
    fn exponential_samples_have_the_mean_and_the_spread_of_an_exponential() {
        let dist = LatencyDist::Exponential { mean_ms: 10.0 };
        let mut rng = StdRng::seed_from_u64(4);
        let samples: Vec<f64> = (0..20_000)
            .map(|_| dist.sample(&mut rng).as_secs_f64() * 1000.0)
            .collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((mean - 10.0).abs() < 0.3, "{mean}");
        // P(X > 2·mean) = e^−2 ≈ 0.135 for an exponential.
        let above = samples.iter().filter(|&&x| x > 20.0).count() as f64 / samples.len() as f64;
        assert!((above - 0.135).abs() < 0.01, "{above}");
    }

    #[test]
    fn never_more_than_the_limit_in_service_at_once() {
        let servers = Arc::new(Servers::new(2));
        let in_service = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (servers, in_service, most) = (servers.clone(), in_service.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let _guard = servers.acquire();
                        let now = in_service.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        in_service.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=2).contains(&most), "{most} in service at once");
        assert_eq!(*servers.busy.lock(), 0);
    }
}
