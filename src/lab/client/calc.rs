//! `roundhouse client calc`: the seed calculator's loop. Read an expression, send it to
//! `/calc` through the balancer, print the result and which backend and worker
//! computed it, again until `quit` or end of input (Ctrl-D).
//!
//! OS concept: end of file on standard input. Ctrl-D makes the terminal driver end the
//! next `read(2)` with nothing, and `run` stops as it would at the end of a piped file.
//! Piped input is not echoed by any terminal, so `run` echoes it itself, and the prompt,
//! which has no newline, is flushed by hand.

use std::io::{self, BufRead, IsTerminal, Write};

use http::{Method, Uri};
use serde_json::Value;

use super::request::{Answer, Outgoing};
use super::{ClientError, agent, resolve_url};

const PROMPT: &str = "calc> ";

pub fn run(url: &str) -> Result<(), ClientError> {
    let uri = calc_uri(url)?;
    let agent = agent();
    println!("calculator at {uri}: type an expression such as 3 + 4 * 2; `quit` or Ctrl-D leaves");
    let stdin = io::stdin();
    // A terminal echoes what is typed; piped input is echoed here so the transcript
    // still reads as prompt, expression, answer.
    let echo = !stdin.is_terminal();
    let mut lines = stdin.lock().lines();
    loop {
        print!("{PROMPT}");
        let _ = io::stdout().flush();
        let line = match lines.next() {
            Some(Ok(line)) => line,
            Some(Err(error)) => return Err(ClientError::Usage(format!("cannot read input: {error}"))),
            None => {
                println!(); // end the prompt's line, as a shell does on Ctrl-D
                return Ok(());
            }
        };
        let expression = line.trim_end_matches('\r');
        if echo {
            println!("{expression}");
        }
        match expression.trim() {
            "" => continue,
            "quit" | "exit" => return Ok(()),
            _ => {}
        }
        let outgoing = Outgoing::new(
            Method::POST,
            uri.clone(),
            Some(expression.as_bytes().to_vec()),
            "text/plain; charset=utf-8".into(),
        );
        // Errors are shown and the loop goes on: a balancer restarted meanwhile, or a
        // typo, should not end the session.
        match outgoing.send(&agent) {
            Ok(answer) => println!("{}", describe(&answer, expression)),
            Err(error) => println!("error: {error}"),
        }
    }
}

/// `/calc` on the given balancer, unless the URL already names a path.
fn calc_uri(url: &str) -> Result<Uri, ClientError> {
    let uri = resolve_url(url)?;
    if uri.path() != "/" {
        return Ok(uri);
    }
    let authority = uri
        .authority()
        .map(|authority| authority.as_str())
        .unwrap_or_default();
    resolve_url(&format!("http://{authority}/calc"))
}

/// The lines to print for one answer: the result and who computed it, or the error
/// with a caret under the character it is about.
fn describe(answer: &Answer, expression: &str) -> String {
    let json: Option<Value> = serde_json::from_slice(&answer.body).ok();
    let field = |name: &str| json.as_ref().and_then(|json| json.get(name)).cloned();
    if answer.status.is_success()
        && let Some(result) = field("result")
    {
        let backend = answer.header("x-roundhouse-backend").unwrap_or("unknown");
        let worker = answer.header("x-roundhouse-worker").unwrap_or("?");
        return format!("{result}    (computed by backend {backend}, balancer worker {worker})");
    }
    let message = match field("error") {
        Some(Value::String(message)) => message,
        _ => String::from_utf8_lossy(&answer.body).trim().to_string(),
    };
    let mut text = format!("error {}: {message}", answer.status.as_u16());
    if let Some(position) = field("position").and_then(|value| value.as_u64()) {
        // The expression again, and a caret under the character at `position`.
        let pad: String = expression
            .chars()
            .take(position as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        text = format!("{text}\n  {expression}\n  {pad}^");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-roundhouse-backend", "http://127.0.0.1:9001".parse().unwrap());
        headers.insert("x-roundhouse-worker", "2".parse().unwrap());
        Answer {
            status: http::StatusCode::from_u16(status).unwrap(),
            version: http::Version::HTTP_11,
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn describes_results_and_errors() {
        assert_eq!(
            describe(&answer(200, r#"{"expr": "3 + 4", "result": 7}"#), "3+4"),
            "7    (computed by backend http://127.0.0.1:9001, balancer worker 2)"
        );
        assert_eq!(
            describe(
                &answer(400, r#"{"error": "expected a number", "position": 4}"#),
                "3 + * 4"
            ),
            "error 400: expected a number\n  3 + * 4\n      ^"
        );
    }

    #[test]
    fn calc_url_defaults_to_the_calc_path() {
        assert_eq!(
            calc_uri("http://127.0.0.1:8080").unwrap().to_string(),
            "http://127.0.0.1:8080/calc"
        );
        assert_eq!(
            calc_uri("localhost:9000/calc").unwrap().to_string(),
            "http://localhost:9000/calc"
        );
    }
}
