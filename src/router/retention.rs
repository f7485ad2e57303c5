//! Retention of recent updates: which updates each symbol's ring keeps,
//! within `--history` per symbol and `--history-memory` over all of them.
//! The router is the only writer of the rings and runs this on every
//! routed tick; over the budget the oldest update of all symbols goes
//! first, found with a heap keyed by each symbol's oldest routing time.

use crate::codec::EncodedTick;
use crate::history::{FIRST_RING_SLOTS, SLOT_BYTES, TickRing, entry_bytes};
use crate::stats::HistoryStatus;
use crate::symbols::{SymbolId, SymbolTable};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use tokio::time::Instant;

/// The router's side of one symbol's ring: which seqs it holds, oldest
/// first.
#[derive(Debug, Default)]
struct Retained {
    seqs: VecDeque<u64>,
    /// True while the symbol has an entry in the eviction heap.
    queued: bool,
}

/// Retention of recent updates for every symbol (router only).
#[derive(Debug)]
pub struct Retention {
    per_symbol: usize,
    budget_bytes: usize,
    used_bytes: usize,
    updates: u64,
    evicted_for_budget: u64,
    symbols: Vec<Retained>,
    /// Symbols by the routing time of their oldest retained update. An
    /// entry may be older than the symbol's real oldest (after `--history`
    /// dropped it); it is corrected when it surfaces.
    oldest: BinaryHeap<Reverse<(Instant, SymbolId)>>,
}

impl Retention {
    /// Keeps up to `per_symbol` updates of each symbol within
    /// `budget_bytes` overall; `per_symbol == 0` keeps none.
    pub fn new(per_symbol: usize, budget_bytes: usize) -> Self {
        Self {
            per_symbol,
            budget_bytes,
            used_bytes: 0,
            updates: 0,
            evicted_for_budget: 0,
            symbols: Vec::new(),
            oldest: BinaryHeap::new(),
        }
    }

    pub fn status(&self) -> HistoryStatus {
        HistoryStatus {
            updates: self.updates,
            bytes: self.used_bytes as u64,
            budget_bytes: self.budget_bytes as u64,
            evicted_for_budget: self.evicted_for_budget,
        }
    }

    /// Retains `tick` as the newest update of symbol `id`, then evicts
    /// what the bounds require.
    pub fn store(&mut self, table: &SymbolTable, id: SymbolId, tick: &Arc<EncodedTick>) {
        if self.per_symbol == 0 {
            return;
        }
        let index = id as usize;
        if self.symbols.len() <= index {
            self.symbols.resize_with(index + 1, Retained::default);
        }
        let seq = tick.seq();
        if self.symbols[index]
            .seqs
            .back()
            .is_some_and(|&last| last >= seq)
        {
            // The source restarted its sequence: the old history is another
            // seq space and cannot be replayed after the new updates.
            while !self.symbols[index].seqs.is_empty() {
                self.evict_oldest(table, id);
            }
        }
        let ring = self.ring_with_room(table, id);
        // Beyond `--history`, or would share a slot with `seq`.
        while let Some(&front) = self.symbols[index].seqs.front() {
            if self.symbols[index].seqs.len() < self.per_symbol && front + ring.len() as u64 > seq {
                break;
            }
            self.evict_oldest(table, id);
        }
        ring.slot(seq).store(Some(tick.clone()));
        let retained = &mut self.symbols[index];
        retained.seqs.push_back(seq);
        self.used_bytes += entry_bytes();
        self.updates += 1;
        if !retained.queued {
            retained.queued = true;
            self.oldest.push(Reverse((tick.routed_at, id)));
        }
        self.enforce_budget(table);
    }

    /// Drops every retained update of every symbol: they belong to a seq
    /// space that ended (a new epoch).
    pub fn forget_all(&mut self, table: &SymbolTable) {
        for id in 0..self.symbols.len() as SymbolId {
            while !self.symbols[id as usize].seqs.is_empty() {
                self.evict_oldest(table, id);
            }
        }
    }

    /// The symbol's ring, doubled first while it is full and below the
    /// per-symbol bound.
    fn ring_with_room(&mut self, table: &SymbolTable, id: SymbolId) -> Arc<TickRing> {
        let cell = table.cell(id);
        let current = cell.ring();
        let held = self.symbols[id as usize].seqs.len();
        let slots = current.as_ref().map_or(0, |r| r.len());
        let most = self.per_symbol.next_power_of_two();
        if let Some(ring) = current.filter(|_| held < slots || slots >= most) {
            return ring;
        }
        let grown = (slots * 2).clamp(FIRST_RING_SLOTS.min(most), most);
        let ring = Arc::new(TickRing::with_slots(grown));
        if let Some(old) = cell.ring() {
            for &kept in &self.symbols[id as usize].seqs {
                ring.slot(kept).store(old.get(kept));
            }
        }
        self.used_bytes += (grown - slots) * SLOT_BYTES;
        cell.set_ring(ring.clone());
        ring
    }

    /// Drops the oldest retained update of symbol `id`.
    fn evict_oldest(&mut self, table: &SymbolTable, id: SymbolId) {
        let Some(seq) = self.symbols[id as usize].seqs.pop_front() else {
            return;
        };
        if let Some(ring) = table.cell(id).ring() {
            let slot = ring.slot(seq);
            if slot.load().as_ref().is_some_and(|t| t.seq() == seq) {
                slot.store(None);
            }
        }
        self.used_bytes -= entry_bytes();
        self.updates -= 1;
    }

