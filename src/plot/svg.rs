//! Drawing a `Chart` as SVG text: a frame, grid lines at the ticks, the series clipped
//! to the frame, and a legend to the right.

use std::fmt::Write as _;

use super::axis::{Axis, data_range, format_tick};
use super::{Chart, LineStyle, Series};

const MARGIN_LEFT: f64 = 78.0;
const MARGIN_TOP: f64 = 48.0;
const MARGIN_BOTTOM: f64 = 64.0;
const LEGEND_WIDTH: f64 = 200.0;
const MARKER_RADIUS: f64 = 3.5;

/// Escapes text for use inside SVG elements and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// The x and y axes of `chart`, placed in its frame.
fn axes(chart: &Chart) -> (Axis, Axis) {
    let all = || chart.series.iter().flat_map(|series| series.points.iter());
    let (x_low, x_high) = chart
        .x_range
        .unwrap_or_else(|| data_range(all().map(|point| point.0), chart.x_scale));
    let (y_low, y_high) = chart
        .y_range
        .unwrap_or_else(|| data_range(all().map(|point| point.1), chart.y_scale));
    let right = chart.width - LEGEND_WIDTH;
    let bottom = chart.height - MARGIN_BOTTOM;
    (
        Axis {
            low: x_low,
            high: x_high,
            scale: chart.x_scale,
            from: MARGIN_LEFT,
            to: right,
        },
        Axis {
            low: y_low,
            high: y_high,
            scale: chart.y_scale,
            from: bottom,
            to: MARGIN_TOP,
        },
    )
}

