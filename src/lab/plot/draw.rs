//! Drawing a `Chart` with plotters: the title and notes in a header and footer, the
//! axes (ticks, grid, labels) from plotters' linear and logarithmic coordinates, the
//! series cut at the frame (`clip`), and the legend in a corner of the plot.
//!
//! OS concept: none of its own; `render` turns the measurements of `make simulate-plot`
//! and `make experiment` into the SVG figures in docs/img.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::data::float::pretty_print_float;
use plotters::element::{DashedPathElement, DottedPathElement, Drawable, PointCollection};
use plotters::prelude::*;
use plotters::series::{DashedLineSeries, DottedLineSeries};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_backend::DrawingErrorKind;

use super::clip::clip_line;
use super::{Chart, Colour, Legend, LineStyle, Marker, Scale, Series, okabe_ito};

/// Text sizes, large enough to read from the back of a lecture room. plotters takes
/// them in points and writes `font-size` in pixels, 1/1.24 of it: 30 becomes 24 px.
const TITLE: u32 = 32;
const SUBTITLE: u32 = 23;
const AXIS_LABEL: u32 = 25;
const TICK: u32 = 23;
const LEGEND: u32 = 22;
const NOTE: u32 = 22;
const FOOTNOTE: u32 = 18;
const FONT: &str = "sans-serif";
/// Width of every data line.
const LINE_WIDTH: u32 = 3;
/// Dash and gap lengths in pixels, and the dots' spacing and radius: one set, used by
/// the lines and by their samples in the legend.
const LONG_DASH: (i32, i32) = (16, 9);
const FINE_DASH: (i32, i32) = (6, 5);
const DOT_SPACING: i32 = 11;
const DOT_RADIUS: i32 = 3;

/// The dash and gap of a dashed style.
fn dashes(style: LineStyle) -> Option<(i32, i32)> {
    match style {
        LineStyle::Dashed => Some(LONG_DASH),
        LineStyle::FineDashed => Some(FINE_DASH),
        LineStyle::Solid | LineStyle::Dotted => None,
    }
}

/// Drawing failed; with an in-memory SVG target this means a bug, not bad input.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the chart: {0}")]
pub struct PlotError(String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for PlotError {
    fn from(error: DrawingAreaErrorKind<E>) -> Self {
        PlotError(error.to_string())
    }
}

/// The chart as a standalone SVG document.
pub fn render(chart: &Chart) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (chart.width, chart.height)).into_drawing_area();
        root.fill(&WHITE)?;
        let footer = if chart.footnote.is_empty() { 8 } else { 30 };
        let (upper, bottom) = root.split_vertically(chart.height.saturating_sub(footer));
        let mut body = upper
            .margin(8, 0, 0, 0)
            .titled(&chart.title, (FONT, TITLE, FontStyle::Bold))?;
        if !chart.subtitle.is_empty() {
            body = body.titled(&chart.subtitle, (FONT, SUBTITLE))?;
        }
        let small_print = TextStyle::from((FONT, FOOTNOTE).into_font()).color(&okabe_ito::GREY);
        bottom.draw_text(&chart.footnote, &small_print, (16, 6))?;
        with_y_axis(&body, chart)?;
        root.present()?;
    }
    Ok(svg)
}

/// plotters' coordinate for each scale has its own type, so the axes are chosen in two
/// steps, y then x, and `plot` is written once for all of them.
fn with_y_axis(area: &DrawingArea<SVGBackend, Shift>, chart: &Chart) -> Result<(), PlotError> {
    let range = chart.y.low..chart.y.high;
    match chart.y.scale {
        Scale::Linear => with_x_axis(area, chart, range),
        Scale::Log => with_x_axis(area, chart, range.log_scale()),
        Scale::Log2 => with_x_axis(area, chart, range.log_scale().base(2.0)),
    }
}

fn with_x_axis<Y>(area: &DrawingArea<SVGBackend, Shift>, chart: &Chart, y: Y) -> Result<(), PlotError>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let range = chart.x.low..chart.x.high;
    match chart.x.scale {
        Scale::Linear => plot(area, chart, range, y),
        Scale::Log => plot(area, chart, range.log_scale(), y),
        Scale::Log2 => plot(area, chart, range.log_scale().base(2.0), y),
    }
}

