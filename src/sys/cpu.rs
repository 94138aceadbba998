//! This process's CPU time, as the kernel accounts it, and a way to spend some on purpose.
//!
//! OS concept: CPU accounting. The kernel charges every clock tick a thread runs to its
//! process, split into user time (our code) and system time (the kernel working for
//! us, e.g. in `read(2)`). `/proc/self/stat` shows both totals in *clock ticks*; the
//! tick length is `sysconf(_SC_CLK_TCK)` (the kernel's `USER_HZ`): 100 per second on
//! x86 and ARM Linux whatever the kernel's internal `CONFIG_HZ`. Sampling the total
//! twice and dividing by the wall time between gives "CPU percent" as `top` shows it:
//! 100 means one core busy all the time, 200 two cores.
//!
//! `burn` spins for a given time, so a backend started with `--cpu-work` really uses
//! CPU for each request and `least-load` has something to see.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Clock ticks per second, asked of `getconf CLK_TCK` once (no `unsafe` or `libc` needed
/// for a `sysconf` call); if that fails, 100, the value on every Linux system.
pub fn clock_ticks_per_second() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|output| String::from_utf8(output.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .filter(|&ticks| ticks > 0)
            .unwrap_or(100)
    })
}

/// User plus system CPU time of this process so far, in clock ticks, from
/// `/proc/self/stat`; `None` where there is no `/proc` (not Linux).
pub fn process_ticks() -> Option<u64> {
    parse_stat_ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// `utime + stime` from the text of a `/proc/PID/stat` file. The second field, the
/// command name in parentheses, may itself contain spaces and parentheses, so fields
/// are counted from the last `)`: after it come field 3 (state) onwards, and utime and
/// stime are fields 14 and 15 (proc(5)).
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(14 - 3);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// The process's CPU percentage between one reading and the next, like
/// `psutil.cpu_percent(interval=None)`, which the seed's calculator servers used: each
/// `read` reports the share of CPU used since the previous one.
#[derive(Debug)]
pub struct CpuMeter {
    /// Protects the previous sample and the last answer; held only to compare and
    /// replace them (the /proc read happens before).
    last: Mutex<Sample>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    ticks: u64,
    percent: f64,
}

/// Readings closer together than this repeat the previous answer: over a few
/// milliseconds a 10 ms tick makes the percentage jump between 0 and hundreds.
const MIN_WINDOW: Duration = Duration::from_millis(250);

impl Default for CpuMeter {
    fn default() -> Self {
        CpuMeter {
            last: Mutex::new(Sample {
                at: Instant::now(),
                ticks: process_ticks().unwrap_or(0),
                percent: 0.0,
            }),
        }
    }
}

impl CpuMeter {
    /// CPU percent used by this process since the previous reading (or since the
    /// meter was made), rounded to a tenth.
    pub fn read(&self) -> f64 {
        // /proc is read before the lock is taken: no lock is held across I/O.
        let ticks = process_ticks();
        let now = Instant::now();
        let mut last = self.last.lock();
        let elapsed = now.saturating_duration_since(last.at);
        if elapsed < MIN_WINDOW {
            return last.percent;
        }
        let Some(ticks) = ticks else {
            return 0.0;
        };
        let used = ticks.saturating_sub(last.ticks) as f64 / clock_ticks_per_second() as f64;
        let percent = (used / elapsed.as_secs_f64() * 1000.0).round() / 10.0;
        *last = Sample {
            at: now,
            ticks,
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
    fn parses_the_stat_line_even_with_parentheses_in_the_name() {
        let stat = "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 37 5 0 0 20 0 1 0";
        assert_eq!(parse_stat_ticks(stat), Some(42));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn burning_shows_up_in_the_process_cpu_time() {
        let Some(before) = process_ticks() else {
            return; // not Linux: nothing to read
        };
        burn(Duration::from_millis(300));
        let after = process_ticks().unwrap();
        // 300 ms of wall time is up to 30 ticks at 100 Hz; on a machine shared with
        // other work the thread may get less of it, but never nothing.
        assert!(after > before, "no CPU time charged for 0.3 s of spinning");
    }
}
