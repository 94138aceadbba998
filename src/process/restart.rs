//! When to restart a child that died: a back-off that grows with repeated crashes, and
//! a start limit, after systemd's `Restart=on-failure`.
//!
//! systemd's knobs, and ours:
//! - `RestartSec=100ms` (systemd's default): the pause before the first restart;
//! - `RestartSteps` / `RestartMaxDelaySec` (systemd 254): the pause doubles after each
//!   crash in a row, up to a maximum, so a program that dies at once does not burn a
//!   CPU being restarted;
//! - `StartLimitBurst=5` within `StartLimitIntervalSec=10s` (systemd's defaults): a
//!   sixth start inside ten seconds is refused and the unit stays failed, since a
//!   program that cannot stay up will not be fixed by restarting it faster.
//!
//! A child that stayed up for a whole start-limit interval counts as healthy again: its
//! next crash waits only `RestartSec`. Pure logic over `Instant`s, so every rule has a
//! unit test below without a process in sight.
//!
//! OS concept: the crash loop, as a service manager sees it. `RestartState::failed`
//! decides after each death; it counts time on the monotonic clock (`Instant`), so a
//! wall clock set back cannot reopen the start limit.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The restart rules of one supervised process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Pause before the first restart after a crash (`RestartSec`).
    pub delay: Duration,
    /// Longest pause, however many crashes in a row (`RestartMaxDelaySec`).
    pub max_delay: Duration,
    /// Starts allowed within `interval` (`StartLimitBurst`).
    pub burst: u32,
    /// The window of the start limit (`StartLimitIntervalSec`).
    pub interval: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            burst: 5,
            interval: Duration::from_secs(10),
        }
    }
}

/// What to do after a child exited with a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start it again after this pause.
    RestartAfter(Duration),
    /// The start limit is reached: leave it down (systemd: "start request repeated too
    /// quickly").
    GiveUp,
}

/// The restart history of one supervised process.
#[derive(Debug, Clone)]
pub struct RestartState {
    policy: RestartPolicy,
    /// When it was started, within the last `interval`.
    starts: VecDeque<Instant>,
    /// Crashes in a row, each after less than `interval` of running.
    crashes_in_a_row: u32,
}

impl RestartState {
    pub fn new(policy: RestartPolicy) -> Self {
        RestartState {
            policy,
            starts: VecDeque::new(),
            crashes_in_a_row: 0,
        }
    }

    /// The process was started at `now`.
    pub fn started(&mut self, now: Instant) {
        self.forget_before(now);
        self.starts.push_back(now);
    }

    /// It exited with a failure at `now`, having run `ran_for`.
    pub fn failed(&mut self, now: Instant, ran_for: Duration) -> Decision {
        if ran_for >= self.policy.interval {
            self.crashes_in_a_row = 0;
        }
        self.crashes_in_a_row += 1;
        let doublings = (self.crashes_in_a_row - 1).min(30);
        let delay = self
            .policy
            .delay
            .saturating_mul(1 << doublings)
            .min(self.policy.max_delay);
        // The restart would be one more start, at `now + delay`.
        self.forget_before(now + delay);
        if self.starts.len() >= self.policy.burst as usize {
            Decision::GiveUp
        } else {
            Decision::RestartAfter(delay)
        }
    }

    /// Drops the starts that are out of the window ending at `at`.
    fn forget_before(&mut self, at: Instant) {
        while let Some(&first) = self.starts.front() {
            if at.duration_since(first) >= self.policy.interval {
                self.starts.pop_front();
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_pause_doubles_with_crashes_in_a_row_up_to_the_maximum() {
        let policy = RestartPolicy {
            burst: 100,
            ..RestartPolicy::default()
        };
        let mut state = RestartState::new(policy);
        let mut now = Instant::now();
        let mut pauses = Vec::new();
        for _ in 0..8 {
            state.started(now);
            now += 10 * MS;
            match state.failed(now, 10 * MS) {
                Decision::RestartAfter(pause) => {
                    pauses.push(pause.as_millis());
                    now += pause;
                }
                Decision::GiveUp => panic!("a burst of 100 is not reached"),
            }
        }
        assert_eq!(pauses, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    #[test]
    fn a_process_that_stayed_up_a_whole_interval_starts_over_at_the_first_pause() {
        let mut state = RestartState::new(RestartPolicy::default());
        let now = Instant::now();
        state.started(now);
        assert_eq!(state.failed(now + MS, MS), Decision::RestartAfter(100 * MS));
        state.started(now + 101 * MS);
        assert_eq!(state.failed(now + 102 * MS, MS), Decision::RestartAfter(200 * MS));
        // Up for 60 s, then a crash: the first pause again.
        let later = now + Duration::from_secs(60);
        state.started(now + 302 * MS);
        assert_eq!(
            state.failed(later, later - (now + 302 * MS)),
            Decision::RestartAfter(100 * MS)
        );
    }

    #[test]
    fn the_sixth_start_within_ten_seconds_is_refused() {
        let mut state = RestartState::new(RestartPolicy::default());
        let mut now = Instant::now();
        let mut decisions = Vec::new();
        for _ in 0..6 {
            state.started(now);
            let decision = state.failed(now, Duration::ZERO);
            decisions.push(decision);
            match decision {
                Decision::RestartAfter(pause) => now += pause,
                Decision::GiveUp => break,
            }
        }
        // Starts at 0, 0.1, 0.3, 0.7 and 1.5 s; the next would be the sixth by 3.1 s.
        assert_eq!(decisions.len(), 5, "{decisions:?}");
        assert_eq!(decisions[4], Decision::GiveUp);
        assert_eq!(decisions[3], Decision::RestartAfter(800 * MS));
    }

    #[test]
    fn starts_older_than_the_interval_do_not_count() {
        let policy = RestartPolicy {
            burst: 2,
            interval: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            delay: 100 * MS,
        };
        let mut state = RestartState::new(policy);
        let now = Instant::now();
        state.started(now);
        assert_eq!(
            state.failed(now, Duration::ZERO),
            Decision::RestartAfter(100 * MS)
        );
        state.started(now + 100 * MS);
        // Two starts within the second: a third is refused...
        assert_eq!(state.failed(now + 150 * MS, 50 * MS), Decision::GiveUp);
        // ...but after a crash much later, the old starts have left the window.
        let mut state = RestartState::new(policy);
        state.started(now);
        state.started(now + 2 * 1000 * MS);
        assert_eq!(
            state.failed(now + 2100 * MS, 100 * MS),
            Decision::RestartAfter(100 * MS)
        );
    }
}
