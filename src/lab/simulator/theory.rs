//! What queueing theory predicts for the simulated model: `n` backends, each a FIFO
//! single server with exponential service of mean 1, Poisson arrivals of rate `λ·n`.
//! All times are in mean service times. docs/simulate.md derives each formula.
//!
//! OS concept: a scheduling policy has a measurable cost. These closed forms are what
//! the simulator (and, at small scale, the balancer) is checked against.
//!
//! - `random`: each backend receives a thinned Poisson stream of rate λ, so it is an
//!   M/M/1 queue, exactly, for every n. Time in system is exponential with rate
//!   `1 − λ`: mean `1/(1 − λ)` (Kleinrock, *Queueing Systems* vol. 1, 1975, ch. 3).
//! - `p2c` and in general `d` choices: the supermarket model as n → ∞ (Mitzenmacher,
//!   "The Power of Two Choices in Randomized Load Balancing", IEEE TPDS 12(10), 2001;
//!   Vvedenskaya, Dobrushin and Karpelevich 1996). The fraction of backends with at
//!   least `k` requests is `s_k = λ^((d^k − 1)/(d − 1))`, an arrival joins a queue of
//!   exactly `k` with probability `s_k^d − s_{k+1}^d`, and then waits for `k + 1`
//!   exponential services: an Erlang(k + 1) time. The mean is
//!   `Σ_{i≥1} λ^((d^i − d)/(d − 1))`, for d = 2 `Σ λ^(2^i − 2)`.
//! - `least-conn` (join the shortest of all n queues): the d → ∞ end of the same
//!   formula, where every term but the first vanishes: mean 1, i.e. no waiting, as
//!   n → ∞ at fixed λ < 1 (with n servers and λ < 1 an idle one almost always exists).
//!   At finite n and λ near 1 some waiting remains (the Halfin–Whitt regime,
//!   `(1 − λ)·√n` small; Eschenfeldt and Gamarnik 2018), so the ratio creeps above 1.
//! - `round-robin` (and `weighted` with equal weights): each backend gets every n-th
//!   arrival of a Poisson stream of rate λn, so its gaps are Erlang(n) of mean 1/λ and
//!   it is an E_n/M/1 queue, exactly; as n → ∞ the gaps become constant: D/M/1. For
//!   any GI/M/1 queue (Kleinrock vol. 1, ch. 6, the G/M/m queue with m = 1) time in system is exponential with rate
//!   `1 − σ`, where σ in (0, 1) solves `σ = A*(1 − σ)` and `A*` is the Laplace
//!   transform of the gap distribution: `A*(s) = (λn / (λn + s))^n` for Erlang(n).

/// A prediction for one strategy.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Prediction {
    /// The queueing model, in a few words.
    pub model: String,
    /// Where the formula comes from.
    pub source: &'static str,
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
}

/// The prediction for `strategy` with `backends` backends at load λ, if one exists.
pub fn predict(strategy: &str, backends: usize, load: f64) -> Option<Prediction> {
    match strategy {
        "random" => Some(exponential(
            "M/M/1 per backend, exact".into(),
            "M/M/1, Kleinrock 1975, vol. 1, ch. 3: T ~ Exp(1 − λ)",
            1.0 - load,
        )),
        "p2c" => Some(supermarket(2, load)),
        "least-conn" => Some(exponential(
            "join the shortest queue, limit n → ∞: no waiting".into(),
            "supermarket model as d → ∞ (Mitzenmacher 2001): T ~ Exp(1)",
            1.0,
        )),
        "round-robin" | "weighted" => {
            let sigma = erlang_m_1_sigma(backends, load);
            Some(exponential(
                format!("E_{backends}/M/1 per backend, exact (D/M/1 as n → ∞); σ = {sigma:.6}"),
                "GI/M/1, Kleinrock 1975, vol. 1, ch. 6: T ~ Exp(1 − σ), σ = A*(1 − σ)",
                1.0 - sigma,
            ))
        }
        _ => None,
    }
}

/// A prediction whose time in system is exponential with rate `rate`.
fn exponential(model: String, source: &'static str, rate: f64) -> Prediction {
    let quantile = |p: f64| -(1.0 - p).ln() / rate;
    Prediction {
        model,
        source,
        mean: 1.0 / rate,
        p50: quantile(0.5),
        p99: quantile(0.99),
        p999: quantile(0.999),
    }
}

/// The supermarket model with `d` choices.
fn supermarket(d: u32, load: f64) -> Prediction {
    let survival = |time: f64| supermarket_survival(d, load, time);
    Prediction {
        model: format!("supermarket model, d = {d}, limit n → ∞"),
        source: "Mitzenmacher 2001 (mean); its Erlang mixture for the percentiles",
        mean: supermarket_mean(d, load),
        p50: quantile(survival, 0.5),
        p99: quantile(survival, 0.99),
        p999: quantile(survival, 0.999),
    }
}

/// `s_k = λ^((d^k − 1)/(d − 1))`: the share of backends with at least `k` requests.
fn share_at_least(d: u32, load: f64, k: u32) -> f64 {
    let d = f64::from(d);
    let exponent = if d == 1.0 {
        f64::from(k)
    } else {
        (d.powi(k as i32) - 1.0) / (d - 1.0)
    };
    load.powf(exponent)
}

/// Mean time in system in the supermarket model: `Σ_{i≥1} λ^((d^i − d)/(d − 1))`,
/// i.e. `Σ_{k≥0} s_k^d`.
pub fn supermarket_mean(d: u32, load: f64) -> f64 {
    let mut sum = 0.0;
    for k in 0..10_000 {
        let term = share_at_least(d, load, k).powi(d as i32);
        sum += term;
        if term < 1e-17 * sum {
            break;
        }
    }
    sum
}

