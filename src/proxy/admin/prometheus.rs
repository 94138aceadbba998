//! Writing Prometheus's text exposition format, version 0.0.4: per metric family a
//! `# HELP` line, a `# TYPE` line, then its samples, one per line, all together.
//!
//! OS concept: none of its own; it serves `/metrics` (`metrics.rs`, `discovery.rs`), so
//! the counters the other modules keep can be scraped. `Exposition` escapes help text
//! and label values as the format requires, since a pool name comes from configuration.

use std::fmt::{Display, Write};

/// The media type Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A page being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts a family: its HELP and TYPE lines. Its samples must follow at once.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample line: `name{label="value",...} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (position, (label, text)) in labels.iter().enumerate() {
                if position > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{label}=\"{}\"", escape_label(text));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// A label value with `\`, `"` and newlines escaped, as the format requires.
pub fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A float as Prometheus writes it: `+Inf` for infinity, otherwise Rust's shortest
/// exact form (`0.005`, `1`, `2.5`).
pub fn float(value: f64) -> String {
    if value == f64::INFINITY {
        "+Inf".into()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_help_type_and_escaped_samples() {
        let mut page = Exposition::default();
        page.family("x_total", Kind::Counter, "A help\nline");
        page.sample("x_total", &[("path", "a\"b\\c")], 3);
        page.sample("x_total", &[], 4);
        assert_eq!(
            page.finish(),
            "# HELP x_total A help\\nline\n# TYPE x_total counter\nx_total{path=\"a\\\"b\\\\c\"} 3\nx_total 4\n"
        );
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(0.0025), "0.0025");
        assert_eq!(float(1.0), "1");
    }
}
