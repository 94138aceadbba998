//! Weighted round-robin, nginx's "smooth" variant: a backend of weight 5 gets five
//! picks in seven next to two of weight 1, spread out (a a b a c a a), not in a burst.
//!
//! OS concept: proportional-share scheduling (weighted fair queueing, stride
//! scheduling). Each backend carries a "current weight", its credit. On every pick each
//! eligible backend earns its weight, the richest is chosen, and it pays back the total
//! of all weights. Credits sum to zero after each pick, so over `Σ weights` picks each
//! backend is chosen exactly `weight` times, and never far ahead of its share.
//! This is nginx's `ngx_http_upstream_get_peer` (ngx_http_upstream_round_robin.c).
//!
//! OS concept, second: mutual exclusion. A pick reads and writes every credit, which
//! is a multi-word update no single atomic can do; a mutex makes it one critical
//! section. nginx takes a lock too when its workers share the upstream (a `zone`:
//! `ngx_http_upstream_rr_peers_wlock` around the pick); without a zone each worker
//! process keeps its own credits. That suggests the lock-free alternatives: one credit
//! vector per worker (each worker's sequence is then smooth on its own, the
//! interleaving of all workers' less so), or a precomputed schedule of `Σ weights`
//! slots indexed by an atomic ticket (lock-free, but it must be rebuilt whenever a
//! backend goes down or comes back).
//! The lock is held for a loop over a few integers, never across I/O.

use parking_lot::Mutex;

use super::{BackendsView, PickContext, Strategy};

#[derive(Debug, Default)]
pub struct Weighted {
    /// Protects the current weight (credit) of every backend, index for index. The
    /// vector grows to the number of backends on first use.
    current: Mutex<Vec<i64>>,
}

impl Strategy for Weighted {
    fn name(&self) -> &'static str {
        "weighted"
    }

    fn pick(&self, backends: &dyn BackendsView, context: &mut PickContext) -> Option<usize> {
        let count = backends.len();
        let mut current = self.current.lock();
        if current.len() != count {
            current.resize(count, 0);
        }
        let mut total: i64 = 0;
        let mut best: Option<usize> = None;
        for index in 0..count {
            // A backend that is down or already tried earns nothing this round, as in
            // nginx, so it does not come back with a burst of saved-up credit.
            if !context.is_eligible(backends, index) {
                continue;
            }
            let weight = i64::from(backends.weight(index));
            current[index] += weight;
            total += weight;
            // Strictly greater: among equals the first wins, which gives the documented
            // a a b a c a a order for weights 5, 1, 1.
            if best.is_none_or(|chosen| current[index] > current[chosen]) {
                best = Some(index);
            }
        }
        let chosen = best?;
        current[chosen] -= total;
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::strategy::StaticView;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn picks(strategy: &Weighted, view: &StaticView, times: usize) -> String {
        let mut rng = StdRng::seed_from_u64(0);
        (0..times)
            .map(|_| {
                let mut context = PickContext {
                    client: None,
                    exclude: &[],
                    rng: &mut rng,
                };
                let index = strategy
                    .pick(view, &mut context)
                    .map_or(b'-', |index| b'a' + index as u8);
                char::from(index)
            })
            .collect()
    }

    #[test]
    fn weights_5_1_1_give_the_smooth_nginx_sequence_repeating() {
        let strategy = Weighted::default();
        let mut view = StaticView::uniform(3);
        view.weights = vec![5, 1, 1];
        assert_eq!(picks(&strategy, &view, 21), "aabacaa".repeat(3));
    }

    #[test]
    fn equal_weights_are_plain_round_robin_and_shares_follow_weights() {
        let strategy = Weighted::default();
        assert_eq!(picks(&strategy, &StaticView::uniform(3), 6), "abcabc");
        let strategy = Weighted::default();
        let mut view = StaticView::uniform(3);
        view.weights = vec![3, 2, 1];
        let sequence = picks(&strategy, &view, 600);
        let count = |letter| sequence.chars().filter(|&c| c == letter).count();
        assert_eq!((count('a'), count('b'), count('c')), (300, 200, 100));
    }

    #[test]
    fn skips_a_down_backend_and_returns_none_when_all_are_down() {
        let strategy = Weighted::default();
        let mut view = StaticView::uniform(3);
        view.weights = vec![5, 1, 1];
        view.healthy[0] = false;
        assert_eq!(picks(&strategy, &view, 4), "bcbc");
        view.healthy = vec![false; 3];
        assert_eq!(picks(&strategy, &view, 2), "--");
    }
}
