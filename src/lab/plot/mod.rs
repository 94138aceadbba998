//! Charts as SVG files: the project's own description of a chart (title, two axes, named
//! series, notes), drawn by the `plotters` crate's SVG backend. No system fonts are read:
//! the SVG names `sans-serif` and the viewer's font draws the text.
//!
//! OS concept: none in particular; this is the tool that turns measurements (the
//! simulator's, the benchmarks') into a picture a reader can check at a glance. It is
//! generic: `make simulate-plot` draws time in system against load, and `make
//! experiment` draws throughput and latency against worker count (base-2 axes).
//!
//! The figures are made for a projector and for a black-and-white printer: large text,
//! thick lines, and series that differ in dash and marker shape, never in colour alone.
//!
//! ```
//! use roundhouse::lab::plot::{Axis, Chart, Series, okabe_ito};
//! let chart = Chart::new(
//!     "Throughput",
//!     Axis::log2("workers", 0.7, 3.0),
//!     Axis::log("requests/s", 50.0, 300.0),
//! )
//! .with_series(Series::line("measured", okabe_ito::BLUE, vec![(1.0, 90.0), (2.0, 170.0)]).with_markers());
//! let svg = chart.to_svg().unwrap();
//! assert!(svg.starts_with("<svg") && svg.contains("measured"));
//! ```

mod clip;
mod draw;

pub use draw::PlotError;
/// A colour: `Colour(red, green, blue)`.
pub use plotters::style::RGBColor as Colour;

/// The Okabe–Ito palette: colours that stay distinct for colour-blind readers. Series
/// that share a chart also differ in marker shape or dash, so colour is never the only
/// cue.
pub mod okabe_ito {
    use super::Colour;
    pub const BLACK: Colour = Colour(0x00, 0x00, 0x00);
    pub const ORANGE: Colour = Colour(0xE6, 0x9F, 0x00);
    pub const SKY_BLUE: Colour = Colour(0x56, 0xB4, 0xE9);
    pub const GREEN: Colour = Colour(0x00, 0x9E, 0x73);
    pub const BLUE: Colour = Colour(0x00, 0x72, 0xB2);
    pub const VERMILLION: Colour = Colour(0xD5, 0x5E, 0x00);
    pub const PURPLE: Colour = Colour(0xCC, 0x79, 0xA7);
    pub const GREY: Colour = Colour(0x55, 0x55, 0x55);
}

/// How values are spaced along an axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// Equal distances for equal ratios, labelled at powers of ten; only positive values
    /// can be shown.
    Log,
    /// The same spacing, labelled at powers of two: for quantities that double (1, 2,
    /// 4, ... workers). On such an axis y = c·x is a straight line of slope 1.
    Log2,
}

impl Scale {
    /// Whether `value` can be placed on an axis of this scale at all.
    pub fn shows(self, value: f64) -> bool {
        value.is_finite() && (self == Scale::Linear || value > 0.0)
    }
}

/// One axis: its label, its scale and the range it shows. The range is always given:
/// a chart that compares runs should not change its axes with the data.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub label: String,
    pub scale: Scale,
    pub low: f64,
    pub high: f64,
}

impl Axis {
    pub fn linear(label: impl Into<String>, low: f64, high: f64) -> Self {
        Axis::new(label, Scale::Linear, low, high)
    }

    pub fn log(label: impl Into<String>, low: f64, high: f64) -> Self {
        Axis::new(label, Scale::Log, low, high)
    }

    pub fn log2(label: impl Into<String>, low: f64, high: f64) -> Self {
        Axis::new(label, Scale::Log2, low, high)
    }

    fn new(label: impl Into<String>, scale: Scale, low: f64, high: f64) -> Self {
        Axis {
            label: label.into(),
            scale,
            low,
            high,
        }
    }

    /// Whether `value` lies on the axis: inside the range and showable by the scale.
    pub fn contains(&self, value: f64) -> bool {
        self.scale.shows(value) && value >= self.low && value <= self.high
    }
}

/// The shape drawn at each point of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Square,
    Triangle,
    Cross,
}

/// How a series' line is drawn. Each style stays recognisable in grey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineStyle {
    Solid,
    /// Long dashes.
    Dashed,
    /// Short dashes, close together.
    FineDashed,
    /// Round dots.
    Dotted,
}

