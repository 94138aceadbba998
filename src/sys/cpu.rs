//! This process's CPU time, as the kernel accounts it, and a way to spend some on purpose.
//!
//! OS concept: CPU accounting. The kernel charges the time every thread runs to its
//! process, user time (our code) and system time (the kernel working for us, e.g. in
//! `read(2)`) together. `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)` reads that total for
//! the whole process and `CLOCK_THREAD_CPUTIME_ID` for the calling thread: one system
//! call (served from the vDSO on most kernels), no file to open, no text to parse.
//! Sampling the total twice and dividing by the wall time between gives "CPU percent" as
//! `top` shows it: 100 means one core busy all the time, 200 two cores. (`/proc/PID/stat`
//! holds the same totals in clock ticks, which is how `top` reads other processes.)
//!
//! `burn` spins for a given time, so a backend started with `--cpu-work` really uses
//! CPU for each request and `least-load` has something to see.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustix::time::{ClockId, clock_gettime};

/// CPU time used so far by this whole process (every thread, user plus system).
pub fn process_cpu_time() -> Duration {
    as_duration(clock_gettime(ClockId::ProcessCPUTime))
}

/// CPU time used so far by the calling thread alone.
pub fn thread_cpu_time() -> Duration {
    as_duration(clock_gettime(ClockId::ThreadCPUTime))
}

fn as_duration(time: rustix::time::Timespec) -> Duration {
    Duration::new(
        time.tv_sec.max(0) as u64,
        time.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// The process's CPU percentage between one reading and the next, like
/// `psutil.cpu_percent(interval=None)`, which the seed's calculator servers used: each
/// `read` reports the share of CPU used since the previous one.
#[derive(Debug)]
pub struct CpuMeter {
    /// Protects the previous sample and the last answer; held only to compare and
    /// replace them (the clock is read before).
    last: Mutex<Sample>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    cpu: Duration,
    percent: f64,
}

/// Readings closer together than this repeat the previous answer: over a few
/// milliseconds one burst of work makes the percentage jump between 0 and hundreds.
const MIN_WINDOW: Duration = Duration::from_millis(250);

impl Default for CpuMeter {
    fn default() -> Self {
        CpuMeter {
            last: Mutex::new(Sample {
                at: Instant::now(),
                cpu: process_cpu_time(),
                percent: 0.0,
            }),
        }
    }
}

impl CpuMeter {
    /// CPU percent used by this process since the previous reading (or since the
    /// meter was made), rounded to a tenth.
    pub fn read(&self) -> f64 {
        // The clock is read before the lock is taken, so the lock guards only the swap.
        let cpu = process_cpu_time();
        let now = Instant::now();
        let mut last = self.last.lock();
        let elapsed = now.saturating_duration_since(last.at);
        if elapsed < MIN_WINDOW {
            return last.percent;
        }
        let used = cpu.saturating_sub(last.cpu).as_secs_f64();
        let percent = (used / elapsed.as_secs_f64() * 1000.0).round() / 10.0;
        *last = Sample {
            at: now,
            cpu,
            percent,
        };
        percent
    }
}

/// Keeps this thread on the CPU for `work`: a busy loop that checks the clock. Nothing
/// is slept, so the kernel charges every tick of it to this process.
pub fn burn(work: Duration) {
    let end = Instant::now() + work;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burning_shows_up_in_the_thread_and_process_cpu_time() {
        let (process_before, thread_before) = (process_cpu_time(), thread_cpu_time());
        burn(Duration::from_millis(100));
        let thread_used = thread_cpu_time() - thread_before;
        let process_used = process_cpu_time() - process_before;
        // On a machine shared with other work the thread may get less than the 100 ms
        // of wall time, but never nothing; the process total includes this thread.
        assert!(
            thread_used > Duration::ZERO,
            "no CPU time charged for 0.1 s of spinning"
        );
        assert!(process_used >= thread_used);
        assert!(
            thread_used <= Duration::from_millis(150),
            "{thread_used:?} for 100 ms of wall time"
        );
    }

    #[test]
    fn a_sleeping_thread_is_charged_almost_nothing() {
        let before = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(50));
        assert!(thread_cpu_time() - before < Duration::from_millis(20));
    }
}
