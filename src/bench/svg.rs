//! A small SVG chart: points and lines on linear or base-2 logarithmic axes, enough for
//! the plots of `make experiment`, with no plotting crate and no Python.
//!
//! The output is plain text: a fixed-size `<svg>` with axes, ticks, a legend and one
//! element per point, so a reviewer can read the numbers in the file itself. Colours
//! are from the Okabe–Ito palette, which stays distinct for colour-blind readers, and
//! each series also has its own marker shape or dash, so colour is never the only cue.

use std::fmt::Write;

/// Okabe–Ito colours.
pub const BLACK: &str = "#000000";
pub const ORANGE: &str = "#E69F00";
pub const SKY_BLUE: &str = "#56B4E9";
pub const GREEN: &str = "#009E73";
pub const BLUE: &str = "#0072B2";
pub const VERMILLION: &str = "#D55E00";
pub const PURPLE: &str = "#CC79A7";

/// How data values map onto an axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    Linear {
        min: f64,
        max: f64,
    },
    /// Base-2 logarithmic, for quantities that double (1, 2, 4, ... workers).
    Log2 {
        min: f64,
        max: f64,
    },
}

impl Scale {
    /// Where `value` falls along the axis, 0.0 at `min` and 1.0 at `max`.
    pub fn fraction(&self, value: f64) -> f64 {
        match *self {
            Scale::Linear { min, max } => (value - min) / (max - min),
            Scale::Log2 { min, max } => (value.log2() - min.log2()) / (max.log2() - min.log2()),
        }
    }

    /// Round values for tick marks inside the range; none for a range that cannot be
    /// drawn (empty, not finite, or not positive on a log scale).
    pub fn ticks(&self) -> Vec<f64> {
        if !self.is_drawable() {
            return Vec::new();
        }
        match *self {
            Scale::Linear { min, max } => {
                let step = nice_step((max - min) / 8.0);
                let first = (min / step).ceil() as i64;
                let last = (max / step + 1e-9).floor() as i64;
                (first..=last).map(|index| index as f64 * step).collect()
            }
            Scale::Log2 { min, max } => {
                let first = min.log2().ceil() as i32;
                let last = (max.log2() + 1e-9).floor() as i32;
                (first..=last).map(|power| 2f64.powi(power)).collect()
            }
        }
    }

    /// Whether the range can be drawn. The tick loops rely on it: a log axis starting
    /// at 0 would otherwise ask for 2^31 ticks.
    pub fn is_drawable(&self) -> bool {
        match *self {
            Scale::Linear { min, max } => min.is_finite() && max.is_finite() && min < max,
            Scale::Log2 { min, max } => {
                min.is_finite() && max.is_finite() && min > 0.0 && min < max && (max / min).log2() <= 64.0
            }
        }
    }

    /// Whether `value` can be placed on this axis (a log axis has no place for 0).
    pub fn accepts(&self, value: f64) -> bool {
        match self {
            Scale::Linear { .. } => value.is_finite(),
            Scale::Log2 { .. } => value.is_finite() && value > 0.0,
        }
    }
}

/// 1, 2 or 5 times a power of ten, at least `rough`.
pub fn nice_step(rough: f64) -> f64 {
    if rough <= 0.0 || !rough.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * power)
        .find(|step| *step >= rough * 0.999)
        .unwrap_or(10.0 * power)
}

/// A linear axis from zero to a round number at or above `max`.
pub fn zero_to(max: f64) -> Scale {
    let step = nice_step(max / 8.0);
    Scale::Linear {
        min: 0.0,
        max: (max / step).ceil().max(1.0) * step,
    }
}

#[derive(Debug, Clone)]
pub struct Axis {
    pub label: String,
    pub scale: Scale,
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Circles,
    Squares,
    Line,
    DashedLine,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub mark: Mark,
    pub points: Vec<(f64, f64)>,
}

/// Text placed at a data point, e.g. to name the knee of a curve.
#[derive(Debug, Clone)]
pub struct Note {
    pub at: (f64, f64),
    pub text: String,
}

/// Which top corner of the plot holds the legend (the one the data leave free).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legend {
    TopLeft,
    TopRight,
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub subtitle: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    pub notes: Vec<Note>,
    pub legend: Legend,
}

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 560.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 80.0;
const BOTTOM: f64 = 70.0;

