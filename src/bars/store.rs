//! The bar store: for each symbol and timeframe, the open (partial) bar
//! and a ring of final bars, each final numbered by its index (0 for the
//! first that closed), so a reader asks for "every final after index k"
//! as a session does for ticks by `seq`. The router is the only writer;
//! sessions and `/api/bars` read without locks (`cell.rs`).
//!
//! Bounds: a ring holds at most its timeframe's retention (`--bars-keep`,
//! [`Retention`]), and all rings together at most `--bars-memory` bytes.
//! Rings start at [`FIRST_SLOTS`] and double when full. The first slots of
//! every symbol the store can hold are set aside from the budget (a
//! symbol's live bars go through them: 5 x [`FIRST_SLOTS`] x
//! [`SLOT_BYTES`], 1.4 MB per 1,000 symbols); each timeframe may grow its
//! rings into a share of the rest in proportion to its retention, and a
//! ring that would go over its timeframe's share stops growing and keeps
//! its most recent bars.

use super::cell::SeqCell;
use super::{BAR_WORDS, Bar, Timeframe, from_words, to_words};
use crate::symbols::SymbolId;
use arc_swap::ArcSwapOption;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Memory of all rings by default. At the default retention a symbol's
/// five full rings take 462 KB, so 256 MiB keeps full history for about
/// 580 symbols (the default universe is 345) and a share of it for each
/// of 10,000.
pub const DEFAULT_BARS_MEMORY: usize = 256 * 1024 * 1024;
/// Slots a ring starts with: the floor every series keeps.
pub(crate) const FIRST_SLOTS: usize = 4;
/// Bytes of one ring slot: the bar and its version.
pub(crate) const SLOT_BYTES: usize = std::mem::size_of::<SeqCell<BAR_WORDS>>();

/// Final bars kept per symbol, by timeframe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub per_tf: [usize; 5],
}

impl Default for Retention {
    /// An hour of 1s bars, a day of 1m, a day of 5m, a month of 1h and a
    /// year of 1d.
    fn default() -> Self {
        Retention {
            per_tf: [3_600, 1_440, 288, 720, 365],
        }
    }
}

/// [`Retention::default`] as `--bars-keep` writes it: its default value.
pub const DEFAULT_KEEP: &str = "1s=3600,1m=1440,5m=288,1h=720,1d=365";

/// Most final bars kept per symbol and timeframe: ten days of 1s bars.
pub(crate) const MAX_KEEP: usize = 864_000;

impl Retention {
    /// `--bars-keep`: `TF=N` pairs, comma-separated; timeframes not named
    /// keep their default.
    pub fn parse(text: &str) -> Result<Retention, String> {
        let mut retention = Retention::default();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (tf, count) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?}: expected TF=COUNT, like 1m=1440"))?;
            let tf = Timeframe::parse(tf.trim())
                .ok_or_else(|| format!("{tf:?}: not a timeframe; use 1s, 1m, 5m, 1h or 1d"))?;
            let count = count
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_KEEP).contains(n))
                .ok_or_else(|| format!("{pair:?}: the count must be from 1 to {MAX_KEEP}"))?;
            retention.per_tf[tf.index()] = count;
        }
        Ok(retention)
    }
}

/// The final bars of one series, found by index.
#[derive(Debug)]
struct Ring {
    slots: Box<[SeqCell<BAR_WORDS>]>,
}

impl Ring {
    fn new(slots: usize) -> Ring {
        Ring {
            slots: (0..slots).map(|_| SeqCell::default()).collect(),
        }
    }

    fn get(&self, index: u64) -> Option<Bar> {
        let slot = &self.slots[(index % self.slots.len() as u64) as usize];
        let version = 2 * (index + 1);
        slot.read_if(|v| v == version)
            .map(|(_, words)| from_words(words))
    }

    fn put(&self, index: u64, bar: &Bar) {
        let slot = &self.slots[(index % self.slots.len() as u64) as usize];
        slot.write(2 * (index + 1), to_words(*bar));
    }
}

