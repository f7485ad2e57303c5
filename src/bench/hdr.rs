//! `--hdr`: a latency histogram in HdrHistogram's percentile-distribution
//! text format (Java's `outputPercentileDistribution`, values in
//! milliseconds), which HdrHistogram's online plotter and tooling read.
//! The points come from the hdrhistogram crate's own quantile iteration.

use hdrhistogram::Histogram;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Quantile steps per halving of the distance to 100% (Java's default).
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// One step of the percentile distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct PercentilePoint {
    pub quantile: f64,
    pub value_ns: u64,
    pub total_count: u64,
}

/// The percentile distribution of `h`, as the crate iterates it.
pub(super) fn percentile_points(h: &Histogram<u64>) -> Vec<PercentilePoint> {
    let mut total_count = 0;
    h.iter_quantiles(TICKS_PER_HALF_DISTANCE)
        .map(|v| {
            total_count += v.count_since_last_iteration();
            PercentilePoint {
                quantile: v.quantile_iterated_to(),
                value_ns: v.value_iterated_to(),
                total_count,
            }
        })
        .collect()
}

/// The text of the percentile distribution of `h` (values in ns), in ms.
pub(super) fn percentile_text(h: &Histogram<u64>) -> String {
    let ms = |ns: f64| ns / 1e6;
    let mut out = String::new();
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    for p in percentile_points(h) {
        if p.quantile < 1.0 {
            let _ = writeln!(
                out,
                "{:12.3} {:2.12} {:10} {:14.2}",
                ms(p.value_ns as f64),
                p.quantile,
                p.total_count,
                1.0 / (1.0 - p.quantile)
            );
        } else {
            let _ = writeln!(
                out,
                "{:12.3} {:2.12} {:10}",
                ms(p.value_ns as f64),
                p.quantile,
                p.total_count
            );
        }
    }
    let sub_buckets = (2 * 10u64.pow(u32::from(h.sigfig()))).next_power_of_two();
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        ms(h.mean()),
        ms(h.stdev())
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        ms(h.max() as f64),
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        sub_buckets
    );
    out
}

/// Where point `label`'s histogram goes: `path` itself for a single point,
/// else `NAME-LABEL.EXT` beside it.
pub(super) fn path_for(path: &Path, label: &str, points: usize) -> PathBuf {
    if points <= 1 {
        return path.to_path_buf();
    }
    let slug: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{slug}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{slug}"),
    };
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_text_has_the_hdrhistogram_layout() {
        let mut h = crate::stats::new_histogram();
        for us in 1..=10_000u64 {
            h.record(us * 1_000).unwrap();
        }
        let text = percentile_text(&h);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].trim_start().starts_with("Value") && lines[0].ends_with("1/(1-Percentile)")
        );
        assert!(lines[1].is_empty());
        let first: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!((first[0], first[2], first[3]), ("0.001", "1", "1.00"));
        assert!(
            text.contains("#[Max     =       10.002, Total count    =        10000]"),
            "{text}"
        );
        let counts: Vec<u64> = lines[2..]
            .iter()
            .take_while(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().nth(2).unwrap().parse().unwrap())
            .collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]) && *counts.last().unwrap() == 10_000);
    }

    #[test]
    fn sweep_points_get_a_file_each() {
        assert_eq!(
            path_for(Path::new("out/lat.hgrm"), "nats 1000 clients", 1),
            Path::new("out/lat.hgrm")
        );
        assert_eq!(
            path_for(Path::new("out/lat.hgrm"), "nats 1000 clients", 2),
            Path::new("out/lat-nats-1000-clients.hgrm")
        );
    }
}
