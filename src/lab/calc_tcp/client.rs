//! `roundhouse client calc --tcp ADDR`: the first seed's calculator client.
//!
//! OS concept: a connection as a message frame. The seed's protocol has no length
//! field and no delimiter: the client connects, writes the expression, and the answer
//! is everything the server sends before it closes. One connection per expression, so
//! each one is balanced on its own, and end of file is the end of the answer.
//! `shutdown(Write)` after the expression tells the server (through the balancer, which
//! passes the half-close on) that nothing more is coming, while the client keeps
//! listening for the answer.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Longest wait for the server at each step, so a stuck server cannot hang the client.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Largest answer read; a calculator answer is a few dozen bytes.
const MAX_ANSWER: u64 = 64 * 1024;

const PROMPT: &str = "calc> ";

/// Sends `expression` on a new connection to `addr` and returns the server's answer
/// (`7`, or `Erro: <message>`), without surrounding white space.
pub fn ask(addr: &str, expression: &str) -> io::Result<String> {
    let target = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address")))?;
    let mut stream = TcpStream::connect_timeout(&target, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.write_all(expression.as_bytes())?;
    stream.shutdown(Shutdown::Write)?;
    let mut answer = Vec::new();
    (&mut stream).take(MAX_ANSWER).read_to_end(&mut answer)?;
    Ok(String::from_utf8_lossy(&answer).trim().to_string())
}

/// The interactive loop on this process's terminal.
pub fn run(addr: &str) -> io::Result<()> {
    let stdin = io::stdin();
    // A terminal echoes what is typed; piped input is echoed here so the transcript
    // still reads as prompt, expression, answer.
    let echo = !stdin.is_terminal();
    run_with(addr, stdin.lock(), io::stdout().lock(), echo)
}

/// Prompts on `output`, reads expressions from `input` until `quit`, `exit` or end of
/// input, and prints `Resultado: <answer>` for each, as the seed's client did.
pub fn run_with(addr: &str, input: impl BufRead, mut output: impl Write, echo: bool) -> io::Result<()> {
    writeln!(
        output,
        "calculator over TCP at {addr}: type an expression such as 3 + 4 * 2; `quit` or Ctrl-D leaves"
    )?;
    let mut lines = input.lines();
    loop {
        write!(output, "{PROMPT}")?;
        output.flush()?;
        let Some(line) = lines.next() else {
            writeln!(output)?; // end the prompt's line, as a shell does on Ctrl-D
            return Ok(());
        };
        let line = line?;
        let expression = line.trim();
        if echo {
            writeln!(output, "{expression}")?;
        }
        match expression {
            "" => continue,
            "quit" | "exit" => return Ok(()),
            _ => {}
        }
        // A refused or broken connection is shown and the loop goes on: the balancer
        // may be restarted meanwhile.
        match ask(addr, expression) {
            Ok(answer) => writeln!(output, "Resultado: {answer}")?,
            Err(error) => writeln!(output, "error: {addr}: {error}")?,
        }
    }
}