/// `&`, `<`, `>` and `"` as XML entities.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A tick label: no trailing zeros, no needless decimals.
pub fn format_tick(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

impl Chart {
    fn px(&self, (x, y): (f64, f64)) -> (f64, f64) {
        let plot_width = WIDTH - LEFT - RIGHT;
        let plot_height = HEIGHT - TOP - BOTTOM;
        (
            LEFT + self.x.scale.fraction(x) * plot_width,
            TOP + (1.0 - self.y.scale.fraction(y)) * plot_height,
        )
    }

    /// The whole chart as an SVG document.
    pub fn to_svg(&self) -> String {
        let mut svg = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_svg(&mut svg);
        svg
    }

    fn write_svg(&self, svg: &mut String) -> std::fmt::Result {
        let (right, bottom) = (WIDTH - RIGHT, HEIGHT - BOTTOM);
        writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="DejaVu Sans, Verdana, sans-serif">"#
        )?;
        writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#)?;
        writeln!(
            svg,
            r#"<clipPath id="plot"><rect x="{LEFT}" y="{TOP}" width="{}" height="{}"/></clipPath>"#,
            right - LEFT,
            bottom - TOP
        )?;
        writeln!(
            svg,
            r#"<text x="{LEFT}" y="30" font-size="22" font-weight="bold">{}</text>"#,
            escape(&self.title)
        )?;
        writeln!(
            svg,
            r##"<text x="{LEFT}" y="56" font-size="15" fill="#333">{}</text>"##,
            escape(&self.subtitle)
        )?;
        self.write_axes(svg)?;
        writeln!(svg, r#"<g clip-path="url(#plot)">"#)?;
        for series in &self.series {
            self.write_series(svg, series)?;
        }
        writeln!(svg, "</g>")?;
        for note in &self.notes {
            let (x, y) = self.px(note.at);
            writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" font-size="15" text-anchor="end">{}</text>"#,
                x - 8.0,
                y - 10.0,
                escape(&note.text)
            )?;
        }
        self.write_legend(svg)?;
        writeln!(svg, "</svg>")
    }

    fn write_axes(&self, svg: &mut String) -> std::fmt::Result {
        let (right, bottom) = (WIDTH - RIGHT, HEIGHT - BOTTOM);
        for tick in self.x.scale.ticks() {
            let (x, _) = self.px((tick, 0.0));
            writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{bottom}" stroke="#ddd"/><text x="{x:.1}" y="{}" font-size="15" text-anchor="middle">{}</text>"##,
                bottom + 22.0,
                format_tick(tick)
            )?;
        }
        for tick in self.y.scale.ticks() {
            let (_, y) = self.px((1.0, tick));
            writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{right}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" font-size="15" text-anchor="end">{}</text>"##,
                LEFT - 8.0,
                y + 5.0,
                format_tick(tick)
            )?;
        }
        writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none" stroke="#000"/>"##,
            right - LEFT,
            bottom - TOP
        )?;
        writeln!(
            svg,
            r#"<text x="{:.1}" y="{}" font-size="17" text-anchor="middle">{}</text>"#,
            (LEFT + right) / 2.0,
            HEIGHT - 18.0,
            escape(&self.x.label)
        )?;
        writeln!(
            svg,
            r#"<text transform="translate(24 {:.1}) rotate(-90)" font-size="17" text-anchor="middle">{}</text>"#,
            (TOP + bottom) / 2.0,
            escape(&self.y.label)
        )
    }

    fn write_series(&self, svg: &mut String, series: &Series) -> std::fmt::Result {
        let color = series.color;
        let placeable = |(x, y): &&(f64, f64)| self.x.scale.accepts(*x) && self.y.scale.accepts(*y);
        match series.mark {
            Mark::Line | Mark::DashedLine => {
                let points: Vec<String> = series
                    .points
                    .iter()
                    .filter(placeable)
                    .map(|point| {
                        let (x, y) = self.px(*point);
                        format!("{x:.1},{y:.1}")
                    })
                    .collect();
                let dash = if series.mark == Mark::DashedLine {
                    r#" stroke-dasharray="8 6""#
                } else {
                    ""
                };
                writeln!(
                    svg,
                    r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="3"{dash}/>"#,
                    points.join(" ")
                )
            }
            Mark::Circles | Mark::Squares => {
                for point in series.points.iter().filter(placeable) {
                    let (x, y) = self.px(*point);
                    writeln!(svg, "{}", marker(series.mark, color, x, y))?;
                }
                Ok(())
            }
        }
    }

    fn write_legend(&self, svg: &mut String) -> std::fmt::Result {
        let height = 26.0 * self.series.len() as f64 + 12.0;
        let width = 12.0
            + 44.0
            + self
                .series
                .iter()
                .map(|series| series.name.chars().count())
                .max()
                .unwrap_or(0) as f64
                * 8.6;
        let x = match self.legend {
            Legend::TopLeft => LEFT + 16.0,
            Legend::TopRight => WIDTH - RIGHT - width - 8.0,
        };
        writeln!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="{width:.1}" height="{height:.1}" fill="white" fill-opacity="0.9" stroke="#999"/>"##,
            x - 8.0,
            TOP + 10.0
        )?;
        for (index, series) in self.series.iter().enumerate() {
            let y = TOP + 30.0 + 26.0 * index as f64;
            match series.mark {
                Mark::Line | Mark::DashedLine => {
                    let dash = if series.mark == Mark::DashedLine {
                        r#" stroke-dasharray="8 6""#
                    } else {
                        ""
                    };
                    writeln!(
                        svg,
                        r#"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}" stroke-width="3"{dash}/>"#,
                        x + 32.0,
                        series.color
                    )?;
                }
                mark => writeln!(svg, "{}", marker(mark, series.color, x + 16.0, y))?,
            }
            writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" font-size="15">{}</text>"#,
                x + 44.0,
                y + 5.0,
                escape(&series.name)
            )?;
        }
        Ok(())
    }
}

