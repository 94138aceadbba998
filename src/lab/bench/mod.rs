//! `roundhouse bench`: a load generator students run against the balancer.
//!
//! OS concept: a closed queueing system. Each of the `-c` client threads sends one
//! request, blocks until the answer comes back, and sends the next at once, like wrk
//! or ab -c. With W workers and a mean service time E[S], Little's law caps the
//! throughput at min(W, c) / E[S]: the report measures E[S] from the balancer's
//! `/stats` and prints how close the run came to that bound.
//!
//! Read in this order: `load` (the client threads and the channel their samples come
//! back on), `probe` (reading `/stats` before and after), `report` (the numbers and
//! their text and JSON forms), `progress` (the live bar), then `experiment`
//! (the workers-versus-throughput plots of `make experiment`, drawn with `crate::lab::plot`).

pub mod experiment;
pub mod load;
pub mod probe;
pub mod progress;
pub mod report;

use std::io::Write;
use std::time::Duration;

use clap::Args;

use crate::units::parse_duration;
use load::{LoadPlan, StopRule};
use progress::{Progress, ProgressMode};
use report::Report;

/// How long a run lasts when neither `-d` nor `-n` is given.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The URL every client requests (http:// only).
    #[arg(default_value = "http://127.0.0.1:8080/", value_parser = parse_url, value_name = "URL")]
    pub url: BenchUrl,

    /// Client threads, each with its own keep-alive connection and one request in flight.
    #[arg(short = 'c', long = "clients", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000), value_name = "N")]
    pub clients: u32,

    /// Run for this long (e.g. 20s, 1m); the default is 10s.
    #[arg(short = 'd', long, value_parser = parse_duration, value_name = "DURATION", conflicts_with = "requests")]
    pub duration: Option<Duration>,

    /// Send exactly this many requests, then stop.
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..), value_name = "N")]
    pub requests: Option<u64>,

    /// Longest wait for each phase of one request (connect, send, answer) before it
    /// counts as a timeout error.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Print one JSON object with the results instead of text, and no progress.
    #[arg(long)]
    pub json: bool,
}

/// A target URL split into what the clients need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchUrl {
    /// The whole URL, as the clients request it.
    pub url: String,
    /// `http://host:port/stats` on the same server.
    pub stats_url: String,
}

/// Accepts `http://host[:port][/path]`.
pub fn parse_url(text: &str) -> Result<BenchUrl, String> {
    let uri: http::Uri = text
        .parse()
        .map_err(|_| format!("{text:?} is not a URL (example: http://127.0.0.1:8080/)"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("{text:?}: only http:// URLs are supported"));
    }
    let authority = uri.authority().ok_or_else(|| format!("{text:?} has no host"))?;
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    Ok(BenchUrl {
        url: format!("http://{authority}{path}"),
        stats_url: format!("http://{authority}/stats"),
    })
}

impl BenchArgs {
    fn stop_rule(&self) -> StopRule {
        match (self.requests, self.duration) {
            (Some(count), _) => StopRule::Requests(count),
            (None, Some(duration)) => StopRule::Duration(duration),
            (None, None) => StopRule::Duration(DEFAULT_DURATION),
        }
    }
}

/// Runs the benchmark and prints the report; an error is one line for stderr.
pub fn run(args: &BenchArgs) -> Result<(), String> {
    let timeout = args.timeout.max(Duration::from_millis(1));
    // Reading /stats first also tells an unreachable target apart from a slow one.
    let before = probe::fetch(&args.url.stats_url, timeout).map_err(|error| {
        format!(
            "cannot reach {}: {error} (is the balancer running? start it with `roundhouse`)",
            args.url.url
        )
    })?;
    let plan = LoadPlan {
        url: args.url.url.clone(),
        clients: args.clients as usize,
        stop: args.stop_rule(),
        timeout,
    };
    let mode = if args.json {
        ProgressMode::Quiet
    } else {
        ProgressMode::detect()
    };
    let mut progress = Progress::new(mode, &plan.stop, plan.clients, &plan.url);
    let running = load::start(&plan).map_err(|error| format!("cannot start client threads: {error}"))?;
    let outcome = running.collect(|done, elapsed| progress.tick(done, elapsed));
    // Read right at the end of the run, so the balancer's counts and ours cover the
    // same requests (minus the few answered in the instant between).
    let after = before
        .as_ref()
        .and_then(|_| probe::fetch(&args.url.stats_url, timeout).ok().flatten());
    progress.finish();
    // After an upgrade another process answers, whose counters started from zero: the
    // difference would mean nothing.
    let replaced = match (&before, &after) {
        (Some(before), Some(after)) if before.pid != after.pid => before.pid.zip(after.pid),
        _ => None,
    };
    let delta = match (&before, &after) {
        (Some(before), Some(after)) if replaced.is_none() => Some(probe::RunDelta::between(before, after)),
        _ => None,
    };
    let mut report = Report::new(&plan, &outcome, delta.as_ref());
    report.balancer_replaced = replaced;
    let text = if args.json {
        let mut json = serde_json::to_string_pretty(&report).map_err(|error| error.to_string())?;
        json.push('\n');
        json
    } else {
        report.to_text()
    };
    // A closed pipe (`| head`) is the reader's choice, not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_get_a_path_and_a_stats_url() {
        let url = parse_url("http://127.0.0.1:8080").unwrap();
        assert_eq!(url.url, "http://127.0.0.1:8080/");
        assert_eq!(url.stats_url, "http://127.0.0.1:8080/stats");
        let url = parse_url("http://localhost:9/a/b?x=1").unwrap();
        assert_eq!(url.url, "http://localhost:9/a/b?x=1");
        assert_eq!(url.stats_url, "http://localhost:9/stats");
        assert!(parse_url("https://x/").is_err());
        assert!(parse_url("127.0.0.1:8080").is_err());
        assert!(parse_url("not a url").is_err());
    }
}
