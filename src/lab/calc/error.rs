//! What can go wrong with an expression, and where.
//!
//! Every error carries a position, counted in characters from 0, so a client can put a
//! caret under the offending character, as compilers do.
//!
//! OS concept: none of its own; it serves the calculator's callers. `ErrorKind` falls
//! into three groups (too long, not an expression, no value) that the HTTP backend maps
//! to 413, 400 and 422 (src/lab/sim_backend/apps/calc.rs); `TooDeep` is how the stack
//! bound of `mod.rs` shows to a client.

use thiserror::Error;

use super::{MAX_DEPTH, MAX_INPUT_BYTES};

/// An expression that could not be computed, and the character where that showed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind} (at position {position})")]
pub struct CalcError {
    pub kind: ErrorKind,
    /// Index of the offending character, counted in characters (not bytes) from 0.
    pub position: usize,
}

impl CalcError {
    pub fn new(kind: ErrorKind, position: usize) -> Self {
        CalcError { kind, position }
    }
}

/// The kinds of error, in three groups: the input is too long (`TooLong`); it is not a
/// valid expression (syntax, including `TooDeep`); or it is valid but has no value
/// (`DivisionByZero`, `Overflow`). A server maps the groups to 413, 400 and 422.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ErrorKind {
    #[error("expression longer than {MAX_INPUT_BYTES} bytes")]
    TooLong,
    #[error("empty expression")]
    Empty,
    #[error("unexpected character {0:?}")]
    UnexpectedChar(char),
    #[error("malformed number (write digits, optionally with a fraction: 2, 2.5, .5)")]
    BadNumber,
    #[error("number too large")]
    NumberTooLarge,
    #[error("expected a number, '-' or '('")]
    ExpectedOperand,
    #[error("expected an operator (+ - * /)")]
    ExpectedOperator,
    #[error("')' without a matching '('")]
    UnmatchedClose,
    #[error("'(' is never closed")]
    UnclosedParen,
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("division by zero")]
    DivisionByZero,
    #[error("result too large to represent")]
    Overflow,
}

impl ErrorKind {
    /// True for a valid expression without a value (division by zero, overflow).
    pub fn is_arithmetic(&self) -> bool {
        matches!(self, ErrorKind::DivisionByZero | ErrorKind::Overflow)
    }
}