/// P(time in system > `time`): an arrival joins a queue of `k` with probability
/// `s_k^d − s_{k+1}^d` and then needs `k + 1` exponential services, whose sum exceeds
/// `time` with probability `e^(−time) Σ_{j≤k} time^j / j!`.
fn supermarket_survival(d: u32, load: f64, time: f64) -> f64 {
    let mut survival = 0.0;
    let mut poisson_term = (-time).exp(); // e^(−t) t^j / j!, for j = k
    let mut erlang_tail = 0.0; // Σ_{j≤k} e^(−t) t^j / j!
    for k in 0..10_000_u32 {
        erlang_tail += poisson_term;
        let joins = share_at_least(d, load, k).powi(d as i32) - share_at_least(d, load, k + 1).powi(d as i32);
        survival += joins * erlang_tail;
        if share_at_least(d, load, k + 1) < 1e-18 {
            break;
        }
        poisson_term *= time / f64::from(k + 1);
    }
    survival
}

/// The time `t` with P(T > t) = 1 − p, by bisection (the survival function decreases).
fn quantile(survival: impl Fn(f64) -> f64, p: f64) -> f64 {
    let target = 1.0 - p;
    let mut high = 1.0;
    while survival(high) > target {
        high *= 2.0;
    }
    let mut low = 0.0;
    for _ in 0..100 {
        let middle = (low + high) / 2.0;
        if survival(middle) > target {
            low = middle;
        } else {
            high = middle;
        }
    }
    (low + high) / 2.0
}

/// σ of the E_n/M/1 queue with service rate 1 and arrival rate λ: the root in (0, 1) of
/// `σ = A*(1 − σ)` with `A*(s) = (λn/(λn + s))^n`. Iterating from 0 climbs
/// monotonically to the smallest root, which is the one wanted.
pub fn erlang_m_1_sigma(backends: usize, load: f64) -> f64 {
    let phases = backends.max(1) as f64;
    let phase_rate = load * phases;
    let transform = |s: f64| (-phases * (s / phase_rate).ln_1p()).exp();
    let mut sigma = 0.0;
    for _ in 0..1_000_000 {
        let next = transform(1.0 - sigma);
        if (next - sigma).abs() < 1e-15 {
            return next;
        }
        sigma = next;
    }
    sigma
}

/// Mean time in system predicted for `strategy`, if known (for plots).
pub fn predicted_mean(strategy: &str, backends: usize, load: f64) -> Option<f64> {
    predict(strategy, backends, load).map(|prediction| prediction.mean)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual - expected).abs() <= tolerance
    }

    #[test]
    fn two_choices_match_the_papers_figures() {
        // The values quoted in issue 9 from Mitzenmacher's formula.
        for (load, expected) in [(0.5, 1.266), (0.9, 2.614), (0.95, 3.383), (0.99, 5.432)] {
            let mean = supermarket_mean(2, load);
            assert!(close(mean, expected, 0.0015), "λ={load}: {mean}");
        }
        // d = 1 is M/M/1.
        assert!(close(supermarket_mean(1, 0.9), 10.0, 1e-9));
    }

    #[test]
    fn the_erlang_mixture_is_consistent_with_the_mean_and_with_mm1() {
        // d = 1: the mixture of Erlangs with geometric weights is Exp(1 − λ).
        for time in [0.5, 3.0, 20.0] {
            assert!(close(
                supermarket_survival(1, 0.8, time),
                (-0.2 * time).exp(),
                1e-9
            ));
        }
        // Mean = ∫ survival: a crude integral agrees with the series.
        let step = 0.001;
        let integral: f64 = (0..60_000)
            .map(|i| supermarket_survival(2, 0.9, (f64::from(i) + 0.5) * step) * step)
            .sum();
        assert!(close(integral, supermarket_mean(2, 0.9), 1e-3), "{integral}");
        let p2c = predict("p2c", 1000, 0.9).unwrap();
        assert!(p2c.p50 < p2c.mean && p2c.mean < p2c.p99 && p2c.p99 < p2c.p999);
    }

    #[test]
    fn round_robin_is_between_d_m_1_and_m_m_1() {
        // One backend: E_1/M/1 is M/M/1, σ = λ.
        assert!(close(erlang_m_1_sigma(1, 0.7), 0.7, 1e-9));
        // Many backends: D/M/1, σ = e^(−(1 − σ)/λ); at λ = 0.5 σ ≈ 0.2032.
        let sigma = erlang_m_1_sigma(1_000_000, 0.5);
        assert!(close(sigma, (-(1.0 - sigma) / 0.5).exp(), 1e-6));
        assert!(close(sigma, 0.2032, 1e-4), "{sigma}");
        // Regular gaps queue less than Poisson ones.
        let rr = predict("round-robin", 1000, 0.9).unwrap().mean;
        assert!(rr > 1.0 && rr < 10.0, "{rr}");
    }

    #[test]
    fn only_strategies_with_a_closed_form_get_a_prediction() {
        assert!(predict("least-load", 10, 0.5).is_none());
        assert!(predict("ip-hash", 10, 0.5).is_none());
        assert_eq!(predicted_mean("least-conn", 10, 0.9), Some(1.0));
        assert!(close(predicted_mean("random", 10, 0.75).unwrap(), 4.0, 1e-12));
    }
}
