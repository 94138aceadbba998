//! Live progress during a run: a bar with the current rate on a terminal, one plain
//! line a second when the output goes to a file or a pipe, nothing with `--json`.
//!
//! OS concept: asking what a descriptor is. `ProgressMode::detect` asks whether stdout
//! is a terminal (`isatty(3)`, through `IsTerminal`): a bar redrawn in place is for a
//! person watching, while a file or a pipe gets plain lines that read well in a log.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::load::StopRule;

/// Where progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Bar,
    Lines,
    Quiet,
}

impl ProgressMode {
    /// A bar when stdout is a terminal, plain lines otherwise.
    pub fn detect() -> Self {
        if std::io::stdout().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Lines
        }
    }
}

/// The current rate is measured over this window, so it follows changes quickly.
const RATE_WINDOW: Duration = Duration::from_secs(1);
const LINE_EVERY: Duration = Duration::from_secs(1);

pub struct Progress {
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    stop: StopRule,
    /// Recent (elapsed, requests) points, oldest first.
    recent: VecDeque<(Duration, u64)>,
    next_line: Duration,
}

impl Progress {
    pub fn new(mode: ProgressMode, stop: &StopRule, clients: usize, url: &str) -> Self {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let (length, template) = match stop {
                StopRule::Requests(count) => (*count, "{bar:40} {pos}/{len} requests  {msg}".to_string()),
                StopRule::Duration(duration) => (
                    duration.as_millis() as u64,
                    format!(
                        "{{bar:40}} {{elapsed}} of {:.0}s  {{msg}}",
                        duration.as_secs_f64()
                    ),
                ),
            };
            let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stdout());
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style);
            }
            bar
        });
        if mode != ProgressMode::Quiet {
            let length = match stop {
                StopRule::Requests(count) => format!("{count} requests"),
                StopRule::Duration(duration) => format!("{:.0} s", duration.as_secs_f64()),
            };
            println!("roundhouse bench: {clients} clients, {length}, against {url}");
        }
        Progress {
            mode,
            bar,
            stop: *stop,
            recent: VecDeque::new(),
            next_line: LINE_EVERY,
        }
    }

    /// Called by the collector about every 100 ms.
    pub fn tick(&mut self, requests: u64, elapsed: Duration) {
        if self.mode == ProgressMode::Quiet {
            return;
        }
        self.recent.push_back((elapsed, requests));
        while self
            .recent
            .front()
            .is_some_and(|(then, _)| elapsed.saturating_sub(*then) > RATE_WINDOW)
        {
            self.recent.pop_front();
        }
        let rate = rate(&self.recent);
        if let Some(bar) = &self.bar {
            let position = match self.stop {
                StopRule::Requests(_) => requests,
                StopRule::Duration(_) => elapsed.as_millis() as u64,
            };
            bar.set_position(position);
            bar.set_message(format!("{requests} done, {rate:.1} req/s"));
        } else if elapsed >= self.next_line {
            println!(
                "  {:>6.1} s  {requests:>8} requests  {rate:>8.1} req/s",
                elapsed.as_secs_f64()
            );
            self.next_line = elapsed + LINE_EVERY;
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Requests per second between the oldest and newest point.
fn rate(points: &VecDeque<(Duration, u64)>) -> f64 {
    match (points.front(), points.back()) {
        (Some((t0, n0)), Some((t1, n1))) if t1 > t0 => (n1 - n0) as f64 / (*t1 - *t0).as_secs_f64(),
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_follows_the_last_second() {
        let mut progress = Progress::new(ProgressMode::Lines, &StopRule::Requests(1000), 1, "http://x/");
        for tenth in 0..=30u64 {
            // 10 requests a second for 2 s, then 50 a second.
            let requests = if tenth <= 20 { tenth } else { 20 + (tenth - 20) * 5 };
            progress.tick(requests, Duration::from_millis(tenth * 100));
        }
        assert!(
            (rate(&progress.recent) - 50.0).abs() < 0.01,
            "{}",
            rate(&progress.recent)
        );
    }
}
