//! Charts as SVG files, with no plotting library and no Python: x/y series drawn as
//! lines and/or points, on linear or logarithmic axes, with labels and a legend.
//!
//! OS concept: none in particular; this is the tool that turns measurements (the
//! simulator's, the benchmarks') into a picture a reader can check at a glance. It is
//! generic: `make simulate-plot` draws time in system against load, and any other
//! measurement (workers against throughput, say) is a `Chart` with other series.
//!
//! ```
//! use roundhouse::plot::{Chart, Scale, Series};
//! let chart = Chart::new("Throughput", "workers", "requests/s")
//!     .with_y_scale(Scale::Log)
//!     .with_series(Series::line("measured", "#1f77b4", vec![(1.0, 90.0), (2.0, 170.0)]).with_markers());
//! let svg = chart.to_svg();
//! assert!(svg.starts_with("<svg"));
//! ```

pub mod axis;
pub mod svg;

pub use axis::{Axis, Scale};

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
    /// Draw a marker at each point.
    pub markers: bool,
}

impl Series {
    /// Points joined by a solid line, without markers.
    pub fn line(label: impl Into<String>, color: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            label: label.into(),
            color: color.into(),
            points,
            line: Some(LineStyle::Solid),
            markers: false,
        }
    }

    /// Markers only, no line (measurements).
    pub fn points(label: impl Into<String>, color: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            line: None,
            markers: true,
            ..Series::line(label, color, points)
        }
    }

    /// The same, with a dashed line.
    pub fn dashed(mut self) -> Self {
        self.line = Some(LineStyle::Dashed);
        self
    }

    /// The same, with markers at the points.
    pub fn with_markers(mut self) -> Self {
        self.markers = true;
        self
    }
}

/// A chart: axes, series, title, size.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_scale: Scale,
    pub y_scale: Scale,
    /// Fixed axis ranges; by default each axis spans the data.
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    pub series: Vec<Series>,
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
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            x_range: None,
            y_range: None,
            series: Vec::new(),
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

    pub fn with_footnote(mut self, footnote: impl Into<String>) -> Self {
        self.footnote = footnote.into();
        self
    }

    /// The chart as a standalone SVG document.
    pub fn to_svg(&self) -> String {
        svg::render(self)
    }
}
