//! Power of two choices: draw two distinct eligible backends at random, keep the one
//! with fewer requests in flight.
//!
//! OS concept: randomized load balancing with partial information. Looking at every
//! queue (`least-conn`) costs a scan of all backends and makes every worker chase the
//! same "best" backend; looking at none (`random`) lets queues grow long. Looking at just
//! two is almost as good as looking at all: Mitzenmacher ("The Power of Two Choices in
//! Randomized Load Balancing", 2001) shows the longest queue drops from
//! `log n / log log n` to `log log n`, and the mean time in system from `1 / (1 − λ)` to
//! `Σ_{i≥1} λ^(2^i − 2)` (2.61 instead of 10 at λ = 0.9; docs/simulate.md checks it).
//! Envoy's default `LEAST_REQUEST` and HAProxy's `random(2)` are this algorithm.
//!
//! No shared state: the draws come from the worker's own generator.

use super::random::draw_eligible;
use super::{BackendsView, PickContext, Strategy};

#[derive(Debug, Default)]
pub struct PowerOfTwo;

impl Strategy for PowerOfTwo {
    fn name(&self) -> &'static str {
        "p2c"
    }

    fn pick(&self, backends: &dyn BackendsView, context: &mut PickContext) -> Option<usize> {
        let first = draw_eligible(backends, context, None)?;
        // Distinct: comparing a backend with itself would waste the second look.
        // With a single eligible backend there is nothing to compare it with.
        let Some(second) = draw_eligible(backends, context, Some(first)) else {
            return Some(first);
        };
        // On a tie keep the first draw; it is random already, so ties spread evenly.
        if backends.in_flight(second) < backends.in_flight(first) {
            Some(second)
        } else {
            Some(first)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::strategy::StaticView;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand::{Rng, RngExt};

    /// The two backends p2c draws with `seed`, found by replaying an identical
    /// generator the way `draw_eligible` uses it (all backends eligible).
    fn draws_of(seed: u64, count: usize) -> (usize, usize) {
        let mut replay = StdRng::seed_from_u64(seed);
        let first = replay.random_range(0..count);
        let mut second = replay.random_range(0..count);
        // Rejection sampling may have thrown away repeats of `first`.
        while second == first {
            second = replay.random_range(0..count);
        }
        (first, second)
    }

    fn pick(view: &StaticView, rng: &mut dyn Rng) -> Option<usize> {
        let mut context = PickContext {
            client: None,
            exclude: &[],
            rng,
        };
        PowerOfTwo.pick(view, &mut context)
    }

    #[test]
    fn never_picks_the_busier_of_its_two_draws() {
        let mut view = StaticView::uniform(8);
        view.in_flight = vec![5, 0, 3, 9, 1, 7, 2, 4];
        for seed in 0..500 {
            let (first, second) = draws_of(seed, 8);
            let mut rng = StdRng::seed_from_u64(seed);
            let chosen = pick(&view, &mut rng).unwrap();
            assert!(chosen == first || chosen == second, "seed {seed}");
            let other = if chosen == first { second } else { first };
            assert!(
                view.in_flight[chosen] <= view.in_flight[other],
                "seed {seed}: chose {chosen} over {other}"
            );
        }
    }

    #[test]
    fn the_busiest_backend_is_never_chosen_and_the_idlest_often() {
        let mut view = StaticView::uniform(4);
        view.in_flight = vec![10, 0, 5, 5];
        let mut rng = StdRng::seed_from_u64(3);
        let mut counts = [0u32; 4];
        for _ in 0..1200 {
            counts[pick(&view, &mut rng).unwrap()] += 1;
        }
        // The busiest loses every comparison; the idlest wins all three pairs it is in,
        // i.e. half of all picks.
        assert_eq!(counts[0], 0, "{counts:?}");
        assert!((500..700).contains(&counts[1]), "{counts:?}");
    }

    #[test]
    fn only_eligible_backends_and_none_when_there_is_none() {
        let mut view = StaticView::uniform(3);
        view.in_flight = vec![0, 5, 9];
        view.healthy[0] = false;
        let mut rng = StdRng::seed_from_u64(9);
        for _ in 0..50 {
            assert_eq!(pick(&view, &mut rng), Some(1));
        }
        view.healthy = vec![false, false, true];
        assert_eq!(pick(&view, &mut rng), Some(2));
        view.healthy = vec![false; 3];
        assert_eq!(pick(&view, &mut rng), None);
    }
}
