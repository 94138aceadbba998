//! The access log end to end: every request makes exactly one line in nginx's combined
//! format (plus roundhouse's fields), and none is lost at shutdown, even by SIGTERM.

mod cache_support;
mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use cache_support::*;
use common::each_front;
use regex::Regex;
use roundhouse::proxy::access_log::AccessLogTarget;
use roundhouse::proxy::balancer::BalancerConfig;
use roundhouse::proxy::cache::CacheConfig;

/// nginx's combined format, then `upstream= worker= rt= urt= cache= id=`. Quoted fields may
/// hold any byte but `"` and `\`, which are written as `\xHH`.
fn combined() -> Regex {
    let quoted = r#""(?:[^"\\]|\\x[0-9A-F]{2})*""#;
    let pattern = [
        r"^(?P<addr>[0-9a-fA-F.:]+) - - ",
        r"\[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] ",
        &format!("(?P<request>{quoted}) "),
        r"(?P<status>\d{3}) (?P<bytes>\d+) ",
        &format!("{quoted} (?P<agent>{quoted}) "),
        r"upstream=(?P<upstream>\S+) worker=(?P<worker>\d+|-) ",
        r"rt=\d+\.\d{3} urt=(?P<urt>\d+\.\d{3}|-) ",
        r"cache=(?P<cache>HIT|MISS|REVALIDATED|BYPASS|-) ",
        r"id=(?P<id>[!-~]+)$",
    ]
    .concat();
    Regex::new(&pattern).unwrap()
}

fn logged_to(path: &std::path::Path) -> BalancerConfig {
    BalancerConfig {
        access_log: AccessLogTarget::File(path.to_path_buf()),
        ..BalancerConfig::default()
    }
}

#[test]
fn a_thousand_requests_make_a_thousand_combined_lines() {
    each_front(|front| {
        const CLIENTS: usize = 4;
        const PER_CLIENT: usize = 250;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let backend =
            TestBackend::start(|request| respond(200, &[("cache-control", "max-age=60")], request.path()));
        let balancer = balancer(
            &backend,
            BalancerConfig {
                cache: Some(CacheConfig::default()),
                front,
                ..logged_to(&path)
            },
        );
        let addr = balancer.local_addr();
        thread::scope(|scope| {
            for client in 0..CLIENTS {
                scope.spawn(move || {
                    let agent = agent();
                    for number in 0..PER_CLIENT {
                        let path = format!("/page/{}?client={client}", number % 50);
                        let answer = request(
                            &agent,
                            "GET",
                            addr,
                            &path,
                            &[("user-agent", "test \"quoted\" agent")],
                        );
                        assert_eq!(answer.status, 200);
                    }
                });
            }
        });
        let hits = backend.requests();
        balancer.shutdown(Duration::from_secs(5));

        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), CLIENTS * PER_CLIENT);
        let format = combined();
        let mut misses = 0;
        for line in &lines {
            let fields = format
                .captures(line)
                .unwrap_or_else(|| panic!("not combined format: {line}"));
            assert_eq!(&fields["addr"], "127.0.0.1");
            assert!(fields["request"].starts_with("\"GET /page/"), "{line}");
            assert_eq!(&fields["agent"], "\"test \\x22quoted\\x22 agent\"");
            match &fields["cache"] {
                "MISS" => {
                    misses += 1;
                    assert_eq!(fields["upstream"], backend.server.local_addr().to_string());
                    assert_ne!(&fields["worker"], "-");
                    assert_ne!(&fields["urt"], "-");
                }
                "HIT" => assert_eq!(
                    (&fields["upstream"], &fields["worker"], &fields["urt"]),
                    ("-", "-", "-")
                ),
                other => panic!("unexpected cache status {other}: {line}"),
            }
        }
        assert_eq!(misses, hits, "one MISS line per backend request");
    });
}

#[test]
fn requests_the_front_refuses_are_logged_too() {
    each_front(|front| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let backend = TestBackend::start(|_| {
            thread::sleep(Duration::from_millis(800));
            respond(200, &[], "slow")
        });
        // One worker and a queue of one: of six requests at once, at most two are taken.
        let balancer = balancer(
            &backend,
            BalancerConfig {
                workers: 1,
                queue: 1,
                front,
                ..logged_to(&path)
            },
        );
        let addr = balancer.local_addr();
        let mut garbage = TcpStream::connect(addr).unwrap();
        garbage.write_all(b"NOT HTTP AT ALL\r\n\r\n").unwrap();
        let mut status_line = String::new();
        BufReader::new(&garbage).read_line(&mut status_line).unwrap();
        assert!(status_line.starts_with("HTTP/1.1 400"), "{status_line}");
        drop(garbage);

        let start = Barrier::new(6);
        let statuses: Vec<u16> = thread::scope(|scope| {
            let clients: Vec<_> = (0..6)
                .map(|_| {
                    scope.spawn(|| {
                        let agent = agent();
                        start.wait();
                        request(&agent, "GET", addr, "/busy", &[]).status
                    })
                })
                .collect();
            clients.into_iter().map(|client| client.join().unwrap()).collect()
        });
        assert!(statuses.contains(&503), "{statuses:?}");
        balancer.shutdown(Duration::from_secs(5));

        let text = std::fs::read_to_string(&path).unwrap();
        let format = combined();
        assert_eq!(text.lines().count(), 7);
        assert!(text.lines().all(|line| format.is_match(line)), "{text}");
        assert!(text.contains("\"-\" 400 0"), "{text}");
        let logged_503 = text
            .lines()
            .filter(|line| line.contains("\"GET /busy HTTP/1.1\" 503"))
            .count();
        assert_eq!(
            logged_503,
            statuses.iter().filter(|&&status| status == 503).count()
        );
    });
}

#[test]
fn the_last_line_is_written_when_the_binary_gets_sigterm() {
    const REQUESTS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_roundhouse"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--sim-base-port",
            "0",
            "--sim-backends",
            "1",
        ])
        .args(["--sim-latency", "0", "--access-log"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kept open to the end: the binary prints a summary on its way out.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    stdout.read_line(&mut banner).unwrap();
    let addr = banner
        .trim()
        .strip_prefix("roundhouse listening on http://")
        .unwrap_or_else(|| panic!("unexpected banner {banner:?}"))
        .parse()
        .unwrap();

    let agent = agent();
    for number in 1..REQUESTS {
        assert_eq!(
            request(&agent, "GET", addr, &format!("/r/{number}"), &[]).status,
            200
        );
    }
    assert_eq!(request(&agent, "GET", addr, "/the-last-one", &[]).status, 200);
    // At once, well within the logger's one-second flush interval.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let exited = wait_until(Duration::from_secs(20), || child.try_wait().unwrap().is_some());
    if !exited {
        let _ = child.kill();
    }
    assert!(exited, "roundhouse did not exit after SIGTERM");
    assert!(child.wait().unwrap().success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(rest.contains("drained; served"), "{rest}");

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), REQUESTS);
    assert!(lines.iter().all(|line| combined().is_match(line)), "{text}");
    assert!(
        lines[REQUESTS - 1].contains("\"GET /the-last-one HTTP/1.1\" 200"),
        "{text}"
    );
}
