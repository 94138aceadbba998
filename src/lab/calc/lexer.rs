//! Text to tokens: numbers, the four operators, parentheses; spaces are skipped.
//!
//! OS concept: none of its own; the calculator's first step, run on a backend's thread
//! for each `/calc` request. `tokenize` counts positions in characters, not bytes, so a
//! caret lines up under a non-ASCII character, and a number too large for an `f64` is
//! an error (`NumberTooLarge`) rather than an infinity.

use super::error::{CalcError, ErrorKind};

/// One token and the character position where it starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    pub position: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TokenKind {
    Number(f64),
    Plus,
    Minus,
    Star,
    Slash,
    Open,
    Close,
    /// After the last character; its position is the input's length.
    End,
}

/// Splits `input` into tokens, ending with `TokenKind::End`.
pub fn tokenize(input: &str) -> Result<Vec<Token>, CalcError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let character = chars[at];
        let simple = match character {
            '+' => Some(TokenKind::Plus),
            '-' => Some(TokenKind::Minus),
            '*' => Some(TokenKind::Star),
            '/' => Some(TokenKind::Slash),
            '(' => Some(TokenKind::Open),
            ')' => Some(TokenKind::Close),
            _ => None,
        };
        if let Some(kind) = simple {
            tokens.push(Token { kind, position: at });
            at += 1;
        } else if character.is_whitespace() {
            at += 1;
        } else if character.is_ascii_digit() || character == '.' {
            let (value, length) = number(&chars[at..]).map_err(|kind| CalcError::new(kind, at))?;
            tokens.push(Token {
                kind: TokenKind::Number(value),
                position: at,
            });
            at += length;
        } else {
            return Err(CalcError::new(ErrorKind::UnexpectedChar(character), at));
        }
    }
    tokens.push(Token {
        kind: TokenKind::End,
        position: chars.len(),
    });
    Ok(tokens)
}

/// Reads `digits[.digits]` or `.digits` from the start of `chars`: its value and length.
fn number(chars: &[char]) -> Result<(f64, usize), ErrorKind> {
    let digits = |from: usize| chars[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let whole = digits(0);
    let mut length = whole;
    if chars.get(length) == Some(&'.') {
        let fraction = digits(length + 1);
        if fraction == 0 {
            return Err(ErrorKind::BadNumber);
        }
        length += 1 + fraction;
    }
    let text: String = chars[..length].iter().collect();
    // Only ASCII digits and one dot reach here, which `f64::from_str` always accepts;
    // a number with hundreds of digits reads as infinity.
    let value: f64 = text.parse().map_err(|_| ErrorKind::BadNumber)?;
    if !value.is_finite() {
        return Err(ErrorKind::NumberTooLarge);
    }
    Ok((value, length))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<TokenKind> {
        tokenize(input)
            .unwrap()
            .into_iter()
            .map(|token| token.kind)
            .collect()
    }

    #[test]
    fn splits_numbers_and_operators() {
        use TokenKind::*;
        assert_eq!(
            kinds(" 3.5*(-.5)"),
            vec![Number(3.5), Star, Open, Minus, Number(0.5), Close, End]
        );
    }

    #[test]
    fn positions_count_characters() {
        let tokens = tokenize("é").unwrap_err();
        assert_eq!(tokens, CalcError::new(ErrorKind::UnexpectedChar('é'), 0));
        let error = tokenize("1 + é + x").unwrap_err();
        assert_eq!(error.position, 4);
    }

    #[test]
    fn rejects_malformed_numbers() {
        assert_eq!(
            tokenize("1 + 2.").unwrap_err(),
            CalcError::new(ErrorKind::BadNumber, 4)
        );
        assert_eq!(tokenize(".").unwrap_err().kind, ErrorKind::BadNumber);
        let huge = "9".repeat(400);
        assert_eq!(tokenize(&huge).unwrap_err().kind, ErrorKind::NumberTooLarge);
    }
}
