//! Recent updates of every symbol: a ring per symbol that sessions read
//! lock-free, and the bounds of all rings (the policy that keeps them is
//! the router's, `router/retention.rs`).
//!
//! The ring is what lets a client that keeps up receive *every* update: a
//! session that finds several updates of one symbol since its last write
//! sends each of them from the ring, in order and with `n = 0`, as long as
//! the oldest is still retained and younger than `--max-lag`
//! (`session::outbox`). The router is the only writer (`router::Retention`);
//! sessions and the HTTP API only read ([`TickRing::get`]).
//!
//! Two bounds hold at all times:
//! - per symbol, at most `--history` updates (a ring slot is found by
//!   `seq`, so a lookup is one load, with no search and no lock);
//! - over all symbols, at most `--history-memory` bytes of retained updates
//!   and ring slots. Over the budget, the oldest retained update of all
//!   symbols goes first, so the budget always keeps the most recent history.
//!
//! Rings start small and double only when full, so a symbol that trades
//! rarely costs a few slots, and 10,000 busy symbols cannot take gigabytes.
//!
//! A [`HistoryRange`] says which retained updates to read: resumes,
//! `/api/ticks` and (with NATS) the source's answers to edges read rings
//! through it ([`TickRing::read`]).

use crate::codec::EncodedTick;
use arc_swap::ArcSwapOption;
use std::sync::Arc;

/// Updates kept per symbol by default: at the default skew, the busiest of
/// 345 symbols takes about 900 updates/s at 5,000 updates/s, so a second of
/// its history fits; quieter symbols keep minutes.
pub const DEFAULT_HISTORY: usize = 1024;
/// Most updates kept per symbol: a million is minutes of the busiest
/// symbol, and ring slots are found by masking, so a bound keeps them sane.
pub const MAX_HISTORY: usize = 1 << 20;
/// Memory for all rings together by default: about 120,000 updates, which
/// is 24 s of the default feed and 6 s at 20,000 updates/s.
pub const DEFAULT_HISTORY_MEMORY: usize = 64 * 1024 * 1024;
/// Slots a ring starts with.
pub(crate) const FIRST_RING_SLOTS: usize = 8;
/// Bytes one ring slot costs: its pointer and the router's record of it.
pub(crate) const SLOT_BYTES: usize = 2 * std::mem::size_of::<u64>();
/// Encoded bytes of a retained update, both encodings: a simulated tick is
/// about 150 bytes of JSON and 100 of MessagePack, made lazily on first use
/// (`codec::EncodedTick`); budgeted as if both were made.
const ENCODED_BYTES: usize = 288;

/// Bytes the budget counts for one retained update.
pub fn entry_bytes() -> usize {
    // The reference counts in front of the tick, the tick, its encodings.
    2 * std::mem::size_of::<usize>() + std::mem::size_of::<EncodedTick>() + ENCODED_BYTES
}

/// The recent updates of one symbol, found by `seq`. Written only by the
/// router; a slot holds the update whose `seq` maps to it, or nothing.
#[derive(Debug)]
pub struct TickRing {
    slots: Box<[ArcSwapOption<EncodedTick>]>,
}

impl TickRing {
    pub(crate) fn with_slots(slots: usize) -> Self {
        debug_assert!(slots.is_power_of_two());
        Self {
            slots: (0..slots).map(|_| ArcSwapOption::empty()).collect(),
        }
    }

    pub(crate) fn slot(&self, seq: u64) -> &ArcSwapOption<EncodedTick> {
        &self.slots[(seq as usize) & (self.slots.len() - 1)]
    }

    /// The update with exactly this `seq`, if it is still retained.
    pub fn get(&self, seq: u64) -> Option<Arc<EncodedTick>> {
        self.slot(seq).load_full().filter(|t| t.seq() == seq)
    }

