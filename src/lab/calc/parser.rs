//! Tokens to a tree, by recursive descent, and the tree to a value.
//!
//! The grammar, one function per rule; a rule lower down binds tighter, which is how
//! `*` comes to bind tighter than `+`:
//!
//! ```text
//! expr    = term   { ("+" | "-") term }
//! term    = unary  { ("*" | "/") unary }
//! unary   = "-" unary | primary
//! primary = NUMBER | "(" expr ")"
//! ```
//!
//! A chain like `1 + 2 + 3` is kept flat (`Expr::Chain`) rather than as a tree leaning
//! left, so the tree is only as deep as the parentheses and minus signs nest, which is
//! counted and capped at `MAX_DEPTH`. Evaluating and printing recurse over that tree,
//! so they are bounded by the same cap.
//!
//! OS concept: the thread's stack as a fixed, small resource. Every level of nesting
//! costs stack frames, and a stack overflow aborts the whole process, not one request;
//! so `Parser::enter` refuses to go deeper before the frame is used, and the test
//! `nesting_runs_on_a_small_stack` runs the deepest input on a 256 KiB thread.

use std::fmt;

use super::error::{CalcError, ErrorKind};
use super::lexer::{Token, TokenKind, tokenize};
use super::{MAX_DEPTH, MAX_INPUT_BYTES, format_number};

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Number(f64),
    /// Unary minus.
    Negate(Box<Expr>),
    /// Parentheses, kept so the expression prints back as it was written.
    Group(Box<Expr>),
    /// Operands joined by operators of one precedence level, evaluated left to right:
    /// `first op₁ e₁ op₂ e₂ ...`.
    Chain {
        first: Box<Expr>,
        rest: Vec<Link>,
    },
}

/// One `op operand` step of a chain, with the operator's position for error messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub op: BinaryOp,
    pub position: usize,
    pub operand: Expr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Subtract,
    Multiply,
    Divide,
}

impl BinaryOp {
    fn symbol(self) -> char {
        match self {
            BinaryOp::Add => '+',
            BinaryOp::Subtract => '-',
            BinaryOp::Multiply => '*',
            BinaryOp::Divide => '/',
        }
    }
}

/// Parses `input` into an expression tree without evaluating it.
pub fn parse(input: &str) -> Result<Expr, CalcError> {
    if input.len() > MAX_INPUT_BYTES {
        let position = input
            .char_indices()
            .take_while(|(byte, _)| *byte < MAX_INPUT_BYTES)
            .count();
        return Err(CalcError::new(ErrorKind::TooLong, position));
    }
    let tokens = tokenize(input)?;
    let mut parser = Parser {
        tokens: &tokens,
        next: 0,
        depth: 0,
    };
    if parser.peek().kind == TokenKind::End {
        return Err(CalcError::new(ErrorKind::Empty, parser.peek().position));
    }
    let expr = parser.expr()?;
    let end = parser.peek();
    match end.kind {
        TokenKind::End => Ok(expr),
        TokenKind::Close => Err(CalcError::new(ErrorKind::UnmatchedClose, end.position)),
        _ => Err(CalcError::new(ErrorKind::ExpectedOperator, end.position)),
    }
}

