//! Slowloris: hundreds of clients sending their request heads one byte at a time must
//! not slow other clients down, and are closed after the client timeout. Alone in its
//! own test binary so that no other test competes for the CPU while latencies are
//! compared.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::{cluster_on, each_front, get};

fn percentile(samples: &mut [Duration], fraction: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 * fraction) as usize).min(samples.len() - 1)]
}

/// Eight clients, each sending `count` sequential requests; the latencies.
fn latencies(addr: std::net::SocketAddr, count: usize) -> Vec<Duration> {
    let clients: Vec<_> = (0..8)
        .map(|_| {
            thread::spawn(move || {
                (0..count)
                    .map(|_| {
                        let started = Instant::now();
                        assert_eq!(get(addr, "/work").status, 200);
                        started.elapsed()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    clients
        .into_iter()
        .flat_map(|client| client.join().unwrap())
        .collect()
}

#[test]
fn slowloris_does_not_stop_other_clients_and_is_closed_after_the_client_timeout() {
    each_front(|front| {
        let client_timeout = Duration::from_millis(1500);
        let cluster = cluster_on(front, 3, 20..=20, |config| {
            config.workers = 8;
            config.server.client_timeout = client_timeout;
            config.server.max_connections = 2048;
        });
        let addr = cluster.addr;
        let mut baseline = latencies(addr, 40);
        // 500 connections that send a request head one byte at a time.
        let mut slow: Vec<TcpStream> = (0..500).map(|_| TcpStream::connect(addr).unwrap()).collect();
        // Measure the attack's steady state: every slow connection accepted and holding a
        // thread (a burst of new connections is a different experiment).
        assert!(common::wait_until(Duration::from_secs(10), || cluster
            .balancer
            .open_connections()
            >= 500));
        let attack_started = Instant::now();
        let trickle = thread::spawn(move || {
            let head = b"GET /slow HTTP/1.1\r\nHost: t\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaa";
            for byte in head.iter().take(8) {
                for stream in &mut slow {
                    let _ = stream.write_all(&[*byte]);
                }
                thread::sleep(Duration::from_millis(250));
            }
            slow
        });
        let mut attacked = latencies(addr, 40);
        let slow = trickle.join().unwrap();
        // The baseline is measured before and after, and the worse of the two kept: on a
        // shared machine a single round can be unlucky either way.
        let mut baseline_after = latencies(addr, 40);
        let base_p99 = percentile(&mut baseline, 0.99).max(percentile(&mut baseline_after, 0.99));
        let attack_p99 = percentile(&mut attacked, 0.99);
        eprintln!(
            "--front {front}: p99 without attack {base_p99:?}, under 500 slowloris connections {attack_p99:?}"
        );
        assert!(
            attack_p99 <= base_p99 * 2 + Duration::from_millis(10),
            "{attack_p99:?} vs {base_p99:?}"
        );
        // Every slow connection is answered 408 and closed once its head took too long.
        let mut outcomes = std::collections::BTreeMap::new();
        for mut stream in slow {
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut answer = Vec::new();
            let result = stream.read_to_end(&mut answer);
            let key = format!(
                "{:?} {:?}",
                result.map_err(|e| e.kind()),
                String::from_utf8_lossy(&answer[..answer.len().min(12)])
            );
            *outcomes.entry(key).or_insert(0) += 1;
        }
        let expected = format!("{:?} {:?}", Ok::<usize, std::io::ErrorKind>(129), "HTTP/1.1 408");
        assert_eq!(
            outcomes.get(&expected),
            Some(&500),
            "every slow connection gets 408: {outcomes:?}"
        );
        let elapsed = attack_started.elapsed();
        assert!(
            elapsed >= client_timeout && elapsed < client_timeout * 5,
            "closed after {elapsed:?}"
        );
    });
}
