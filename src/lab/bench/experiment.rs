//! `make experiment`: Little's law as a picture. For each worker count W it starts
//! `roundhouse serve --workers W` as a child process, runs `roundhouse bench --json`
//! against it, and finally draws throughput and latency against W.
//!
//! OS concept: processes. The balancer and the load generator are separate processes,
//! started with exactly the commands a student would type, so the numbers in the
//! plots can be reproduced one point at a time by hand.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use serde_json::Value;

use crate::lab::plot::okabe_ito::{BLACK, BLUE, ORANGE};
use crate::lab::plot::{Axis, Chart, Legend, Marker, Series};
use crate::units::{parse_duration, parse_millis_range};

#[derive(Debug, Clone, Args)]
pub struct ExperimentArgs {
    /// Worker counts to measure, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2,4,8,16,32,64,128",
        value_name = "LIST"
    )]
    pub workers: Vec<u32>,

    /// Client threads of each bench run.
    #[arg(short = 'c', long = "clients", default_value_t = 64, value_name = "N")]
    pub clients: u32,

    /// Length of each bench run.
    #[arg(short = 'd', long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Duration,

    /// Latency of the simulated backends, in milliseconds.
    #[arg(long, default_value = "200..800", value_parser = parse_millis_range, value_name = "MIN..MAX")]
    pub sim_latency: std::ops::RangeInclusive<u64>,

    /// Folder for the SVG plots and the data table.
    #[arg(long, default_value = "docs/img", value_name = "DIR")]
    pub out: PathBuf,
}

/// One measured point.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub workers: u32,
    pub throughput: f64,
    pub bound: Option<f64>,
    pub limit: String,
    pub ratio: Option<f64>,
    pub mean_service_ms: Option<f64>,
    /// Mean latency of the answered requests.
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub requests: u64,
    pub errors: u64,
    pub unfinished: u64,
}

impl Row {
    /// Reads the numbers out of `roundhouse bench --json` output.
    pub fn from_report(workers: u32, report: &Value) -> Option<Row> {
        let number = |value: &Value| value.as_f64();
        let balancer = &report["balancer"];
        Some(Row {
            workers,
            throughput: number(&report["throughput_rps"])?,
            bound: number(&balancer["bound"]["requests_per_s"]),
            limit: balancer["bound"]["limit"].as_str().unwrap_or("?").to_string(),
            ratio: number(&balancer["ratio"]),
            mean_service_ms: number(&balancer["mean_service_ms"]),
            mean_ms: number(&report["latency_ms"]["mean"])?,
            p50_ms: number(&report["latency_ms"]["p50"])?,
            p90_ms: number(&report["latency_ms"]["p90"])?,
            p99_ms: number(&report["latency_ms"]["p99"])?,
            max_ms: number(&report["latency_ms"]["max"])?,
            requests: report["requests"].as_u64()?,
            errors: report["errors"].as_u64()?,
            unfinished: report["unfinished"].as_u64().unwrap_or(0),
        })
    }
}

