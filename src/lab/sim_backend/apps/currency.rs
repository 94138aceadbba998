//! Currency conversion: the seed's Flask API, kept route for route, plus a clearer one.
//!
//! - `GET /convertepradolareuro/15.0` answers exactly what the seed answered:
//!   `{"conversao":{"dolar":2.9411764705882355,"euro":2.678571428571429,"real":15.0}}`
//!   (reais divided by the BRL price of a dollar and of a euro).
//! - `GET /convert?amount=15&from=BRL&to=USD,EUR` converts between any currencies in
//!   the rate table, listing each result with the rate used.
//!
//! Rates come from configuration (`--rates`), never from the network: a backend that
//! blocks on a third-party API inside a request is a lesson for another day.
//!
//! OS concept: none of its own; one of the seeds' services a backend hosts, for the
//! balancer to spread. Its answers need no I/O, so what a request costs the backend is
//! the simulated service time alone.

use std::fmt;
use std::str::FromStr;

use http::{Method, StatusCode, header};
use serde_json::{Value, json};

use super::{error_response, percent};
use crate::http1::{Request, Response};

/// The currency every rate is quoted in, as in the seed: prices in Brazilian reais.
pub const BASE: &str = "BRL";

/// The exchange rates: how many reais one unit of each currency costs.
#[derive(Debug, Clone, PartialEq)]
pub struct Rates {
    /// `(code, BRL per unit)`, in the order given; `BRL` itself (1.0) is implied.
    brl_per_unit: Vec<(String, f64)>,
}

impl Default for Rates {
    /// The seed's rates: 5.10 reais per US dollar, 5.60 per euro.
    fn default() -> Self {
        Rates {
            brl_per_unit: vec![("USD".into(), 5.10), ("EUR".into(), 5.60)],
        }
    }
}

impl Rates {
    /// Reais per unit of `code` (case-insensitive), if the table knows it.
    pub fn brl_per(&self, code: &str) -> Option<f64> {
        if code.eq_ignore_ascii_case(BASE) {
            return Some(1.0);
        }
        self.brl_per_unit
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(code))
            .map(|(_, rate)| *rate)
    }

    /// Every currency code, the base first.
    pub fn codes(&self) -> Vec<&str> {
        std::iter::once(BASE)
            .chain(self.brl_per_unit.iter().map(|(code, _)| code.as_str()))
            .collect()
    }

    /// Sets (or adds) the price of `code` in reais.
    fn set(&mut self, code: String, rate: f64) {
        match self.brl_per_unit.iter_mut().find(|(known, _)| *known == code) {
            Some(entry) => entry.1 = rate,
            None => self.brl_per_unit.push((code, rate)),
        }
    }
}

/// `BRL_PER_USD=5.10,BRL_PER_EUR=5.60`: each entry sets the price of one currency in
/// reais; currencies not named keep their default rate, new ones are added.
impl FromStr for Rates {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut rates = Rates::default();
        for entry in text.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            let usage =
                || format!("{entry:?} is not a rate; write BRL_PER_<CODE>=<reais>, e.g. BRL_PER_USD=5.10");
            let (name, value) = entry.split_once('=').ok_or_else(usage)?;
            let code = name
                .trim()
                .to_ascii_uppercase()
                .strip_prefix("BRL_PER_")
                .map(str::to_string)
                .ok_or_else(usage)?;
            if code.len() != 3 || !code.bytes().all(|byte| byte.is_ascii_alphabetic()) || code == BASE {
                return Err(format!(
                    "{entry:?}: the currency must be a three-letter code other than {BASE}"
                ));
            }
            let rate: f64 = value.trim().parse().map_err(|_| usage())?;
            if !rate.is_finite() || rate <= 0.0 {
                return Err(format!("{entry:?}: a rate must be a positive number"));
            }
            rates.set(code, rate);
        }
        Ok(rates)
    }
}

impl fmt::Display for Rates {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: Vec<String> = self
            .brl_per_unit
            .iter()
            .map(|(code, rate)| format!("{BASE}_PER_{code}={rate}"))
            .collect();
        out.write_str(&entries.join(","))
    }
}

/// An amount of money from a URL: a finite number, not negative.
///
/// The seed (Flask's `<float:valor>` route converter) answered anything else, even
/// `15` without a decimal point, with an HTML 404 page; we accept `15` and answer
/// everything else with a 400 that says what is wrong.
pub fn parse_amount(text: &str) -> Result<f64, String> {
    if text.is_empty() {
        return Err("missing amount".into());
    }
    let amount: f64 = text
        .parse()
        .map_err(|_| format!("amount {text:?} is not a number"))?;
    if amount.is_nan() {
        return Err("amount must be a number, not NaN".into());
    }
    if amount.is_infinite() {
        return Err("amount must be finite".into());
    }
    if amount < 0.0 {
        return Err(format!("amount {text:?} is negative"));
    }
    // Adding zero turns `-0` into `0`, so "real" never shows `-0.0`.
    Ok(amount + 0.0)
}