/// Where the legend goes: inside the plot, in the corner the data leave free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legend {
    TopLeft,
    TopRight,
    BottomLeft,
    BottomRight,
}

/// Text placed at a data point, e.g. to name the knee of a curve. It ends just left of
/// and above the point.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub at: (f64, f64),
    pub text: String,
}

/// One named set of (x, y) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Shown in the legend; an empty label keeps the series out of the legend.
    pub label: String,
    pub colour: Colour,
    pub points: Vec<(f64, f64)>,
    /// Join the points with a line, or not.
    pub line: Option<LineStyle>,
    /// The marker drawn at each point, if any.
    pub marker: Option<Marker>,
    /// A marker shown in this series' legend entry only: for a curve whose measured
    /// points are drawn by another, unlabelled series, so that one entry names both.
    pub legend_marker: Option<Marker>,
}

impl Series {
    /// Points joined by a solid line, without markers.
    pub fn line(label: impl Into<String>, colour: Colour, points: Vec<(f64, f64)>) -> Self {
        Series {
            label: label.into(),
            colour,
            points,
            line: Some(LineStyle::Solid),
            marker: None,
            legend_marker: None,
        }
    }

    /// Markers only, no line (measurements).
    pub fn points(label: impl Into<String>, colour: Colour, points: Vec<(f64, f64)>) -> Self {
        Series {
            line: None,
            marker: Some(Marker::Circle),
            ..Series::line(label, colour, points)
        }
    }

    /// The same, with a line of the given style.
    pub fn with_line(mut self, style: LineStyle) -> Self {
        self.line = Some(style);
        self
    }

    /// The same, with a dashed line.
    pub fn dashed(self) -> Self {
        self.with_line(LineStyle::Dashed)
    }

    /// The same, with a dotted line.
    pub fn dotted(self) -> Self {
        self.with_line(LineStyle::Dotted)
    }

    /// The same, with (round) markers at the points.
    pub fn with_markers(self) -> Self {
        self.with_marker(Marker::Circle)
    }

    /// The same, with markers of the given shape at the points.
    pub fn with_marker(mut self, marker: Marker) -> Self {
        self.marker = Some(marker);
        self
    }

    /// The same, with `marker` beside its line in the legend (see `legend_marker`).
    pub fn with_legend_marker(mut self, marker: Marker) -> Self {
        self.legend_marker = Some(marker);
        self
    }
}

/// A chart: title, axes, series, notes, size.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    /// A line under the title (what was measured, with which parameters).
    pub subtitle: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    pub notes: Vec<Note>,
    pub legend: Legend,
    /// Width of a marker in pixels.
    pub marker_size: u32,
    /// Size of the picture in pixels.
    pub width: u32,
    pub height: u32,
    /// A line of small print under the chart (how it was made).
    pub footnote: String,
}

impl Chart {
    pub fn new(title: impl Into<String>, x: Axis, y: Axis) -> Self {
        Chart {
            title: title.into(),
            subtitle: String::new(),
            x,
            y,
            series: Vec::new(),
            notes: Vec::new(),
            legend: Legend::TopLeft,
            marker_size: 12,
            width: 1000,
            height: 640,
            footnote: String::new(),
        }
    }

    pub fn with_series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    pub fn with_subtitle(mut self, subtitle: impl Into<String>) -> Self {
        self.subtitle = subtitle.into();
        self
    }

    pub fn with_note(mut self, at: (f64, f64), text: impl Into<String>) -> Self {
        self.notes.push(Note {
            at,
            text: text.into(),
        });
        self
    }

    pub fn with_legend(mut self, legend: Legend) -> Self {
        self.legend = legend;
        self
    }

    pub fn with_marker_size(mut self, pixels: u32) -> Self {
        self.marker_size = pixels;
        self
    }

    pub fn with_size(mut self, width: u32, height: u32) -> Self {
        self.width = width;
        self.height = height;
        self
    }

    pub fn with_footnote(mut self, footnote: impl Into<String>) -> Self {
        self.footnote = footnote.into();
        self
    }

    /// The chart as a standalone SVG document.
    pub fn to_svg(&self) -> Result<String, PlotError> {
        draw::render(self)
    }
}
