//! `/calc`: the seed's distributed calculator, as an HTTP service.
//!
//! `GET /calc?expr=3%2B4` or `POST /calc` with the expression as the body answers
//! `{"expr": "3 + 4", "result": 7}`. The parsing and arithmetic live in `crate::lab::calc`;
//! this file only maps HTTP to it and its errors to statuses: 400 for input that is
//! not an expression, 413 for input over 1 KiB, 422 for a valid expression without a
//! value (division by zero).
//!
//! OS concept: none new; bounded work per request. `handle` refuses a body over
//! `MAX_INPUT_BYTES` before decoding it, so what one request costs the backend has a
//! ceiling whatever a client sends; the parser's depth cap does the same for the stack.

use http::{Method, StatusCode, header};
use serde_json::{Value, json};

use super::{error_response, percent};
use crate::http1::{Request, Response};
use crate::lab::calc::{self, CalcError, ErrorKind, MAX_INPUT_BYTES};

pub fn handle(request: &Request) -> Response {
    let (input, from_query) = match request.method {
        Method::GET | Method::HEAD => match percent::query_param(request.query(), "expr") {
            Some(Ok(expr)) => (expr, true),
            Some(Err(reason)) => return error_response(StatusCode::BAD_REQUEST, &reason),
            None => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "missing expression: use /calc?expr=3%2B4, or POST the expression as the body",
                );
            }
        },
        Method::POST => {
            // Checked before decoding, so an oversized body costs no further work.
            if request.body.len() > MAX_INPUT_BYTES {
                let error = CalcError::new(ErrorKind::TooLong, MAX_INPUT_BYTES);
                return calc_error_response(&error, false);
            }
            match String::from_utf8(request.body.clone()) {
                Ok(text) => (text, false),
                Err(_) => return error_response(StatusCode::BAD_REQUEST, "the body is not UTF-8 text"),
            }
        }
        _ => {
            return error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "use GET /calc?expr=... or POST /calc",
            )
            .with_header(header::ALLOW, "GET, HEAD, POST");
        }
    };
    // The URL hint only helps when a `+` in the query became a space.
    let plus_in_query = from_query && request.query().is_some_and(|query| query.contains('+'));
    match calc::calculate(&input) {
        Ok(calculation) => Response::json(
            StatusCode::OK,
            &json!({"expr": calculation.expr, "result": number_value(calculation.result)}),
        ),
        Err(error) => calc_error_response(&error, plus_in_query),
    }
}

/// A whole result becomes a JSON integer (`7`, not `7.0`).
fn number_value(value: f64) -> Value {
    if calc::is_exact_integer(value) {
        Value::from(value as i64)
    } else {
        Value::from(value)
    }
}

fn calc_error_response(error: &CalcError, plus_in_query: bool) -> Response {
    let status = match &error.kind {
        ErrorKind::TooLong => StatusCode::PAYLOAD_TOO_LARGE,
        kind if kind.is_arithmetic() => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut message = error.kind.to_string();
    if plus_in_query && status == StatusCode::BAD_REQUEST {
        message.push_str(" (in a URL query '+' means a space: write %2B, or POST the expression)");
    }
    Response::json(status, &json!({"error": message, "position": error.position}))
}