/// How many labels to ask plotters for. On a log axis it labels every power of the base
/// and, when asked for many, also the multiples between them; a base-10 axis keeps to
/// the decades (the light grid shows 2..9), a base-2 axis has no multiples.
fn labels(scale: Scale) -> usize {
    match scale {
        Scale::Linear => 8,
        Scale::Log => 4,
        Scale::Log2 => 12,
    }
}

/// A tick label with no more digits than it needs (`0.25`, `2`, `1000`).
fn tick(value: &f64) -> String {
    pretty_print_float(*value, false)
}

fn plot<X, Y>(area: &DrawingArea<SVGBackend, Shift>, chart: &Chart, x: X, y: Y) -> Result<(), PlotError>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut context = ChartBuilder::on(area)
        .margin_left(16)
        .margin_right(36)
        .margin_top(8)
        .x_label_area_size(72)
        .y_label_area_size(100)
        .build_cartesian_2d(x, y)?;
    context
        .configure_mesh()
        .x_desc(chart.x.label.as_str())
        .y_desc(chart.y.label.as_str())
        .x_labels(labels(chart.x.scale))
        .y_labels(labels(chart.y.scale))
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style((FONT, TICK))
        .axis_desc_style((FONT, AXIS_LABEL))
        .bold_line_style(RGBColor(0xC8, 0xC8, 0xC8))
        .light_line_style(RGBColor(0xEE, 0xEE, 0xEE))
        .axis_style(BLACK.stroke_width(2))
        .draw()?;

    for series in &chart.series {
        draw_series(&mut context, chart, series)?;
    }
    for note in &chart.notes {
        if chart.x.contains(note.at.0) && chart.y.contains(note.at.1) {
            let style = TextStyle::from((FONT, NOTE).into_font()).pos(Pos::new(HPos::Right, VPos::Bottom));
            context.draw_series(std::iter::once(
                EmptyElement::at(note.at) + Text::new(note.text.clone(), (-10, -10), style),
            ))?;
        }
    }
    if chart.series.iter().any(|series| !series.label.is_empty()) {
        let position = match chart.legend {
            Legend::TopLeft => SeriesLabelPosition::UpperLeft,
            Legend::TopRight => SeriesLabelPosition::UpperRight,
            Legend::BottomLeft => SeriesLabelPosition::LowerLeft,
            Legend::BottomRight => SeriesLabelPosition::LowerRight,
        };
        context
            .configure_series_labels()
            .position(position)
            .legend_area_size(SAMPLE + 14)
            .margin(14)
            .label_font((FONT, LEGEND))
            .background_style(WHITE.mix(0.92))
            .border_style(RGBColor(0x99, 0x99, 0x99))
            .draw()?;
    }
    Ok(())
}

type Context<'a, 'b, X, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>;

fn draw_series<X, Y>(context: &mut Context<X, Y>, chart: &Chart, series: &Series) -> Result<(), PlotError>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let colour = series.colour;
    let stroke = colour.stroke_width(LINE_WIDTH);
    if let Some(style) = series.line {
        for run in clip_line(&series.points, &chart.x, &chart.y) {
            match (style, dashes(style)) {
                (_, Some((dash, gap))) => {
                    context.draw_series(DashedLineSeries::new(run, dash, gap, stroke))?
                }
                (LineStyle::Dotted, None) => {
                    context.draw_series(DottedLineSeries::new(run, 0, DOT_SPACING, move |at| {
                        Circle::new(at, DOT_RADIUS, colour.filled())
                    }))?
                }
                _ => context.draw_series(LineSeries::new(run, stroke))?,
            };
        }
    }
    if let Some(shape) = series.marker {
        let shown = series
            .points
            .iter()
            .filter(|(x, y)| chart.x.contains(*x) && chart.y.contains(*y));
        context.draw_series(shown.map(|&at| Glyph {
            at,
            in_legend: false,
            line: None,
            marker: Some(shape),
            colour,
            size: chart.marker_size,
        }))?;
    }
    if !series.label.is_empty() {
        // A legend entry of its own, so that a series with nothing to draw (a label
        // for a group of series) still has one.
        let (line, marker, size) = (
            series.line,
            series.marker.or(series.legend_marker),
            chart.marker_size,
        );
        context
            .draw_series(std::iter::empty::<EmptyElement<(f64, f64), SVGBackend>>())?
            .label(series.label.as_str())
            .legend(move |at| Glyph {
                at,
                in_legend: true,
                line,
                marker,
                colour,
                size,
            });
    }
    Ok(())
}

/// Width of the legend's sample of a line, in pixels.
const SAMPLE: i32 = 48;

