//! Least connections: the backend with the fewest requests in flight.
//!
//! OS concept: join-the-shortest-queue, the scheduler that places a task on the least
//! loaded CPU. It needs the whole picture (a scan of every backend's in-flight
//! counter), which is exact in a simulator but only a snapshot in the live balancer:
//! other workers change the counters while we read them, which is fine for a
//! heuristic. nginx's `least_conn` scans all peers the same way; HAProxy's `leastconn`
//! keeps them in a tree to avoid the scan.
//!
//! Ties are common (at light load most backends have nothing in flight). Taking the
//! first minimum would send every tie to backend 0, so the scan starts at a rotating
//! position taken from an atomic ticket, as round-robin does: ties go round-robin.
//! nginx breaks ties the same way (round-robin among the least loaded, by weight).

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{BackendsView, PickContext, Strategy};

#[derive(Debug, Default)]
pub struct LeastConn {
    /// Where the next scan starts; `Relaxed` because it only spreads ties and guards
    /// no other memory.
    next: AtomicUsize,
}

impl Strategy for LeastConn {
    fn name(&self) -> &'static str {
        "least-conn"
    }

    fn pick(&self, backends: &dyn BackendsView, context: &mut PickContext) -> Option<usize> {
        let count = backends.len();
        if count == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count;
        let mut best: Option<(usize, u64)> = None;
        for offset in 0..count {
            let index = (start + offset) % count;
            if !context.is_eligible(backends, index) {
                continue;
            }
            let in_flight = backends.in_flight(index);
            // An idle backend cannot be beaten: stop scanning. At any load below 1 some
            // backends are idle, which keeps the scan short with thousands of them.
            if in_flight == 0 {
                best = Some((index, 0));
                break;
            }
            // Strictly fewer: on a tie the earlier one in this scan's order wins.
            if best.is_none_or(|(_, fewest)| in_flight < fewest) {
                best = Some((index, in_flight));
            }
        }
        let (chosen, _) = best?;
        advance_past(&self.next, start, chosen, count);
        Some(chosen)
    }
}

/// Moves the shared scan position past the backends this scan passed over, so the
/// next scan starts just after `chosen`. Without it the position would creep forward
/// by one per pick while the idle backends, consumed one per pick, run ahead of it,
/// and every scan would wade through the same busy backends again. Adding (rather than
/// storing) keeps concurrent workers' steps: none is lost, the position stays a hint.
pub(crate) fn advance_past(next: &AtomicUsize, start: usize, chosen: usize, count: usize) {
    let passed = (chosen + count - start) % count;
    if passed > 0 {
        next.fetch_add(passed, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::strategy::StaticView;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn pick(strategy: &LeastConn, view: &StaticView, exclude: &[usize]) -> Option<usize> {
        let mut rng = StdRng::seed_from_u64(0);
        let mut context = PickContext {
            client: None,
            exclude,
            rng: &mut rng,
        };
        strategy.pick(view, &mut context)
    }

    #[test]
    fn prefers_the_backend_with_fewest_in_flight() {
        let strategy = LeastConn::default();
        let mut view = StaticView::uniform(4);
        view.in_flight = vec![3, 2, 7, 4];
        for _ in 0..8 {
            assert_eq!(pick(&strategy, &view, &[]), Some(1));
        }
        // Already tried, or down: the next fewest.
        assert_eq!(pick(&strategy, &view, &[1]), Some(0));
        view.healthy[1] = false;
        assert_eq!(pick(&strategy, &view, &[0]), Some(3));
        view.healthy = vec![false; 4];
        assert_eq!(pick(&strategy, &view, &[]), None);
    }

    #[test]
    fn spreads_ties_round_robin() {
        let strategy = LeastConn::default();
        let mut view = StaticView::uniform(4);
        view.in_flight = vec![2, 1, 5, 1];
        let picks: Vec<usize> = (0..6).map(|_| pick(&strategy, &view, &[]).unwrap()).collect();
        assert!(picks.contains(&1) && picks.contains(&3), "{picks:?}");
        assert!(picks.iter().all(|&index| index == 1 || index == 3));
        view.in_flight = vec![0; 4];
        let mut counts = [0; 4];
        for _ in 0..400 {
            counts[pick(&strategy, &view, &[]).unwrap()] += 1;
        }
        assert_eq!(counts, [100; 4]);
    }

    #[test]
    fn a_stream_of_picks_keeps_queues_level() {
        // Each pick adds one in flight, as the balancer does: the counts stay within one.
        let strategy = LeastConn::default();
        let mut view = StaticView::uniform(5);
        view.in_flight = vec![4, 0, 2, 0, 1];
        for _ in 0..23 {
            let index = pick(&strategy, &view, &[]).unwrap();
            view.in_flight[index] += 1;
        }
        assert_eq!(view.in_flight, vec![6; 5]);
    }
}