/// `GET /convertepradolareuro/<amount>`: the seed's route and response, byte for byte.
pub fn handle_seed(request: &Request, rates: &Rates, amount_text: &str) -> Response {
    if let Some(refused) = only_get(request) {
        return refused;
    }
    let amount = match percent::decode(amount_text).and_then(|bytes| String::from_utf8(bytes).ok()) {
        Some(text) => parse_amount(&text),
        None => Err("amount is not valid percent-encoded text".into()),
    };
    let amount = match amount {
        Ok(amount) => amount,
        Err(reason) => return error_response(StatusCode::BAD_REQUEST, &reason),
    };
    let usd = rates.brl_per("USD").unwrap_or(f64::NAN);
    let eur = rates.brl_per("EUR").unwrap_or(f64::NAN);
    // The seed's Flask `jsonify` wrote compact JSON with sorted keys and a final
    // newline; this keeps that exact text (dolar, euro, real happen to be in order).
    let body = format!(
        "{{\"conversao\":{{\"dolar\":{},\"euro\":{},\"real\":{}}}}}\n",
        Value::from(amount / usd),
        Value::from(amount / eur),
        Value::from(amount),
    );
    Response::new(StatusCode::OK)
        .with_header(header::CONTENT_TYPE, "application/json")
        .with_body(body.into_bytes())
}

/// `GET /convert?amount=15&from=BRL&to=USD,EUR` (`from` defaults to BRL, `to` to every
/// other currency in the table).
pub fn handle_convert(request: &Request, rates: &Rates) -> Response {
    if let Some(refused) = only_get(request) {
        return refused;
    }
    let query = request.query();
    let param = |name: &str| percent::query_param(query, name).transpose();
    let parsed = (|| -> Result<(f64, String, Vec<String>), String> {
        let amount = parse_amount(&param("amount")?.unwrap_or_default())?;
        let from = param("from")?
            .unwrap_or_else(|| BASE.into())
            .trim()
            .to_ascii_uppercase();
        let to: Vec<String> = match param("to")? {
            Some(list) => list
                .split(',')
                .map(|code| code.trim().to_ascii_uppercase())
                .filter(|code| !code.is_empty())
                .collect(),
            None => rates
                .codes()
                .into_iter()
                .filter(|code| *code != from)
                .map(str::to_string)
                .collect(),
        };
        if to.is_empty() {
            return Err("no currency to convert to: add to=USD,EUR".into());
        }
        for code in std::iter::once(&from).chain(&to) {
            if rates.brl_per(code).is_none() {
                return Err(format!(
                    "unknown currency {code:?}; known: {}",
                    rates.codes().join(", ")
                ));
            }
        }
        Ok((amount, from, to))
    })();
    let (amount, from, to) = match parsed {
        Ok(parsed) => parsed,
        Err(reason) => return error_response(StatusCode::BAD_REQUEST, &reason),
    };
    let from_brl = rates.brl_per(&from).unwrap_or(f64::NAN);
    let results: Vec<Value> = to
        .iter()
        .map(|code| {
            let to_brl = rates.brl_per(code).unwrap_or(f64::NAN);
            // Through reais, dividing last, as the seed did: 15 BRL to USD is 15 / 5.10.
            let converted = amount * from_brl / to_brl;
            json!({"currency": code, "amount": converted, "rate": from_brl / to_brl})
        })
        .collect();
    Response::json(
        StatusCode::OK,
        &json!({"amount": amount, "from": from, "results": results}),
    )
}

fn only_get(request: &Request) -> Option<Response> {
    (request.method != Method::GET && request.method != Method::HEAD).then(|| {
        error_response(StatusCode::METHOD_NOT_ALLOWED, "use GET").with_header(header::ALLOW, "GET, HEAD")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_numbers_are_the_seeds() {
        let rates = Rates::default();
        assert_eq!(
            Value::from(15.0 / rates.brl_per("USD").unwrap()).to_string(),
            "2.9411764705882355"
        );
        assert_eq!(
            Value::from(15.0 / rates.brl_per("EUR").unwrap()).to_string(),
            "2.678571428571429"
        );
        assert_eq!(Value::from(15.0).to_string(), "15.0");
    }

    #[test]
    fn parses_rates() {
        let rates: Rates = "BRL_PER_USD=5.00, brl_per_gbp=6.5".parse().unwrap();
        assert_eq!(rates.brl_per("usd"), Some(5.0));
        assert_eq!(rates.brl_per("EUR"), Some(5.60));
        assert_eq!(rates.brl_per("GBP"), Some(6.5));
        assert_eq!(rates.brl_per("BRL"), Some(1.0));
        assert_eq!(rates.codes(), vec!["BRL", "USD", "EUR", "GBP"]);
        assert_eq!(rates.to_string(), "BRL_PER_USD=5,BRL_PER_EUR=5.6,BRL_PER_GBP=6.5");
        for bad in [
            "USD=5",
            "BRL_PER_USD",
            "BRL_PER_USD=x",
            "BRL_PER_USD=-1",
            "BRL_PER_US=1",
            "BRL_PER_BRL=2",
        ] {
            assert!(bad.parse::<Rates>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_bad_amounts_with_reasons() {
        assert_eq!(parse_amount("15"), Ok(15.0));
        assert_eq!(parse_amount("-0"), Ok(0.0));
        assert!(parse_amount("abc").unwrap_err().contains("not a number"));
        assert!(parse_amount("NaN").unwrap_err().contains("NaN"));
        assert!(parse_amount("inf").unwrap_err().contains("finite"));
        assert!(parse_amount("-1").unwrap_err().contains("negative"));
        assert!(parse_amount("").unwrap_err().contains("missing"));
    }
}