    /// The same without touching the update's reference count, for the
    /// sessions' hot path.
    pub fn load(&self, seq: u64) -> Option<RetainedTick> {
        let guard = self.slot(seq).load();
        let found = guard.as_ref().is_some_and(|t| t.seq() == seq);
        found.then_some(RetainedTick(guard))
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The seqs after `after`, up to `latest_seq`, that may still be in
    /// this ring: nothing older than the ring's length can be. Look each
    /// up; a slot may hold an older or newer update, or none.
    pub fn candidates_after(&self, after: u64, latest_seq: u64) -> std::ops::RangeInclusive<u64> {
        let oldest_possible = latest_seq.saturating_sub(self.slots.len() as u64 - 1);
        (after + 1).max(oldest_possible)..=latest_seq
    }

    /// The retained updates `range` selects, oldest first. `latest_seq`
    /// must have been read before the ring (`SymbolCell::ring`).
    pub fn read(&self, range: &HistoryRange, latest_seq: u64) -> Vec<Arc<EncodedTick>> {
        let until = range.until.map_or(latest_seq, |u| u.min(latest_seq));
        let seqs = self.candidates_after(range.after, until);
        let found = |seq| self.get(seq);
        let mut ticks: Vec<_> = match range.keep {
            Keep::Oldest => seqs.filter_map(found).take(range.limit).collect(),
            Keep::Newest => seqs.rev().filter_map(found).take(range.limit).collect(),
        };
        if range.keep == Keep::Newest {
            ticks.reverse();
        }
        ticks
    }

    /// The oldest seq of the unbroken run of retained updates that ends at
    /// `latest_seq`, looking no further back than `after + 1`: where a
    /// resume from `after` could start without a gap.
    pub fn unbroken_since(&self, after: u64, latest_seq: u64) -> u64 {
        let mut oldest = latest_seq + 1;
        for seq in self.candidates_after(after, latest_seq).rev() {
            if self.get(seq).is_none() {
                break;
            }
            oldest = seq;
        }
        oldest
    }
}

/// Which retained updates of one symbol to read: those with `after < seq
/// <= until`, at most `limit` of them, oldest first in the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRange {
    pub after: u64,
    /// `None`: up to the latest.
    pub until: Option<u64>,
    pub limit: usize,
    /// Which `limit` are read when more are retained.
    pub keep: Keep,
}

/// The end of a [`HistoryRange`] that is read when it holds more than its
/// limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The first after `after`: a page, continued with `after` set to the
    /// last seq read (`/api/ticks?after=`).
    Oldest,
    /// The last before `until`: the recent past (a resume, whose lost
    /// updates are then all at the start, or `/api/ticks` without `after`).
    Newest,
}

/// A retained update borrowed from a ring (see [`TickRing::load`]).
pub struct RetainedTick(arc_swap::Guard<Option<Arc<EncodedTick>>>);

impl std::ops::Deref for RetainedTick {
    type Target = EncodedTick;
    fn deref(&self) -> &EncodedTick {
        self.0.as_ref().expect("only made for a filled slot")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Tick;

    /// A ring of 16 slots holding `seqs`.
    fn ring(seqs: impl IntoIterator<Item = u64>) -> TickRing {
        let ring = TickRing::with_slots(16);
        for seq in seqs {
            let tick = EncodedTick::new(Tick::test("AAPL", seq));
            ring.slot(seq).store(Some(Arc::new(tick)));
        }
        ring
    }

    fn seqs(ticks: &[Arc<EncodedTick>]) -> Vec<u64> {
        ticks.iter().map(|t| t.seq()).collect()
    }

    fn range(after: u64, until: Option<u64>, limit: usize, keep: Keep) -> HistoryRange {
        HistoryRange {
            after,
            until,
            limit,
            keep,
        }
    }

    #[test]
    fn a_range_reads_its_oldest_or_newest_updates_oldest_first() {
        let ring = ring(10..=20);
        let oldest = ring.read(&range(12, None, 3, Keep::Oldest), 20);
        assert_eq!(seqs(&oldest), [13, 14, 15]);
        let newest = ring.read(&range(12, None, 3, Keep::Newest), 20);
        assert_eq!(seqs(&newest), [18, 19, 20]);
        let until = ring.read(&range(0, Some(15), 100, Keep::Newest), 20);
        assert_eq!(seqs(&until), (10..=15).collect::<Vec<_>>());
        assert!(ring.read(&range(20, None, 5, Keep::Oldest), 20).is_empty());
    }

    #[test]
    fn a_read_skips_updates_no_longer_retained() {
        let ring = ring([5, 6, 9, 10]);
        let read = ring.read(&range(0, None, 10, Keep::Oldest), 10);
        assert_eq!(seqs(&read), [5, 6, 9, 10]);
        // Slot 21 & 15 == slot 5: an older update in it is not seq 21.
        assert!(ring.read(&range(20, None, 10, Keep::Oldest), 21).is_empty());
    }

    #[test]
    fn the_unbroken_run_ends_at_the_first_gap_back_from_the_latest() {
        let ring = ring([3, 4, 7, 8, 9]);
        assert_eq!(ring.unbroken_since(0, 9), 7);
        assert_eq!(
            ring.unbroken_since(7, 9),
            8,
            "no further back than after + 1"
        );
        assert_eq!(ring.unbroken_since(2, 4), 3);
        assert_eq!(
            ring.unbroken_since(0, 12),
            13,
            "the latest itself is missing"
        );
    }
}
