//! How busy a simulated backend is, for `GET /load`.
//!
//! OS concept: the load average. The kernel's load average is an exponentially
//! weighted moving average of how many tasks are runnable, decaying over 1, 5 and 15
//! minutes. This is the same idea over about one second: the average number of
//! requests being worked on. A simulated backend "works" by sleeping out its latency,
//! so a request counts as working from the start of that sleep to its answer.
//!
//! Reported as `cpu_percent` the way `top` reports a process: 100 means one request's
//! worth of work all the time (one core busy), 200 two, and so on. It is an estimate
//! made inside this process, not a reading of the operating system's CPU accounting.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Time constant of the average: a change in load shows about 63% after this long.
const TIME_CONSTANT: Duration = Duration::from_secs(1);

/// The running average and the count it is built from.
pub struct LoadMeter {
    /// Protects the in-flight count, the average and when both were last brought up to
    /// date. Held only for a few arithmetic operations, never across I/O or a sleep.
    state: Mutex<LoadState>,
}

struct LoadState {
    in_flight: u64,
    /// Average of `in_flight` over the recent past, weighted toward the present.
    average: f64,
    updated: Instant,
}

impl LoadState {
    /// Folds the time since the last update into the average: during that time the
    /// count stood at `in_flight`, so the average moved toward it.
    fn advance(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        let keep = (-elapsed / TIME_CONSTANT.as_secs_f64()).exp();
        self.average = self.average * keep + self.in_flight as f64 * (1.0 - keep);
        self.updated = now;
    }
}

/// What `/load` reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadReading {
    /// Recent average of requests in progress, times 100 (`top`'s per-process scale).
    pub cpu_percent: f64,
    /// Requests in progress right now.
    pub in_flight: u64,
}

/// Marks one request as being worked on until it is dropped.
pub struct Working<'a> {
    meter: &'a LoadMeter,
}

impl Default for LoadMeter {
    fn default() -> Self {
        LoadMeter {
            state: Mutex::new(LoadState {
                in_flight: 0,
                average: 0.0,
                updated: Instant::now(),
            }),
        }
    }
}

impl LoadMeter {
    /// Starts counting one request; it stops counting when the guard is dropped, even
    /// if the handler panics.
    pub fn start(&self) -> Working<'_> {
        let mut state = self.state.lock();
        state.advance(Instant::now());
        state.in_flight += 1;
        Working { meter: self }
    }

    pub fn read(&self) -> LoadReading {
        let mut state = self.state.lock();
        state.advance(Instant::now());
        LoadReading {
            cpu_percent: (state.average * 1000.0).round() / 10.0,
            in_flight: state.in_flight,
        }
    }
}

impl Drop for Working<'_> {
    fn drop(&mut self) {
        let mut state = self.meter.state.lock();
        state.advance(Instant::now());
        state.in_flight -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rises_while_working_and_counts_in_flight() {
        let meter = LoadMeter::default();
        assert_eq!(meter.read().in_flight, 0);
        let first = meter.start();
        let second = meter.start();
        assert_eq!(meter.read().in_flight, 2);
        // Drive the average by hand instead of sleeping: pretend a second has passed.
        {
            let mut state = meter.state.lock();
            state.updated -= Duration::from_secs(1);
        }
        let busy = meter.read();
        // Two requests for one time constant: 2 * (1 - 1/e) = 1.26, so about 126%.
        assert!((busy.cpu_percent - 126.4).abs() < 0.5, "{busy:?}");
        drop(first);
        drop(second);
        assert_eq!(meter.read().in_flight, 0);
        {
            let mut state = meter.state.lock();
            state.updated -= Duration::from_secs(30);
        }
        assert_eq!(meter.read().cpu_percent, 0.0);
    }
}
