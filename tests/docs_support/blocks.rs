//! Reading a markdown file into its fenced blocks and their markers, and saying what is
//! wrong with the markers. Nothing here runs anything.

use std::fmt;

/// Info strings of blocks that hold shell commands (they must always be marked).
const SHELL_LANGUAGES: &[&str] = &["sh", "bash", "console", "shell", "zsh", "shell-session"];

/// One fenced block of a markdown file.
#[derive(Debug, Clone)]
pub struct Block {
    /// 1-based line of the opening fence.
    pub line: usize,
    /// The first word of the info string (`sh`, `console`, `toml`, or empty).
    pub language: String,
    /// The lines between the fences, with the fence's indentation removed.
    pub text: String,
    /// The marker comment on the line before the fence, if any.
    pub marker: Option<Marker>,
}

/// What the comment before a fence says about the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    /// `<!-- runnable -->`, with `server` and `output` as options.
    Runnable { server: bool, output: bool },
    /// `<!-- illustrative: REASON -->`.
    Illustrative(String),
    /// `<!-- file: NAME -->`: the block is written to NAME before the file's blocks run.
    File(String),
}

/// A marker problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// How to mark a block, quoted in every "unmarked" message (the lead merges other
/// branches' docs by this message).
pub const HOW_TO_MARK: &str = "Markers go on the line right before a block's opening fence:\n\
    \x20   <!-- runnable -->                 tests/docs.rs runs it (rules in that file's header)\n\
    \x20   <!-- runnable: output -->         runs it and compares each `$ command`'s output\n\
    \x20   <!-- runnable: server -->         starts it in the background for the blocks after it\n\
    \x20   <!-- illustrative: REASON -->     not run; say why (long benchmark, needs root, ...)";

impl Block {
    /// Whether this block holds shell commands: a shell info string, or `$ ` prompts.
    pub fn is_shell(&self) -> bool {
        SHELL_LANGUAGES.contains(&self.language.as_str())
            || (matches!(self.language.as_str(), "" | "text") && self.has_prompts())
    }

    /// Whether some line is a `$ command` prompt (a console transcript).
    pub fn has_prompts(&self) -> bool {
        self.text.lines().any(|line| line.starts_with("$ "))
    }
}

/// The fenced blocks of `markdown`, in order.
pub fn parse(markdown: &str) -> Vec<Block> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut blocks = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let Some((indent, fence, info)) = opening_fence(lines[index]) else {
            index += 1;
            continue;
        };
        let start = index;
        let mut body = Vec::new();
        index += 1;
        while index < lines.len() && !is_closing_fence(lines[index], &fence) {
            let line = lines[index];
            let strip = line.len() - line.trim_start().len();
            body.push(&line[strip.min(indent)..]);
            index += 1;
        }
        index += 1;
        blocks.push(Block {
            line: start + 1,
            language: info.split_whitespace().next().unwrap_or_default().to_string(),
            text: body.join("\n"),
            marker: marker_before(&lines, start),
        });
    }
    blocks
}

/// `(indentation, fence, info string)` when `line` opens a fenced block.
fn opening_fence(line: &str) -> Option<(usize, String, String)> {
    let trimmed = line.trim_start();
    let indent = line.len() - trimmed.len();
    for mark in ['`', '~'] {
        let count = trimmed.chars().take_while(|&c| c == mark).count();
        if count >= 3 {
            let info = trimmed[count..].trim().to_string();
            if mark == '`' && info.contains('`') {
                return None;
            }
            return Some((indent, trimmed[..count].to_string(), info));
        }
    }
    None
}

fn is_closing_fence(line: &str, fence: &str) -> bool {
    let trimmed = line.trim();
    let mark = fence.chars().next().unwrap_or('`');
    trimmed.len() >= fence.len() && trimmed.chars().all(|c| c == mark)
}

/// The marker on the nearest non-blank line before line `start` (0-based), if that
/// line is a marker comment. Anything else in between means "no marker".
fn marker_before(lines: &[&str], start: usize) -> Option<Marker> {
    let previous = lines[..start].iter().rev().find(|line| !line.trim().is_empty())?;
    parse_marker(previous.trim()).ok().flatten()
}

/// `Ok(None)` for a line that is not a marker comment at all; `Err` for a marker
/// comment that is malformed.
pub fn parse_marker(line: &str) -> Result<Option<Marker>, String> {
    let Some(inner) = line
        .strip_prefix("<!--")
        .and_then(|rest| rest.strip_suffix("-->"))
    else {
        return Ok(None);
    };
    let inner = inner.trim();
    let (word, rest) = match inner.split_once(':') {
        Some((word, rest)) => (word.trim(), rest.trim()),
        None => (inner, ""),
    };
    match word {
        "runnable" => {
            let mut marker = (false, false);
            for option in rest.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                match option {
                    "server" => marker.0 = true,
                    "output" => marker.1 = true,
                    other => {
                        return Err(format!(
                            "unknown runnable option {other:?} (known: server, output)"
                        ));
                    }
                }
            }
            Ok(Some(Marker::Runnable {
                server: marker.0,
                output: marker.1,
            }))
        }
        "illustrative" if rest.is_empty() => {
            Err("an illustrative block must say why: <!-- illustrative: REASON -->".into())
        }
        "illustrative" => Ok(Some(Marker::Illustrative(rest.to_string()))),
        "file" if rest.is_empty() || rest.contains('/') => {
            Err("<!-- file: NAME --> needs a plain file name".into())
        }
        "file" => Ok(Some(Marker::File(rest.to_string()))),
        _ => Ok(None),
    }
}

