//! Documentation the tests run: every shell block in README.md, docs/walkthrough.md and
//! docs/concepts.md is either run here or says why it cannot be.
//!
//! # Marking a block
//! The line right before a block's opening fence (blank lines may come between) is an
//! HTML comment, which rendered markdown does not show:
//!
//! - `<!-- runnable -->`: run it. A block without `$ ` prompts is one script; a
//!   transcript (`$ command` lines, `\` continuing a line, output under each) runs
//!   command by command. Every command must exit with status 0.
//! - `<!-- runnable: output -->`: a transcript whose output is compared with what each
//!   command prints (stdout and stderr together, trailing spaces ignored). `...` in a
//!   line stands for any text, a line of only `...` for any number of lines. The exit
//!   status is not checked: show it with `$ echo $?` when it matters.
//! - `<!-- runnable: server -->`: each command (one per line, or cut at ` & `) starts in
//!   the background and must print a line containing `listening on` within 30 s; it
//!   keeps running for the blocks after it. With `, output` the transcript's output
//!   must be how the server's output begins.
//! - `<!-- illustrative: REASON -->`: not run, for the reason given (a long benchmark,
//!   needs root, needs a keystroke in another terminal at the right moment...).
//! - `<!-- file: NAME -->` before any block (a TOML file, say): its text is written to
//!   NAME in the directory the blocks run in, before the blocks after it run.
//!
//! A block with a shell info string (`sh`, `bash`, `console`, `shell`, `zsh`), or an
//! unlabelled one with `$ ` prompts, must carry `runnable` or `illustrative`: an
//! unmarked one fails `every_shell_block_is_marked` with its file, line and this list.
//!
//! # How a block runs
//! Each file gets one `bash` and a scratch directory holding links to the repository's
//! files (so `examples/`, `site/`, `scripts/` are there) and whatever blocks write. The
//! blocks run in order in that one shell, as in one terminal where the docs say "A",
//! "B" and "C": variables, `$?`, `$!` and background jobs carry over. What a block
//! says runs as typed, except for these rewrites, which keep the test on ports the OS
//! chose and inside a few minutes:
//!
//! 1. `cargo run [--release] [-q] [--]` and `target/release/roundhouse` become
//!    `roundhouse`, which is the debug build this test was compiled with.
//! 2. Ports: 8080 (the balancer), 9001–9004 (simulated backends, onto four consecutive
//!    free ports), 5000 (`roundhouse tcp`) and every other port a marked block names
//!    after `:`, `--port `, `--status-port `, `--sim-base-port `, `--listen ` or
//!    `/dev/tcp/127.0.0.1/` are replaced, in commands and in expected output alike, by
//!    free ports of this run (below the kernel's ephemeral range, so no client's
//!    connection takes one between two blocks).
//! 3. Where a command relies on a default port, `roundhouse` gets it explicitly: the
//!    balancer `--listen 127.0.0.1:P --sim-base-port B` unless given, `roundhouse tcp`
//!    its `--listen`, `roundhouse bench` its URL, and `roundhouse client /path` and
//!    `client calc` the balancer's URL.
//! 4. `roundhouse bench -d D` runs for at most 2 s.
//!
//! Only one balancer runs at a time: a server block that starts one (or needs the
//! ports of the one running) first stops the running one, as a reader presses Ctrl-C
//! in terminal A before starting it again. A server block waits until its ports are
//! free. Every command has a deadline (90 s); everything a file started is killed at
//! its end, pass or fail.

mod docs_support;

use std::path::Path;

use docs_support::blocks;

const FILES: &[&str] = &["README.md", "docs/walkthrough.md", "docs/concepts.md"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_shell_block_is_marked() {
    let mut problems = Vec::new();
    let mut runnable = 0;
    for file in FILES {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        problems.extend(blocks::problems(file, &text).iter().map(ToString::to_string));
        runnable += blocks::parse(&text)
            .iter()
            .filter(|block| matches!(block.marker, Some(blocks::Marker::Runnable { .. })))
            .count();
    }
    assert!(
        problems.is_empty(),
        "{} block(s) to mark:\n{}\n\n{}",
        problems.len(),
        problems.join("\n"),
        blocks::HOW_TO_MARK
    );
    assert!(runnable >= 40, "only {runnable} runnable blocks");
}

#[test]
fn the_checker_names_the_file_and_line_of_an_unmarked_block() {
    let text = "# Title\n\n<!-- runnable -->\n```sh\ntrue\n```\n\n```console\n$ echo hi\nhi\n```\n\n\
                ```\nplain output\n```\n\n<!-- illustrative -->\n```sh\nsleep 99\n```\n\n\
                <!-- runnable: fast -->\n```sh\ntrue\n```\n\n```toml\na = 1\n```\n";
    let problems = blocks::problems("docs/x.md", text);
    let lines: Vec<usize> = problems.iter().map(|problem| problem.line).collect();
    assert_eq!(lines, [17, 22, 8, 18, 23], "{problems:?}");
    let unmarked = problems
        .iter()
        .find(|problem| problem.line == 8)
        .unwrap()
        .to_string();
    assert!(
        unmarked.starts_with("docs/x.md:8: this ```console block"),
        "{unmarked}"
    );
    assert!(
        unmarked.contains("<!-- runnable -->") && unmarked.contains("<!-- illustrative: REASON -->"),
        "{unmarked}"
    );
    assert!(blocks::HOW_TO_MARK.contains("<!-- runnable: server -->"));
}

#[test]
fn transcripts_split_into_commands_and_ellipses_match() {
    let block = &blocks::parse("```console\n$ a \\\n  b\nout 1\n...\n$ c\n```\n")[0];
    let commands = blocks::commands(block);
    assert_eq!(commands.len(), 2);
    assert_eq!(commands[0].text, "a \\\n  b");
    assert_eq!(commands[0].line, 2);
    assert_eq!(commands[0].expected, ["out 1", "..."]);
    let pattern: Vec<String> = ["x ... z", "...", "end"].map(String::from).to_vec();
    assert!(blocks::matches(&pattern, &["x y z", "1", "2", "end"]));
    assert!(blocks::matches(&pattern, &["x  z", "end"]));
    assert!(!blocks::matches(&pattern, &["x y", "end"]));
    assert_eq!(
        blocks::server_commands("a --port 1 & b &\n# note\nc \\\n  --x\n"),
        ["a --port 1", "b", "c \\\n  --x"]
    );
    assert_eq!(
        docs_support::rewrite::launcher_to_binary("cargo run --release -- bench\ncargo run -q -- client x"),
        "roundhouse bench\nroundhouse client x"
    );
}

/// Runs one file's blocks, or says why it cannot.
fn run(file: &str) {
    for tool in ["bash", "curl"] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|output| output.status.success());
        if !found {
            eprintln!(
                "skipped: the blocks of {file} need `{tool}`, which is not installed (.ci/run installs it)"
            );
            return;
        }
    }
    let failures = docs_support::run_file(root(), file);
    assert!(
        failures.is_empty(),
        "{} block(s) of {file} failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn readme_blocks_run() {
    run("README.md");
}

#[test]
fn walkthrough_blocks_run() {
    run("docs/walkthrough.md");
}

#[test]
fn concepts_blocks_run() {
    run("docs/concepts.md");
}
