//! One bash process per markdown file, fed the file's runnable blocks in order, as a
//! reader types them into one terminal: variables, `cd`, `$!` and background jobs
//! carry over from block to block. Servers run as that shell's background jobs.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread;
use std::time::{Duration, Instant};

use super::rewrite::{DOC_LISTEN, DOC_SIM_BASE, DOC_TCP_LISTEN, PortMap};

/// The `roundhouse` that blocks run: the debug binary, given this run's ports where
/// the docs rely on a default (see the rules in tests/docs.rs).
const SHIM: &str = r#"#!/usr/bin/env bash
# Written by tests/docs.rs: the docs' `roundhouse` on the ports this run was given.
real=@REAL@
base=http://127.0.0.1:@LISTEN@
args=("$@")
has() { local arg; for arg in "${args[@]}"; do [[ $arg == "$1" || $arg == "$1="* ]] && return 0; done; return 1; }
has_url() { local arg; for arg in "${args[@]}"; do [[ $arg == http://* ]] && return 0; done; return 1; }
case "${1-}" in
  "" | serve | -*)
    has --listen || args+=(--listen "127.0.0.1:@LISTEN@")
    has --sim-base-port || args+=(--sim-base-port @SIM_BASE@) ;;
  tcp)
    has --listen || args+=(--listen "127.0.0.1:@TCP_LISTEN@") ;;
  bench)
    has_url || args+=("$base/")
    for i in "${!args[@]}"; do
      if [[ ${args[i]} == -d || ${args[i]} == --duration ]] && [[ ${args[i+1]-} =~ ^([0-9]+)(s|m)$ ]]; then
        seconds=${BASH_REMATCH[1]}; [[ ${BASH_REMATCH[2]} == m ]] && seconds=$((seconds * 60))
        (( seconds > 2 )) && args[i+1]=2s
      fi
    done ;;
  client)
    skip=no
    for i in "${!args[@]}"; do
      if [[ $skip == yes ]]; then skip=no; continue; fi
      case "${args[i]}" in
        -X | -d | --data | --data-file | -o | --output | --request | --tcp) skip=yes ;;
        /*) args[i]="$base${args[i]}" ;;
      esac
    done
    if [[ ${2-} == calc ]] && ! has --tcp && ! has_url; then args+=("$base"); fi ;;
esac
exec -a roundhouse "$real" "${args[@]}"
"#;

/// A running server block's process and what it holds.
struct Server {
    pid: u32,
    ports: Vec<u16>,
}

/// The shell, its files, and the ports of this run.
pub struct Session {
    shell: Child,
    input: ChildStdin,
    lines: Receiver<String>,
    /// The directory blocks run in: links to the repository's files, and scratch.
    pub work: tempfile::TempDir,
    _bin: tempfile::TempDir,
    pub ports: PortMap,
    count: usize,
    balancer: Option<Server>,
}

/// How a command ended.
pub struct Outcome {
    pub status: i32,
    pub output: String,
}

impl Session {
    /// A shell in a fresh directory that links every top-level entry of `root` (except
    /// `target` and `.git`), so `examples/`, `site/` and `scripts/` are where the docs
    /// say and what a block writes stays out of the repository.
    pub fn start(root: &Path, ports: PortMap) -> Session {
        let work = tempfile::tempdir().expect("a work directory");
        for entry in fs::read_dir(root).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            if name == "target" || name == ".git" {
                continue;
            }
            std::os::unix::fs::symlink(entry.path(), work.path().join(&name)).unwrap();
        }
        fs::create_dir(work.path().join(".docs-test")).unwrap();
        let bin = tempfile::tempdir().expect("a bin directory");
        let shim = SHIM
            .replace("@REAL@", &shell_quote(env!("CARGO_BIN_EXE_roundhouse")))
            .replace("@LISTEN@", &ports.get(DOC_LISTEN).to_string())
            .replace("@SIM_BASE@", &ports.get(DOC_SIM_BASE).to_string())
            .replace("@TCP_LISTEN@", &ports.get(DOC_TCP_LISTEN).to_string());
        let shim_path = bin.path().join("roundhouse");
        fs::write(&shim_path, shim).unwrap();
        fs::set_permissions(&shim_path, fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let errors = fs::File::create(work.path().join(".docs-test/shell-errors")).unwrap();
        let mut shell = Command::new("bash")
            .args(["--noprofile", "--norc"])
            .current_dir(work.path())
            .env("PATH", path)
            .env("RUST_LOG", "warn")
            .env_remove("CARGO_TARGET_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(errors)
            // Its own process group, so that `Drop` ends the shell and every job in it.
            .process_group(0)
            .spawn()
            .expect("start bash");
        let input = shell.stdin.take().unwrap();
        let stdout = shell.stdout.take().unwrap();
        let (sender, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let mut session = Session {
            shell,
            input,
            lines,
            work,
            _bin: bin,
            ports,
            count: 0,
            balancer: None,
        };
        session.send("__rh_rc=0\n");
        session
    }

    fn send(&mut self, text: &str) {
        self.input
            .write_all(text.as_bytes())
            .and_then(|()| self.input.flush())
            .expect("the shell takes input");
    }

    fn scratch(&self, name: &str) -> PathBuf {
        self.work.path().join(".docs-test").join(name)
    }

    /// Waits for the line `tag VALUE` from the shell.
    fn wait_for(&self, tag: &str, limit: Duration) -> Result<String, String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(value) = line.strip_prefix(tag) {
                        return Ok(value.trim().to_string());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("no answer within {} s", limit.as_secs()));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let errors = fs::read_to_string(self.scratch("shell-errors")).unwrap_or_default();
                    return Err(format!("the shell exited; its errors:\n{errors}"));
                }
            }
        }
    }

    /// Runs `script` in the foreground of the shell, stdin from /dev/null, and returns
    /// its exit status and everything it printed (stdout and stderr together). `$?`
    /// carries over from the previous command, so `echo $?` works as in a terminal.
    pub fn run(&mut self, script: &str, limit: Duration) -> Result<Outcome, String> {
        self.count += 1;
        let out = self.scratch(&format!("out-{}", self.count));
        let tag = format!("__rh_done_{}", self.count);
        self.send(&format!(
            "(exit $__rh_rc); {{\n{script}\n}} > {} 2>&1 < /dev/null; __rh_rc=$?; echo \"{tag} $__rh_rc\"\n",
            shell_quote(&out.to_string_lossy())
        ));
        let status = self.wait_for(&tag, limit);
        let output = fs::read_to_string(&out).unwrap_or_default();
        match status {
            Ok(status) => Ok(Outcome {
                status: status.parse().unwrap_or(-1),
                output,
            }),
            Err(error) => Err(format!("{error}; output so far:\n{output}")),
        }
    }

    /// Starts `command` as a background job and waits until it prints `listening on`,
    /// then until its output matches `expected` (when given). First stops the running
    /// balancer if the new server needs one of its ports, and waits for the ports to be
    /// free, as a reader does after Ctrl-C in the other terminal.
    pub fn start_server(
        &mut self,
        command: &str,
        balancer: bool,
        expected: Option<&[String]>,
    ) -> Result<(), String> {
        // The ports this command will listen on.
        let mut ports = PortMap::listened_by(command);
        if balancer {
            if !command.contains("--listen") {
                ports.push(self.ports.get(DOC_LISTEN));
            }
            // Its simulated backends, unless it names backends of its own.
            if !["--backend", "--config", "--discovery"]
                .iter()
                .any(|flag| command.contains(flag))
            {
                ports.extend((0..3).map(|offset| self.ports.get(DOC_SIM_BASE + offset)));
            }
        }
        let clash = self
            .balancer
            .as_ref()
            .is_some_and(|running| running.ports.iter().any(|port| ports.contains(port)));
        if clash || balancer {
            self.stop_balancer()?;
        }
        for &port in &ports {
            wait_free(port)?;
        }
        self.count += 1;
        let log = self.scratch(&format!("server-{}", self.count));
        let tag = format!("__rh_pid_{}", self.count);
        // A balancer stands for terminal A: not one of this shell's jobs, so that a
        // block's `wait` or `kill $(jobs -p)` (typed in terminal B) leaves it alone.
        // Other servers are started with `&` in the docs, and are jobs like there.
        let disown = if balancer { " disown $!" } else { "" };
        self.send(&format!(
            "{command} > {} 2>&1 < /dev/null &{disown}\necho \"{tag} $!\"\n",
            shell_quote(&log.to_string_lossy())
        ));
        let pid: u32 = self
            .wait_for(&tag, Duration::from_secs(10))?
            .parse()
            .map_err(|_| "no process id from the shell".to_string())?;
        if balancer {
            self.balancer = Some(Server {
                pid,
                ports: ports.clone(),
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let listening = text.contains("listening on");
            let ready = listening
                && expected.is_none_or(|expected| {
                    let mut pattern = expected.to_vec();
                    pattern.push("...".into());
                    super::blocks::matches(&pattern, &lines)
                });
            if ready {
                return Ok(());
            }
            let alive = process_runs(pid);
            if !alive || Instant::now() > deadline {
                let why = if !alive {
                    "the server exited"
                } else if listening {
                    "its output does not match the block"
                } else {
                    "it did not print `listening on` within 30 s"
                };
                let shown = expected
                    .map(|expected| format!("\nthe block shows:\n{}", expected.join("\n")))
                    .unwrap_or_default();
                return Err(format!("{why}; it printed:\n{text}{shown}"));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the balancer a server block started, if it still runs.
    fn stop_balancer(&mut self) -> Result<(), String> {
        if let Some(running) = self.balancer.take() {
            let pid = running.pid;
            self.run(
                &format!("kill -9 {pid} 2>/dev/null; true"),
                Duration::from_secs(20),
            )?;
            let deadline = Instant::now() + Duration::from_secs(15);
            while process_runs(pid) {
                if Instant::now() > deadline {
                    return Err(format!("the balancer (process {pid}) survived kill -9"));
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // The shell, every server and every job it started share one process group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.shell.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.shell.wait();
    }
}

/// Whether process `pid` exists and is not a zombie waiting to be reaped.
fn process_runs(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(')')?.1.split_whitespace().next()?.to_string();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// Waits until nothing listens on `port` (a server stopped a moment ago may still be
/// closing its socket).
fn wait_free(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("port {port} is still taken after 15 s"));
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// `text` in single quotes for bash.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
