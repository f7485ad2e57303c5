//! Conflation: each client's set of symbols with an undelivered update.
//!
//! A [`Mailbox`] is one bit per symbol id plus a wake-up. The router sets a
//! symbol's bit whenever it has a new tick; the client's session clears the
//! bits when it drains and reads each symbol's *latest* tick from the
//! symbol table. So a client holds at most one pending update per symbol,
//! the newest, whatever the update rate or however long it has been slow;
//! the merge count `n` is the gap between the seq it last sent and the seq
//! it sends now. Marking is one atomic `fetch_or` (and, when the session
//! is not yet due, one swap and a notify); it never blocks or allocates:
//! a slow client cannot delay the router or anyone else.
//!
//! A client subscribed to bars has a second set of bits, one per symbol
//! and timeframe ([`bar_key`]), made at its first bars subscribe and woken
//! the same way: the router marks one when that bar changed or closed, and
//! the session reads the store (`bars`), where every final bar keeps its
//! index, so conflating the mark never loses a final bar.
//!
//! A client subscribed to books has a third set, one bit per symbol, made
//! at its first book subscribe: the router marks it when the symbol's top
//! levels changed, and the session reads the latest book (`books`), with
//! `n` from the book's own seq, as for ticks.

use crate::protocol::Timeframe;
use crate::symbols::SymbolId;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::Notify;

const BITS: usize = 64;

/// The bit of symbol `id`'s bars in `tf` (see [`Mailbox::mark_bar`]).
pub fn bar_key(id: SymbolId, tf: Timeframe) -> u32 {
    id * Timeframe::ALL.len() as u32 + tf.index() as u32
}

/// The symbol and timeframe of a [`bar_key`].
pub fn from_bar_key(key: u32) -> (SymbolId, Timeframe) {
    let per = Timeframe::ALL.len() as u32;
    (key / per, Timeframe::ALL[(key % per) as usize])
}

/// One pending bit per key.
#[derive(Debug)]
struct Bits(Box<[AtomicU64]>);

impl Bits {
    fn new(keys: usize) -> Bits {
        Bits(
            (0..keys.div_ceil(BITS))
                .map(|_| AtomicU64::new(0))
                .collect(),
        )
    }

    fn set(&self, key: u32) {
        let (word, bit) = (key as usize / BITS, key as usize % BITS);
        self.0[word].fetch_or(1 << bit, Ordering::SeqCst);
    }

    fn drain(&self, mut on_pending: impl FnMut(u32)) {
        for (word_index, word) in self.0.iter().enumerate() {
            if word.load(Ordering::SeqCst) == 0 {
                continue;
            }
            let mut bits = word.swap(0, Ordering::SeqCst);
            while bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                on_pending((word_index * BITS + bit) as u32);
            }
        }
    }
}

/// Pending symbols of one client. Shared between the router (marks) and
/// the client's session (drains).
#[derive(Debug)]
pub struct Mailbox {
    pending: Bits,
    /// Pending bars by [`bar_key`]; made at the client's first bars
    /// subscribe, so a client of ticks alone pays nothing for them.
    bars: OnceLock<Bits>,
    /// Pending books by symbol id; made at the client's first book
    /// subscribe.
    books: OnceLock<Bits>,
    capacity: usize,
    /// Set when a wake-up is owed; saves a `notify` per mark when the
    /// session is already due to run.
    armed: AtomicBool,
    wake: Notify,
}

