//! Cutting a line at the edges of the plot. plotters draws a point outside the axis
//! range on the frame instead of leaving it out (plotters-rs/plotters#429, #622), so a
//! curve that leaves the top of the chart would run along its edge; a theory curve
//! rising to infinity near load 1 does exactly that. So lines are cut here, where they
//! cross the frame, and only the parts inside are drawn.
//!
//! OS concept: none of its own; it keeps the simulator's figures honest, where the
//! theory curve of a queue rises without bound as the load nears 1. `clip_line` finds
//! crossings on a log axis in ratios, where the line is straight.

use super::{Axis, Scale};

/// Where `value` lies along an axis of `scale` in the axis's own straight measure: the
/// value itself, or its logarithm. A segment is straight on the chart in this measure,
/// so the crossing point with the frame is found by interpolating here.
fn straight(scale: Scale, value: f64) -> f64 {
    match scale {
        Scale::Linear => value,
        Scale::Log | Scale::Log2 => value.ln(),
    }
}

fn unstraight(scale: Scale, value: f64) -> f64 {
    match scale {
        Scale::Linear => value,
        Scale::Log | Scale::Log2 => value.exp(),
    }
}

/// The part of segment a→b inside the box, as fractions (t0, t1) of the way from a to
/// b (Liang–Barsky), or None when the segment misses the box.
fn inside(a: (f64, f64), b: (f64, f64), low: (f64, f64), high: (f64, f64)) -> Option<(f64, f64)> {
    let (mut t0, mut t1) = (0.0_f64, 1.0_f64);
    let delta = (b.0 - a.0, b.1 - a.1);
    // Each edge as (how fast the segment moves outwards, how far inside `a` starts).
    let edges = [
        (-delta.0, a.0 - low.0),
        (delta.0, high.0 - a.0),
        (-delta.1, a.1 - low.1),
        (delta.1, high.1 - a.1),
    ];
    for (outwards, room) in edges {
        if outwards == 0.0 {
            if room < 0.0 {
                return None;
            }
            continue;
        }
        let t = room / outwards;
        if outwards < 0.0 {
            t0 = t0.max(t);
        } else {
            t1 = t1.min(t);
        }
    }
    (t0 <= t1).then_some((t0, t1))
}

/// The pieces of the line through `points` that lie inside the axes' ranges, each a
/// run of points to draw as one line. A point the scale cannot show (zero on a log
/// axis, NaN) breaks the line.
pub fn clip_line(points: &[(f64, f64)], x: &Axis, y: &Axis) -> Vec<Vec<(f64, f64)>> {
    let to_straight = |(px, py): (f64, f64)| (straight(x.scale, px), straight(y.scale, py));
    let from_straight = |(sx, sy): (f64, f64)| (unstraight(x.scale, sx), unstraight(y.scale, sy));
    let low = to_straight((x.low, y.low));
    let high = to_straight((x.high, y.high));
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for pair in points.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let showable = |(px, py): (f64, f64)| x.scale.shows(px) && y.scale.shows(py);
        let piece = if showable(a) && showable(b) {
            let (sa, sb) = (to_straight(a), to_straight(b));
            inside(sa, sb, low, high).map(|(t0, t1)| {
                let at = |t: f64| from_straight((sa.0 + t * (sb.0 - sa.0), sa.1 + t * (sb.1 - sa.1)));
                // The ends themselves when the segment is not cut, so that they stay exact.
                let start = if t0 == 0.0 { a } else { at(t0) };
                let end = if t1 == 1.0 { b } else { at(t1) };
                (start, end, t1 == 1.0)
            })
        } else {
            None
        };
        match piece {
            Some((start, end, reaches_b)) => {
                if current.is_empty() {
                    current.push(start);
                }
                current.push(end);
                if !reaches_b {
                    runs.push(std::mem::take(&mut current));
                }
            }
            None => {
                if !current.is_empty() {
                    runs.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if current.len() >= 2 {
        runs.push(current);
    }
    runs.retain(|run| run.len() >= 2);
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_inside_is_kept_whole() {
        let x = Axis::linear("x", 0.0, 10.0);
        let y = Axis::linear("y", 0.0, 10.0);
        let line = vec![(1.0, 1.0), (2.0, 4.0), (3.0, 9.0)];
        assert_eq!(clip_line(&line, &x, &y), vec![line]);
    }

    #[test]
    fn a_line_leaving_the_top_ends_on_the_edge_and_comes_back_as_a_new_run() {
        let x = Axis::linear("x", 0.0, 10.0);
        let y = Axis::linear("y", 0.0, 10.0);
        let runs = clip_line(&[(0.0, 0.0), (2.0, 20.0), (4.0, 0.0)], &x, &y);
        assert_eq!(
            runs,
            vec![vec![(0.0, 0.0), (1.0, 10.0)], vec![(3.0, 10.0), (4.0, 0.0)]]
        );
    }

    #[test]
    fn on_a_log_axis_the_crossing_is_found_in_ratios() {
        let x = Axis::linear("x", 0.0, 1.0);
        let y = Axis::log("y", 1.0, 100.0);
        // From 10 to 1000 over x = 0..1: the geometric halfway point, 100, is at x = 0.5.
        let runs = clip_line(&[(0.0, 10.0), (1.0, 1000.0)], &x, &y);
        assert_eq!(runs.len(), 1);
        let (edge_x, edge_y) = runs[0][1];
        assert!(
            (edge_x - 0.5).abs() < 1e-12 && (edge_y - 100.0).abs() < 1e-9,
            "{runs:?}"
        );
    }

    #[test]
    fn points_a_log_axis_cannot_show_break_the_line() {
        let x = Axis::linear("x", 0.0, 10.0);
        let y = Axis::log2("y", 0.5, 64.0);
        let runs = clip_line(
            &[(1.0, 1.0), (2.0, 2.0), (3.0, 0.0), (4.0, 4.0), (5.0, 8.0)],
            &x,
            &y,
        );
        assert_eq!(
            runs,
            vec![vec![(1.0, 1.0), (2.0, 2.0)], vec![(4.0, 4.0), (5.0, 8.0)]]
        );
        assert!(clip_line(&[(1.0, 100.0), (2.0, 200.0)], &x, &y).is_empty());
    }
}
