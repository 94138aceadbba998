//! `roundhouse client`: an HTTP client for talking to the balancer, the seeds' client
//! programs in one subcommand.
//!
//! - `roundhouse client [-X METHOD] URL [-d DATA | --data-file F] [-o FILE] [-v]` sends
//!   one request and shows the answer (`request.rs`).
//! - `roundhouse client calc [URL]` is the seed calculator's interactive loop
//!   (`calc.rs`).
//!
//! OS concept: the other end of the socket. A client is a process that `connect(2)`s,
//! `write(2)`s a request and `read(2)`s until the answer is complete; `-v` shows the
//! exact bytes that went into the socket, so the HTTP message is no longer magic.

mod calc;
mod request;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use http::Uri;
use thiserror::Error;
use ureq::config::AutoHeaderValue;

/// Where the balancer listens when `cargo run` starts it.
pub const DEFAULT_BASE: &str = "http://127.0.0.1:8080";

/// Exit code for a request that could not be carried out (refused, reset, timed out).
const EXIT_TRANSPORT: u8 = 1;
/// Exit code for bad input on the command line, as clap uses.
const EXIT_USAGE: u8 = 2;

#[derive(Debug, Clone, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    about = "Send a request through the balancer, or run the interactive calculator",
    after_help = "Examples:\n  roundhouse client /calc?expr=3%2B4\n  roundhouse client -v -d '2 * (3 + 4)' /calc\n  \
                  roundhouse client /site/roundhouse.png\n  roundhouse client calc"
)]
pub struct ClientArgs {
    #[command(subcommand)]
    pub mode: Option<ClientMode>,

    #[command(flatten)]
    pub request: RequestArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ClientMode {
    /// Interactive calculator: type an expression, see the result and who computed it.
    Calc(CalcArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CalcArgs {
    /// The balancer's URL (its /calc is used).
    #[arg(default_value = DEFAULT_BASE, value_name = "URL")]
    pub url: String,

    /// Speak the first seed's TCP protocol to HOST:PORT instead (e.g. `roundhouse tcp`
    /// on 127.0.0.1:5000): one connection per expression, `Resultado: <answer>`.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "url")]
    pub tcp: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RequestArgs {
    /// URL to request; a path alone (/site/) means http://127.0.0.1:8080/site/.
    #[arg(required = true, value_name = "URL")]
    pub url: Option<String>,

    /// Request method (default: GET, or POST when data is given).
    #[arg(short = 'X', long = "request", value_name = "METHOD", ignore_case = true,
          value_parser = ["GET", "HEAD", "POST"])]
    pub method: Option<String>,

    /// Send DATA as the request body.
    #[arg(short = 'd', long = "data", value_name = "DATA", conflicts_with = "data_file")]
    pub data: Option<String>,

    /// Send the contents of a file as the request body.
    #[arg(long = "data-file", value_name = "FILE")]
    pub data_file: Option<PathBuf>,

    /// Save the response body to FILE (default for non-text bodies: the URL's last segment).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Also print the request exactly as it was sent.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
}

/// Why the client could not do what was asked.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The command line asks for something impossible (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The request did not get an answer (exit 1).
    #[error("{0}")]
    Transport(String),
}

/// Runs `roundhouse client ...` and says how the process should exit.
pub fn run(args: &ClientArgs) -> ExitCode {
    let result = match &args.mode {
        Some(ClientMode::Calc(calc)) => match &calc.tcp {
            Some(addr) => crate::lab::calc_tcp::client::run(addr)
                .map_err(|error| ClientError::Usage(format!("terminal: {error}"))),
            None => calc::run(&calc.url),
        },
        None => request::run(&args.request),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("roundhouse client: {error}");
            ExitCode::from(match error {
                ClientError::Usage(_) => EXIT_USAGE,
                ClientError::Transport(_) => EXIT_TRANSPORT,
            })
        }
    }
}

/// Turns what the user typed into a full `http://` URL: a bare path goes to the
/// default balancer, a missing scheme means `http://`.
pub fn resolve_url(text: &str) -> Result<Uri, ClientError> {
    let full = if text.starts_with('/') {
        format!("{DEFAULT_BASE}{text}")
    } else if text.starts_with("http://") {
        text.to_string()
    } else if text.contains("://") {
        return Err(ClientError::Usage(format!(
            "{text}: only http:// URLs are supported (roundhouse speaks plain HTTP)"
        )));
    } else {
        format!("http://{text}")
    };
    let uri: Uri = full
        .parse()
        .map_err(|error| ClientError::Usage(format!("{text} is not a URL: {error}")))?;
    if uri.authority().is_none() {
        return Err(ClientError::Usage(format!("{text} has no host")));
    }
    Ok(uri)
}

/// An agent that sends only the headers we show: no automatic User-Agent, Accept or
/// Accept-Encoding, no redirects followed, 4xx/5xx returned as answers.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .user_agent(AutoHeaderValue::None)
        .accept(AutoHeaderValue::None)
        .accept_encoding(AutoHeaderValue::None)
        .timeout_connect(Some(Duration::from_secs(5)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

/// Describes a failed request in one line; a refused connection gets the likely cause
/// and the way to fix it.
pub fn transport_error(uri: &Uri, error: ureq::Error) -> ClientError {
    let authority = uri.authority().map(|authority| authority.as_str()).unwrap_or("?");
    let refused = match &error {
        ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::ConnectionRefused,
        ureq::Error::ConnectionFailed => true,
        _ => false,
    };
    if refused {
        ClientError::Transport(format!(
            "nothing is listening on {authority}: the balancer is not running; start it with `cargo run`"
        ))
    } else {
        ClientError::Transport(format!("request to {authority} failed: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_paths_and_bare_hosts() {
        assert_eq!(
            resolve_url("/site/").unwrap().to_string(),
            "http://127.0.0.1:8080/site/"
        );
        assert_eq!(
            resolve_url("localhost:9001/x").unwrap().to_string(),
            "http://localhost:9001/x"
        );
        assert_eq!(
            resolve_url("http://h:1/?a=1").unwrap().to_string(),
            "http://h:1/?a=1"
        );
        assert!(matches!(resolve_url("https://h/"), Err(ClientError::Usage(_))));
        assert!(matches!(resolve_url("http://"), Err(ClientError::Usage(_))));
    }
}
