//! A latency histogram that many threads fill at once without a lock.
//!
//! OS concept: atomics instead of a mutex. Every worker records each request's
//! duration; with a mutex they would queue on it. Here each bucket is its own
//! `AtomicU64` and recording is one `fetch_add` on the bucket, one on the count and one
//! on the sum. A reader (`/metrics`) may see a request in its bucket before it sees it
//! in `count`; Prometheus tolerates that, and the next scrape is consistent again.
//! Buckets are stored non-cumulatively (each request touches one) and summed when the
//! page is written, where Prometheus wants `le` buckets cumulative.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets in seconds, 1 ms to 10 s (Prometheus client libraries'
/// default buckets run 5 ms to 10 s; a proxy in front of fast backends needs the
/// millisecond ones too). The `+Inf` bucket is implied.
pub const BOUNDS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default)]
pub struct Histogram {
    /// `buckets[i]` counts durations in `(BOUNDS[i-1], BOUNDS[i]]`; the last one counts
    /// those above 10 s.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    count: AtomicU64,
    /// Sum of all durations in microseconds (an integer, so it can be atomic).
    sum_micros: AtomicU64,
}

/// A histogram's values at one moment, buckets already cumulative.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound, requests at or below it)`, ending with `(+Inf, count)`.
    pub cumulative: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let index = BOUNDS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BOUNDS.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let mut cumulative = Vec::with_capacity(BOUNDS.len() + 1);
        for (index, bucket) in self.buckets.iter().enumerate() {
            running += bucket.load(Ordering::Relaxed);
            let bound = BOUNDS.get(index).copied().unwrap_or(f64::INFINITY);
            cumulative.push((bound, running));
        }
        // The count is the +Inf bucket, so the page is self-consistent even while
        // requests are being recorded.
        HistogramSnapshot {
            count: running,
            cumulative,
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_end_in_the_count() {
        let histogram = Histogram::default();
        for millis in [0, 1, 2, 7, 300, 20_000] {
            histogram.observe(Duration::from_millis(millis));
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 6);
        assert_eq!(snapshot.cumulative[0], (0.001, 2), "0 ms and 1 ms are <= 1 ms");
        assert_eq!(snapshot.cumulative[1], (0.0025, 3));
        assert_eq!(snapshot.cumulative[3], (0.01, 4));
        assert_eq!(snapshot.cumulative[8], (0.5, 5));
        assert_eq!(snapshot.cumulative.last(), Some(&(f64::INFINITY, 6)));
        assert!(snapshot.cumulative.windows(2).all(|pair| pair[0].1 <= pair[1].1));
        assert!((snapshot.sum_seconds - 20.31).abs() < 1e-9);
    }
}
