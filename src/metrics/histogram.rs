//! A stage's HdrHistogram as a Prometheus histogram: cumulative bucket
//! counts, sum and count in seconds, taken from the since-start histogram
//! of `stats` at scrape time. The data path records into HdrHistograms
//! only (`stats::record_latencies`); a scrape walks the recorded values
//! once per stage, so the export costs the data path nothing.

use hdrhistogram::Histogram;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// Upper bounds in seconds, 1-2-5 per decade from 10 us to 10 s: route
/// latency sits in the tens of microseconds, delivery to a reader that
/// keeps up in hundreds of microseconds to milliseconds, a conflated one
/// up to `--max-lag` (500 ms), and a stalled one up to `--stall-timeout`.
/// Adjacent bounds differ by 2 to 2.5 times, which is also how exactly
/// `histogram_quantile` can place a quantile (`docs/operating.md`).
pub(crate) const LATENCY_BUCKETS_S: [f64; 19] = [
    10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3, 100e-3,
    200e-3, 500e-3, 1.0, 2.0, 5.0, 10.0,
];

/// One stage's histogram in Prometheus's terms.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LatencyHistogram {
    sum_s: f64,
    count: u64,
    /// Per bucket (not cumulative), the last one `+Inf`.
    buckets: Vec<(f64, u64)>,
}

impl LatencyHistogram {
    /// Sorts every recorded value (ns, at its bucket's median equivalent,
    /// within 0.1 % of what was recorded) into the buckets.
    pub(crate) fn from_hdr(hdr: &Histogram<u64>) -> Self {
        let mut buckets: Vec<(f64, u64)> = LATENCY_BUCKETS_S
            .iter()
            .chain([&f64::INFINITY])
            .map(|&bound| (bound, 0))
            .collect();
        let mut sum_s = 0.0;
        for recorded in hdr.iter_recorded() {
            let value_s = hdr.median_equivalent(recorded.value_iterated_to()) as f64 / 1e9;
            let count = recorded.count_at_value();
            sum_s += value_s * count as f64;
            let bucket = buckets
                .iter()
                .position(|&(bound, _)| value_s <= bound)
                .unwrap_or(buckets.len() - 1);
            buckets[bucket].1 += count;
        }
        Self {
            sum_s,
            count: hdr.len(),
            buckets,
        }
    }
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(self.sum_s, self.count, &self.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    #[test]
    fn recorded_values_land_in_the_bucket_that_bounds_them() {
        let mut hdr = new_histogram();
        hdr.record(15_000).unwrap(); // 15 us: (10 us, 20 us]
        hdr.record_n(1_500_000, 3).unwrap(); // 1.5 ms: (1 ms, 2 ms]
        hdr.record(30_000_000_000).unwrap(); // 30 s: over 10 s
        let histogram = LatencyHistogram::from_hdr(&hdr);
        assert_eq!(histogram.count, 5);
        let count_in = |bound: f64| {
            histogram
                .buckets
                .iter()
                .find(|(b, _)| *b == bound)
                .unwrap()
                .1
        };
        assert_eq!(count_in(20e-6), 1);
        assert_eq!(count_in(2e-3), 3);
        assert_eq!(count_in(f64::INFINITY), 1);
        let total: u64 = histogram.buckets.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 5);
        let expected_sum = 15e-6 + 3.0 * 1.5e-3 + 30.0;
        assert!((histogram.sum_s - expected_sum).abs() < expected_sum * 1e-3);
    }
}
