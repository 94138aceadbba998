//! Least load: the backend reporting the lowest CPU load, ties by fewest in flight.
//!
//! OS concept: load-based migration. An SMP scheduler periodically measures each CPU's
//! load and moves work toward the idle ones (Linux's periodic load balancer); here a
//! poller asks each backend for its load every interval and the strategy sends new work
//! to the least loaded. Like the scheduler, it acts on old information: a report is up
//! to one interval old, and every request in that interval sees the same "least loaded"
//! backend. Breaking ties by the live in-flight count softens that herd effect.
//!
//! A backend whose load is unknown (never reported, stale, or not a number) counts as
//! the busiest, so it gets traffic only when nothing better is known; if no load is
//! known at all, the strategy degrades to least-conn. Ties that remain are spread by
//! starting the scan at a rotating position, as in `least-conn`.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::least_conn::advance_past;
use super::{BackendsView, PickContext, Strategy};

#[derive(Debug, Default)]
pub struct LeastLoad {
    /// Where the next scan starts (spreads ties; guards no other memory).
    next: AtomicUsize,
}

/// The ordering key of a backend: load first (unknown = infinitely busy), then
/// requests in flight.
fn busyness(backends: &dyn BackendsView, index: usize) -> (f64, u64) {
    let load = backends
        .load(index)
        .filter(|load| !load.is_nan())
        .unwrap_or(f64::INFINITY);
    (load, backends.in_flight(index))
}

impl Strategy for LeastLoad {
    fn name(&self) -> &'static str {
        "least-load"
    }

    fn pick(&self, backends: &dyn BackendsView, context: &mut PickContext) -> Option<usize> {
        let count = backends.len();
        if count == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count;
        let mut best: Option<(usize, (f64, u64))> = None;
        for offset in 0..count {
            let index = (start + offset) % count;
            if !context.is_eligible(backends, index) {
                continue;
            }
            let key = busyness(backends, index);
            // Reported idle and nothing in flight cannot be beaten: stop scanning.
            if key == (0.0, 0) {
                best = Some((index, key));
                break;
            }
            // Strictly less (lexicographic on load, then in-flight): ties keep the
            // earlier one in this scan's rotated order.
            if best.is_none_or(|(_, fewest)| key < fewest) {
                best = Some((index, key));
            }
        }
        let (chosen, _) = best?;
        advance_past(&self.next, start, chosen, count);
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::strategy::StaticView;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn pick(strategy: &LeastLoad, view: &StaticView) -> Option<usize> {
        let mut rng = StdRng::seed_from_u64(0);
        let mut context = PickContext {
            client: None,
            exclude: &[],
            rng: &mut rng,
        };
        strategy.pick(view, &mut context)
    }

    #[test]
    fn follows_the_lowest_reported_load() {
        let strategy = LeastLoad::default();
        let mut view = StaticView::uniform(3);
        view.loads = vec![Some(80.0), Some(15.0), Some(40.0)];
        view.in_flight = vec![0, 9, 0];
        for _ in 0..5 {
            assert_eq!(pick(&strategy, &view), Some(1));
        }
        // The load moves: so does the choice.
        view.loads = vec![Some(80.0), Some(95.0), Some(40.0)];
        assert_eq!(pick(&strategy, &view), Some(2));
        view.healthy[2] = false;
        assert_eq!(pick(&strategy, &view), Some(0));
        view.healthy = vec![false; 3];
        assert_eq!(pick(&strategy, &view), None);
    }

    #[test]
    fn ties_go_to_fewer_in_flight_then_round_robin() {
        let strategy = LeastLoad::default();
        let mut view = StaticView::uniform(4);
        view.loads = vec![Some(10.0), Some(10.0), Some(10.0), Some(50.0)];
        view.in_flight = vec![3, 1, 1, 0];
        let picks: Vec<_> = (0..4).map(|_| pick(&strategy, &view).unwrap()).collect();
        assert!(picks.contains(&1) && picks.contains(&2), "{picks:?}");
        assert!(picks.iter().all(|&index| index == 1 || index == 2));
    }

    #[test]
    fn unknown_load_counts_as_busiest() {
        let strategy = LeastLoad::default();
        let mut view = StaticView::uniform(3);
        view.loads = vec![None, Some(99.0), Some(f64::NAN)];
        view.in_flight = vec![0, 20, 0];
        assert_eq!(pick(&strategy, &view), Some(1));
        // Nothing known: fewest in flight, like least-conn.
        view.loads = vec![None; 3];
        view.in_flight = vec![4, 2, 3];
        assert_eq!(pick(&strategy, &view), Some(1));
    }
}