impl Mailbox {
    /// A mailbox for symbol ids below `symbol_capacity`.
    pub fn new(symbol_capacity: usize) -> Self {
        Self {
            pending: Bits::new(symbol_capacity),
            bars: OnceLock::new(),
            books: OnceLock::new(),
            capacity: symbol_capacity,
            armed: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    /// Bytes this mailbox holds, for memory accounting and docs.
    pub fn footprint(&self) -> usize {
        let made = |bits: &OnceLock<Bits>| bits.get().map_or(0, |b| b.0.len() * 8);
        std::mem::size_of::<Self>()
            + self.pending.0.len() * 8
            + made(&self.bars)
            + made(&self.books)
    }

    /// Marks `id` as having a newer tick (router side).
    pub fn mark(&self, id: SymbolId) {
        self.pending.set(id);
        self.wake_once();
    }

    fn wake_once(&self) {
        // A plain load first: most marks find the session already due, and
        // skip a second locked write to a line the session also writes.
        // SeqCst on both sides (here and in `drain`) orders this load after
        // the bit is set and the session's reset before its reading of the
        // bits, so a mark that sees `armed` set is one the drain will find.
        if !self.armed.load(Ordering::SeqCst) && !self.armed.swap(true, Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }

    /// Makes the bits of bars (session side, before its first bars
    /// subscribe reaches the router).
    pub fn enable_bars(&self) {
        self.bars
            .get_or_init(|| Bits::new(self.capacity * Timeframe::ALL.len()));
    }

    /// Marks the bar `key` ([`bar_key`]) as changed or closed (router
    /// side); nothing before [`enable_bars`](Self::enable_bars).
    pub fn mark_bar(&self, key: u32) {
        self.mark_made(&self.bars, key);
    }

    /// Takes every pending bar key (session side), after [`drain`](Self::drain).
    pub fn drain_bars(&self, on_pending: impl FnMut(u32)) {
        if let Some(bars) = self.bars.get() {
            bars.drain(on_pending);
        }
    }

    /// Re-marks bar `key` without a wake-up (its `max_hz` slot is later).
    pub fn defer_bar(&self, key: u32) {
        if let Some(bars) = self.bars.get() {
            bars.set(key);
        }
    }

    /// Makes the bits of books (session side, before its first book
    /// subscribe reaches the router).
    pub fn enable_books(&self) {
        self.books.get_or_init(|| Bits::new(self.capacity));
    }

    /// Marks symbol `id`'s book as changed (router side); nothing before
    /// [`enable_books`](Self::enable_books).
    pub fn mark_book(&self, id: SymbolId) {
        self.mark_made(&self.books, id);
    }

    /// Takes every symbol with a pending book (session side), after
    /// [`drain`](Self::drain).
    pub fn drain_books(&self, on_pending: impl FnMut(SymbolId)) {
        if let Some(books) = self.books.get() {
            books.drain(on_pending);
        }
    }

    /// Re-marks `id`'s book without a wake-up (its `max_hz` slot is later).
    pub fn defer_book(&self, id: SymbolId) {
        if let Some(books) = self.books.get() {
            books.set(id);
        }
    }

    /// Sets `key` in `bits` and wakes the session, once `bits` is made.
    fn mark_made(&self, bits: &OnceLock<Bits>, key: u32) {
        if let Some(bits) = bits.get() {
            bits.set(key);
            self.wake_once();
        }
    }

    /// Waits until something is marked (session side).
    pub async fn wait(&self) {
        self.wake.notified().await;
    }

    /// Takes every pending id, lowest first (session side). The session
    /// must read each symbol's latest tick *after* this call, so a tick
    /// stored before a mark is never missed.
    pub fn drain(&self, on_pending: impl FnMut(SymbolId)) {
        self.armed.swap(false, Ordering::SeqCst);
        self.pending.drain(on_pending);
    }

    /// Keeps a wake-up the session took but could not act on (its writes
    /// were held meanwhile): the next [`wait`](Self::wait) returns at once.
    pub fn rewake(&self) {
        self.wake.notify_one();
    }

    /// Re-marks `id` without a wake-up: used to defer a symbol paced by
    /// `max_hz` until its next slot.
    pub fn defer(&self, id: SymbolId) {
        self.pending.set(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn drained(mailbox: &Mailbox) -> Vec<SymbolId> {
        let mut ids = Vec::new();
        mailbox.drain(|id| ids.push(id));
        ids
    }

    #[test]
    fn repeated_marks_of_one_symbol_leave_one_pending_entry() {
        let mailbox = Mailbox::new(200);
        for _ in 0..1000 {
            mailbox.mark(130);
        }
        mailbox.mark(3);
        mailbox.mark(199);
        assert_eq!(drained(&mailbox), [3, 130, 199]);
        assert!(drained(&mailbox).is_empty());
    }

    #[tokio::test]
    async fn a_mark_wakes_a_waiting_session_once() {
        let mailbox = Arc::new(Mailbox::new(64));
        let marker = mailbox.clone();
        let waiter = tokio::spawn(async move {
            marker.wait().await;
            drained(&marker)
        });
        mailbox.mark(5);
        mailbox.mark(6);
        assert_eq!(waiter.await.unwrap(), [5, 6]);
    }

    #[test]
    fn a_mark_after_drain_rearms_the_wakeup() {
        let mailbox = Mailbox::new(64);
        mailbox.mark(1);
        drained(&mailbox);
        mailbox.mark(2);
        // A stored permit makes this future ready at once.
        let waker = futures_util::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        let fut = std::pin::pin!(mailbox.wait());
        assert!(fut.poll(&mut cx).is_ready());
    }

    #[test]
    fn bar_marks_wait_for_enable_and_keep_symbol_and_timeframe() {
        let mailbox = Mailbox::new(64);
        let key = bar_key(63, Timeframe::D1);
        mailbox.mark_bar(key);
        let mut keys = Vec::new();
        mailbox.drain_bars(|k| keys.push(k));
        assert!(keys.is_empty(), "no bars before enable_bars");
        mailbox.enable_bars();
        mailbox.mark_bar(key);
        mailbox.mark_bar(key);
        mailbox.drain_bars(|k| keys.push(k));
        assert_eq!(keys, [key]);
        assert_eq!(from_bar_key(key), (63, Timeframe::D1));
    }

    #[test]
    fn book_marks_wait_for_enable_and_merge_per_symbol() {
        let mailbox = Mailbox::new(64);
        mailbox.mark_book(9);
        let mut ids = Vec::new();
        mailbox.drain_books(|id| ids.push(id));
        assert!(ids.is_empty(), "no books before enable_books");
        mailbox.enable_books();
        for _ in 0..3 {
            mailbox.mark_book(9);
        }
        mailbox.mark_book(2);
        assert!(drained(&mailbox).is_empty(), "books are not ticks");
        mailbox.drain_books(|id| ids.push(id));
        assert_eq!(ids, [2, 9]);
    }

    #[test]
    fn memory_is_one_bit_per_symbol() {
        assert!(Mailbox::new(16_384).footprint() < 2_200);
    }
}
