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

use crate::symbols::SymbolId;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::Notify;

const BITS: usize = 64;

/// Pending symbols of one client. Shared between the router (marks) and
/// the client's session (drains).
#[derive(Debug)]
pub struct Mailbox {
    pending: Box<[AtomicU64]>,
    /// Set when a wake-up is owed; saves a `notify` per mark when the
    /// session is already due to run.
    armed: AtomicBool,
    wake: Notify,
}

impl Mailbox {
    /// A mailbox for symbol ids below `symbol_capacity`.
    pub fn new(symbol_capacity: usize) -> Self {
        Self {
            pending: (0..symbol_capacity.div_ceil(BITS))
                .map(|_| AtomicU64::new(0))
                .collect(),
            armed: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    /// Bytes this mailbox holds, for memory accounting and docs.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Self>() + self.pending.len() * 8
    }

    /// Marks `id` as having a newer tick (router side).
    pub fn mark(&self, id: SymbolId) {
        let (word, bit) = (id as usize / BITS, id as usize % BITS);
        self.pending[word].fetch_or(1 << bit, Ordering::SeqCst);
        // A plain load first: most marks find the session already due, and
        // skip a second locked write to a line the session also writes.
        // SeqCst on both sides (here and in `drain`) orders this load after
        // the bit is set and the session's reset before its reading of the
        // bits, so a mark that sees `armed` set is one the drain will find.
        if !self.armed.load(Ordering::SeqCst) && !self.armed.swap(true, Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }

    /// Waits until something is marked (session side).
    pub async fn wait(&self) {
        self.wake.notified().await;
    }

    /// Takes every pending id, lowest first (session side). The session
    /// must read each symbol's latest tick *after* this call, so a tick
    /// stored before a mark is never missed.
    pub fn drain(&self, mut on_pending: impl FnMut(SymbolId)) {
        self.armed.swap(false, Ordering::SeqCst);
        for (word_index, word) in self.pending.iter().enumerate() {
            if word.load(Ordering::SeqCst) == 0 {
                continue;
            }
            let mut bits = word.swap(0, Ordering::SeqCst);
            while bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                on_pending((word_index * BITS + bit) as SymbolId);
            }
        }
    }

    /// Keeps a wake-up the session took but could not act on (its writes
    /// were held meanwhile): the next [`wait`](Self::wait) returns at once.
    pub fn rewake(&self) {
        self.wake.notify_one();
    }

    /// Re-marks `id` without a wake-up: used to defer a symbol paced by
    /// `max_hz` until its next slot.
    pub fn defer(&self, id: SymbolId) {
        let (word, bit) = (id as usize / BITS, id as usize % BITS);
        self.pending[word].fetch_or(1 << bit, Ordering::AcqRel);
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
    fn memory_is_one_bit_per_symbol() {
        assert!(Mailbox::new(16_384).footprint() < 2_200);
    }
}
