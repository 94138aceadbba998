//! What queueing theory predicts for admission control: the share of requests that a
//! full queue refuses with 503.
//!
//! OS concept: a bounded buffer loses work when it is full, and how much it loses is
//! predictable. The balancer is an M/M/c/K queue when requests arrive as a Poisson
//! stream and service times are exponential: `c` servers (`--workers`) and room for
//! `K` requests in the system (the `c` in service plus `--queue` waiting); an arrival
//! that finds `K` already there is refused (`proxy::front::dispatch`, `try_send` on the
//! full channel). Kleinrock, *Queueing Systems* vol. 1 (1975), section 3.6 gives the
//! stationary distribution; the refused share is the probability `p_K` that the system
//! is full, since Poisson arrivals see time averages (PASTA).

/// The probability that an arrival finds all `capacity` places taken (and is refused),
/// with `servers` servers and `offered` = λ / μ (arrival rate times mean service time,
/// in Erlangs). `capacity` counts the requests in service too, so it is at least
/// `servers`. Any offered load is allowed: above `servers` the queue is usually full.
pub fn blocking_probability(servers: usize, capacity: usize, offered: f64) -> f64 {
    assert!(servers >= 1 && capacity >= servers && offered >= 0.0);
    // Unnormalised p_n / p_0, built term by term so no factorial overflows:
    // a^n / n! up to c servers busy, then each further place multiplies by a / c.
    let mut term = 1.0;
    let mut total = 1.0;
    for n in 1..=capacity {
        term *= offered / n.min(servers) as f64;
        total += term;
    }
    term / total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_closed_forms() {
        // M/M/1/K: p_K = (1 − ρ) ρ^K / (1 − ρ^(K+1)), and 1/(K+1) at ρ = 1.
        let rho: f64 = 0.5;
        let expected = (1.0 - rho) * rho.powi(5) / (1.0 - rho.powi(6));
        assert!((blocking_probability(1, 5, rho) - expected).abs() < 1e-12);
        assert!((blocking_probability(1, 5, 1.0) - 1.0 / 6.0).abs() < 1e-12);
        // M/M/c/c is Erlang's B formula: c = 2, a = 1 gives (1/2) / (1 + 1 + 1/2) = 0.2.
        assert!((blocking_probability(2, 2, 1.0) - 0.2).abs() < 1e-12);
        // No load, no refusals; overload, almost all of the excess refused.
        assert_eq!(blocking_probability(4, 68, 0.0), 0.0);
        assert!(blocking_probability(1, 5, 100.0) > 0.98);
    }
}