    /// Evicts the oldest updates of all symbols until the budget holds.
    fn enforce_budget(&mut self, table: &SymbolTable) {
        while self.used_bytes > self.budget_bytes {
            let Some(Reverse((queued_at, id))) = self.oldest.pop() else {
                return;
            };
            self.symbols[id as usize].queued = false;
            let Some(oldest_at) = self.oldest_routed_at(table, id) else {
                continue;
            };
            if oldest_at != queued_at {
                self.requeue(id, oldest_at);
                continue;
            }
            self.evict_oldest(table, id);
            self.evicted_for_budget += 1;
            if let Some(next_at) = self.oldest_routed_at(table, id) {
                self.requeue(id, next_at);
            }
        }
    }

    fn requeue(&mut self, id: SymbolId, at: Instant) {
        self.symbols[id as usize].queued = true;
        self.oldest.push(Reverse((at, id)));
    }

    fn oldest_routed_at(&self, table: &SymbolTable, id: SymbolId) -> Option<Instant> {
        let seq = *self.symbols[id as usize].seqs.front()?;
        let ring = table.cell(id).ring()?;
        ring.get(seq).map(|t| t.routed_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(symbols: usize) -> SymbolTable {
        let table = SymbolTable::new(symbols.max(1));
        for i in 0..symbols {
            table.push(format!("S{i}").into()).unwrap();
        }
        table
    }

    fn tick(id: SymbolId, seq: u64) -> Arc<EncodedTick> {
        Arc::new(EncodedTick::new(crate::protocol::Tick::test(
            &format!("S{id}"),
            seq,
        )))
    }

    fn retained(
        table: &SymbolTable,
        id: SymbolId,
        seqs: std::ops::RangeInclusive<u64>,
    ) -> Vec<u64> {
        let ring = table.cell(id).ring().expect("a ring");
        seqs.filter(|&s| ring.get(s).is_some()).collect()
    }

    #[test]
    fn a_ring_keeps_the_last_updates_of_its_symbol_up_to_the_bound() {
        let table = table(1);
        let mut retention = Retention::new(100, usize::MAX);
        for seq in 1..=1000 {
            retention.store(&table, 0, &tick(0, seq));
        }
        assert_eq!(
            retained(&table, 0, 1..=1000),
            (901..=1000).collect::<Vec<_>>()
        );
        assert_eq!(retention.status().updates, 100);
        assert_eq!(table.cell(0).ring().unwrap().len(), 128);
    }

    #[test]
    fn rings_grow_only_as_updates_arrive() {
        let table = table(2);
        let mut retention = Retention::new(1024, usize::MAX);
        retention.store(&table, 0, &tick(0, 1));
        for seq in 1..=20 {
            retention.store(&table, 1, &tick(1, seq));
        }
        assert_eq!(table.cell(0).ring().unwrap().len(), FIRST_RING_SLOTS);
        assert_eq!(table.cell(1).ring().unwrap().len(), 32);
        assert_eq!(
            retained(&table, 1, 1..=20).len(),
            20,
            "growth keeps what was held"
        );
    }

    #[test]
    fn over_the_budget_the_oldest_updates_of_all_symbols_go_first() {
        let table = table(2);
        let slots = 2 * FIRST_RING_SLOTS * SLOT_BYTES;
        let mut retention = Retention::new(1024, slots + 6 * entry_bytes());
        for seq in 1..=4 {
            retention.store(&table, 0, &tick(0, seq));
        }
        for seq in 1..=4 {
            retention.store(&table, 1, &tick(1, seq));
        }
        assert_eq!(retained(&table, 0, 1..=4), [3, 4]);
        assert_eq!(retained(&table, 1, 1..=4), [1, 2, 3, 4]);
        let status = retention.status();
        assert_eq!((status.updates, status.evicted_for_budget), (6, 2));
        assert!(status.bytes <= status.budget_bytes);
    }

    #[test]
    fn a_restarted_sequence_starts_a_new_history() {
        let table = table(1);
        let mut retention = Retention::new(16, usize::MAX);
        for seq in 1..=10 {
            retention.store(&table, 0, &tick(0, seq));
        }
        retention.store(&table, 0, &tick(0, 1));
        assert_eq!(retained(&table, 0, 1..=10), [1]);
        assert_eq!(retention.status().updates, 1);
    }

    #[test]
    fn a_new_epoch_forgets_every_history_and_its_bytes() {
        let table = table(2);
        let mut retention = Retention::new(16, usize::MAX);
        for seq in 1..=5 {
            retention.store(&table, 0, &tick(0, seq));
            retention.store(&table, 1, &tick(1, seq));
        }
        let slots_only = 2 * FIRST_RING_SLOTS * SLOT_BYTES;
        retention.forget_all(&table);
        assert!(retained(&table, 0, 1..=5).is_empty());
        assert!(retained(&table, 1, 1..=5).is_empty());
        assert_eq!(retention.status().updates, 0);
        assert_eq!(retention.status().bytes as usize, slots_only);
        retention.store(&table, 0, &tick(0, 1));
        assert_eq!(retained(&table, 0, 1..=5), [1], "the new seq space");
    }

    #[test]
    fn a_gap_in_seq_never_lets_two_updates_share_a_slot() {
        let table = table(1);
        let mut retention = Retention::new(8, usize::MAX);
        for seq in [1, 2, 3, 12, 13] {
            retention.store(&table, 0, &tick(0, seq));
        }
        assert_eq!(retained(&table, 0, 1..=13), [12, 13]);
    }

    #[test]
    fn zero_history_keeps_nothing() {
        let table = table(1);
        let mut retention = Retention::new(0, usize::MAX);
        retention.store(&table, 0, &tick(0, 1));
        assert!(table.cell(0).ring().is_none());
    }
}