/// Runs every point, then writes the plots and the table.
pub fn run(args: &ExperimentArgs) -> Result<(), String> {
    if args.workers.is_empty() || args.workers.contains(&0) {
        return Err("--workers needs a list of counts of at least 1, like 1,2,4".into());
    }
    let program = std::env::current_exe().map_err(|error| format!("cannot find my own program: {error}"))?;
    std::fs::create_dir_all(&args.out)
        .map_err(|error| format!("cannot create {}: {error}", args.out.display()))?;
    let mut rows = Vec::new();
    for &workers in &args.workers {
        let row = measure(&program, args, workers)?;
        println!(
            "W = {:>3}: {:>6.1} req/s, bound {:>6.1} ({}), ratio {}, p99 {:.0} ms, {} errors",
            row.workers,
            row.throughput,
            row.bound.unwrap_or(0.0),
            row.limit,
            row.ratio.map_or("-".into(), |ratio| format!("{ratio:.3}")),
            row.p99_ms,
            row.errors
        );
        rows.push(row);
    }
    let mean_ms = (args.sim_latency.start() + args.sim_latency.end()) as f64 / 2.0;
    let plot = |chart: Chart| chart.to_svg().map_err(|error| error.to_string());
    let files = [
        (
            "workers-vs-throughput.svg",
            plot(throughput_chart(&rows, args, mean_ms))?,
        ),
        (
            "workers-vs-latency.svg",
            plot(latency_chart(&rows, args, mean_ms))?,
        ),
        ("workers-vs-throughput.md", table(&rows, args, &machine())),
    ];
    for (name, text) in files {
        let path = args.out.join(name);
        std::fs::write(&path, text).map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The balancer command of one point, as a student would type it.
fn serve_args(args: &ExperimentArgs, workers: u32) -> Vec<String> {
    let queue = (args.clients * 4).max(256);
    vec![
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--sim-base-port".into(),
        "0".into(),
        "--sim-latency".into(),
        format!("{}..{}", args.sim_latency.start(), args.sim_latency.end()),
        "--workers".into(),
        workers.to_string(),
        "--queue".into(),
        queue.to_string(),
    ]
}

fn bench_args(args: &ExperimentArgs, url: &str) -> Vec<String> {
    vec![
        "bench".into(),
        url.into(),
        "-c".into(),
        args.clients.to_string(),
        "-d".into(),
        format!("{}s", args.duration.as_secs_f64()),
        "--json".into(),
    ]
}

/// Kills the balancer child however `measure` ends.
struct Balancer(Child);

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn measure(program: &Path, args: &ExperimentArgs, workers: u32) -> Result<Row, String> {
    let child = Command::new(program)
        .args(serve_args(args, workers))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|error| format!("cannot start the balancer: {error}"))?;
    let mut balancer = Balancer(child);
    let stdout = balancer.0.stdout.take().ok_or("no stdout from the balancer")?;
    let mut addr = None;
    let mut lines_left = BufReader::new(stdout);
    for line in (&mut lines_left).lines() {
        let line = line.map_err(|error| error.to_string())?;
        if let Some((_, rest)) = line.split_once("listening on http://") {
            addr = rest.split_whitespace().next().map(str::to_string);
            break;
        }
    }
    let addr = addr.ok_or("the balancer exited before listening")?;
    // Keep reading the rest of its output: with the pipe closed, its next line would
    // fail (EPIPE) and stop it. The thread ends when the child does.
    let _ = std::thread::Builder::new()
        .name("balancer-output".into())
        .spawn(move || std::io::copy(&mut lines_left, &mut std::io::sink()));
    let output = Command::new(program)
        .args(bench_args(args, &format!("http://{addr}/")))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run the bench: {error}"))?;
    drop(balancer);
    if !output.status.success() {
        return Err(format!(
            "the bench failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let report: Value =
        serde_json::from_slice(&output.stdout).map_err(|error| format!("bench output: {error}"))?;
    Row::from_report(workers, &report).ok_or_else(|| format!("bench output lacks numbers: {report}"))
}

/// The x range: workers (on a base-2 scale) with some room at both ends.
fn workers_range(rows: &[Row], clients: f64) -> (f64, f64) {
    let largest = rows.iter().map(|row| row.workers as f64).fold(clients, f64::max);
    let smallest = rows.iter().map(|row| row.workers as f64).fold(largest, f64::min);
    (smallest / 1.4, largest * 1.4)
}

/// A base-2 y axis from just under `low` to well over `high` (room for the legend).
fn doubling_axis(label: &str, low: f64, high: f64) -> Axis {
    Axis::log2(label, low / 1.5, high * 2.5)
}

/// Both experiment charts: base-2 axes both ways, so that doubling the workers is one
/// step right and doubling the throughput one step up, and a bound of the form c·W is a
/// straight line at 45 degrees.
fn workers_chart(title: &str, x_range: (f64, f64), y: Axis) -> Chart {
    Chart::new(
        title,
        Axis::log2("worker threads W (--workers), log scale", x_range.0, x_range.1),
        y,
    )
}

/// `points_per_doubling` points of `f` along the x range, for a smooth curve.
fn curve((min, max): (f64, f64), f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
    if !(min > 0.0 && max > min) {
        return Vec::new();
    }
    let points_per_doubling = 16.0;
    let steps = ((max / min).log2() * points_per_doubling).ceil() as i32;
    (0..=steps)
        .map(|step| min * 2f64.powf(step as f64 / points_per_doubling))
        .map(|x| (x, f(x)))
        .collect()
}

/// The smallest and largest positive value of `values` (a log axis cannot show 0).
fn positive_span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|value| *value > 0.0 && value.is_finite())
        .fold((f64::INFINITY, 0.0_f64), |(low, high), value| {
            (low.min(value), high.max(value))
        })
}

pub fn throughput_chart(rows: &[Row], args: &ExperimentArgs, mean_ms: f64) -> Chart {
    let clients = args.clients as f64;
    let seconds = mean_ms / 1000.0;
    let x_range = workers_range(rows, clients);
    let knee = clients / seconds;
    let bound = curve(x_range, |workers| workers.min(clients) / seconds);
    let (low, high) = positive_span(
        bound
            .iter()
            .map(|point| point.1)
            .chain(rows.iter().map(|row| row.throughput)),
    );
    let measured = rows
        .iter()
        .map(|row| (row.workers as f64, row.throughput))
        .collect();
    let few = (clients / 4.0).max(x_range.0 * 2.0);
    workers_chart(
        "More workers, more throughput, until the clients run out",
        x_range,
        doubling_axis("throughput (requests per second), log scale", low, high),
    )
    .with_subtitle(format!(
        "{} clients, backends {}..{} ms (mean E[S] = {:.1} s), {:.0} s per point",
        args.clients,
        args.sim_latency.start(),
        args.sim_latency.end(),
        seconds,
        args.duration.as_secs_f64(),
    ))
    .with_series(Series::line(
        format!(
            "Little's law bound X = min(W, {}) / {:.1} s",
            args.clients, seconds
        ),
        BLUE,
        bound,
    ))
    .with_series(Series::points("measured (roundhouse bench)", ORANGE, measured))
    .with_note(
        (clients, knee),
        format!("knee: W = {} clients, {:.0} req/s", args.clients, knee),
    )
    .with_note(
        (few, few / seconds * 2.2),
        "W doubles, X doubles: the workers are the limit",
    )
    .with_note(
        (x_range.1, knee * 1.5),
        format!("W > {}: the clients are the limit", args.clients),
    )
    .with_legend(Legend::BottomRight)
}

/// Mean time in system against workers: the measured mean beside the mean Little's law
/// predicts, R = L / X with L = c (a closed loop always has its c requests in the
/// system) and X the bound above. Percentiles are not on this chart: Little's law says
/// nothing about them (the table has them).
pub fn latency_chart(rows: &[Row], args: &ExperimentArgs, mean_ms: f64) -> Chart {
    let clients = args.clients as f64;
    let seconds = mean_ms / 1000.0;
    let x_range = workers_range(rows, clients);
    let predicted = curve(x_range, |workers| clients * seconds / workers.min(clients));
    let run = args.duration.as_secs_f64();
    let measured: Vec<(f64, f64)> = rows
        .iter()
        .map(|row| (row.workers as f64, row.mean_ms / 1000.0))
        .collect();
    let (low, high) = positive_span(
        predicted
            .iter()
            .chain(measured.iter())
            .map(|point| point.1)
            .chain([run]),
    );
    workers_chart(
        "Mean time in system falls as workers are added",
        x_range,
        doubling_axis("mean latency R (seconds), log scale", low, high),
    )
    .with_subtitle(format!(
        "{} clients, backends {}..{} ms (mean E[S] = {:.1} s); each point a {:.0} s run",
        args.clients,
        args.sim_latency.start(),
        args.sim_latency.end(),
        seconds,
        run
    ))
    .with_series(Series::line(
        format!(
            "Little's law: mean R = {} x {:.1} s / min(W, {})",
            args.clients, seconds, args.clients
        ),
        BLUE,
        predicted,
    ))
    .with_series(
        Series::points("measured mean of answered requests", ORANGE, measured).with_marker(Marker::Square),
    )
    .with_series(
        Series::line(
            format!("run length {run:.0} s: longer waits are never answered, so not measured"),
            BLACK,
            vec![(x_range.0, run), (x_range.1, run)],
        )
        .dashed(),
    )
    .with_legend(Legend::TopRight)
}

/// `nproc` and the CPU model, for the table's header.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |cores| cores.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores (`nproc`), {model}")
}

/// Year, month, day of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn today() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let (year, month, day) = civil_date((seconds / 86_400) as i64);
    format!("{year:04}-{month:02}-{day:02}")
}

