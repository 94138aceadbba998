//! Axes: mapping data values to pixels, and choosing tick marks a person can read.

/// How values are spaced along an axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// Equal distances for equal ratios; only positive values can be shown.
    Log,
    /// The same spacing as `Log`, ticked at powers of two: for quantities that double
    /// (1, 2, 4, ... workers).
    Log2,
}

impl Scale {
    /// Whether the scale spaces values by their ratio (and so cannot show 0).
    pub fn is_logarithmic(self) -> bool {
        self != Scale::Linear
    }
}

/// One axis: its data range, its scale, and the pixel span it is drawn over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axis {
    pub low: f64,
    pub high: f64,
    pub scale: Scale,
    /// Pixel positions of `low` and `high` (for a y axis `from` is below `to`, so it is
    /// the larger pixel number).
    pub from: f64,
    pub to: f64,
}

impl Axis {
    /// Whether `value` can be placed on this axis at all.
    pub fn shows(&self, value: f64) -> bool {
        value.is_finite() && (!self.scale.is_logarithmic() || value > 0.0)
    }

    /// The pixel position of `value` (values outside the range land outside the span).
    pub fn pixel(&self, value: f64) -> f64 {
        let fraction = match self.scale {
            Scale::Linear => (value - self.low) / (self.high - self.low),
            Scale::Log | Scale::Log2 => (value.ln() - self.low.ln()) / (self.high.ln() - self.low.ln()),
        };
        self.from + fraction * (self.to - self.from)
    }

    /// Values at which to draw ticks and grid lines, all within the range.
    pub fn ticks(&self) -> Vec<f64> {
        match self.scale {
            Scale::Linear => linear_ticks(self.low, self.high),
            Scale::Log => log_ticks(self.low, self.high),
            Scale::Log2 => log2_ticks(self.low, self.high),
        }
    }
}

/// The data range of `values` for an axis of `scale`, widened a little so that points
/// do not sit on the frame, and never empty.
pub fn data_range(values: impl Iterator<Item = f64>, scale: Scale) -> (f64, f64) {
    let shown = values.filter(|value| value.is_finite() && (!scale.is_logarithmic() || *value > 0.0));
    let (low, high) = shown.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), value| {
        (low.min(value), high.max(value))
    });
    if low > high {
        return (if scale.is_logarithmic() { 1.0 } else { 0.0 }, 10.0);
    }
    match scale {
        Scale::Linear => {
            let margin = if high > low {
                (high - low) * 0.04
            } else {
                low.abs().max(1.0) * 0.5
            };
            (low - margin, high + margin)
        }
        Scale::Log | Scale::Log2 => {
            let factor = if high > low { (high / low).powf(0.04) } else { 2.0 };
            (low / factor, high * factor)
        }
    }
}

/// Ticks every 1, 2 or 5 times a power of ten, about six of them.
fn linear_ticks(low: f64, high: f64) -> Vec<f64> {
    let span = high - low;
    if span <= 0.0 || !span.is_finite() {
        return vec![low];
    }
    let rough = span / 6.0;
    let exponent = rough.log10().floor() as i32;
    let power = 10f64.powi(exponent);
    let multiple = [1_i64, 2, 5, 10]
        .into_iter()
        .find(|&multiple| span / (multiple as f64 * power) <= 7.0)
        .unwrap_or(10);
    let step = multiple as f64 * power;
    // Tick k is k·multiple·10^exponent. Computing it from integers, dividing by an exact
    // power of ten when the exponent is negative, gives the same double as the literal
    // (0.6, not 0.6000000000000001).
    let value = |k: i64| {
        let units = (k * multiple) as f64;
        if exponent >= 0 {
            units * power
        } else {
            units / 10f64.powi(-exponent)
        }
    };
    let first = (low / step).ceil() as i64;
    let last = (high / step).floor() as i64;
    (first..=last).map(value).collect()
}

/// Powers of ten; over a short range (less than three decades) also 2 and 5 times them.
fn log_ticks(low: f64, high: f64) -> Vec<f64> {
    if low <= 0.0 || high <= low {
        return vec![low.max(f64::MIN_POSITIVE)];
    }
    let first = low.log10().floor() as i32;
    let last = high.log10().ceil() as i32;
    let multiples: &[f64] = if high / low < 1000.0 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let mut ticks = Vec::new();
    for power in first..=last {
        for multiple in multiples {
            // Dividing by an exact power of ten keeps 0.2 exactly the double 0.2.
            let value = if power >= 0 {
                multiple * 10f64.powi(power)
            } else {
                multiple / 10f64.powi(-power)
            };
            if value >= low * (1.0 - 1e-9) && value <= high * (1.0 + 1e-9) {
                ticks.push(value);
            }
        }
    }
    ticks
}