/// A marker at a data point, or a legend sample (a piece of line with the marker in its
/// middle), as one element whose shape is chosen when the chart is drawn. plotters'
/// composed elements fix their shape in their type, so this small element does the
/// choosing and hands the drawing to plotters' own elements and backend calls.
struct Glyph<C> {
    at: C,
    /// A legend sample: `at` is its left end, and the line is drawn.
    in_legend: bool,
    line: Option<LineStyle>,
    marker: Option<Marker>,
    colour: Colour,
    size: u32,
}

impl<'a, C> PointCollection<'a, C> for &'a Glyph<C> {
    type Point = &'a C;
    type IntoIter = std::iter::Once<&'a C>;
    fn point_iter(self) -> Self::IntoIter {
        std::iter::once(&self.at)
    }
}

impl<C, DB: DrawingBackend> Drawable<DB> for Glyph<C> {
    fn draw<I: Iterator<Item = (i32, i32)>>(
        &self,
        mut points: I,
        backend: &mut DB,
        parent: (u32, u32),
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        let Some((x, y)) = points.next() else {
            return Ok(());
        };
        let stroke = self.colour.stroke_width(LINE_WIDTH);
        let ends = [(x, y), (x + SAMPLE, y)];
        if let Some(style) = self.line.filter(|_| self.in_legend) {
            match (style, dashes(style)) {
                (_, Some((dash, gap))) => {
                    DashedPathElement::new(ends, dash, gap, stroke).draw(ends.into_iter(), backend, parent)?
                }
                (LineStyle::Dotted, None) => {
                    let colour = self.colour;
                    DottedPathElement::new(ends, 0, DOT_SPACING, move |at| {
                        Circle::new(at, DOT_RADIUS, colour.filled())
                    })
                    .draw(ends.into_iter(), backend, parent)?
                }
                _ => backend.draw_path(ends, &stroke)?,
            }
        }
        let Some(marker) = self.marker else {
            return Ok(());
        };
        // In the legend the marker sits in the middle of the line sample.
        let (cx, cy) = if self.in_legend {
            (x + SAMPLE / 2, y)
        } else {
            (x, y)
        };
        let radius = (self.size / 2) as i32;
        let fill = self.colour.filled();
        // Filled, then outlined in black: pale colours show on white, shapes show in grey.
        let outline = BLACK.stroke_width(1);
        match marker {
            Marker::Circle => {
                backend.draw_circle((cx, cy), radius as u32, &fill, true)?;
                backend.draw_circle((cx, cy), radius as u32, &outline, false)?;
            }
            Marker::Square => {
                let (upper_left, lower_right) = ((cx - radius, cy - radius), (cx + radius, cy + radius));
                backend.draw_rect(upper_left, lower_right, &fill, true)?;
                backend.draw_rect(upper_left, lower_right, &outline, false)?;
            }
            Marker::Triangle => {
                let size = radius + radius / 3;
                TriangleMarker::new((cx, cy), size, fill).draw(std::iter::once((cx, cy)), backend, parent)?;
                let corners = [
                    (0, -size),
                    (-size * 7 / 8, size / 2),
                    (size * 7 / 8, size / 2),
                    (0, -size),
                ];
                backend.draw_path(corners.map(|(dx, dy)| (cx + dx, cy + dy)), &outline)?;
            }
            Marker::Cross => {
                Cross::new((cx, cy), radius, stroke).draw(std::iter::once((cx, cy)), backend, parent)?
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::plot::{Axis, okabe_ito};

    fn sample() -> Chart {
        Chart::new(
            "Time <in> system",
            Axis::linear("load λ", 0.48, 1.0),
            Axis::log("mean time & more", 0.8, 150.0),
        )
        .with_series(
            Series::line(
                "theory",
                okabe_ito::VERMILLION,
                vec![(0.5, 2.0), (0.9, 10.0), (0.99, 100.0), (0.999, 1000.0)],
            )
            .dashed(),
        )
        .with_series(
            Series::points(
                "measured",
                okabe_ito::BLUE,
                vec![(0.5, 2.1), (0.9, 9.7), (0.95, 0.0)],
            )
            .with_marker(Marker::Square),
        )
        .with_series(Series::line("", okabe_ito::GREY, vec![(0.5, 1.0), (0.99, 1.0)]))
        .with_footnote("made by a test")
        .with_note((0.9, 10.0), "knee")
    }

    #[test]
    fn draws_the_labels_escapes_text_and_ticks_a_log_axis_at_decades() {
        let svg = sample().to_svg().unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("Time &lt;in&gt; system") && svg.contains("mean time &amp; more"));
        assert!(!svg.contains("<in>"));
        for text in ["theory", "measured", "made by a test", "knee", "load λ"] {
            assert!(
                svg.contains(&format!(">\n{text}\n</text>")),
                "{text} missing: {svg}"
            );
        }
        // The log axis is labelled at 1, 10 and 100 and nowhere between.
        for label in ["1", "10", "100"] {
            assert!(svg.contains(&format!(">\n{label}\n</text>")), "{label}");
        }
        for between in ["2", "5", "20", "50"] {
            assert!(!svg.contains(&format!(">\n{between}\n</text>")), "{between}");
        }
    }

    #[test]
    fn series_differ_in_more_than_colour() {
        let svg = sample().to_svg().unwrap();
        // The background, the legend's box and border, and three squares, each filled
        // and outlined: two on the chart (the zero has no place on a log axis), one in
        // the legend.
        assert_eq!(svg.matches("<rect").count(), 1 + 2 + 3 * 2);
        // The dashed line is drawn as many short pieces; the solid one as one.
        let vermillion = svg.matches("stroke=\"#D55E00\"").count();
        assert!(vermillion > 10, "dashes: {vermillion}");
        assert_eq!(svg.matches("stroke=\"#555555\"").count(), 1);
    }

    #[test]
    fn base_two_axes_are_ticked_at_powers_of_two() {
        let chart = Chart::new(
            "W",
            Axis::log2("workers", 0.7, 180.0),
            Axis::log2("requests/s", 1.0, 300.0),
        )
        .with_series(Series::line(
            "bound",
            okabe_ito::BLUE,
            vec![(1.0, 2.0), (128.0, 256.0)],
        ));
        let svg = chart.to_svg().unwrap();
        for label in ["1", "2", "4", "8", "16", "32", "64", "128", "256"] {
            assert!(svg.contains(&format!(">\n{label}\n</text>")), "{label}");
        }
        assert!(!svg.contains(">\n3\n</text>") && !svg.contains(">\n10\n</text>"));
    }

    /// The x pixels of every polyline drawn in `colour`.
    fn line_xs(svg: &str, colour: &str) -> Vec<i32> {
        let stroke = format!("stroke=\"{colour}\"");
        svg.lines()
            .filter(|line| line.starts_with("<polyline") && line.contains(&stroke))
            .filter_map(|line| line.split("points=\"").nth(1)?.split('"').next())
            .flat_map(|points| points.split_whitespace())
            .filter_map(|point| point.split(',').next()?.parse().ok())
            .collect()
    }

    #[test]
    fn a_curve_leaving_the_range_is_cut_at_the_frame() {
        let chart = Chart::new("cut", Axis::linear("x", 0.0, 1.0), Axis::linear("y", 0.0, 10.0))
            .with_series(Series::line(
                "rises",
                okabe_ito::BLUE,
                vec![(0.0, 0.0), (1.0, 20.0)],
            ))
            .with_series(Series::line(
                "across",
                okabe_ito::GREEN,
                vec![(0.0, 5.0), (1.0, 5.0)],
            ));
        let svg = chart.to_svg().unwrap();
        // "across" spans the plot; "rises" leaves the top at x = 0.5, so it ends in the
        // middle instead of running along the top edge to the right-hand side.
        let across = line_xs(&svg, "#009E73");
        let rises = line_xs(&svg, "#0072B2");
        let (left, right) = (*across.iter().min().unwrap(), *across.iter().max().unwrap());
        let end = *rises.iter().max().unwrap();
        assert!(
            (end - (left + right) / 2).abs() <= 2,
            "ends at {end}, plot {left}..{right}"
        );
    }

    #[test]
    fn a_legend_marker_shows_in_the_legend_only() {
        let curve = Series::line(
            "theory",
            okabe_ito::BLUE,
            vec![(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)],
        )
        .with_legend_marker(Marker::Circle);
        let chart =
            Chart::new("legend", Axis::linear("x", 0.0, 4.0), Axis::linear("y", 0.0, 4.0)).with_series(curve);
        let svg = chart.to_svg().unwrap();
        // One circle filled and one outlined, both in the legend; none on the curve.
        assert_eq!(svg.matches("<circle").count(), 2, "{svg}");
    }
}