/// The chart as a standalone SVG document.
pub fn render(chart: &Chart) -> String {
    let (x, y) = axes(chart);
    let (left, right, top, bottom) = (x.from, x.to, y.to, y.from);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="13">"#,
        w = chart.width,
        h = chart.height
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="28" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
        (left + right) / 2.0,
        escape(&chart.title)
    );

    // Grid and tick labels.
    for tick in x.ticks() {
        let position = x.pixel(tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{position:.1}" y1="{top:.1}" x2="{position:.1}" y2="{bottom:.1}" stroke="#e4e4e4"/><text x="{position:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            bottom + 18.0,
            format_tick(tick)
        );
    }
    for tick in y.ticks() {
        let position = y.pixel(tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{left:.1}" y1="{position:.1}" x2="{right:.1}" y2="{position:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            left - 6.0,
            position + 4.5,
            format_tick(tick)
        );
    }
    let _ = writeln!(
        svg,
        r#"<rect x="{left:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="black"/>"#,
        right - left,
        bottom - top
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        (left + right) / 2.0,
        bottom + 40.0,
        escape(&chart.x_label)
    );
    let middle = (top + bottom) / 2.0;
    let _ = writeln!(
        svg,
        r#"<text x="20" y="{middle:.1}" text-anchor="middle" transform="rotate(-90 20 {middle:.1})">{}</text>"#,
        escape(&chart.y_label)
    );

    // Series, clipped to the frame so that a curve leaving the range stops at the edge.
    let _ = writeln!(
        svg,
        r#"<clipPath id="frame"><rect x="{left:.1}" y="{top:.1}" width="{:.1}" height="{:.1}"/></clipPath>"#,
        right - left,
        bottom - top
    );
    let _ = writeln!(svg, r#"<g clip-path="url(#frame)">"#);
    for series in &chart.series {
        draw_series(&mut svg, series, &x, &y);
    }
    let _ = writeln!(svg, "</g>");

    draw_legend(&mut svg, chart, right + 16.0, top);
    if !chart.footnote.is_empty() {
        let _ = writeln!(
            svg,
            r##"<text x="{left:.1}" y="{:.1}" font-size="11" fill="#666">{}</text>"##,
            chart.height - 8.0,
            escape(&chart.footnote)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The stroke attributes of a line style.
fn stroke(series: &Series, style: LineStyle) -> String {
    let dash = match style {
        LineStyle::Solid => "",
        LineStyle::Dashed => r#" stroke-dasharray="6 4""#,
    };
    format!(
        r#"stroke="{}" stroke-width="2" fill="none"{dash}"#,
        escape(&series.color)
    )
}

fn draw_series(svg: &mut String, series: &Series, x: &Axis, y: &Axis) {
    let shown: Vec<(f64, f64)> = series
        .points
        .iter()
        .filter(|(px, py)| x.shows(*px) && y.shows(*py))
        .map(|&(px, py)| (x.pixel(px), y.pixel(py)))
        .collect();
    if let Some(style) = series.line {
        let points: Vec<String> = shown.iter().map(|(px, py)| format!("{px:.1},{py:.1}")).collect();
        let _ = writeln!(
            svg,
            r#"<polyline {} points="{}"/>"#,
            stroke(series, style),
            points.join(" ")
        );
    }
    if series.markers {
        for (px, py) in &shown {
            let _ = writeln!(
                svg,
                r#"<circle cx="{px:.1}" cy="{py:.1}" r="{MARKER_RADIUS}" fill="{}"/>"#,
                escape(&series.color)
            );
        }
    }
}

fn draw_legend(svg: &mut String, chart: &Chart, left: f64, top: f64) {
    let mut row = top + 8.0;
    for series in chart.series.iter().filter(|series| !series.label.is_empty()) {
        let (x1, x2) = (left, left + 28.0);
        if let Some(style) = series.line {
            let _ = writeln!(
                svg,
                r#"<line x1="{x1:.1}" y1="{row:.1}" x2="{x2:.1}" y2="{row:.1}" {}/>"#,
                stroke(series, style)
            );
        }
        if series.markers {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{row:.1}" r="{MARKER_RADIUS}" fill="{}"/>"#,
                (x1 + x2) / 2.0,
                escape(&series.color)
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            x2 + 8.0,
            row + 4.5,
            escape(&series.label)
        );
        row += 22.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::Scale;

    fn sample() -> Chart {
        Chart::new("Time <in> system", "load λ", "mean time & more")
            .with_y_scale(Scale::Log)
            .with_series(
                Series::line("theory", "#d62728", vec![(0.5, 2.0), (0.9, 10.0), (0.99, 100.0)]).dashed(),
            )
            .with_series(Series::points(
                "measured",
                "#d62728",
                vec![(0.5, 2.1), (0.9, 9.7), (0.95, 0.0)],
            ))
            .with_series(Series::line("", "#888", vec![(0.5, 1.0), (0.99, 1.0)]))
            .with_footnote("made by a test")
    }

    #[test]
    fn draws_every_series_legend_entry_and_escapes_text() {
        let svg = sample().to_svg();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("Time &lt;in&gt; system") && svg.contains("mean time &amp; more"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(
            svg.matches("stroke-dasharray").count(),
            2,
            "the dashed line and its legend sample"
        );
        // Two measured points drawn (the zero cannot be on a log axis) plus one legend marker.
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains(">theory</text>") && svg.contains(">measured</text>"));
        assert!(svg.contains("made by a test"));
        // Log ticks on the y axis: 1, 10 and 100 are labelled.
        for label in [">1</text>", ">10</text>", ">100</text>"] {
            assert!(svg.contains(label), "{label}");
        }
    }

    #[test]
    fn higher_values_are_drawn_higher_up() {
        let chart = sample();
        let (x, y) = axes(&chart);
        assert!(y.pixel(100.0) < y.pixel(10.0));
        assert!(x.pixel(0.9) > x.pixel(0.5));
        assert!(x.from >= MARGIN_LEFT && x.to <= chart.width - LEGEND_WIDTH);
    }

    #[test]
    fn fixed_ranges_are_kept_and_every_tag_is_closed() {
        let svg = sample().with_x_range(0.5, 1.0).with_y_range(1.0, 200.0).to_svg();
        assert!(svg.contains(">0.5</text>") && svg.contains(">1</text>"));
        let opened = svg.matches('<').count();
        let self_closed = svg.matches("/>").count();
        let closing = svg.matches("</").count();
        assert_eq!(opened, self_closed + 2 * closing, "unbalanced tags");
    }
}
