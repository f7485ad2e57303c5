//! What clients measured: latency histograms (every event, no sampling)
//! and counters. Each worker owns one [`Tally`] and hands it over once at
//! the end; while running it sends only small [`Summary`] messages.

use super::slow_age::AgesBySecond;
use crate::stats::new_histogram;
use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency recorded as itself; larger values are clamped (one hour,
/// the same bound as the server's histograms).
const MAX_TRACKED_NS: u64 = 3_600_000_000_000;

/// Ticks received with `n > 0`, and the sum of their `n`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Merges {
    pub events_with_merges: u64,
    pub updates_merged: u64,
}

impl Merges {
    /// Counts one tick that stands for `n` merged updates.
    pub fn add(&mut self, n: u64) {
        if n > 0 {
            self.events_with_merges += 1;
            self.updates_merged += n;
        }
    }

    pub fn merge(&mut self, o: &Merges) {
        self.events_with_merges += o.events_with_merges;
        self.updates_merged += o.updates_merged;
    }
}

/// Counters of one worker (or of all, once merged).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Counters {
    /// Events of the measured channel (ticks or books) received in the
    /// measured window (snapshots excluded).
    pub events: u64,
    pub frames: u64,
    pub bytes: u64,
    /// Merges seen by fast and by slow clients in the window.
    pub fast_merges: Merges,
    pub slow_merges: Merges,
    /// Snapshot ticks, over the whole run.
    pub snapshots: u64,
    /// Protocol checks, over the whole run (warm-up included).
    pub seq_backwards: u64,
    pub gaps_not_counted: u64,
    pub unexpected_symbol: u64,
    pub unreadable_frames: u64,
    /// `error` events received.
    pub errors: u64,
    /// Connections that closed or failed after connecting.
    pub closed: u64,
}

impl Counters {
    pub(super) fn violations(&self) -> u64 {
        self.seq_backwards + self.gaps_not_counted + self.unexpected_symbol + self.unreadable_frames
    }

    /// Merges seen by every client.
    pub(super) fn merges(&self) -> Merges {
        let mut all = self.fast_merges;
        all.merge(&self.slow_merges);
        all
    }

    fn add(&mut self, o: &Counters) {
        self.events += o.events;
        self.frames += o.frames;
        self.bytes += o.bytes;
        self.fast_merges.merge(&o.fast_merges);
        self.slow_merges.merge(&o.slow_merges);
        self.snapshots += o.snapshots;
        self.seq_backwards += o.seq_backwards;
        self.gaps_not_counted += o.gaps_not_counted;
        self.unexpected_symbol += o.unexpected_symbol;
        self.unreadable_frames += o.unreadable_frames;
        self.errors += o.errors;
        self.closed += o.closed;
    }
}

/// Latency of fast and slow clients, in ns, plus counters.
#[derive(Debug, Clone)]
pub(super) struct Tally {
    pub fast: Histogram<u64>,
    pub slow: Histogram<u64>,
    pub counters: Counters,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            fast: new_histogram(),
            slow: new_histogram(),
            counters: Counters::default(),
        }
    }
}

impl Tally {
    pub(super) fn record(&mut self, slow: bool, age_ns: u64) {
        let hist = if slow { &mut self.slow } else { &mut self.fast };
        hist.saturating_record(age_ns.clamp(1, MAX_TRACKED_NS));
    }

    pub(super) fn merge(&mut self, other: &Tally) {
        self.fast
            .add(&other.fast)
            .expect("bench histograms share their bounds");
        self.slow
            .add(&other.slow)
            .expect("bench histograms share their bounds");
        self.counters.add(&other.counters);
    }
}

/// Ages seen by one class of client (fast or slow) over an interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AgeSpan {
    pub events: u64,
    pub sum_ns: u128,
    pub max_ns: u64,
}

impl AgeSpan {
    pub fn add(&mut self, age_ns: u64) {
        self.events += 1;
        self.sum_ns += u128::from(age_ns);
        self.max_ns = self.max_ns.max(age_ns);
    }

    pub fn merge(&mut self, o: &AgeSpan) {
        self.events += o.events;
        self.sum_ns += o.sum_ns;
        self.max_ns = self.max_ns.max(o.max_ns);
    }

    pub fn mean_ns(&self) -> Option<f64> {
        (self.events > 0).then(|| self.sum_ns as f64 / self.events as f64)
    }
}

/// A worker's figures since its previous summary: enough for a progress
/// line and a latency-over-time series (a few dozen bytes), plus the slow
/// clients' ages by second of the run (one small histogram per second
/// that had any, usually one or two).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Summary {
    pub fast: AgeSpan,
    pub slow: AgeSpan,
    /// Protocol violations since the previous summary.
    pub violations: u64,
    pub slow_ages: AgesBySecond,
}

impl Summary {
    /// Adds a later (or unsent) summary to this one.
    pub(super) fn merge(&mut self, o: Summary) {
        self.fast.merge(&o.fast);
        self.slow.merge(&o.slow);
        self.violations += o.violations;
        self.slow_ages.append(o.slow_ages);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_tallies_adds_counts_and_keeps_extremes() {
        let mut a = Tally::default();
        a.record(false, 1_000);
        a.counters.events = 1;
        let mut b = Tally::default();
        b.record(false, 9_000_000);
        b.record(true, 0);
        b.counters.events = 2;
        b.counters.gaps_not_counted = 1;
        a.merge(&b);
        assert_eq!((a.fast.len(), a.slow.len(), a.counters.events), (2, 1, 3));
        assert!(a.fast.max() >= 8_990_000);
        assert_eq!(a.slow.min(), 1, "zero age is clamped to 1 ns, never lost");
        assert_eq!(a.counters.violations(), 1);
    }

    #[test]
    fn merges_count_only_ticks_with_n_and_add_up_over_groups() {
        let mut c = Counters::default();
        c.fast_merges.add(0);
        c.fast_merges.add(3);
        c.slow_merges.add(5);
        let expected = Merges {
            events_with_merges: 2,
            updates_merged: 8,
        };
        assert_eq!(c.merges(), expected);
        assert_eq!(c.fast_merges.events_with_merges, 1);
    }

    #[test]
    fn age_spans_average_and_keep_the_max() {
        let mut s = AgeSpan::default();
        assert_eq!(s.mean_ns(), None);
        s.add(10);
        s.add(30);
        let mut t = AgeSpan::default();
        t.add(50);
        s.merge(&t);
        assert_eq!((s.mean_ns(), s.max_ns), (Some(30.0), 50));
    }
}
