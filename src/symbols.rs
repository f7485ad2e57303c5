//! The symbol table: dense ids for symbol names and the last-value cache.
//!
//! Written by one owner, the router, which creates symbols and stores each
//! new tick; read lock-free by sessions (to fetch the latest tick of a
//! pending symbol) and by the HTTP API (`/api/symbols`). Capacity is fixed
//! at start-up (`--max-symbols`) so that readers never race a reallocation.
//!
//! The table also names the seq space of its ticks, the epoch (a new one
//! at start; a NATS source's when the source says so).
//!
//! Besides the latest tick, each symbol has a ring of its recent updates
//! (`history`), which the router fills and sessions read to send a client
//! that keeps up every update rather than the latest alone.

use crate::codec::EncodedTick;
use crate::history::{HistoryRange, TickRing};
use arc_swap::{ArcSwap, ArcSwapOption};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Dense index of a symbol in the table.
pub type SymbolId = u32;

/// One symbol: its name, its latest tick (the last-value cache) and the
/// ring of its recent updates.
#[derive(Debug, Default)]
pub struct SymbolCell {
    name: OnceLock<Arc<str>>,
    latest: ArcSwapOption<EncodedTick>,
    /// Replaced (grown) by the router only; `None` before the first tick
    /// or with `--history 0`.
    ring: ArcSwapOption<TickRing>,
}

impl SymbolCell {
    pub fn name(&self) -> Option<&Arc<str>> {
        self.name.get()
    }

    /// The latest tick, if the symbol has had one.
    pub fn latest(&self) -> Option<Arc<EncodedTick>> {
        self.latest.load_full()
    }

    /// The latest tick without touching its reference count (hot path).
    pub fn load(&self) -> arc_swap::Guard<Option<Arc<EncodedTick>>> {
        self.latest.load()
    }

    /// The ring of recent updates. Read it after [`load`](Self::load): the
    /// router replaces the ring before it stores a tick as the latest, so
    /// the ring read second holds every update up to that latest.
    pub fn ring(&self) -> Option<Arc<TickRing>> {
        self.ring.load_full()
    }

    /// The ring without touching its reference count (hot path).
    pub fn load_ring(&self) -> arc_swap::Guard<Option<Arc<TickRing>>> {
        self.ring.load()
    }

    pub(crate) fn set_ring(&self, ring: Arc<TickRing>) {
        self.ring.store(Some(ring));
    }

    /// Sequence number of the latest tick (0 before the first).
    pub fn latest_seq(&self) -> u64 {
        self.latest.load().as_ref().map_or(0, |t| t.seq())
    }

    /// The retained updates `range` selects, oldest first (`history`).
    pub fn read(&self, range: &HistoryRange) -> Vec<Arc<EncodedTick>> {
        let latest_seq = self.latest_seq();
        self.ring()
            .map_or_else(Vec::new, |ring| ring.read(range, latest_seq))
    }
}

/// Fixed-capacity table of symbols, shared as `Arc<SymbolTable>`.
#[derive(Debug)]
pub struct SymbolTable {
    cells: Box<[SymbolCell]>,
    len: AtomicUsize,
    /// The seq space of every tick in the table (`epoch.rs`); set by the
    /// router when the source names it, read by sessions for `hello` and
    /// resumes.
    epoch: ArcSwap<String>,
    /// How many times the epoch changed; a session compares it with the
    /// count it saw at `hello` (one load per wake-up, never a string).
    epoch_changes: AtomicU64,
}

/// The table is full: `--max-symbols` is too small for the source.
#[derive(Debug, thiserror::Error)]
#[error("symbol table full: {capacity} symbols already (raise --max-symbols)")]
pub struct TableFull {
    pub capacity: usize,
}

impl SymbolTable {
    pub fn new(capacity: usize) -> Self {
        Self {
            cells: (0..capacity).map(|_| SymbolCell::default()).collect(),
            len: AtomicUsize::new(0),
            epoch: ArcSwap::from_pointee(crate::epoch::new_epoch()),
            epoch_changes: AtomicU64::new(0),
        }
    }

    /// The epoch of the table's seq numbers.
    pub fn epoch(&self) -> String {
        self.epoch.load().as_str().to_owned()
    }

    /// How many times the epoch changed since the table was made. Read it
    /// before [`epoch`](Self::epoch): a tick of a newer epoch is stored
    /// only after the count went up.
    pub fn epoch_changes(&self) -> u64 {
        self.epoch_changes.load(Ordering::Acquire)
    }

    /// Names the seq space of the ticks that follow (router only).
    pub(crate) fn set_epoch(&self, epoch: String) {
        self.epoch_changes.fetch_add(1, Ordering::AcqRel);
        self.epoch.store(Arc::new(epoch));
    }

    pub fn capacity(&self) -> usize {
        self.cells.len()
    }

    /// Number of symbols created so far.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn cell(&self, id: SymbolId) -> &SymbolCell {
        &self.cells[id as usize]
    }

    /// Every created symbol with its id, in creation order.
    pub fn iter(&self) -> impl Iterator<Item = (SymbolId, &SymbolCell)> {
        self.cells[..self.len()]
            .iter()
            .enumerate()
            .map(|(i, c)| (i as SymbolId, c))
    }

    /// Appends a symbol. Only the router calls this (single writer): the name
    /// is set before `len` is published, so readers never see a nameless cell.
    pub(crate) fn push(&self, name: Arc<str>) -> Result<SymbolId, TableFull> {
        let id = self.len.load(Ordering::Relaxed);
        let cell = self.cells.get(id).ok_or(TableFull {
            capacity: self.capacity(),
        })?;
        cell.name.set(name).expect("router is the only writer");
        self.len.store(id + 1, Ordering::Release);
        Ok(id as SymbolId)
    }

    /// Stores the latest tick of a symbol (router only, after retaining
    /// it in the symbol's ring).
    pub(crate) fn store(&self, id: SymbolId, tick: Arc<EncodedTick>) {
        self.cells[id as usize].latest.store(Some(tick));
    }

    /// Forgets the latest tick of a symbol (router only, when the epoch
    /// changed: it belongs to another seq space).
    pub(crate) fn clear(&self, id: SymbolId) {
        self.cells[id as usize].latest.store(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_get_dense_ids_until_full() {
        let table = SymbolTable::new(2);
        assert_eq!(table.push("A".into()).unwrap(), 0);
        assert_eq!(table.push("B".into()).unwrap(), 1);
        assert!(table.push("C".into()).is_err());
        let names: Vec<_> = table
            .iter()
            .map(|(_, c)| c.name().unwrap().to_string())
            .collect();
        assert_eq!(names, ["A", "B"]);
        assert_eq!(table.cell(0).latest_seq(), 0);
    }
}
