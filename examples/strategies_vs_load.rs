//! `make simulate-plot`: mean time in system against load for four strategies at
//! n = 1,000 backends, simulated points over the queueing-theory curves, written as an
//! SVG file (docs/img/strategies-vs-load.svg). Also prints the measured/predicted table
//! that docs/simulate.md quotes.
//!
//! Usage: cargo run --release --example strategies_vs_load -- OUT.svg

use std::process::ExitCode;

use roundhouse::lab::plot::okabe_ito::{BLUE, GREEN, ORANGE, VERMILLION};
use roundhouse::lab::plot::{Axis, Chart, Colour, Legend, LineStyle, Marker, Series};
use roundhouse::lab::simulator::{Scenario, simulate, theory};

const BACKENDS: usize = 1000;
const SEED: u64 = 1;
const LOADS: &[f64] = &[0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99];

/// How one strategy is drawn: colour, line and marker all differ, so the chart reads
/// in grey too.
struct Look {
    strategy: &'static str,
    label: &'static str,
    colour: Colour,
    line: LineStyle,
    marker: Marker,
}

const STRATEGIES: &[Look] = &[
    Look {
        strategy: "random",
        label: "random: M/M/1",
        colour: VERMILLION,
        line: LineStyle::Solid,
        marker: Marker::Circle,
    },
    Look {
        strategy: "round-robin",
        label: "round-robin: E_n/M/1",
        colour: ORANGE,
        line: LineStyle::Dashed,
        marker: Marker::Square,
    },
    Look {
        strategy: "p2c",
        label: "p2c: Mitzenmacher",
        colour: BLUE,
        line: LineStyle::FineDashed,
        marker: Marker::Triangle,
    },
    Look {
        strategy: "least-conn",
        label: "least-conn: limit 1",
        colour: GREEN,
        line: LineStyle::Dotted,
        marker: Marker::Cross,
    },
];

/// Requests for one run. Random and round-robin queues at load λ take of the order of
/// 1/(1 − λ)² service times to forget their empty start, so their runs grow with it;
/// p2c and least-conn keep short queues and converge in a couple of million.
fn requests_for(strategy: &str, load: f64) -> u64 {
    match strategy {
        "random" | "round-robin" => {
            let scaled = 10_000_000.0 * (0.1 / (1.0 - load)).powi(2);
            (scaled as u64).clamp(2_000_000, 100_000_000)
        }
        _ => 2_000_000,
    }
}

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: strategies_vs_load OUT.svg");
        return ExitCode::from(2);
    };
    let mut chart = Chart::new(
        "Balancing strategies against load, n = 1,000 backends",
        Axis::linear("load per backend λ", 0.48, 1.0),
        Axis::log("mean time in system (service times), log scale", 0.8, 150.0),
    )
    .with_legend(Legend::TopLeft)
    .with_footnote(format!(
        "roundhouse simulate, seed {SEED}; lines: closed forms (docs/simulate.md); markers: simulation of the balancer's own strategy code"
    ));

    println!(
        "| strategy | λ | requests | measured mean | predicted mean | measured/predicted | p99 measured | p99 predicted |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for look in STRATEGIES {
        let strategy = look.strategy;
        let curve: Vec<(f64, f64)> = (0..=196)
            .map(|step| 0.5 + f64::from(step) * 0.0025)
            .filter_map(|load| Some((load, theory::predicted_mean(strategy, BACKENDS, load)?)))
            .collect();
        chart = chart.with_series(
            Series::line(look.label, look.colour, curve)
                .with_line(look.line)
                .with_legend_marker(look.marker),
        );
        let mut measured = Vec::new();
        for &load in LOADS {
            let requests = requests_for(strategy, load);
            let scenario = Scenario {
                backends: BACKENDS,
                load,
                requests,
                warmup: requests / 5,
                seed: SEED,
                clients: 100 * BACKENDS as u64,
                load_interval: 1.0,
            };
            let report = match simulate(strategy, &scenario) {
                Ok(report) => report,
                Err(error) => {
                    eprintln!("strategies_vs_load: {error}");
                    return ExitCode::FAILURE;
                }
            };
            eprintln!("{strategy} λ = {load}: {:.4}", report.measured.mean);
            let predicted = report.predicted.as_ref().expect("these four have closed forms");
            println!(
                "| {strategy} | {load} | {requests} | {:.4} | {:.4} | {:.3} | {:.3} | {:.3} |",
                report.measured.mean,
                predicted.mean,
                report.measured.mean / predicted.mean,
                report.measured.p99,
                predicted.p99
            );
            measured.push((load, report.measured.mean));
        }
        chart = chart.with_series(Series::points("", look.colour, measured).with_marker(look.marker));
    }

    let svg = match chart.to_svg() {
        Ok(svg) => svg,
        Err(error) => {
            eprintln!("strategies_vs_load: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = std::fs::write(&path, svg) {
        eprintln!("strategies_vs_load: cannot write {path}: {error}");
        return ExitCode::FAILURE;
    }
    eprintln!("wrote {path}");
    ExitCode::SUCCESS
}
