//! The symbol table: dense ids for symbol names and the last-value cache.
//!
//! Written by one owner, the router, which creates symbols and stores each
//! new tick; read lock-free by sessions (to fetch the latest tick of a
//! pending symbol) and by the HTTP API (`/api/symbols`). Capacity is fixed
//! at start-up (`--max-symbols`) so that readers never race a reallocation.
//!
//! Besides the latest tick, each symbol keeps its last [`HISTORY`] ticks in a
//! ring indexed by `seq`. A session that was ready while several updates of
//! one symbol arrived between two of its wake-ups sends all of them instead
//! of merging them: conflation is for clients that cannot keep up, not for
//! scheduling jitter.

use crate::codec::EncodedTick;
use arc_swap::ArcSwapOption;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Dense index of a symbol in the table.
pub type SymbolId = u32;

/// Ticks of one symbol kept for catching up, by `seq % HISTORY`. Shared by
/// all clients; a client's own state stays one bit and one seq per symbol.
pub const HISTORY: usize = 32;

/// One symbol: its name, its latest tick (the last-value cache) and a short
/// history.
#[derive(Debug, Default)]
pub struct SymbolCell {
    name: OnceLock<Arc<str>>,
    latest: ArcSwapOption<EncodedTick>,
    history: OnceLock<Box<[ArcSwapOption<EncodedTick>]>>,
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

    /// The tick with exactly this `seq`, if it is still in the history.
    pub fn historic(&self, seq: u64) -> Option<Arc<EncodedTick>> {
        let slot = &self.history.get()?[(seq % HISTORY as u64) as usize];
        slot.load_full().filter(|t| t.seq() == seq)
    }

    /// Sequence number of the latest tick (0 before the first).
    pub fn latest_seq(&self) -> u64 {
        self.latest.load().as_ref().map_or(0, |t| t.seq())
    }
}

/// Fixed-capacity table of symbols, shared as `Arc<SymbolTable>`.
#[derive(Debug)]
pub struct SymbolTable {
    cells: Box<[SymbolCell]>,
    len: AtomicUsize,
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
        }
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
        let _ = cell
            .history
            .set((0..HISTORY).map(|_| ArcSwapOption::empty()).collect());
        self.len.store(id + 1, Ordering::Release);
        Ok(id as SymbolId)
    }

    /// Stores the latest tick of a symbol (router only).
    pub(crate) fn store(&self, id: SymbolId, tick: Arc<EncodedTick>) {
        let cell = &self.cells[id as usize];
        if let Some(history) = cell.history.get() {
            history[(tick.seq() % HISTORY as u64) as usize].store(Some(tick.clone()));
        }
        cell.latest.store(Some(tick));
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