struct Parser<'a> {
    tokens: &'a [Token],
    /// Index of the next token; the last token is always `End`, so it never runs out.
    next: usize,
    /// How many parentheses and minus signs enclose the current position.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Token {
        self.tokens[self.next]
    }

    fn advance(&mut self) -> Token {
        let token = self.tokens[self.next];
        if token.kind != TokenKind::End {
            self.next += 1;
        }
        token
    }

    /// `expr = term { ("+" | "-") term }`, as a loop, so long chains cost no stack.
    fn expr(&mut self) -> Result<Expr, CalcError> {
        let first = self.term()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek().kind {
                TokenKind::Plus => BinaryOp::Add,
                TokenKind::Minus => BinaryOp::Subtract,
                _ => return Ok(chain(first, rest)),
            };
            let position = self.advance().position;
            let operand = self.term()?;
            rest.push(Link {
                op,
                position,
                operand,
            });
        }
    }

    /// `term = unary { ("*" | "/") unary }`
    fn term(&mut self) -> Result<Expr, CalcError> {
        let first = self.unary()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek().kind {
                TokenKind::Star => BinaryOp::Multiply,
                TokenKind::Slash => BinaryOp::Divide,
                _ => return Ok(chain(first, rest)),
            };
            let position = self.advance().position;
            let operand = self.unary()?;
            rest.push(Link {
                op,
                position,
                operand,
            });
        }
    }

    /// `unary = "-" unary | primary`. The recursion on `-` is written as a loop
    /// (count the signs, parse the primary, wrap it once per sign): the same tree,
    /// without a stack frame per sign. Each sign still counts toward `MAX_DEPTH`,
    /// because evaluating and printing the tree recurse once per `Negate`.
    fn unary(&mut self) -> Result<Expr, CalcError> {
        let mut signs = 0;
        while self.peek().kind == TokenKind::Minus {
            let position = self.advance().position;
            self.enter(position)?;
            signs += 1;
        }
        let mut operand = self.primary()?;
        for _ in 0..signs {
            operand = Expr::Negate(Box::new(operand));
        }
        self.depth -= signs;
        Ok(operand)
    }

    /// `primary = NUMBER | "(" expr ")"`. The only recursive call of the parser is the
    /// `expr` inside parentheses, three stack frames (expr, term, unary/primary) per
    /// level of nesting.
    fn primary(&mut self) -> Result<Expr, CalcError> {
        let token = self.advance();
        match token.kind {
            TokenKind::Number(value) => Ok(Expr::Number(value)),
            TokenKind::Open => {
                self.enter(token.position)?;
                let inner = self.expr()?;
                let close = self.peek();
                match close.kind {
                    TokenKind::Close => {
                        self.advance();
                    }
                    // Ran out of input: the '(' is the character to point at.
                    TokenKind::End => return Err(CalcError::new(ErrorKind::UnclosedParen, token.position)),
                    _ => return Err(CalcError::new(ErrorKind::ExpectedOperator, close.position)),
                }
                self.depth -= 1;
                Ok(Expr::Group(Box::new(inner)))
            }
            TokenKind::Close if self.depth == 0 => {
                Err(CalcError::new(ErrorKind::UnmatchedClose, token.position))
            }
            _ => Err(CalcError::new(ErrorKind::ExpectedOperand, token.position)),
        }
    }

    /// Goes one nesting level deeper, refusing to pass `MAX_DEPTH`: this check, made
    /// before each recursive call, is what keeps the stack bounded.
    fn enter(&mut self, position: usize) -> Result<(), CalcError> {
        if self.depth >= MAX_DEPTH {
            return Err(CalcError::new(ErrorKind::TooDeep, position));
        }
        self.depth += 1;
        Ok(())
    }
}

/// One precedence level's operands: a lone operand stays as it is.
fn chain(first: Expr, rest: Vec<Link>) -> Expr {
    if rest.is_empty() {
        first
    } else {
        Expr::Chain {
            first: Box::new(first),
            rest,
        }
    }
}

impl Expr {
    /// Computes the value; errors for division by zero and for results beyond `f64`.
    pub fn eval(&self) -> Result<f64, CalcError> {
        match self {
            Expr::Number(value) => Ok(*value),
            Expr::Negate(inner) => Ok(-inner.eval()?),
            Expr::Group(inner) => inner.eval(),
            Expr::Chain { first, rest } => {
                let mut value = first.eval()?;
                for link in rest {
                    let operand = link.operand.eval()?;
                    value = match link.op {
                        BinaryOp::Add => value + operand,
                        BinaryOp::Subtract => value - operand,
                        BinaryOp::Multiply => value * operand,
                        BinaryOp::Divide if operand == 0.0 => {
                            return Err(CalcError::new(ErrorKind::DivisionByZero, link.position));
                        }
                        BinaryOp::Divide => value / operand,
                    };
                    // JSON has no infinity, and an infinite "result" would be a lie.
                    if !value.is_finite() {
                        return Err(CalcError::new(ErrorKind::Overflow, link.position));
                    }
                }
                Ok(value)
            }
        }
    }
}

