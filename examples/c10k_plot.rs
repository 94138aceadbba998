//! Draws the C10k experiment's table (`bench/c10k.sh`) as four charts: threads, memory,
//! throughput and context switches per request against the number of connections, for
//! both fronts, the model's predictions dashed beside the measured points.
//!
//! OS concept: what waiting costs, seen at three scales. A thread per connection grows
//! threads and memory in proportion to the clients; an event loop keeps both flat.
//!
//! Usage: cargo run --release --example c10k_plot -- TABLE.tsv OUT_DIR WORKERS
//! (writes OUT_DIR/c10k-threads.svg, -memory.svg, -throughput.svg, -switches.svg).

use std::process::ExitCode;

use roundhouse::lab::plot::{Axis, Chart, Colour, Legend, Marker, Series, okabe_ito};

/// One row of the table.
struct Row {
    front: String,
    connections: f64,
    rps: f64,
    threads: f64,
    hwm_mib: f64,
    ctx_per_request: f64,
}

fn parse(text: &str) -> Vec<Row> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let number = |index: usize| fields.get(index)?.parse::<f64>().ok();
            Some(Row {
                front: fields.first()?.to_string(),
                connections: number(1)?,
                rps: number(3)?,
                threads: number(7)?,
                hwm_mib: number(8)? / 1024.0,
                ctx_per_request: number(10)?,
            })
        })
        .collect()
}

/// The model of docs/concepts.md: threads and memory of each front at `connections`.
fn predicted(front: &str, connections: f64, workers: f64) -> (f64, f64) {
    match front {
        "threads" => (connections + workers + 6.0, 8.0 + connections * 24.0 / 1024.0),
        _ => (workers + 6.0, 8.0 + connections / 1024.0),
    }
}

const FRONTS: [(&str, Colour, Marker); 2] = [
    ("threads", okabe_ito::VERMILLION, Marker::Square),
    ("epoll", okabe_ito::BLUE, Marker::Circle),
];

fn chart(
    rows: &[Row],
    workers: f64,
    title: &str,
    y_label: &str,
    pick: fn(&Row) -> f64,
    model: Option<usize>,
) -> Chart {
    // Axis ranges from the data (and the model's curve), with some room around them.
    let mut values: Vec<f64> = rows.iter().map(pick).filter(|value| *value > 0.0).collect();
    if let Some(which) = model {
        for (front, _, _) in FRONTS {
            for connections in [100.0, 1000.0, 10000.0] {
                let (threads, memory) = predicted(front, connections, workers);
                values.push(if which == 0 { threads } else { memory });
            }
        }
    }
    let high = values.iter().copied().fold(1.0, f64::max);
    let low = values.iter().copied().fold(high, f64::min);
    let x = Axis::log("concurrent keep-alive connections (log scale)", 50.0, 20_000.0);
    let y = if model.is_some() {
        Axis::log(y_label, (low / 2.0).max(0.1), high * 2.0)
    } else {
        Axis::linear(y_label, 0.0, high * 1.15)
    };
    let mut chart = Chart::new(title, x, y)
        .with_legend(Legend::TopLeft)
        .with_footnote("bench/c10k.sh: wrk -t1 against each front, fast backends in their own processes");
    for (front, color, marker) in FRONTS {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter(|row| row.front == front && pick(row) > 0.0)
            .map(|row| (row.connections, pick(row)))
            .collect();
        if let Some(which) = model {
            let curve: Vec<(f64, f64)> = [100.0, 1000.0, 10000.0]
                .iter()
                .map(|&connections| {
                    let (threads, memory) = predicted(front, connections, workers);
                    (connections, if which == 0 { threads } else { memory })
                })
                .collect();
            chart =
                chart.with_series(Series::line(format!("--front {front}, predicted"), color, curve).dashed());
        }
        chart = chart.with_series(
            Series::line(format!("--front {front}, measured"), color, points).with_marker(marker),
        );
    }
    chart
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(table), Some(out)) = (args.first(), args.get(1)) else {
        eprintln!("usage: c10k_plot TABLE.tsv OUT_DIR WORKERS");
        return ExitCode::from(2);
    };
    let workers: f64 = args.get(2).and_then(|text| text.parse().ok()).unwrap_or(4.0);
    let rows = match std::fs::read_to_string(table) {
        Ok(text) => parse(&text),
        Err(error) => {
            eprintln!("c10k_plot: cannot read {table}: {error}");
            return ExitCode::from(2);
        }
    };
    let charts = [
        (
            "threads",
            chart(
                &rows,
                workers,
                "Threads of the balancer",
                "threads (log scale)",
                |row| row.threads,
                Some(0),
            ),
        ),
        (
            "memory",
            chart(
                &rows,
                workers,
                "Peak resident memory (VmHWM)",
                "MiB (log scale)",
                |row| row.hwm_mib,
                Some(1),
            ),
        ),
        (
            "throughput",
            chart(&rows, workers, "Throughput", "requests/s", |row| row.rps, None),
        ),
        (
            "switches",
            chart(
                &rows,
                workers,
                "Context switches per request",
                "switches/request",
                |row| row.ctx_per_request,
                None,
            ),
        ),
    ];
    for (name, chart) in charts {
        let path = format!("{out}/c10k-{name}.svg");
        let svg = match chart.to_svg() {
            Ok(svg) => svg,
            Err(error) => {
                eprintln!("c10k_plot: cannot draw {path}: {error}");
                return ExitCode::from(1);
            }
        };
        if let Err(error) = std::fs::write(&path, svg) {
            eprintln!("c10k_plot: cannot write {path}: {error}");
            return ExitCode::from(1);
        }
        println!("wrote {path}");
    }
    ExitCode::SUCCESS
}
