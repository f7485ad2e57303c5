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
}

/// A retained update borrowed from a ring (see [`TickRing::load`]).
pub struct RetainedTick(arc_swap::Guard<Option<Arc<EncodedTick>>>);

impl std::ops::Deref for RetainedTick {
    type Target = EncodedTick;
    fn deref(&self) -> &EncodedTick {
        self.0.as_ref().expect("only made for a filled slot")
    }
}