/// One symbol in one timeframe.
#[derive(Debug, Default)]
struct Series {
    /// `[index it will have when final, bar words...]`; stale once
    /// `finals` passed that index.
    partial: SeqCell<{ BAR_WORDS + 1 }>,
    /// Finals closed so far: the index of the next.
    finals: AtomicU64,
    ring: ArcSwapOption<Ring>,
}

/// What a reader needs of a series: how many finals closed, and which
/// indexes are still retained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesRead {
    /// Index of the next final to close (finals so far).
    pub finals: u64,
    /// Oldest index still retained.
    pub oldest: u64,
}

/// Every symbol's bars, shared as `Arc<BarStore>`; capacity fixed at
/// start-up like the symbol table's.
#[derive(Debug)]
pub struct BarStore {
    series: Box<[[Series; 5]]>,
    retention: Retention,
    /// Bytes of ring slots beyond their first each timeframe may grow to.
    shares: [usize; 5],
    /// Bytes of ring slots beyond their first, per timeframe.
    grown: [AtomicUsize; 5],
    /// Bytes of all ring slots.
    used: AtomicUsize,
    budget: usize,
    /// By symbol id: the bars continue a NATS source's and follow its
    /// ticks (an edge serving the symbol; see [`BarStore::is_current`]).
    current: Box<[AtomicBool]>,
}

