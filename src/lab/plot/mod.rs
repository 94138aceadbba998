//! Charts as SVG files, with no plotting library and no Python: x/y series drawn as
//! lines and/or points, on linear or logarithmic axes, with labels and a legend.
//!
//! OS concept: none in particular; this is the tool that turns measurements (the
//! simulator's, the benchmarks') into a picture a reader can check at a glance. It is
//! generic: `make simulate-plot` draws time in system against load, and `make
//! experiment` draws throughput and latency against worker count (a base-2 axis).
//!
//! ```
//! use roundhouse::lab::plot::{Chart, Scale, Series};
//! let chart = Chart::new("Throughput", "workers", "requests/s")
//!     .with_y_scale(Scale::Log)
//!     .with_series(Series::line("measured", "#1f77b4", vec![(1.0, 90.0), (2.0, 170.0)]).with_markers());
//! let svg = chart.to_svg();
//! assert!(svg.starts_with("<svg"));
//! ```

pub mod axis;
pub mod svg;

pub use axis::{Axis, Scale, zero_to};

/// The Okabe–Ito palette: colours that stay distinct for colour-blind readers. Series
/// that share a chart should also differ in marker shape or dash, so colour is never
/// the only cue.
pub mod okabe_ito {
    pub const BLACK: &str = "#000000";
    pub const ORANGE: &str = "#E69F00";
    pub const SKY_BLUE: &str = "#56B4E9";
    pub const GREEN: &str = "#009E73";
    pub const BLUE: &str = "#0072B2";
    pub const VERMILLION: &str = "#D55E00";
    pub const PURPLE: &str = "#CC79A7";
}

/// The shape drawn at each point of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Square,
}

/// Where the legend goes: in a column right of the plot, or inside the plot in the top
/// corner the data leave free (which gives long legend lines the whole width).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legend {
    Right,
    TopLeft,
    TopRight,
}

/// Text placed at a data point, e.g. to name the knee of a curve. It ends just left of
/// and above the point.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub at: (f64, f64),
    pub text: String,
}

/// How a series' line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineStyle {
    Solid,
    Dashed,
}

/// One named set of (x, y) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Shown in the legend; an empty label keeps the series out of the legend.
    pub label: String,
    /// Any SVG colour, e.g. `#1f77b4`.
    pub color: String,
    pub points: Vec<(f64, f64)>,
    /// Join the points with a line, or not.
    pub line: Option<LineStyle>,
    /// The marker drawn at each point, if any.
    pub marker: Option<Marker>,
}

impl Series {
    /// Points joined by a solid line, without markers.
    pub fn line(label: impl Into<String>, color: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            label: label.into(),
            color: color.into(),
            points,
            line: Some(LineStyle::Solid),
            marker: None,
        }
    }

    /// Markers only, no line (measurements).
    pub fn points(label: impl Into<String>, color: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            line: None,
            marker: Some(Marker::Circle),
            ..Series::line(label, color, points)
        }
    }

    /// The same, with a dashed line.
    pub fn dashed(mut self) -> Self {
        self.line = Some(LineStyle::Dashed);
        self
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
}

/// A chart: axes, series, title, size.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    /// A line under the title (what was measured, with which parameters).
    pub subtitle: String,
    pub x_label: String,
    pub y_label: String,
    pub x_scale: Scale,
    pub y_scale: Scale,
    /// Fixed axis ranges; by default each axis spans the data.
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    pub series: Vec<Series>,
    pub notes: Vec<Note>,
    pub legend: Legend,
    /// Width of a marker in pixels.
    pub marker_size: f64,
    /// Size of the picture in pixels.
    pub width: f64,
    pub height: f64,
    /// A line of small print under the chart (how it was made).
    pub footnote: String,
}

impl Chart {
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        Chart {
            title: title.into(),
            subtitle: String::new(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            x_range: None,
            y_range: None,
            series: Vec::new(),
            notes: Vec::new(),
            legend: Legend::Right,
            marker_size: 7.0,
            width: 800.0,
            height: 520.0,
            footnote: String::new(),
        }
    }

    pub fn with_x_scale(mut self, scale: Scale) -> Self {
        self.x_scale = scale;
        self
    }

    pub fn with_y_scale(mut self, scale: Scale) -> Self {
        self.y_scale = scale;
        self
    }

    pub fn with_x_range(mut self, low: f64, high: f64) -> Self {
        self.x_range = Some((low, high));
        self
    }

    pub fn with_y_range(mut self, low: f64, high: f64) -> Self {
        self.y_range = Some((low, high));
        self
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

    pub fn with_marker_size(mut self, pixels: f64) -> Self {
        self.marker_size = pixels;
        self
    }

    pub fn with_size(mut self, width: f64, height: f64) -> Self {
        self.width = width;
        self.height = height;
        self
    }

    pub fn with_footnote(mut self, footnote: impl Into<String>) -> Self {
        self.footnote = footnote.into();
        self
    }

    /// The chart as a standalone SVG document.
    pub fn to_svg(&self) -> String {
        svg::render(self)
    }
}