fn optional(value: Option<f64>, decimals: usize) -> String {
    value.map_or("-".into(), |value| format!("{value:.decimals$}"))
}

pub fn table(rows: &[Row], args: &ExperimentArgs, machine: &str) -> String {
    let mut out = String::new();
    out.push_str("# Workers against throughput: the data behind the plots\n\n");
    out.push_str(
        "Written by `make experiment` (`cargo run --release -- experiment --out docs/img`). For each\n\
         worker count W it runs, as two processes:\n\n```sh\n",
    );
    out.push_str(&format!(
        "roundhouse {}\nroundhouse {}\n```\n\n",
        serve_args(args, 0)
            .join(" ")
            .replace("--workers 0", "--workers W"),
        bench_args(args, "http://ADDR/").join(" ")
    ));
    out.push_str(&format!(
        "Machine: {machine}. Date: {}. Release build.\n\n",
        today()
    ));
    out.push_str(
        "The bound is min(W, c) / E[S], with E[S] the mean backend time the balancer measured during\n\
         the run (`busy_ms` in /stats); the ratio is achieved throughput over that bound.\n\n",
    );
    out.push_str(
        "| W | throughput (req/s) | bound (req/s) | limited by | achieved / bound | E[S] (ms) | mean (ms) | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | requests | errors |\n\
         |---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        out.push_str(&format!(
            "| {} | {:.1} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} |\n",
            row.workers,
            row.throughput,
            optional(row.bound, 1),
            row.limit,
            optional(row.ratio, 3),
            optional(row.mean_service_ms, 1),
            row.mean_ms,
            row.p50_ms,
            row.p90_ms,
            row.p99_ms,
            row.max_ms,
            row.requests,
            row.errors
        ));
    }
    out.push_str(&format!(
        "\nA closed loop always has its c requests in the system, so c requests are still unanswered\n\
         when a {:.0} s run ends. With few workers most of them have waited in the queue longer than\n\
         the run lasted (Little's law predicts a mean wait of c x E[S] / W: 32 s for one worker), so\n\
         the latency mean and percentiles of those rows describe only the requests that did finish.\n\
         Little's law predicts the mean (R = c / X), so the latency plot sets the mean against it;\n\
         the percentiles are here only.\n\
         Throughput counts answers within the run; the service cut off at its end is why even a\n\
         perfect balancer measures a little under the bound (about 1 - E[S] / (2 x run length)).\n",
        args.duration.as_secs_f64()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ExperimentArgs,
    }

    fn args() -> ExperimentArgs {
        Wrapper::parse_from(["x"]).args
    }

    fn row(workers: u32, throughput: f64) -> Row {
        Row {
            workers,
            throughput,
            bound: Some(workers as f64 * 2.0),
            limit: "workers".into(),
            ratio: Some(0.98),
            mean_service_ms: Some(500.0),
            mean_ms: 520.0,
            p50_ms: 500.0,
            p90_ms: 700.0,
            p99_ms: 900.0,
            max_ms: 1000.0,
            requests: 100,
            errors: 0,
            unfinished: 64,
        }
    }

    #[test]
    fn dates_from_days_since_1970() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(19_723), (2024, 1, 1));
    }

    #[test]
    fn rows_come_from_bench_json() {
        let report = serde_json::json!({
            "throughput_rps": 7.8, "requests": 78, "errors": 0, "unfinished": 64,
            "latency_ms": {"mean": 1.5, "p50": 1.0, "p90": 2.0, "p99": 3.0, "max": 4.0},
            "balancer": {"mean_service_ms": 501.0, "ratio": 0.97,
                         "bound": {"requests_per_s": 8.0, "limit": "workers"}},
        });
        let row = Row::from_report(4, &report).unwrap();
        assert_eq!(row.bound, Some(8.0));
        assert_eq!(row.limit, "workers");
        assert_eq!(row.ratio, Some(0.97));
        assert_eq!(row.mean_ms, 1.5);
        assert!(Row::from_report(4, &serde_json::json!({})).is_none());
    }

    #[test]
    fn the_plots_and_table_show_every_point_and_the_knee() {
        let args = args();
        assert_eq!(args.workers, vec![1, 2, 4, 8, 16, 32, 64, 128]);
        let rows: Vec<Row> = [1, 2, 4].into_iter().map(|w| row(w, w as f64 * 1.9)).collect();
        let chart = throughput_chart(&rows, &args, 500.0);
        assert_eq!(chart.x.scale, crate::lab::plot::Scale::Log2);
        assert_eq!(
            chart.y.scale,
            crate::lab::plot::Scale::Log2,
            "log-log: doubling is a line"
        );
        let svg = chart.to_svg().unwrap();
        assert!(svg.contains("knee: W = 64 clients, 128 req/s"), "{svg}");
        assert!(svg.contains("measured (roundhouse bench)"));
        let chart = latency_chart(&rows, &args, 500.0);
        let labels: Vec<&str> = chart.series.iter().map(|series| series.label.as_str()).collect();
        assert!(
            labels
                .iter()
                .any(|label| label.starts_with("Little's law: mean R")),
            "{labels:?}"
        );
        assert!(
            labels.contains(&"measured mean of answered requests"),
            "{labels:?}"
        );
        assert!(
            !labels
                .iter()
                .any(|label| label.contains("p99") || label.contains("p50")),
            "percentiles are not set against Little's mean: {labels:?}"
        );
        let measured = &chart.series[1];
        assert_eq!(measured.points[2], (4.0, 0.52));
        // The dashed run-length line and the solid prediction differ without colour.
        assert_ne!(chart.series[0].line, chart.series[2].line);
        let table = table(&rows, &args, "2 cores");
        assert!(
            table.contains(
                "| 4 | 7.6 | 8.0 | workers | 0.980 | 500.0 | 520 | 500 | 700 | 900 | 1000 | 100 | 0 |\n"
            ),
            "{table}"
        );
        assert!(table.contains("--workers W --queue 256"), "{table}");
        assert!(
            table.contains("bench http://ADDR/ -c 64 -d 10s --json"),
            "{table}"
        );
    }
}
