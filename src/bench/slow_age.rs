//! Data age of slow clients second by second: how old (receive time minus
//! `ts`) the ticks were that slow clients got in each second of the run,
//! counted from the start of the measured window (negative seconds are
//! warm-up, so the transient is visible).
//!
//! Workers record into [`AgesBySecond`] (one small HdrHistogram per
//! second that had slow ticks) and ship it in their periodic summary;
//! the controller merges what arrives and turns it into the report's
//! `slow_age_timeline` and `slow_after_5s`. Snapshots are left out, as
//! in the latency histograms.

use super::report::{AgePoint, AgeSummary};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;

/// Seconds at the start of the measured window left out of
/// `slow_after_5s` (the report field is named after it): the target for
/// slow readers holds once the server has caught them, and the first
/// seconds still drain what piled up before it noticed.
pub(super) const SETTLE_S: i64 = 5;
/// Ages are tracked from 1 us to one hour (larger ones are clamped) with
/// two significant digits: a timeline needs 1%, and at that precision a
/// second's histogram is about 14 KB, so a ten-minute run keeps a few MB.
const LOWEST_NS: u64 = 1_000;
const HIGHEST_NS: u64 = 3_600_000_000_000;
const SIGNIFICANT_DIGITS: u8 = 2;

fn new_age_histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS)
        .expect("static histogram bounds are valid")
}

/// Slow clients' tick ages (ns) by second of the run.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct AgesBySecond {
    seconds: BTreeMap<i64, Histogram<u32>>,
}

impl AgesBySecond {
    /// Records one age in `second` (from the window's start).
    pub(super) fn record(&mut self, second: i64, age_ns: u64) {
        self.seconds
            .entry(second)
            .or_insert_with(new_age_histogram)
            .saturating_record(age_ns.min(HIGHEST_NS));
    }

    /// Moves every age of `other` into this one.
    pub(super) fn append(&mut self, other: AgesBySecond) {
        for (second, ages) in other.seconds {
            match self.seconds.get_mut(&second) {
                Some(mine) => mine.add(&ages).expect("age histograms share their bounds"),
                None => {
                    self.seconds.insert(second, ages);
                }
            }
        }
    }

    /// One point per second that had slow ticks, in order.
    pub(super) fn timeline(&self) -> Vec<AgePoint> {
        self.seconds
            .iter()
            .map(|(&t_s, ages)| AgePoint {
                t_s,
                phase: if t_s < 0 { "warmup" } else { "measured" },
                age: AgeSummary::of(ages),
            })
            .collect()
    }

    /// Every age from second `first` of the measured window on; `None`
    /// when there is none (a window of `first` seconds or less).
    pub(super) fn since_second(&self, first: i64) -> Option<AgeSummary> {
        let mut all = new_age_histogram();
        for ages in self.seconds.range(first..).map(|(_, ages)| ages) {
            all.add(ages).expect("age histograms share their bounds");
        }
        (!all.is_empty()).then(|| AgeSummary::of(&all))
    }
}

impl AgeSummary {
    fn of(ages: &Histogram<u32>) -> Self {
        let ms = |ns: u64| (ns as f64 / 1e3).round() / 1e3;
        Self {
            events: ages.len(),
            p50_ms: ms(ages.value_at_quantile(0.5)),
            p99_ms: ms(ages.value_at_quantile(0.99)),
            max_ms: ms(ages.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn seconds_merge_across_workers_and_list_in_order_with_warmup_tagged() {
        let mut a = AgesBySecond::default();
        a.record(-1, 900 * MS);
        a.record(0, 100 * MS);
        let mut b = AgesBySecond::default();
        b.record(0, 300 * MS);
        b.record(2, 50 * MS);
        a.append(b);
        let timeline = a.timeline();
        let seconds: Vec<(i64, &str, u64)> = timeline
            .iter()
            .map(|p| (p.t_s, p.phase, p.age.events))
            .collect();
        assert_eq!(
            seconds,
            [(-1, "warmup", 1), (0, "measured", 2), (2, "measured", 1)]
        );
        let second_0 = &timeline[1].age;
        assert!((second_0.max_ms - 300.0).abs() <= 3.0, "{second_0:?}");
        assert!(second_0.p50_ms <= second_0.p99_ms && second_0.p99_ms <= second_0.max_ms);
    }

    #[test]
    fn the_settled_summary_leaves_out_the_first_seconds() {
        let mut ages = AgesBySecond::default();
        ages.record(1, 5_000 * MS);
        assert_eq!(ages.since_second(SETTLE_S), None, "nothing after 5 s");
        for ms in 1..=100 {
            ages.record(SETTLE_S + (ms % 3) as i64, ms * MS);
        }
        let settled = ages.since_second(SETTLE_S).unwrap();
        assert_eq!(settled.events, 100);
        assert!((settled.max_ms - 100.0).abs() <= 1.0, "{settled:?}");
        assert!((settled.p99_ms - 99.0).abs() <= 1.0, "{settled:?}");
    }

    #[test]
    fn a_seconds_histogram_stays_small() {
        let bytes = new_age_histogram().distinct_values() * std::mem::size_of::<u32>();
        assert!(bytes < 16 * 1024, "{bytes} bytes");
    }

    #[test]
    fn ages_beyond_an_hour_are_clamped_not_lost() {
        let mut ages = AgesBySecond::default();
        ages.record(0, u64::MAX);
        ages.record(0, 0);
        assert_eq!(ages.since_second(0).unwrap().events, 2);
    }
}