impl BarStore {
    /// A store for `symbols` symbols. The first slots of every possible
    /// ring are set aside from `budget`, and the rest shared among the
    /// timeframes, so the budget holds however many symbols appear.
    pub fn new(symbols: usize, retention: Retention, budget: usize) -> BarStore {
        let total: usize = retention.per_tf.iter().sum::<usize>().max(1);
        let floor = symbols * Timeframe::ALL.len() * FIRST_SLOTS * SLOT_BYTES;
        let growable = budget.saturating_sub(floor);
        BarStore {
            series: (0..symbols).map(|_| Default::default()).collect(),
            retention,
            shares: std::array::from_fn(|i| {
                (growable as u128 * retention.per_tf[i] as u128 / total as u128) as usize
            }),
            grown: Default::default(),
            used: AtomicUsize::new(0),
            budget,
            current: (0..symbols).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// On a NATS edge: whether the bars of `id` are the source's (seeded
    /// from it and following its ticks since). When not, the edge's
    /// `/api/bars` asks the source.
    pub fn is_current(&self, id: SymbolId) -> bool {
        self.current[id as usize].load(Ordering::Acquire)
    }

    pub(crate) fn set_current(&self, id: SymbolId, current: bool) {
        self.current[id as usize].store(current, Ordering::Release);
    }

    fn series(&self, id: SymbolId, tf: Timeframe) -> &Series {
        &self.series[id as usize][tf.index()]
    }

    /// Bytes of ring slots in use, and the budget.
    pub fn memory(&self) -> (usize, usize) {
        (self.used.load(Ordering::Relaxed), self.budget)
    }

    /// Publishes the open bar of `id` in `tf` (router only).
    pub(crate) fn set_partial(&self, id: SymbolId, tf: Timeframe, bar: &Bar) {
        let series = self.series(id, tf);
        let mut words = [0; BAR_WORDS + 1];
        words[0] = series.finals.load(Ordering::Relaxed);
        words[1..].copy_from_slice(&to_words(*bar));
        series.partial.write(series.partial.version() + 2, words);
    }

    /// Appends a final bar of `id` in `tf` (router only); returns its index.
    pub(crate) fn push_final(&self, id: SymbolId, tf: Timeframe, bar: &Bar) -> u64 {
        let series = self.series(id, tf);
        let index = series.finals.load(Ordering::Relaxed);
        let ring = self.room_for(series, tf, index);
        ring.put(index, bar);
        series.finals.store(index + 1, Ordering::Release);
        index
    }

    /// The ring that will hold final `index`: grown when full, within the
    /// retention and the timeframe's share of the budget.
    fn room_for(&self, series: &Series, tf: Timeframe, index: u64) -> Arc<Ring> {
        let cap = self.retention.per_tf[tf.index()].max(1);
        let old = series.ring.load_full();
        let len = old.as_ref().map_or(0, |r| r.slots.len());
        let wanted = match len {
            0 => FIRST_SLOTS.min(cap),
            len if index >= len as u64 && len < cap => (2 * len).min(cap),
            _ => return old.expect("a ring with slots"),
        };
        let grown = &self.grown[tf.index()];
        let extra = (wanted - len) * SLOT_BYTES;
        if len > 0 {
            if grown.load(Ordering::Relaxed) + extra > self.shares[tf.index()] {
                return old.expect("a ring with slots");
            }
            grown.fetch_add(extra, Ordering::Relaxed);
        }
        self.used.fetch_add(extra, Ordering::Relaxed);
        let ring = Arc::new(Ring::new(wanted));
        if let Some(old) = old {
            for i in index.saturating_sub(len as u64)..index {
                if let Some(bar) = old.get(i) {
                    ring.put(i, &bar);
                }
            }
        }
        series.ring.store(Some(ring.clone()));
        ring
    }

    /// How many finals of `id` in `tf` closed and which are retained.
    pub fn read(&self, id: SymbolId, tf: Timeframe) -> SeriesRead {
        let series = self.series(id, tf);
        let finals = series.finals.load(Ordering::Acquire);
        let len = series.ring.load().as_ref().map_or(0, |r| r.slots.len());
        SeriesRead {
            finals,
            oldest: finals.saturating_sub(len as u64),
        }
    }

    /// Final bar `index` of `id` in `tf`, if it closed and is retained.
    /// Read [`read`](Self::read) first: the ring is loaded after it.
    pub fn final_bar(&self, id: SymbolId, tf: Timeframe, index: u64) -> Option<Bar> {
        self.series(id, tf).ring.load().as_ref()?.get(index)
    }

    /// The open bar of `id` in `tf`, if there is one.
    pub fn partial(&self, id: SymbolId, tf: Timeframe) -> Option<Bar> {
        let finals = self.series(id, tf).finals.load(Ordering::Acquire);
        self.partial_at(id, tf)
            .and_then(|(index, bar)| (index == finals).then_some(bar))
    }

    /// The last open bar published for `id` in `tf` with the index it
    /// has when final: open only while that index is
    /// [`SeriesRead::finals`] (a session compares it with the finals it
    /// sent, so an open bar never overtakes a final one).
    pub fn partial_at(&self, id: SymbolId, tf: Timeframe) -> Option<(u64, Bar)> {
        let (version, words) = self.series(id, tf).partial.read_if(|_| true)?;
        let mut bar = [0; BAR_WORDS];
        bar.copy_from_slice(&words[1..]);
        (version > 0).then(|| (words[0], from_words(bar)))
    }

    /// Up to `limit` bars of `id` in `tf` starting in `[from, to)`, the
    /// newest of them: retained finals oldest first, and the open bar.
    pub fn history(
        &self,
        id: SymbolId,
        tf: Timeframe,
        from: u64,
        to: u64,
        limit: usize,
    ) -> (Vec<Bar>, Option<Bar>) {
        let read = self.read(id, tf);
        let finals = (read.oldest..read.finals).filter_map(|i| self.final_bar(id, tf, i));
        window(finals, self.partial(id, tf), from, to, limit)
    }

    /// Up to `limit` retained finals of `id` in `tf` with indexes below
    /// `end`, the newest of them, oldest first.
    pub fn finals_before(&self, id: SymbolId, tf: Timeframe, end: u64, limit: usize) -> Vec<Bar> {
        let oldest = self
            .read(id, tf)
            .oldest
            .max(end.saturating_sub(limit as u64));
        (oldest..end)
            .filter_map(|i| self.final_bar(id, tf, i))
            .collect()
    }

    /// Replaces the finals of `id` in `tf` with `finals` (oldest first;
    /// the newest the retention keeps) and clears its open bar (router
    /// only: a NATS edge seeding a symbol no client of it holds). Indexes
    /// go on from the finals closed so far, so nothing read before is
    /// mistaken for a seeded bar.
    pub(crate) fn seed(&self, id: SymbolId, tf: Timeframe, finals: &[Bar]) {
        let series = self.series(id, tf);
        let cap = self.retention.per_tf[tf.index()].max(1);
        if let Some(old) = series.ring.swap(None) {
            let len = old.slots.len();
            self.used.fetch_sub(len * SLOT_BYTES, Ordering::Relaxed);
            let grown = len.saturating_sub(FIRST_SLOTS.min(cap)) * SLOT_BYTES;
            self.grown[tf.index()].fetch_sub(grown, Ordering::Relaxed);
        }
        let mut words = [0; BAR_WORDS + 1];
        words[0] = u64::MAX; // the index no open bar has
        series.partial.write(series.partial.version() + 2, words);
        for bar in &finals[finals.len().saturating_sub(cap)..] {
            self.push_final(id, tf, bar);
        }
    }
}

/// Up to `limit` of `finals` (oldest first) and `open` starting in
/// `[from, to)`, the newest of them; what `/api/bars` answers.
pub(crate) fn window(
    finals: impl DoubleEndedIterator<Item = Bar>,
    open: Option<Bar>,
    from: u64,
    to: u64,
    limit: usize,
) -> (Vec<Bar>, Option<Bar>) {
    let open = open.filter(|b| (from..to).contains(&b.t) && limit > 0);
    let mut finals: Vec<Bar> = finals
        .rev()
        .skip_while(|b| b.t >= to)
        .take_while(|b| b.t >= from)
        .take(limit - usize::from(open.is_some()).min(limit))
        .collect();
    finals.reverse();
    (finals, open)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(t: u64) -> Bar {
        Bar {
            t,
            o: t as f64,
            ..Bar::default()
        }
    }

    #[test]
    fn finals_are_found_by_index_and_the_partial_follows_them() {
        let store = BarStore::new(2, Retention::default(), DEFAULT_BARS_MEMORY);
        let tf = Timeframe::M1;
        assert_eq!(store.partial(0, tf), None);
        for t in 0..10 {
            store.set_partial(0, tf, &bar(t));
            assert_eq!(store.partial(0, tf), Some(bar(t)));
            assert_eq!(store.push_final(0, tf, &bar(t)), t);
            assert_eq!(store.partial(0, tf), None, "the closed bar is no partial");
        }
        store.set_partial(0, tf, &bar(10));
        assert_eq!(
            store.read(0, tf),
            SeriesRead {
                finals: 10,
                oldest: 0
            }
        );
        let ts = |(finals, open): (Vec<Bar>, Option<Bar>)| -> (Vec<u64>, Option<u64>) {
            (finals.iter().map(|b| b.t).collect(), open.map(|b| b.t))
        };
        assert_eq!(
            ts(store.history(0, tf, 0, u64::MAX, 4)),
            (vec![7, 8, 9], Some(10))
        );
        assert_eq!(ts(store.history(0, tf, 2, 5, 100)), (vec![2, 3, 4], None));
        assert_eq!(ts(store.history(1, tf, 0, u64::MAX, 10)), (vec![], None));
    }

    #[test]
    fn rings_keep_the_retention_and_stop_growing_over_the_budget() {
        let retention = Retention {
            per_tf: [10, 10, 10, 10, 10],
        };
        // The first 4 slots of 3 x 5 rings, and 5 more per timeframe.
        let store = BarStore::new(3, retention, (3 * 5 * 4 + 5 * 5) * SLOT_BYTES);
        for t in 0..25 {
            store.push_final(0, Timeframe::S1, &bar(t));
        }
        assert_eq!(
            store.read(0, Timeframe::S1),
            SeriesRead {
                finals: 25,
                oldest: 17
            }
        );
        assert_eq!(store.final_bar(0, Timeframe::S1, 16), None);
        assert_eq!(store.final_bar(0, Timeframe::S1, 24), Some(bar(24)));
        for t in 0..25 {
            store.push_final(1, Timeframe::S1, &bar(t));
        }
        assert_eq!(
            store.read(1, Timeframe::S1).oldest,
            25 - FIRST_SLOTS as u64,
            "the share is spent: the second ring keeps its first slots"
        );
        assert!(store.memory().0 <= store.memory().1);
    }

    /// Resident memory of this process, from `/proc/self/status`.
    fn rss_bytes() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }

    /// Fills every ring of `symbols` symbols to its retention at the
    /// default budget; prints the store's count and the process's growth.
    fn fill_and_measure(symbols: usize) {
        let before = rss_bytes();
        let retention = Retention::default();
        let store = BarStore::new(symbols, retention, DEFAULT_BARS_MEMORY);
        for id in 0..symbols as SymbolId {
            for tf in Timeframe::ALL {
                for t in 0..retention.per_tf[tf.index()] as u64 {
                    store.push_final(id, tf, &bar(t));
                }
            }
        }
        let (used, budget) = store.memory();
        let grown = rss_bytes().saturating_sub(before);
        let kept: u64 = (0..symbols as SymbolId)
            .flat_map(|id| Timeframe::ALL.map(|tf| store.read(id, tf)))
            .map(|r| r.finals - r.oldest)
            .sum();
        let headers = symbols * std::mem::size_of::<[Series; 5]>();
        println!(
            "{symbols} symbols: {kept} bars kept, rings {:.1} MiB of the {:.0} MiB budget, \
             per-symbol state {:.2} MiB; RSS grew {:.1} MiB",
            used as f64 / 1_048_576.0,
            budget as f64 / 1_048_576.0,
            headers as f64 / 1_048_576.0,
            grown as f64 / 1_048_576.0
        );
        assert!(used <= budget);
        assert!(
            grown <= (used + headers) * 11 / 10 + (1 << 20),
            "the process holds what the store counts"
        );
    }

    #[test]
    #[ignore = "a measurement (docs/benchmarks.md, \"Bars\"); run it alone"]
    fn memory_of_full_bars_at_345_symbols() {
        fill_and_measure(345);
    }

    #[test]
    #[ignore = "a measurement (docs/benchmarks.md, \"Bars\"); run it alone"]
    fn memory_of_full_bars_at_10_000_symbols_stays_within_the_budget() {
        fill_and_measure(10_000);
    }

    #[test]
    fn a_seed_replaces_the_finals_and_the_open_bar_and_indexes_go_on() {
        let retention = Retention {
            per_tf: [8, 8, 8, 8, 8],
        };
        let store = BarStore::new(2, retention, DEFAULT_BARS_MEMORY);
        let tf = Timeframe::S1;
        for t in 0..6 {
            store.push_final(0, tf, &bar(t));
        }
        store.set_partial(0, tf, &bar(6));
        let before = store.memory().0;
        let seeded: Vec<Bar> = (100..110).map(bar).collect();
        store.seed(0, tf, &seeded);
        assert_eq!(
            store.partial(0, tf),
            None,
            "the open bar is the seed's to set"
        );
        assert_eq!(
            store.read(0, tf),
            SeriesRead {
                finals: 14,
                oldest: 6
            },
            "indexes go on after the 6 finals closed; the newest 8 are kept"
        );
        assert_eq!(
            store.final_bar(0, tf, 5),
            None,
            "no old final is read as seeded"
        );
        assert_eq!(store.final_bar(0, tf, 6), Some(bar(102)));
        let (finals, _) = store.history(0, tf, 0, u64::MAX, 100);
        assert_eq!(finals, seeded[2..]);
        store.seed(0, tf, &seeded);
        assert_eq!(
            store.memory().0,
            before,
            "a seed frees the ring it replaces"
        );
        assert!(!store.is_current(0));
        store.set_current(0, true);
        assert!(store.is_current(0) && !store.is_current(1));
    }

    #[test]
    fn retention_flags_name_timeframes_and_keep_the_rest() {
        let r = Retention::parse("1s=600, 1d=30").unwrap();
        assert_eq!(r.per_tf, [600, 1_440, 288, 720, 30]);
        assert_eq!(Retention::parse("").unwrap(), Retention::default());
        assert_eq!(
            Retention::parse(DEFAULT_KEEP).unwrap(),
            Retention::default()
        );
        assert!(
            Retention::parse("2m=5")
                .unwrap_err()
                .contains("not a timeframe")
        );
        assert!(Retention::parse("1m=0").unwrap_err().contains("from 1"));
        assert!(Retention::parse("1m").unwrap_err().contains("TF=COUNT"));
    }
}
