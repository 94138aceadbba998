//! Upgrading in place (SIGUSR2) and socket activation: the real binary, real signals.
//!
//! - Under 64 keep-alive clients, SIGUSR2 starts a new process on the same listening
//!   sockets; the old one drains and exits; no request fails and no connection is
//!   refused.
//! - An upgrade to a program that exits at once, or never reports ready, leaves the old
//!   process serving, with the failed one reaped.
//! - `systemd-socket-activate -l ADDR roundhouse` serves on the socket it was given.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::load::Load;
use common::{
    ProcessGuard, children_of, free_port, get, raw, run_binary, run_binary_with_env, signal, wait_until,
};

use common::load::BALANCER as ARGS;

fn pid_serving(addr: SocketAddr) -> u32 {
    get(addr, "/stats").json()["pid"].as_u64().unwrap() as u32
}

#[test]
fn sigusr2_under_64_keepalive_clients_hands_over_with_nothing_failed_or_refused() {
    let mut running = run_binary(ARGS);
    let addr = running.addr;
    let old = running.child.id();
    assert_eq!(pid_serving(addr), old);
    let load = Load::start(addr, 64);
    assert!(wait_until(Duration::from_secs(20), || load.answered() >= 500));
    signal(&running.child, "USR2");
    // The new process is the old one's child until the old one exits: guard it at once,
    // so a failing test does not leave it listening.
    assert!(wait_until(Duration::from_secs(10), || !children_of(old).is_empty()));
    let _guard = ProcessGuard(children_of(old)[0].0);
    let mut new = None;
    assert!(
        wait_until(Duration::from_secs(20), || {
            let pid = pid_serving(addr);
            new = (pid != old).then_some(pid);
            new.is_some()
        }),
        "a new process answers /stats"
    );
    let new = new.unwrap();
    // The old one finishes what it accepted and exits 0, while the clients keep going.
    assert!(
        wait_until(Duration::from_secs(20), || matches!(
            running.child.try_wait(),
            Ok(Some(_))
        )),
        "the old process exits"
    );
    let status = running.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let at_exit = load.answered();
    assert!(wait_until(Duration::from_secs(20), || load.answered() >= at_exit + 500));
    let tally = load.finish();
    eprintln!(
        "old PID {old}, new PID {new}: {} answered, {} reconnects after Connection: close, {} refused, {} failed",
        tally.answered,
        tally.reconnects,
        tally.refused,
        tally.failed.len()
    );
    assert_eq!(tally.refused, 0, "no connection refused");
    assert!(
        tally.failed.is_empty(),
        "no request failed: {:?}",
        &tally.failed[..tally.failed.len().min(5)]
    );
    assert!(
        tally.reconnects >= 1,
        "clients of the old process were asked to reconnect"
    );
    assert_eq!(pid_serving(addr), new);
    // The new process runs the same program with the same arguments.
    let cmdline = std::fs::read(format!("/proc/{new}/cmdline")).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains("--sim-latency"));
}

/// Reads the process's standard error on a thread, so a test can wait for a line.
fn stderr_lines(child: &mut std::process::Child) -> Arc<parking_lot::Mutex<String>> {
    use std::io::Read;
    let mut stderr = child.stderr.take().unwrap();
    let text = Arc::new(parking_lot::Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(read) = stderr.read(&mut chunk) {
            if read == 0 {
                break;
            }
            sink.lock().push_str(&String::from_utf8_lossy(&chunk[..read]));
        }
    });
    text
}

/// Starts the binary with `ROUNDHOUSE_UPGRADE_EXE=exe`, sends SIGUSR2, and waits for
/// the upgrade to fail; returns the process, still running, and its log.
fn failed_upgrade(args: &[&str], exe: &str) -> (common::Running, String) {
    let mut running = run_binary_with_env(args, &[("ROUNDHOUSE_UPGRADE_EXE", exe)]);
    let stderr = stderr_lines(&mut running.child);
    signal(&running.child, "USR2");
    // The whole line: stderr is unbuffered, so its reason may come in a later write.
    let failed = wait_until(Duration::from_secs(10), || {
        let log = stderr.lock();
        log.find("upgrade failed")
            .is_some_and(|at| log[at..].contains('\n'))
    });
    let log = stderr.lock().clone();
    assert!(failed, "{log}");
    assert!(log.contains("still serving"), "{log}");
    assert_eq!(running.child.try_wait().unwrap(), None, "the old process runs on");
    assert_eq!(pid_serving(running.addr), running.child.id());
    (running, log)
}