/// Prints the expression normally spaced: binary operators between spaces, unary
/// minus and parentheses tight (`(1 + 2) * -3`).
impl fmt::Display for Expr {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Number(value) => out.write_str(&format_number(*value)),
            Expr::Negate(inner) => write!(out, "-{inner}"),
            Expr::Group(inner) => write!(out, "({inner})"),
            Expr::Chain { first, rest } => {
                write!(out, "{first}")?;
                for link in rest {
                    write!(out, " {} {}", link.op.symbol(), link.operand)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(input: &str) -> CalcError {
        match parse(input).and_then(|expr| expr.eval()) {
            Ok(value) => panic!("{input:?} gave {value}, expected an error"),
            Err(error) => error,
        }
    }

    #[test]
    fn reports_syntax_errors_with_positions() {
        let table = [
            ("", ErrorKind::Empty, 0),
            ("   ", ErrorKind::Empty, 3),
            ("3 +", ErrorKind::ExpectedOperand, 3),
            ("3 + * 4", ErrorKind::ExpectedOperand, 4),
            ("3 4", ErrorKind::ExpectedOperator, 2),
            ("(3 4)", ErrorKind::ExpectedOperator, 3),
            ("3 + 4)", ErrorKind::UnmatchedClose, 5),
            (")", ErrorKind::UnmatchedClose, 0),
            ("()", ErrorKind::ExpectedOperand, 1),
            ("2 * (3 + 4", ErrorKind::UnclosedParen, 4),
            ("3 + x", ErrorKind::UnexpectedChar('x'), 4),
            ("2 ** 3", ErrorKind::ExpectedOperand, 3),
        ];
        for (input, kind, position) in table {
            assert_eq!(error(input), CalcError::new(kind, position), "{input:?}");
        }
    }

    #[test]
    fn reports_arithmetic_errors() {
        assert_eq!(error("1 / 0"), CalcError::new(ErrorKind::DivisionByZero, 2));
        assert_eq!(error("1 / (2 - 2)").kind, ErrorKind::DivisionByZero);
        let huge = format!("{0} * {0}", "9".repeat(200));
        assert_eq!(error(&huge).kind, ErrorKind::Overflow);
    }

    #[test]
    fn nesting_is_capped_not_a_stack_overflow() {
        let ok = format!("{}1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(parse(&ok).unwrap().eval(), Ok(1.0));
        let deep = format!("{}1{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        assert_eq!(error(&deep), CalcError::new(ErrorKind::TooDeep, MAX_DEPTH));
        assert_eq!(error(&"-".repeat(1000)).kind, ErrorKind::TooDeep);
        assert_eq!(error(&"(".repeat(MAX_INPUT_BYTES)).kind, ErrorKind::TooDeep);
        assert_eq!(error(&"(".repeat(100_000)).kind, ErrorKind::TooLong);
    }

    #[test]
    fn long_flat_chains_are_fine() {
        // 512 terms: the whole 1 KiB, all at one level.
        let sum = vec!["1"; 512].join("+");
        assert_eq!(sum.len(), 1023);
        assert_eq!(parse(&sum).unwrap().eval(), Ok(512.0));
    }

    #[test]
    fn printing_is_stable_and_keeps_the_meaning() {
        for input in [
            "3+4*2",
            "-(1 - -2) / .5",
            "((7))",
            "1 - (2 - 3)",
            "--1.25*-(0)",
            "1/(1-1)",
        ] {
            let expr = parse(input).unwrap();
            let printed = expr.to_string();
            let reparsed = parse(&printed).unwrap();
            assert_eq!(reparsed.to_string(), printed, "{input}");
            let kind = |result: Result<f64, CalcError>| result.map_err(|error| error.kind);
            assert_eq!(kind(reparsed.eval()), kind(expr.eval()), "{input}");
        }
    }

    #[test]
    fn too_long_input_points_at_the_limit() {
        let long = "1+".repeat(600);
        assert_eq!(error(&long), CalcError::new(ErrorKind::TooLong, MAX_INPUT_BYTES));
    }

    #[test]
    fn nesting_runs_on_a_small_stack() {
        // 256 KiB is the connection threads' stack size, and the deepest allowed input
        // must fit in it with room to spare. Parentheses cost the most stack per level
        // (expr, term, unary/primary; then eval and Display recurse once per Group and
        // Chain), so the worst case is all parentheses with a chain at every level.
        // Measured: under 64 KiB in release builds, under 192 KiB in debug builds.
        let deepest = format!("{}1{}", "(1+1*".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        let worker = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || crate::lab::calc::calculate(&deepest).map(|calculation| calculation.result))
            .unwrap();
        assert_eq!(worker.join().unwrap(), Ok(MAX_DEPTH as f64 + 1.0));
    }
}
