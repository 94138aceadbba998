//! The simulated backends as supervised child processes (`--sim-processes`).
//!
//! OS concept: a listening socket outlives the process that serves it. Each backend is
//! `roundhouse backend` started from `/proc/self/exe`, the file this process runs
//! (src/process/supervisor.rs says why not our path), under the name `roundhouse` in
//! `argv[0]`, with its listening socket bound by the balancer and passed at descriptor
//! 3. The socket outlives every restart of the child, so a connection that arrives
//! while the child is down waits in the socket's queue instead of being refused, as
//! under systemd's socket activation.

use std::ffi::OsString;
use std::net::TcpListener;
use std::ops::RangeInclusive;

use super::apps::args::AppSettings;
use crate::process::restart::RestartPolicy;
use crate::process::supervisor::ProcessSpec;

/// The process that serves simulated backend `name` on `listener`.
pub fn backend_process(
    name: &str,
    listener: TcpListener,
    apps: &AppSettings,
    latency: &RangeInclusive<u64>,
    max_body: u64,
) -> std::io::Result<ProcessSpec> {
    let port = listener.local_addr()?.port();
    let mut args: Vec<OsString> = ["backend", "--port", &port.to_string(), "--name", name]
        .iter()
        .map(OsString::from)
        .collect();
    args.extend([
        "--latency".into(),
        format!("{}..{}", latency.start(), latency.end()).into(),
    ]);
    // The balancer's --max-body, so what its front lets through is not refused here.
    args.extend(["--max-body".into(), max_body.to_string().into()]);
    args.extend(["--rates".into(), apps.rates.to_string().into()]);
    args.extend(["--static-max-age".into(), apps.static_max_age.to_string().into()]);
    if let Some(dir) = &apps.static_dir {
        args.extend(["--static".into(), dir.clone().into_os_string()]);
    }
    Ok(ProcessSpec {
        name: name.to_string(),
        program: "/proc/self/exe".into(),
        arg0: Some("roundhouse".into()),
        args,
        listeners: vec![("backend".to_string(), listener)],
        backend: Some(format!("http://127.0.0.1:{port}")),
        restart: RestartPolicy::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::sim_backend::apps::currency::Rates;

    #[test]
    fn the_child_gets_the_balancers_body_limit() {
        let apps = AppSettings {
            rates: Rates::default(),
            static_dir: None,
            static_max_age: 60,
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let spec = backend_process("backend-1", listener, &apps, &(0..=0), 200 << 20).unwrap();
        let at = spec.args.iter().position(|arg| arg == "--max-body").unwrap();
        assert_eq!(spec.args[at + 1], "209715200");
    }
}