#[test]
fn an_upgrade_to_a_program_that_exits_at_once_leaves_the_old_one_serving() {
    let (running, log) = failed_upgrade(ARGS, "/bin/false");
    assert!(log.contains("exited with code 1"), "{log}");
    let request = b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(running.addr, request).unwrap().status, 200);
    // The failed process was reaped: no zombie child is left behind.
    assert_eq!(
        children_of(running.child.id()),
        Vec::new(),
        "no child, zombie or not"
    );
}

#[test]
fn an_upgrade_that_never_reports_ready_is_stopped_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let silent = dir.path().join("silent");
    // Starts, keeps the inherited sockets and the readiness pipe, never writes on it.
    std::fs::write(&silent, "#!/bin/sh\nexec sleep 30\n").unwrap();
    std::fs::set_permissions(&silent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let args: Vec<&str> = ARGS
        .iter()
        .copied()
        .chain(["--upgrade-timeout", "300ms"])
        .collect();
    let (running, log) = failed_upgrade(&args, silent.to_str().unwrap());
    assert!(
        log.contains("did not report ready within 300ms") && log.contains("SIGTERM"),
        "{log}"
    );
    assert_eq!(
        children_of(running.child.id()),
        Vec::new(),
        "the silent process was stopped and reaped"
    );
}

#[test]
fn systemd_socket_activate_hands_roundhouse_its_listening_socket() {
    let Ok(tool) = which("systemd-socket-activate") else {
        eprintln!("skipped: systemd-socket-activate is not installed (Debian's systemd package has it)");
        return;
    };
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    // `--listen` stays at its default (127.0.0.1:8080): the inherited socket wins.
    let child = Command::new(tool)
        .args([
            "-l",
            &listen,
            "-E",
            "RUST_LOG=warn",
            env!("CARGO_BIN_EXE_roundhouse"),
        ])
        .args(["--sim-base-port", "0", "--access-log", "off"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // systemd-socket-activate executes roundhouse in its own place (same PID) on the
    // first connection: this request waits in the accept queue meanwhile.
    let _guard = ProcessGuard(child.id());
    let addr: SocketAddr = listen.parse().unwrap();
    assert!(wait_until(Duration::from_secs(10), || TcpStream::connect(addr).is_ok()));
    let reply = raw(
        addr,
        b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(pid_serving(addr), child.id());
    let mut child = child;
    signal(&child, "TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

fn which(program: &str) -> Result<String, ()> {
    let output = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map_err(|_| ())?;
    let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if output.status.success() && !path.is_empty() {
        Ok(path)
    } else {
        Err(())
    }
}

#[test]
fn an_upgrade_starts_the_file_at_the_program_path_now_not_the_replaced_one() {
    // Run a copy of the binary from a path of our own, then do what a rebuild does:
    // put a new file at that path (a rename, so the running file lives on unlinked).
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("roundhouse");
    std::fs::copy(env!("CARGO_BIN_EXE_roundhouse"), &program).unwrap();
    let mut command = Command::new(&program);
    command
        .args(ARGS)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // ETXTBSY: another test thread may have forked while the copy was open for writing,
    // and its child holds the descriptor until it executes its own program.
    let mut child = loop {
        match command.spawn() {
            Err(error) if error.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                thread::sleep(Duration::from_millis(10))
            }
            other => break other.unwrap(),
        }
    };
    let _old = ProcessGuard(child.id());
    let addr = {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines
            .find_map(|line| line.ok().filter(|line| line.contains("listening on http://")))
            .unwrap();
        let addr: SocketAddr = line.rsplit("http://").next().unwrap().trim().parse().unwrap();
        // Keep reading, so neither process blocks on a full pipe.
        thread::spawn(move || lines.for_each(drop));
        addr
    };
    // The "new build": the same program behind a marker in its environment.
    let rebuilt = dir.path().join("roundhouse.new");
    std::fs::write(
        &rebuilt,
        format!(
            "#!/bin/sh\nREBUILT=yes exec {} \"$@\"\n",
            env!("CARGO_BIN_EXE_roundhouse")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rebuilt, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::rename(&rebuilt, &program).unwrap();
    let old = child.id();
    let exe = std::fs::read_link(format!("/proc/{old}/exe")).unwrap();
    assert!(exe.to_string_lossy().ends_with("(deleted)"), "{exe:?}");
    signal(&child, "USR2");
    assert!(wait_until(Duration::from_secs(10), || !children_of(old).is_empty()));
    let _new = ProcessGuard(children_of(old)[0].0);
    let mut new = 0;
    assert!(wait_until(Duration::from_secs(20), || {
        new = pid_serving(addr);
        new != old
    }));
    let environ = std::fs::read(format!("/proc/{new}/environ")).unwrap();
    assert!(
        environ.split(|&byte| byte == 0).any(|var| var == b"REBUILT=yes"),
        "the new process came from the file now at the path"
    );
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
