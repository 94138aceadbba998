//! An open-loop load generator: requests leave at the times of a Poisson process,
//! whether or not earlier ones have been answered, which is the arrival model of
//! `roundhouse simulate`. Used by the walkthrough to check the live balancer against
//! the simulator on a few backends (docs/simulate.md, "The balancer agrees").
//!
//! OS concept: open versus closed systems. A closed-loop tool (wrk, ab) sends the next
//! request only when one comes back, so a slow server slows the arrivals down and
//! hides its own queue ("coordinated omission"). Here one thread keeps the schedule and
//! a pool of client threads sends; each latency is measured from the request's
//! *scheduled* time, so waiting for a free client thread counts as waiting.
//!
//! Usage: cargo run --release --example poisson_load -- URL RATE_PER_S REQUESTS [SEED]

use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Client threads; more than the requests ever in flight at once.
const CLIENTS: usize = 128;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = (|| {
        let url = args.first()?.clone();
        let rate: f64 = args.get(1)?.parse().ok().filter(|rate: &f64| *rate > 0.0)?;
        let requests: usize = args.get(2)?.parse().ok().filter(|count| *count > 0)?;
        let seed: u64 = args.get(3).map_or(Some(1), |seed| seed.parse().ok())?;
        Some((url, rate, requests, seed))
    })();
    let Some((url, rate, requests, seed)) = parsed else {
        eprintln!("usage: poisson_load URL RATE_PER_S REQUESTS [SEED]");
        return ExitCode::from(2);
    };

    let (jobs, queue) = crossbeam_channel::unbounded::<Instant>();
    let (results, latencies) = crossbeam_channel::unbounded::<Result<Duration, String>>();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (queue, results, url) = (queue.clone(), results.clone(), url.clone());
            thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                for scheduled in queue {
                    let outcome = agent
                        .get(&url)
                        .call()
                        .map_err(|error| error.to_string())
                        .and_then(|mut response| {
                            let status = response.status();
                            response
                                .body_mut()
                                .read_to_vec()
                                .map_err(|error| error.to_string())?;
                            if status.is_success() {
                                Ok(scheduled.elapsed())
                            } else {
                                Err(format!("status {status}"))
                            }
                        });
                    let _ = results.send(outcome);
                }
            })
        })
        .collect();
    drop((queue, results));

    // The schedule: exponential gaps of mean 1/rate, kept against the clock so that
    // sleeping late once does not slow the whole run down.
    let mut rng = StdRng::seed_from_u64(seed);
    let start = Instant::now();
    let mut next = 0.0_f64;
    for _ in 0..requests {
        next += -(1.0 - rng.random::<f64>()).ln() / rate;
        let due = start + Duration::from_secs_f64(next);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        let _ = jobs.send(due);
    }
    drop(jobs);
    for client in clients {
        let _ = client.join();
    }
    let elapsed = start.elapsed().as_secs_f64();

    let mut times: Vec<f64> = Vec::with_capacity(requests);
    let mut errors = 0;
    for outcome in latencies {
        match outcome {
            Ok(latency) => times.push(latency.as_secs_f64() * 1000.0),
            Err(_) => errors += 1,
        }
    }
    // The first tenth is warm-up, as in the simulator (queues start empty).
    let warmup = times.len() / 10;
    let measured = &mut times[warmup..];
    measured.sort_by(f64::total_cmp);
    if measured.is_empty() {
        eprintln!("poisson_load: no successful requests ({errors} errors)");
        return ExitCode::FAILURE;
    }
    let mean = measured.iter().sum::<f64>() / measured.len() as f64;
    let at = |q: f64| measured[((measured.len() - 1) as f64 * q).round() as usize];
    println!(
        "{requests} requests at {rate}/s in {elapsed:.1} s ({:.1}/s achieved), {errors} errors",
        requests as f64 / elapsed
    );
    println!(
        "latency after warm-up (ms): mean {mean:.2}  p50 {:.2}  p99 {:.2}  p99.9 {:.2}",
        at(0.5),
        at(0.99),
        at(0.999)
    );
    ExitCode::SUCCESS
}