/// Every marker problem in `markdown` (named `file` in the messages).
pub fn problems(file: &str, markdown: &str) -> Vec<Problem> {
    let mut found = Vec::new();
    let lines: Vec<&str> = markdown.lines().collect();
    // Malformed marker comments, wherever they are.
    for (number, line) in lines.iter().enumerate() {
        if let Err(message) = parse_marker(line.trim()) {
            found.push(Problem {
                file: file.into(),
                line: number + 1,
                message,
            });
        }
    }
    for block in parse(markdown) {
        let problem = |message: String| Problem {
            file: file.into(),
            line: block.line,
            message,
        };
        let kind = if block.language.is_empty() {
            "```".to_string()
        } else {
            format!("```{}", block.language)
        };
        match &block.marker {
            None if block.is_shell() => found.push(problem(format!(
                "this {kind} block holds commands and is not marked: put <!-- runnable --> or \
                 <!-- illustrative: REASON --> on the line right before its fence"
            ))),
            Some(Marker::Runnable { .. } | Marker::Illustrative(_)) if !block.is_shell() => {
                found.push(problem(format!(
                    "only shell blocks (```sh, ```console, or $ prompts) are run or excused; \
                     this {kind} block needs no marker (or use <!-- file: NAME -->)"
                )))
            }
            Some(Marker::Runnable { output: true, .. }) if !block.has_prompts() => found.push(problem(
                "`output` compares what follows each `$ command`: write the block as a \
                     transcript with `$ ` prompts"
                    .into(),
            )),
            _ => {}
        }
    }
    found
}

/// One command of a block and the output the block shows for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// 1-based line in the markdown file where the command starts.
    pub line: usize,
    pub text: String,
    /// The transcript's output lines (empty for a plain script).
    pub expected: Vec<String>,
}

/// The commands of a transcript block (`$ ` prompts, `\` continuations), or the whole
/// block as one script when it has no prompts.
pub fn commands(block: &Block) -> Vec<Command> {
    if !block.has_prompts() {
        return vec![Command {
            line: block.line + 1,
            text: block.text.clone(),
            expected: Vec::new(),
        }];
    }
    let mut out: Vec<Command> = Vec::new();
    let mut continuing = false;
    for (offset, line) in block.text.lines().enumerate() {
        if continuing {
            let command = out.last_mut().expect("a continued command");
            command.text.push('\n');
            command.text.push_str(line);
            continuing = line.ends_with('\\');
        } else if let Some(command) = line.strip_prefix("$ ") {
            out.push(Command {
                line: block.line + 1 + offset,
                text: command.to_string(),
                expected: Vec::new(),
            });
            continuing = line.ends_with('\\');
        } else if let Some(command) = out.last_mut() {
            command.expected.push(line.to_string());
        }
    }
    out
}

/// The separate commands of a server block's script: one per line (joining `\`
/// continuations), and lines cut at ` & `; comments and a trailing `&` dropped.
pub fn server_commands(script: &str) -> Vec<String> {
    let mut joined: Vec<String> = Vec::new();
    let mut continuing = false;
    for line in script.lines() {
        if continuing {
            let last = joined.last_mut().expect("a continued line");
            last.push('\n');
            last.push_str(line);
        } else {
            joined.push(line.to_string());
        }
        continuing = line.ends_with('\\');
    }
    joined
        .iter()
        .map(|line| line.trim())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .flat_map(|line| line.split(" & ").map(str::to_string).collect::<Vec<_>>())
        .map(|command| without_comment(&command))
        .filter(|command| !command.is_empty())
        .collect()
}

/// A server command without its trailing `# comment` and `&` (the test adds its own
/// redirection and `&` after it). A `#` counts only after a space and outside quotes.
pub fn without_comment(command: &str) -> String {
    let mut quote = None;
    let mut previous = ' ';
    let mut end = command.len();
    for (at, c) in command.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(open), _) if c == open => quote = None,
            (None, '#') if previous.is_whitespace() => {
                end = at;
                break;
            }
            _ => {}
        }
        previous = c;
    }
    command[..end].trim().trim_end_matches('&').trim().to_string()
}

/// Whether `actual` matches the `expected` lines: trailing spaces are ignored, `...` in
/// a line stands for any text, and a line that is only `...` for any number of lines.
pub fn matches(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first.trim() == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => match actual.split_first() {
            Some((line, others)) => line_matches(first.trim_end(), line.trim_end()) && matches(rest, others),
            None => false,
        },
    }
}

/// One line against a pattern where `...` stands for any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let pieces: Vec<&str> = pattern.split("...").collect();
    if pieces.len() == 1 {
        return pattern == line;
    }
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if !line.starts_with(first) || line.len() < first.len() + last.len() || !line.ends_with(last) {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}
