//! A calculator for arithmetic expressions: `3 + 4 * (2 - -1.5)`.
//!
//! This is the seed's "distributed calculator": the simulated backends answer `/calc`
//! with it, and a TCP calculator server can reuse it, so it knows nothing about HTTP.
//! `lexer` turns text into tokens, `parser` turns tokens into an `Expr` tree by
//! recursive descent, and `Expr::eval` computes the value.
//!
//! OS concept: bounded resources against hostile input. A recursive parser uses the
//! thread's stack, which is small and fixed (our connection threads get 256 KiB), so
//! the input length is capped (`MAX_INPUT_BYTES`) and so is the nesting depth
//! (`MAX_DEPTH`): `((((...` a million levels deep is an error, never a stack overflow.

mod error;
mod lexer;
mod parser;

pub use error::{CalcError, ErrorKind};
pub use parser::{BinaryOp, Expr, parse};

/// Longest expression accepted, in bytes (a longer one is `ErrorKind::TooLong`).
pub const MAX_INPUT_BYTES: usize = 1024;

/// Deepest nesting of parentheses and unary minus signs accepted.
pub const MAX_DEPTH: usize = 64;

/// Evaluates `input`, e.g. `evaluate("3 + 4") == Ok(7.0)`.
pub fn evaluate(input: &str) -> Result<f64, CalcError> {
    parse(input)?.eval()
}

/// A computed expression: the input in a normal spacing, and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Calculation {
    /// The expression as `Expr`'s `Display` writes it: `3+4` becomes `3 + 4`.
    pub expr: String,
    pub result: f64,
}

/// Parses and evaluates `input`, also giving it back normally spaced.
pub fn calculate(input: &str) -> Result<Calculation, CalcError> {
    let expr = parse(input)?;
    let result = expr.eval()?;
    Ok(Calculation {
        expr: expr.to_string(),
        result,
    })
}

/// Largest integer an `f64` holds exactly (2^53); integral results below it print
/// without a fraction.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Whether `value` is a whole number small enough to be printed as an integer.
pub fn is_exact_integer(value: f64) -> bool {
    value.fract() == 0.0 && value.abs() < EXACT_INTEGER_LIMIT
}

/// Formats a number the way a person writes it: `7`, `-2.5`, `0.1`; never `-0`.
pub fn format_number(value: f64) -> String {
    if is_exact_integer(value) {
        // `as i64` is exact here (checked above), and `-0.0` becomes `0`.
        format!("{}", value as i64)
    } else {
        // Rust's `Display` for f64 is the shortest text that reads back as the same
        // number, and never uses an exponent.
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_a_table_of_expressions() {
        let table: &[(&str, f64)] = &[
            ("3 + 4", 7.0),
            ("3+4*2", 11.0),
            ("(3 + 4) * 2", 14.0),
            ("10 / 4", 2.5),
            ("10 - 4 - 3", 3.0),
            ("64 / 4 / 2", 8.0),
            ("-3", -3.0),
            ("--3", 3.0),
            ("2 * -3", -6.0),
            ("-(2 + 3) * 2", -10.0),
            ("2 - -3", 5.0),
            ("1.5 + .25", 1.75),
            ("  7  ", 7.0),
            ("((((1))))", 1.0),
            ("0.1 + 0.2", 0.1 + 0.2),
            ("3 + 4\n", 7.0),
        ];
        for (input, expected) in table {
            assert_eq!(evaluate(input), Ok(*expected), "{input}");
        }
    }

    #[test]
    fn normalizes_spacing() {
        let table = [
            ("3+4", "3 + 4"),
            ("(1+2)*3", "(1 + 2) * 3"),
            ("- 3", "-3"),
            ("2*-3", "2 * -3"),
            ("  -( 1.50 )/  2 ", "-(1.5) / 2"),
        ];
        for (input, expected) in table {
            assert_eq!(calculate(input).unwrap().expr, expected, "{input}");
        }
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(format_number(7.0), "7");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(-2.5), "-2.5");
        assert_eq!(format_number(0.1), "0.1");
        assert_eq!(format_number(1e20), "100000000000000000000");
    }
}
