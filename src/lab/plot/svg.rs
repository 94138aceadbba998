//! Drawing a `Chart` as SVG text: a frame, grid lines at the ticks, the series clipped
//! to the frame, notes at points, and a legend to the right or inside a top corner.

use std::fmt::Write as _;

use super::axis::{Axis, data_range, format_tick};
use super::{Chart, Legend, LineStyle, Marker, Series};

const MARGIN_LEFT: f64 = 78.0;
const MARGIN_TOP: f64 = 48.0;
/// Extra room at the top for a subtitle.
const SUBTITLE_HEIGHT: f64 = 22.0;
const MARGIN_BOTTOM: f64 = 64.0;
const LEGEND_WIDTH: f64 = 200.0;
/// Right margin when the legend is inside the plot.
const MARGIN_RIGHT: f64 = 30.0;
const LEGEND_ROW: f64 = 22.0;

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
    let right = chart.width
        - match chart.legend {
            Legend::Right => LEGEND_WIDTH,
            Legend::TopLeft | Legend::TopRight => MARGIN_RIGHT,
        };
    let top = if chart.subtitle.is_empty() {
        MARGIN_TOP
    } else {
        MARGIN_TOP + SUBTITLE_HEIGHT
    };
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
            to: top,
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
    if !chart.subtitle.is_empty() {
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="50" text-anchor="middle" fill="#333">{}</text>"##,
            (left + right) / 2.0,
            escape(&chart.subtitle)
        );
    }

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
        draw_series(&mut svg, series, &x, &y, chart.marker_size);
    }
    let _ = writeln!(svg, "</g>");
    for note in &chart.notes {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            x.pixel(note.at.0) - 8.0,
            y.pixel(note.at.1) - 10.0,
            escape(&note.text)
        );
    }

    draw_legend(&mut svg, chart, (left, right), top);
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

/// One marker centred on (x, y), outlined so that pale colours show on white.
fn marker(marker: Marker, color: &str, size: f64, x: f64, y: f64) -> String {
    let color = escape(color);
    match marker {
        Marker::Circle => format!(
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="{}" fill="{color}" stroke="black" stroke-width="0.75"/>"#,
            size / 2.0
        ),
        Marker::Square => format!(
            r#"<rect x="{:.1}" y="{:.1}" width="{size}" height="{size}" fill="{color}" stroke="black" stroke-width="0.75"/>"#,
            x - size / 2.0,
            y - size / 2.0
        ),
    }
}

fn draw_series(svg: &mut String, series: &Series, x: &Axis, y: &Axis, marker_size: f64) {
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
    if let Some(shape) = series.marker {
        for (px, py) in &shown {
            let _ = writeln!(svg, "{}", marker(shape, &series.color, marker_size, *px, *py));
        }
    }
}

/// The legend: right of the plot, or in a white box inside a top corner of it.
fn draw_legend(svg: &mut String, chart: &Chart, (plot_left, plot_right): (f64, f64), top: f64) {
    let entries: Vec<&Series> = chart
        .series
        .iter()
        .filter(|series| !series.label.is_empty())
        .collect();
    // Text is about 7 pixels per character at this font size.
    let width = 44.0
        + entries
            .iter()
            .map(|series| series.label.chars().count())
            .max()
            .unwrap_or(0) as f64
            * 7.0;
    let left = match chart.legend {
        Legend::Right => plot_right + 16.0,
        Legend::TopLeft => plot_left + 16.0,
        Legend::TopRight => plot_right - width - 8.0,
    };
    let mut row = top + 8.0;
    if chart.legend != Legend::Right && !entries.is_empty() {
        row = top + 26.0;
        let _ = writeln!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="{width:.1}" height="{:.1}" fill="white" fill-opacity="0.9" stroke="#999"/>"##,
            left - 8.0,
            top + 10.0,
            LEGEND_ROW * entries.len() as f64 + 10.0
        );
    }
    for series in entries {
        let (x1, x2) = (left, left + 28.0);
        if let Some(style) = series.line {
            let _ = writeln!(
                svg,
                r#"<line x1="{x1:.1}" y1="{row:.1}" x2="{x2:.1}" y2="{row:.1}" {}/>"#,
                stroke(series, style)
            );
        }
        if let Some(shape) = series.marker {
            let _ = writeln!(
                svg,
                "{}",
                marker(shape, &series.color, chart.marker_size, (x1 + x2) / 2.0, row)
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            x2 + 8.0,
            row + 4.5,
            escape(&series.label)
        );
        row += LEGEND_ROW;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::plot::Scale;

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
    fn log2_axes_notes_squares_and_an_inside_legend() {
        use crate::lab::plot::{Legend, Marker, okabe_ito};
        let chart = Chart::new("W & c <test>", "workers", "req/s")
            .with_subtitle("sub & title")
            .with_x_scale(Scale::Log2)
            .with_x_range(0.8, 40.0)
            .with_y_range(0.0, 80.0)
            .with_series(
                // The last point has no place on a log axis and is left out.
                Series::points(
                    "measured",
                    okabe_ito::ORANGE,
                    vec![(1.0, 2.0), (2.0, 4.0), (4.0, 8.0), (0.0, 1.0)],
                ),
            )
            .with_series(
                Series::points("p99", okabe_ito::VERMILLION, vec![(1.0, 3.0), (2.0, 5.0)])
                    .with_marker(Marker::Square),
            )
            .with_series(Series::line(
                "bound",
                okabe_ito::BLUE,
                vec![(1.0, 2.0), (32.0, 64.0)],
            ))
            .with_note((32.0, 64.0), "knee")
            .with_legend(Legend::TopLeft)
            .with_marker_size(12.0);
        let svg = chart.to_svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // Three data points plus one legend marker.
        assert_eq!(svg.matches("<circle").count(), 4);
        assert_eq!(
            svg.matches(r#"width="12""#).count(),
            2 + 1,
            "two squares and the legend's"
        );
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains("W &amp; c &lt;test&gt;") && svg.contains("sub &amp; title"));
        assert!(!svg.contains("<test>"));
        assert!(svg.contains(">knee</text>") && svg.contains(">measured</text>"));
        // Powers of two on the x axis.
        for label in [">1</text>", ">2</text>", ">32</text>"] {
            assert!(svg.contains(label), "{label}");
        }
        let (x, y) = axes(&chart);
        assert!(x.pixel(1.0) < x.pixel(4.0));
        assert!(y.pixel(60.0) < y.pixel(10.0));
        // With the legend inside, the plot takes the width the legend column would.
        assert!(x.to > chart.width - LEGEND_WIDTH);
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
