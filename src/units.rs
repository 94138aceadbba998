//! Parsing the units people type on a command line: durations, ranges, sizes.
//!
//! OS concept: none of its own; these parsers serve the flags and the configuration
//! file alike, so `"1.5s"` or `"10M"` means one thing everywhere. Sizes are binary
//! (`1K` is 1,024 bytes), as memory and buffer sizes are counted.

use std::ops::RangeInclusive;
use std::time::Duration;

/// `500ms`, `2s`, `1m`, or a bare number of seconds (`1.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(number) = text.strip_suffix("ms") {
        (number, 0.001)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1.0)
    } else if let Some(number) = text.strip_suffix('m') {
        (number, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (examples: 500ms, 2s, 1m, 10)"))?;
    if !value.is_finite() || value < 0.0 || value * scale > 86_400.0 * 365.0 {
        return Err(format!("{text:?} is not a duration between 0 and a year"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

/// A duration that must be more than zero: a timeout of nothing would end what it times
/// at once (a socket timeout of zero is refused by the kernel interface, EINVAL).
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!("{text:?}: must be more than 0"));
    }
    Ok(duration)
}

/// `MIN..MAX` in milliseconds, e.g. `200..800`; a single number means exactly that.
pub fn parse_millis_range(text: &str) -> Result<RangeInclusive<u64>, String> {
    let parse = |part: &str| {
        part.trim()
            .parse::<u64>()
            .map_err(|_| format!("{text:?} is not a range of milliseconds (example: 200..800)"))
    };
    let (min, max) = match text.split_once("..") {
        Some((min, max)) => (parse(min)?, parse(max.trim_start_matches('='))?),
        None => {
            let exact = parse(text)?;
            (exact, exact)
        }
    };
    if min > max {
        return Err(format!("range {text:?} has its minimum above its maximum"));
    }
    Ok(min..=max)
}

/// A byte size: `10M`, `512K`, `1G`, `10MiB`, or a bare number of bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let upper = text.trim().to_ascii_uppercase();
    let trimmed = upper.trim_end_matches("IB").trim_end_matches('B');
    let (number, scale) = match trimmed.chars().last() {
        Some('K') => (&trimmed[..trimmed.len() - 1], 1u64 << 10),
        Some('M') => (&trimmed[..trimmed.len() - 1], 1 << 20),
        Some('G') => (&trimmed[..trimmed.len() - 1], 1 << 30),
        _ => (trimmed, 1),
    };
    let value: u64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a size (examples: 512K, 10M, 1G, 4096)"))?;
    value
        .checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_positive_duration_refuses_zero() {
        assert!(parse_positive_duration("0").is_err());
        assert!(parse_positive_duration("0ms").is_err());
        assert_eq!(parse_positive_duration("2s"), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_millis_range("200..800").unwrap(), 200..=800);
        assert_eq!(parse_millis_range("5").unwrap(), 5..=5);
        assert!(parse_millis_range("800..200").is_err());
        assert!(parse_millis_range("a..b").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10M").unwrap(), 10 << 20);
        assert_eq!(parse_size("512KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
    }
}
