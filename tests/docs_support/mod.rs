//! The docs test's parts: reading blocks and markers (`blocks`), what is changed before
//! a block runs (`rewrite`), and the shell the blocks run in (`session`).

pub mod blocks;
pub mod rewrite;
pub mod session;

use std::path::Path;
use std::time::Duration;

use blocks::{Block, Marker};
use rewrite::PortMap;
use session::Session;

/// The longest one command of a block may take (bench durations are capped at 2 s).
const COMMAND_LIMIT: Duration = Duration::from_secs(90);

/// Runs every runnable block of `file` (relative to `root`) in one session, and
/// returns what failed, each with the file and line.
pub fn run_file(root: &Path, file: &str) -> Vec<String> {
    let markdown = std::fs::read_to_string(root.join(file)).unwrap();
    let blocks = blocks::parse(&markdown);
    let texts: Vec<String> = blocks
        .iter()
        .filter(|block| block.marker.is_some())
        .map(|block| block.text.clone())
        .collect();
    let ports = PortMap::for_texts(texts.iter().map(String::as_str));
    let mut session = Session::start(root, ports);
    let mut failures = Vec::new();
    for block in &blocks {
        let result = match &block.marker {
            Some(Marker::File(name)) => {
                let text = session.ports.apply(&block.text);
                std::fs::write(session.work.path().join(name), text + "\n")
                    .map_err(|error| (block.line, error.to_string()))
            }
            Some(Marker::Runnable { server, output }) if block.is_shell() => {
                run_block(&mut session, block, *server, *output)
            }
            _ => Ok(()),
        };
        if let Err((line, message)) = result {
            let fatal = message.contains("no answer within") || message.contains("the shell exited");
            failures.push(format!("{file}:{line}: {message}"));
            if fatal {
                failures.push(format!("{file}: stopped after that block (the shell is stuck)"));
                break;
            }
        }
    }
    failures
}

/// Runs one block; `Err((line, why))` names the command's line in the file.
fn run_block(
    session: &mut Session,
    block: &Block,
    server: bool,
    output: bool,
) -> Result<(), (usize, String)> {
    let rewritten = Block {
        text: session.ports.apply(&block.text),
        ..block.clone()
    };
    // `cargo run` becomes `roundhouse` in what is run, not in what is shown.
    let commands: Vec<blocks::Command> = blocks::commands(&rewritten)
        .into_iter()
        .map(|command| blocks::Command {
            text: rewrite::launcher_to_binary(&command.text),
            ..command
        })
        .collect();
    if server {
        let list: Vec<(usize, String, Vec<String>)> = if rewritten.has_prompts() {
            commands
                .into_iter()
                .map(|command| {
                    (
                        command.line,
                        blocks::without_comment(&command.text),
                        command.expected,
                    )
                })
                .collect()
        } else {
            blocks::server_commands(&rewrite::launcher_to_binary(&rewritten.text))
                .into_iter()
                .map(|command| (block.line + 1, command, Vec::new()))
                .collect()
        };
        for (line, command, expected) in list {
            let balancer = rewrite::starts_balancer(&command);
            let expected = (output && !expected.is_empty()).then_some(expected.as_slice());
            session
                .start_server(&command, balancer, expected)
                .map_err(|why| (line, format!("server `{}`: {why}", first_line(&command))))?;
        }
        return Ok(());
    }
    for command in commands {
        let outcome = session
            .run(&command.text, COMMAND_LIMIT)
            .map_err(|why| (command.line, format!("`{}`: {why}", first_line(&command.text))))?;
        if output && !command.expected.is_empty() {
            let actual: Vec<&str> = trimmed_lines(&outcome.output);
            let expected = trim_expected(&command.expected);
            if !blocks::matches(&expected, &actual) {
                return Err((
                    command.line,
                    format!(
                        "`{}` printed:\n{}\nbut the block shows:\n{}",
                        first_line(&command.text),
                        actual.join("\n"),
                        expected.join("\n")
                    ),
                ));
            }
        } else if outcome.status != 0 {
            return Err((
                command.line,
                format!(
                    "`{}` exited with status {}; it printed:\n{}",
                    first_line(&command.text),
                    outcome.status,
                    outcome.output
                ),
            ));
        }
    }
    Ok(())
}

fn first_line(text: &str) -> &str {
    text.lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default()
        .trim()
}

/// Lines without trailing blank ones.
fn trimmed_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    while lines.last().is_some_and(|line| line.trim().is_empty()) {
        lines.pop();
    }
    lines
}

fn trim_expected(lines: &[String]) -> Vec<String> {
    let mut lines = lines.to_vec();
    while lines.last().is_some_and(|line| line.trim().is_empty()) {
        lines.pop();
    }
    lines
}