fn marker(mark: Mark, color: &str, x: f64, y: f64) -> String {
    match mark {
        Mark::Squares => format!(
            r#"<rect x="{:.1}" y="{:.1}" width="12" height="12" fill="{color}" stroke="black"/>"#,
            x - 6.0,
            y - 6.0
        ),
        _ => format!(r#"<circle cx="{x:.1}" cy="{y:.1}" r="7" fill="{color}" stroke="black"/>"#),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_map_their_ends_to_0_and_1() {
        let linear = Scale::Linear { min: 0.0, max: 200.0 };
        assert_eq!(linear.fraction(0.0), 0.0);
        assert_eq!(linear.fraction(50.0), 0.25);
        let log = Scale::Log2 { min: 1.0, max: 16.0 };
        assert_eq!(log.fraction(1.0), 0.0);
        assert_eq!(log.fraction(4.0), 0.5);
        assert_eq!(log.fraction(16.0), 1.0);
    }

    #[test]
    fn ticks_are_round_numbers_or_powers_of_two() {
        assert_eq!(nice_step(23.0), 50.0);
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(zero_to(130.0), Scale::Linear { min: 0.0, max: 140.0 });
        assert_eq!(
            zero_to(130.0).ticks(),
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0, 120.0, 140.0]
        );
        let log = Scale::Log2 { min: 0.7, max: 180.0 };
        assert_eq!(log.ticks(), vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]);
        assert!(
            Scale::Log2 { min: 0.0, max: 40.0 }.ticks().is_empty(),
            "log2(0) is not a tick"
        );
        assert!(
            Scale::Linear {
                min: 1.0,
                max: f64::NAN
            }
            .ticks()
            .is_empty()
        );
        let seconds = Scale::Log2 { min: 0.2, max: 40.0 };
        assert_eq!(seconds.ticks()[0], 0.25);
        assert_eq!(format_tick(0.25), "0.25");
        assert_eq!(format_tick(128.0), "128");
    }

    #[test]
    fn the_svg_has_one_marker_per_point_and_escaped_text() {
        let chart = Chart {
            title: "W & c <test>".into(),
            subtitle: "sub".into(),
            x: Axis {
                label: "workers".into(),
                scale: Scale::Log2 { min: 0.8, max: 40.0 },
            },
            y: Axis {
                label: "req/s".into(),
                scale: zero_to(70.0),
            },
            series: vec![
                Series {
                    name: "measured".into(),
                    color: ORANGE,
                    mark: Mark::Circles,
                    // The last point has no place on a log axis and is left out.
                    points: vec![(1.0, 2.0), (2.0, 4.0), (4.0, 8.0), (0.0, 1.0)],
                },
                Series {
                    name: "bound".into(),
                    color: BLUE,
                    mark: Mark::Line,
                    points: vec![(1.0, 2.0), (32.0, 64.0)],
                },
            ],
            notes: vec![Note {
                at: (32.0, 64.0),
                text: "knee".into(),
            }],
            legend: Legend::TopLeft,
        };
        let svg = chart.to_svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // Three data points plus one legend marker.
        assert_eq!(svg.matches("<circle").count(), 4);
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains("W &amp; c &lt;test&gt;"));
        assert!(!svg.contains("<test>"));
        assert!(svg.contains(">knee</text>") && svg.contains(">measured</text>"));
        // x = 1 worker sits left of x = 4 workers.
        let (left, _) = chart.px((1.0, 0.0));
        let (right, _) = chart.px((4.0, 0.0));
        assert!(left < right);
        // Larger y is higher up, so a smaller pixel row.
        assert!(chart.px((1.0, 60.0)).1 < chart.px((1.0, 10.0)).1);
    }
}
