//! A seqlock cell of a few words: one writer (the router) stores without
//! locking or allocating, readers (sessions, `/api/bars`) copy the words
//! and retry when a write overlapped their read. Every word is an atomic,
//! so a torn read is detected, never undefined.
//!
//! The version is even when the cell is stable. Its writer chooses it, so
//! a ring slot can use `2 * (index + 1)` and a reader can ask for exactly
//! the bar with that index (see `store.rs`).

use std::sync::atomic::{AtomicU64, Ordering, fence};

/// Reads that overlap a write before a reader yields its thread: a write
/// is a handful of stores, so only a writer preempted mid-write makes a
/// reader wait longer.
const SPINS_BEFORE_YIELD: u32 = 64;

#[derive(Debug)]
pub(crate) struct SeqCell<const N: usize> {
    version: AtomicU64,
    words: [AtomicU64; N],
}

impl<const N: usize> Default for SeqCell<N> {
    fn default() -> Self {
        Self {
            version: AtomicU64::new(0),
            words: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl<const N: usize> SeqCell<N> {
    /// Stores `words` as `version`, which must be even and differ from the
    /// current one (single writer).
    pub(crate) fn write(&self, version: u64, words: [u64; N]) {
        debug_assert!(version.is_multiple_of(2));
        self.version.store(version | 1, Ordering::Relaxed);
        fence(Ordering::Release);
        for (cell, word) in self.words.iter().zip(words) {
            cell.store(word, Ordering::Relaxed);
        }
        self.version.store(version, Ordering::Release);
    }

    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// A consistent copy and its version; `None` when the cell moved past
    /// `wanted` (a ring slot overwritten by a newer bar).
    pub(crate) fn read_if(&self, wanted: impl Fn(u64) -> bool) -> Option<(u64, [u64; N])> {
        let mut spins: u32 = 0;
        loop {
            let before = self.version.load(Ordering::Acquire);
            if before.is_multiple_of(2) {
                if !wanted(before) {
                    return None;
                }
                let words = std::array::from_fn(|i| self.words[i].load(Ordering::Relaxed));
                fence(Ordering::Acquire);
                if self.version.load(Ordering::Relaxed) == before {
                    return Some((before, words));
                }
            }
            spins += 1;
            if spins.is_multiple_of(SPINS_BEFORE_YIELD) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn readers_see_whole_writes_only() {
        let cell = Arc::new(SeqCell::<4>::default());
        let writer = {
            let cell = cell.clone();
            std::thread::spawn(move || {
                for i in 1..=20_000u64 {
                    cell.write(2 * i, [i; 4]);
                }
            })
        };
        let mut last = 0;
        while last < 20_000 {
            let (version, words) = cell.read_if(|_| true).unwrap();
            assert!(words.iter().all(|w| *w == words[0]), "torn: {words:?}");
            assert_eq!(version, 2 * words[0]);
            assert!(words[0] >= last);
            last = words[0];
        }
        writer.join().unwrap();
        assert_eq!(cell.read_if(|v| v == 2), None, "moved past version 2");
    }
}
