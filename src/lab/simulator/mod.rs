//! `roundhouse simulate`: the balancer's strategies at a scale no classroom has, in
//! virtual time, checked against queueing theory.
//!
//! OS concept: scheduling policies evaluated by simulation. The very `Strategy`
//! objects the balancer uses (built by `strategy::by_name`) choose a backend for each
//! simulated request; only the backends are simulated. `engine` is the event loop,
//! `theory` the closed forms it is checked against. Identical arguments give identical
//! output, byte for byte: the only randomness is seeded, and no wall-clock time is
//! printed. docs/simulate.md explains the model and the results.

pub mod engine;
pub mod theory;

use std::fmt::Write as _;

use clap::Args;
use serde::Serialize;

pub use engine::{Measured, Scenario};
pub use theory::Prediction;

use crate::proxy::strategy;

/// `roundhouse simulate`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// Balancing strategy to simulate (the balancer's own code).
    #[arg(long, default_value = "p2c", value_name = "NAME", value_parser = strategy::name_parser())]
    pub strategy: String,

    /// Number of backends, each a FIFO single server with exponential service of mean 1.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000_000), value_name = "N")]
    pub backends: u32,

    /// Load per backend λ, strictly between 0 and 1: requests arrive as a Poisson process
    /// of rate λ·N per mean service time.
    #[arg(long, default_value_t = 0.9, value_parser = parse_load, value_name = "λ")]
    pub load: f64,

    /// Requests to simulate, warm-up included.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..), value_name = "R")]
    pub requests: u64,

    /// Seed of the random streams; the same seed gives the same output.
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,

    /// Share of the requests, at the start, left out of the figures while the queues
    /// fill up from empty.
    #[arg(long, default_value_t = 0.2, value_parser = parse_warmup, value_name = "SHARE")]
    pub warmup: f64,

    /// Distinct client addresses sending the requests (matters for ip-hash);
    /// default 100 per backend.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub clients: Option<u32>,

    /// Virtual time between load reports, in mean service times (matters for
    /// least-load, which sees each backend's busy share over the last interval).
    #[arg(long, default_value_t = 1.0, value_parser = parse_interval, value_name = "T")]
    pub load_interval: f64,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

fn parse_fraction(text: &str, accept: impl Fn(f64) -> bool, expected: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|value| accept(*value))
        .ok_or_else(|| format!("expected {expected}, got {text:?}"))
}

fn parse_load(text: &str) -> Result<f64, String> {
    parse_fraction(
        text,
        |load| load > 0.0 && load < 1.0,
        "a load strictly between 0 and 1 (at 1 or more the queues grow without bound)",
    )
}

fn parse_warmup(text: &str) -> Result<f64, String> {
    parse_fraction(
        text,
        |share| (0.0..1.0).contains(&share),
        "a share from 0 up to (not including) 1",
    )
}

fn parse_interval(text: &str) -> Result<f64, String> {
    parse_fraction(
        text,
        |interval| interval > 0.0 && interval.is_finite(),
        "a positive number",
    )
}

impl SimulateArgs {
    /// The scenario these arguments describe.
    pub fn scenario(&self) -> Scenario {
        Scenario {
            backends: self.backends as usize,
            load: self.load,
            requests: self.requests,
            warmup: (self.warmup * self.requests as f64).floor() as u64,
            seed: self.seed,
            clients: self
                .clients
                .map_or(100 * u64::from(self.backends), u64::from)
                .min(u64::from(u32::MAX)),
            load_interval: self.load_interval,
        }
    }
}

/// Measured figures next to the prediction, as printed and as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub strategy: String,
    pub backends: usize,
    pub load: f64,
    pub requests: u64,
    pub warmup_requests: u64,
    pub seed: u64,
    pub measured: Figures,
    pub max_queue_length: u64,
    /// The closed form, where one exists.
    pub predicted: Option<Prediction>,
    /// Measured mean over predicted mean.
    pub ratio: Option<f64>,
    /// Virtual time simulated, in mean service times.
    pub virtual_time: f64,
}

/// Time in system, in mean service times.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error(transparent)]
    Strategy(#[from] strategy::UnknownStrategy),
    #[error(transparent)]
    NoChoice(#[from] engine::NoChoice),
}

/// Runs `strategy_name` on `scenario` and compares with theory.
pub fn simulate(strategy_name: &str, scenario: &Scenario) -> Result<Report, SimulateError> {
    let strategy = strategy::by_name(strategy_name)?;
    let measured = engine::run(scenario, &*strategy)?;
    let predicted = theory::predict(strategy.name(), scenario.backends, scenario.load);
    let ratio = predicted
        .as_ref()
        .map(|prediction| measured.mean / prediction.mean);
    Ok(Report {
        strategy: strategy.name().to_string(),
        backends: scenario.backends,
        load: scenario.load,
        requests: scenario.requests,
        warmup_requests: scenario.warmup,
        seed: scenario.seed,
        measured: Figures {
            mean: measured.mean,
            p50: measured.p50,
            p99: measured.p99,
            p999: measured.p999,
        },
        max_queue_length: measured.max_queue,
        predicted,
        ratio,
        virtual_time: measured.end_time,
    })
}

impl Report {
    /// The human-readable table.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "simulate {}: {} backends, load λ = {}, {} requests ({} warm-up discarded), seed {}",
            self.strategy, self.backends, self.load, self.requests, self.warmup_requests, self.seed
        );
        let _ = writeln!(text, "time in system, in mean service times:");
        let _ = writeln!(text, "          measured   predicted   measured/predicted");
        let predicted = self.predicted.as_ref();
        let rows = [
            ("mean", self.measured.mean, predicted.map(|p| p.mean)),
            ("p50", self.measured.p50, predicted.map(|p| p.p50)),
            ("p99", self.measured.p99, predicted.map(|p| p.p99)),
            ("p99.9", self.measured.p999, predicted.map(|p| p.p999)),
        ];
        for (label, measured, expected) in rows {
            match expected {
                Some(expected) => {
                    let _ = writeln!(
                        text,
                        "  {label:<6} {measured:>9.4}   {expected:>9.4}   {:>8.3}",
                        measured / expected
                    );
                }
                None => {
                    let _ = writeln!(text, "  {label:<6} {measured:>9.4}           -          -");
                }
            }
        }
        let _ = writeln!(text, "max queue length (one backend): {}", self.max_queue_length);
        match predicted {
            Some(prediction) => {
                let _ = writeln!(text, "model: {}", prediction.model);
                let _ = writeln!(text, "source: {}", prediction.source);
            }
            None => {
                let _ = writeln!(text, "model: no closed form for {}", self.strategy);
            }
        }
        let _ = writeln!(text, "virtual time: {:.1} mean service times", self.virtual_time);
        text
    }

    /// One JSON object (without a trailing newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }
}

/// The `simulate` subcommand: run and print.
pub fn command(args: &SimulateArgs) -> Result<(), String> {
    let report = simulate(&args.strategy, &args.scenario()).map_err(|error| error.to_string())?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}
