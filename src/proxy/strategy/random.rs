//! Random: a backend drawn uniformly from the eligible ones.
//!
//! OS concept: randomized scheduling. A random choice needs no shared state at all:
//! each worker draws from its own generator (`PickContext::rng`), so workers never
//! contend. Its price is variance: with many backends each one is an M/M/1 queue and
//! the mean time in system is `1 / (1 − λ)`, far worse than looking at queue lengths
//! (see `p2c` and docs/simulate.md). nginx's `random` and HAProxy's `random(1)` work
//! the same way.

use rand::RngExt;

use super::{BackendsView, PickContext, Strategy};

/// Tries of plain rejection sampling before falling back to listing the eligible
/// backends. With all backends healthy the first try always succeeds.
const REJECTION_TRIES: usize = 8;

#[derive(Debug, Default)]
pub struct Random;

impl Strategy for Random {
    fn name(&self) -> &'static str {
        "random"
    }

    fn pick(&self, backends: &dyn BackendsView, context: &mut PickContext) -> Option<usize> {
        draw_eligible(backends, context, None)
    }
}

/// An eligible backend other than `avoid`, uniformly at random, or `None` if there is
/// none. Shared with `p2c`, which needs two distinct draws.
///
/// Rejection sampling (draw any backend, retry if it is down) is uniform over the
/// eligible ones and costs no allocation; after a few misses (most backends down) we
/// list the eligible backends and draw from the list, which is uniform as well, so the
/// mixture of the two is uniform too.
pub(crate) fn draw_eligible(
    backends: &dyn BackendsView,
    context: &mut PickContext,
    avoid: Option<usize>,
) -> Option<usize> {
    let count = backends.len();
    if count == 0 {
        return None;
    }
    let acceptable =
        |context: &PickContext, index: usize| Some(index) != avoid && context.is_eligible(backends, index);
    for _ in 0..REJECTION_TRIES {
        let index = context.rng.random_range(0..count);
        if acceptable(context, index) {
            return Some(index);
        }
    }
    let eligible: Vec<usize> = (0..count).filter(|&index| acceptable(context, index)).collect();
    if eligible.is_empty() {
        return None;
    }
    Some(eligible[context.rng.random_range(0..eligible.len())])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::strategy::StaticView;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn pick(view: &StaticView, exclude: &[usize], rng: &mut StdRng) -> Option<usize> {
        let mut context = PickContext {
            client: None,
            exclude,
            rng,
        };
        Random.pick(view, &mut context)
    }

    #[test]
    fn spreads_evenly_over_healthy_backends_only() {
        let mut view = StaticView::uniform(4);
        view.healthy[2] = false;
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = [0u32; 4];
        for _ in 0..3000 {
            counts[pick(&view, &[], &mut rng).unwrap()] += 1;
        }
        assert_eq!(counts[2], 0);
        for index in [0, 1, 3] {
            assert!((850..1150).contains(&counts[index]), "{counts:?}");
        }
    }

    #[test]
    fn finds_the_last_eligible_backend_and_none_when_there_is_none() {
        let mut view = StaticView::uniform(50);
        view.healthy = vec![false; 50];
        view.healthy[37] = true;
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..20 {
            assert_eq!(pick(&view, &[], &mut rng), Some(37));
        }
        assert_eq!(pick(&view, &[37], &mut rng), None);
        assert_eq!(pick(&StaticView::uniform(0), &[], &mut rng), None);
    }
}