/// The powers of two inside the range; none for a range that cannot be drawn (not
/// positive, empty, or so wide that the loop would ask for billions of ticks: a log
/// axis starting at 0 would otherwise ask for 2^31).
fn log2_ticks(low: f64, high: f64) -> Vec<f64> {
    let drawable =
        low.is_finite() && high.is_finite() && low > 0.0 && low < high && (high / low).log2() <= 64.0;
    if !drawable {
        return Vec::new();
    }
    let first = low.log2().ceil() as i32;
    let last = (high.log2() + 1e-9).floor() as i32;
    (first..=last).map(|power| 2f64.powi(power)).collect()
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

/// A linear range from zero to a round number at or above `max`, for a y axis whose
/// zero should show (throughput: the distance from zero is the point).
pub fn zero_to(max: f64) -> (f64, f64) {
    let step = nice_step(max / 8.0);
    (0.0, (max / step).ceil().max(1.0) * step)
}

/// A tick label: no more digits than the value needs (`0.5`, `2`, `1000`, `1e-5`).
pub fn format_tick(value: f64) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let magnitude = value.abs();
    if !(1e-4..1e7).contains(&magnitude) {
        return format!("{value:e}");
    }
    let text = format!("{value:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_ends_of_the_range_to_ends_of_the_span() {
        let linear = Axis {
            low: 0.5,
            high: 1.0,
            scale: Scale::Linear,
            from: 100.0,
            to: 500.0,
        };
        assert_eq!(linear.pixel(0.5), 100.0);
        assert_eq!(linear.pixel(1.0), 500.0);
        assert_eq!(linear.pixel(0.75), 300.0);
        let log = Axis {
            low: 1.0,
            high: 100.0,
            scale: Scale::Log,
            from: 400.0,
            to: 0.0,
        };
        assert!((log.pixel(10.0) - 200.0).abs() < 1e-9);
        assert!(log.pixel(1.0) > log.pixel(2.0));
        assert!(!log.shows(0.0) && !log.shows(-1.0) && log.shows(0.1));
        assert!(!linear.shows(f64::NAN) && linear.shows(-3.0));
    }

    #[test]
    fn linear_ticks_are_round_and_inside_the_range() {
        assert_eq!(linear_ticks(0.0, 1.0), vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(linear_ticks(0.48, 1.01), vec![0.5, 0.6, 0.7, 0.8, 0.9, 1.0]);
        assert_eq!(linear_ticks(3.0, 97.0), vec![20.0, 40.0, 60.0, 80.0]);
    }

    #[test]
    fn log_ticks_are_decades_with_2_and_5_on_short_ranges() {
        assert_eq!(
            log_ticks(0.9, 110.0),
            vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
        );
        assert_eq!(log_ticks(0.5, 20_000.0), vec![1.0, 10.0, 100.0, 1000.0, 10_000.0]);
    }

    #[test]
    fn data_ranges_cover_the_data_and_skip_what_a_log_axis_cannot_show() {
        let (low, high) = data_range([1.0, 100.0, 0.0, -5.0].into_iter(), Scale::Log);
        assert!(low < 1.0 && low > 0.5 && high > 100.0 && high < 200.0);
        let (low, high) = data_range([2.0, 4.0].into_iter(), Scale::Linear);
        assert!(low < 2.0 && high > 4.0);
        assert_eq!(data_range(std::iter::empty(), Scale::Linear), (0.0, 10.0));
        let (low, high) = data_range([3.0].into_iter(), Scale::Linear);
        assert!(low < 3.0 && high > 3.0);
    }

    #[test]
    fn log2_axes_put_their_ends_at_the_span_ends_and_tick_powers_of_two() {
        let log2 = Axis {
            low: 1.0,
            high: 16.0,
            scale: Scale::Log2,
            from: 0.0,
            to: 1.0,
        };
        assert_eq!(log2.pixel(1.0), 0.0);
        assert!((log2.pixel(4.0) - 0.5).abs() < 1e-12);
        assert!((log2.pixel(16.0) - 1.0).abs() < 1e-12);
        assert!(!log2.shows(0.0));
        assert_eq!(
            log2_ticks(0.7, 180.0),
            vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]
        );
        assert!(log2_ticks(0.0, 40.0).is_empty(), "log2(0) is not a tick");
        assert!(log2_ticks(1.0, f64::NAN).is_empty());
        assert_eq!(log2_ticks(0.2, 40.0)[0], 0.25);
    }

    #[test]
    fn zero_to_rounds_up_to_a_nice_step() {
        assert_eq!(nice_step(23.0), 50.0);
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(zero_to(130.0), (0.0, 140.0));
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(format_tick(0.25), "0.25");
        assert_eq!(format_tick(128.0), "128");
        assert_eq!(format_tick(0.5), "0.5");
        assert_eq!(format_tick(2.0), "2");
        assert_eq!(format_tick(1000.0), "1000");
        assert_eq!(format_tick(0.30000000000000004), "0.3");
        assert_eq!(format_tick(0.0), "0");
        assert_eq!(format_tick(1e-5), "1e-5");
    }
}
