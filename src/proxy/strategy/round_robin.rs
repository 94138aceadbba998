//! Round-robin: each backend in turn.
//!
//! OS concept: atomics. Every worker thread picks at once; `fetch_add` on one
//! `AtomicUsize` hands each caller a distinct ticket without a lock. `Relaxed` ordering
//! suffices: the counter guards no other memory, we only need each ticket to be unique,
//! and atomic read-modify-write operations on one variable are totally ordered anyway.
//! (another-rust-load-balancer uses a `Mutex<u32>` here; one instruction does the job.)

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{BackendsView, PickContext, Strategy};

#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl Strategy for RoundRobin {
    fn name(&self) -> &'static str {
        "round-robin"
    }

    fn pick(&self, backends: &dyn BackendsView, context: &mut PickContext) -> Option<usize> {
        let count = backends.len();
        if count == 0 {
            return None;
        }
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        // Skip backends that are down or already tried, keeping the rotation's order
        // (nginx does the same with its `tried` bitmap).
        (0..count)
            .map(|offset| (ticket + offset) % count)
            .find(|&index| context.is_eligible(backends, index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::strategy::StaticView;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn visits_each_backend_in_turn_and_skips_the_down_one() {
        let strategy = RoundRobin::default();
        let mut view = StaticView::uniform(3);
        let mut rng = StdRng::seed_from_u64(1);
        let mut picks = Vec::new();
        for _ in 0..6 {
            let mut context = PickContext {
                client: None,
                exclude: &[],
                rng: &mut rng,
            };
            picks.push(strategy.pick(&view, &mut context).unwrap());
        }
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        view.healthy[1] = false;
        let mut context = PickContext {
            client: None,
            exclude: &[2],
            rng: &mut rng,
        };
        assert_eq!(strategy.pick(&view, &mut context), Some(0));
        view.healthy = vec![false; 3];
        let mut context = PickContext {
            client: None,
            exclude: &[],
            rng: &mut rng,
        };
        assert_eq!(strategy.pick(&view, &mut context), None);
    }
}
