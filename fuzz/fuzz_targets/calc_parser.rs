//! Fuzzes the calculator: any input must give a value or a `CalcError` (never a panic
//! or a stack overflow), and a parsed expression printed back must parse, print the
//! same again and evaluate the same, so the normalised `expr` the server answers with
//! means what the user typed.

#![no_main]

use libfuzzer_sys::fuzz_target;
use roundhouse::lab::calc::{self, MAX_INPUT_BYTES};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = calc::parse(input) else {
        return;
    };
    let value = expr.eval();
    if let Ok(result) = value {
        assert!(result.is_finite());
    }
    let printed = expr.to_string();
    if printed.len() <= MAX_INPUT_BYTES {
        let reparsed = calc::parse(&printed).expect("printed expression must parse");
        assert_eq!(reparsed.to_string(), printed, "{input:?}");
        let kind = |result: Result<f64, calc::CalcError>| result.map_err(|error| error.kind);
        assert_eq!(
            kind(reparsed.eval()),
            kind(value),
            "{input:?} printed as {printed:?}"
        );
    }
});
