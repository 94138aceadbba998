//! `roundhouse client`, the real binary, against a running balancer.

mod apps_support;
mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::thread;

use apps_support::{Stack, site_dir};

fn client(args: &[&str], cwd: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_roundhouse"))
        .arg("client")
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn saves_a_png_identical_to_the_source() {
    let stack = Stack::start(Some(site_dir()));
    let dir = tempfile::tempdir().unwrap();
    let output = client(&[&stack.url("/site/roundhouse.png")], dir.path());
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(text.starts_with("HTTP/1.1 200 OK\n"), "{text}");
    assert!(text.contains("content-type: image/png"), "{text}");
    assert!(
        text.contains("saved the") && text.contains("roundhouse.png"),
        "{text}"
    );
    let source = fs::read(site_dir().join("roundhouse.png")).unwrap();
    assert_eq!(fs::read(dir.path().join("roundhouse.png")).unwrap(), source);

    // -o chooses the file, even for a text body.
    let output = client(&["-o", "page.html", &stack.url("/site/")], dir.path());
    assert!(output.status.success());
    assert_eq!(
        fs::read(dir.path().join("page.html")).unwrap(),
        fs::read(site_dir().join("index.html")).unwrap()
    );
}

#[test]
fn prints_text_bodies_and_head_answers() {
    let stack = Stack::start(Some(site_dir()));
    let dir = tempfile::tempdir().unwrap();
    let output = client(&["-d", "2 * (3 + 4)", &stack.url("/calc")], dir.path());
    assert!(output.status.success());
    let text = stdout(&output);
    assert!(text.contains("x-roundhouse-backend: http://127.0.0.1:"), "{text}");
    assert!(text.contains("\"result\": 14"), "{text}");

    let head = client(&["-X", "HEAD", &stack.url("/site/roundhouse.png")], dir.path());
    assert!(head.status.success());
    let text = stdout(&head);
    assert!(text.contains("content-length: "), "{text}");
    assert!(text.ends_with("\n\n"), "a HEAD answer has no body: {text:?}");
    assert!(!dir.path().join("roundhouse.png").exists());

    // A 4xx answer is an answer: exit 0.
    let bad = client(&[&stack.url("/calc?expr=1%2F0")], dir.path());
    assert!(bad.status.success());
    assert!(stdout(&bad).starts_with("HTTP/1.1 422"));
}

#[test]
fn verbose_shows_the_request_byte_for_byte() {
    // A one-shot server that records exactly what arrives.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let recorder = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let mut received = Vec::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            received.extend_from_slice(line.as_bytes());
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        received.extend_from_slice(&body);
        let mut stream = reader.into_inner();
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\n\r\nok\n")
            .unwrap();
        received
    });
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/calc?from=test");
    let output = client(&["-v", "-d", "3 + 4", &url], dir.path());
    assert!(output.status.success(), "{output:?}");
    let received = recorder.join().unwrap();
    assert!(received.starts_with(b"POST /calc?from=test HTTP/1.1\r\n"));
    let shown = output.stdout;
    assert!(
        shown
            .windows(received.len())
            .any(|window| window == received.as_slice()),
        "shown:\n{}\nreceived:\n{}",
        String::from_utf8_lossy(&shown),
        String::from_utf8_lossy(&received)
    );
}

#[test]
fn refused_connection_says_how_to_start_the_balancer() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let output = client(&[&format!("http://127.0.0.1:{port}/")], dir.path());
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains("not running") && message.contains("cargo run"),
        "{message}"
    );
}

#[test]
fn bad_command_lines_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        client(&["https://example.test/"], dir.path()).status.code(),
        Some(2)
    );
    assert_eq!(
        client(&["-X", "GET", "-d", "x", "/calc"], dir.path())
            .status
            .code(),
        Some(2)
    );
    assert_eq!(client(&[], dir.path()).status.code(), Some(2));
}

#[test]
fn calc_loop_answers_and_survives_errors() {
    let stack = Stack::start(None);
    let mut child = Command::new(env!("CARGO_BIN_EXE_roundhouse"))
        .args(["client", "calc", &format!("http://{}", stack.addr())])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"3 + 4\n2 * (3 + 4\n\n-(2 + 3) * 2\n1 / 0\n0.1 + 0.2\nquit\n7 * 7\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    let results: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("computed by backend"))
        .collect();
    assert_eq!(results.len(), 3, "{text}");
    assert!(
        results[0].contains("7    (computed by backend http://127.0.0.1:"),
        "{text}"
    );
    assert!(results[0].contains("balancer worker "), "{text}");
    assert!(results[1].contains("-10 "), "{text}");
    assert!(results[2].contains("0.30000000000000004 "), "{text}");
    assert!(text.contains("error 400: '(' is never closed"), "{text}");
    assert!(text.contains("error 422: division by zero"), "{text}");
    // `quit` left before 7 * 7.
    // (Checked on the result lines only: a port number may contain 49.)
    assert!(!results.iter().any(|line| line.starts_with("49 ")), "{text}");
    assert!(!text.contains("calc> 7 * 7"), "{text}");
}

#[test]
fn calc_loop_ends_at_end_of_input() {
    let stack = Stack::start(None);
    let mut child = Command::new(env!("CARGO_BIN_EXE_roundhouse"))
        .args(["client", "calc", &format!("http://{}", stack.addr())])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"6 * 7\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert!(stdout(&output).contains("42    (computed by backend"));
}
