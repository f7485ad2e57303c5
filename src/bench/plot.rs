//! `--plot`: latency by percentile as an SVG chart, one line per sweep
//! point. The x axis is `1/(1-q)` on a log scale, so 90%, 99%, 99.9%...
//! are evenly spaced and the tail is as visible as the median; latency is
//! on a log scale too, since points can differ a thousandfold.

use super::hdr::percentile_points;
use hdrhistogram::Histogram;
use plotters::prelude::*;
use std::path::Path;

const SIZE: (u32, u32) = (960, 560);

/// The chart could not be drawn or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot draw the plot: {msg}")]
pub(super) struct PlotError {
    path: String,
    msg: String,
}

/// One line of the chart: `(1/(1-q), latency in ms)` points.
pub(super) struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

impl Line {
    /// The percentile curve of a histogram in ns; the 100% point (x is
    /// infinite there) is left out.
    pub(super) fn of(label: &str, h: &Histogram<u64>) -> Self {
        let points = percentile_points(h)
            .into_iter()
            .filter(|p| p.quantile < 1.0)
            .map(|p| {
                (
                    1.0 / (1.0 - p.quantile),
                    (p.value_ns as f64 / 1e6).max(1e-3),
                )
            })
            .collect();
        Self {
            label: label.into(),
            points,
        }
    }
}

/// `10` -> `90%`, `1000` -> `99.9%`: the percentile at `x = 1/(1-q)`.
fn percentile_label(x: f64) -> String {
    if x <= 1.0 {
        return "0%".into();
    }
    let decimals = (x.log10().round() as i32 - 2).max(0) as usize;
    format!("{:.*}%", decimals, 100.0 - 100.0 / x)
}

/// Draws `lines` into an SVG file at `path`.
pub(super) fn draw(path: &Path, title: &str, lines: &[Line]) -> Result<(), PlotError> {
    let fail = |e: &dyn std::fmt::Display| PlotError {
        path: path.display().to_string(),
        msg: e.to_string(),
    };
    let all = || lines.iter().flat_map(|l| l.points.iter());
    let x_max = all().map(|p| p.0).fold(10.0, f64::max) * 1.5;
    let y_min = all().map(|p| p.1).fold(f64::INFINITY, f64::min).min(1.0) * 0.8;
    let y_max = all().map(|p| p.1).fold(1.0, f64::max) * 1.5;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((1f64..x_max).log_scale(), (y_min..y_max).log_scale())
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| format!("{y}"))
        .draw()
        .map_err(|e| fail(&e))?;
    for (i, line) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                line.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| fail(&e))?
            .label(line.label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_labels_name_the_nines() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(100_000.0), "99.999%");
    }

    #[test]
    fn a_chart_with_one_line_per_point_is_written() {
        let mut h = crate::stats::new_histogram();
        for us in 1..=5_000u64 {
            h.record(us * 997).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lat.svg");
        draw(&path, "test", &[Line::of("a", &h), Line::of("b", &h)]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(
            svg.starts_with("<svg")
                && svg.contains("99.9%")
                && svg.matches("<polyline").count() >= 2,
            "{svg}"
        );
    }
}
