//! A client's book subscriptions: per symbol the seq of the last book
//! sent, the depth it asked for and the `max_hz` pacing.
//!
//! When the router marks a symbol's book (`conflate`), the session reads
//! the symbol's latest book (`books`) and sends it cut to the client's
//! depth, with `n = seq - last_sent - 1` counting the changes it merged: a
//! client that keeps up gets every change, a slow one the latest, so
//! `B.seq - A.seq - 1 == B.n` for consecutive books, as for ticks. The
//! bytes are the book's shared encoding at that depth; only a non-zero
//! `n` is written per client.

use super::{Delivery, Emitter, Outbox, take_slot};
use crate::books::{BookStore, EncodedBook};
use crate::conflate::Mailbox;
use crate::protocol::{BookEvent, Event};
use crate::symbols::SymbolId;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Delivery state of one symbol's books.
#[derive(Debug)]
pub(super) struct BookSubscription {
    /// Seq of the last live book sent, or the baseline at subscribe.
    last_seq: u64,
    /// Levels per side.
    depth: usize,
    interval: Option<Duration>,
    next_due: Instant,
}

impl Outbox {
    /// Reads books from `store` (the router's) for book subscriptions.
    pub fn with_books(mut self, store: Arc<BookStore>) -> Self {
        self.book_store = Some(store);
        self
    }

    /// Records granted book subscriptions (each symbol with its latest
    /// book from the router, the baseline of `n`); appends those books as
    /// snapshots at `depth` to `reply` when asked. A re-subscribe keeps its
    /// baseline and takes the new depth and pacing.
    pub fn add_books(
        &mut self,
        granted: &[(SymbolId, Option<Arc<EncodedBook>>)],
        depth: usize,
        delivery: Delivery,
        snapshot: bool,
        reply: &mut Vec<Event>,
        now: Instant,
    ) -> u64 {
        let mut snapshots = 0;
        for (id, latest) in granted {
            let sub = self.books.entry(*id).or_insert_with(|| BookSubscription {
                last_seq: latest.as_ref().map_or(0, |b| b.seq()),
                depth,
                interval: None,
                next_due: now,
            });
            sub.depth = depth;
            sub.interval = delivery.interval();
            if let (true, Some(latest)) = (snapshot, latest) {
                reply.push(Event::Book(BookEvent {
                    snap: Some(true),
                    ..latest.at_depth(depth)
                }));
                snapshots += 1;
            }
        }
        snapshots
    }

    pub fn remove_books(&mut self, ids: &[SymbolId]) {
        for id in ids {
            self.books.remove(id);
        }
    }

    /// How many of `names` are not yet subscribed (books).
    pub fn new_book_count(&self, names: &[String]) -> usize {
        self.not_in(self.books.keys(), names)
    }

    /// Book subscriptions held.
    pub fn book_subscription_count(&self) -> usize {
        self.books.len()
    }
}

/// The parts of an [`Outbox`] book delivery reads and writes, borrowed
/// beside its frame.
pub(super) struct BooksView<'a> {
    pub store: Option<&'a BookStore>,
    pub subs: &'a mut HashMap<SymbolId, BookSubscription>,
    pub deferred_until: &'a mut Option<Instant>,
}

/// Sends the latest book of every marked symbol the client holds and has
/// not seen, when its `max_hz` slot is due (re-marked otherwise).
pub(super) fn collect_books(
    view: &mut BooksView<'_>,
    mailbox: &Mailbox,
    now: Instant,
    emit: &mut Emitter<'_>,
) {
    let Some(store) = view.store else {
        return;
    };
    mailbox.drain_books(|id| {
        let Some(sub) = view.subs.get_mut(&id) else {
            return;
        };
        let latest = store.load(id);
        let Some(latest) = latest.as_ref() else {
            return;
        };
        if latest.seq() <= sub.last_seq {
            return;
        }
        if let Some(interval) = sub.interval
            && !take_slot(interval, &mut sub.next_due, now, view.deferred_until)
        {
            mailbox.defer_book(id);
            return;
        }
        emit.book(latest, sub);
    });
}

impl Emitter<'_> {
    /// Writes `book` at the subscription's depth with `n` = changes since
    /// `sub.last_seq`, and advances it; splits at the size cap.
    fn book(&mut self, book: &EncodedBook, sub: &mut BookSubscription) {
        let n = u32::try_from(book.seq() - sub.last_seq - 1).unwrap_or(u32::MAX);
        book.write_to(self.frame, sub.depth, n);
        sub.last_seq = book.seq();
        self.sent_ts.push(book.book.ts);
        self.out.events += 1;
        self.out.books += 1;
        if n > 0 {
            self.out.conflated += 1;
            self.out.merged += u64::from(n);
        }
        if self.frame.byte_len() >= self.max_frame_bytes {
            self.frames.push(self.frame.finish());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Encoding;
    use crate::protocol::Depth;
    use crate::symbols::SymbolTable;
    use bytes::Bytes;

    const DEPTH: usize = 3;

    /// One symbol (id 0), its book store, and an outbox subscribed to its
    /// books at depth 2.
    struct Fixture {
        store: Arc<BookStore>,
        outbox: Outbox,
        mailbox: Arc<Mailbox>,
        frames: Vec<Bytes>,
        seq: u64,
    }

    impl Fixture {
        fn new(max_hz: f64) -> Self {
            let table = Arc::new(SymbolTable::new(4));
            table.push("AAPL".into()).unwrap();
            let store = Arc::new(BookStore::new(4, DEPTH));
            let mut outbox = Outbox::new(table, Encoding::Json, 1 << 20, Duration::from_secs(1))
                .with_books(store.clone());
            let mailbox = outbox.mailbox();
            mailbox.enable_books();
            let delivery = Delivery {
                max_hz,
                deltas: false,
            };
            outbox.add_books(
                &[(0, None)],
                2,
                delivery,
                true,
                &mut Vec::new(),
                Instant::now(),
            );
            Self {
                store,
                outbox,
                mailbox,
                frames: Vec::new(),
                seq: 0,
            }
        }

        /// Stores AAPL's next book, as the router does.
        fn publish(&mut self) {
            self.seq += 1;
            let px = 100.0 + self.seq as f64;
            let book = EncodedBook::new(BookEvent {
                sym: "AAPL".into(),
                seq: self.seq,
                ts: self.seq,
                xt: None,
                depth: Depth {
                    bids: vec![(px, 1), (px - 1.0, 2), (px - 2.0, 3)],
                    asks: vec![(px + 1.0, 4)],
                },
                snap: None,
                n: 0,
            });
            self.store.store(0, Arc::new(book));
            self.mailbox.mark_book(0);
        }

        fn collect_at(&mut self, now: Instant) {
            self.outbox.collect(now, Duration::ZERO, &mut self.frames);
        }

        fn sent(&self) -> Vec<BookEvent> {
            self.frames
                .iter()
                .flat_map(|f| serde_json::from_slice::<Vec<Event>>(f).unwrap())
                .map(|e| match e {
                    Event::Book(b) => b,
                    other => panic!("{other:?}"),
                })
                .collect()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_client_gets_the_latest_book_cut_to_its_depth_with_the_merge_count() {
        let mut fx = Fixture::new(0.0);
        fx.publish();
        fx.collect_at(Instant::now());
        for _ in 0..4 {
            fx.publish();
        }
        fx.collect_at(Instant::now());
        let sent = fx.sent();
        let seq_n: Vec<(u64, u32)> = sent.iter().map(|b| (b.seq, b.n)).collect();
        assert_eq!(seq_n, [(1, 0), (5, 3)]);
        assert_eq!(sent[1].depth.bids, [(105.0, 1), (104.0, 2)], "cut to 2");
        assert_eq!(sent[1].depth.asks, [(106.0, 4)]);
    }

    #[tokio::test(start_paused = true)]
    async fn max_hz_defers_a_book_and_sends_the_latest_at_its_slot() {
        let t0 = Instant::now();
        let mut fx = Fixture::new(2.0);
        fx.publish();
        fx.collect_at(t0);
        fx.publish();
        fx.publish();
        fx.collect_at(t0 + Duration::from_millis(100));
        assert_eq!(fx.sent().len(), 1);
        assert_eq!(
            fx.outbox.deferred_until,
            Some(t0 + Duration::from_millis(500))
        );
        fx.collect_at(t0 + Duration::from_millis(500));
        let seq_n: Vec<(u64, u32)> = fx.sent().iter().map(|b| (b.seq, b.n)).collect();
        assert_eq!(seq_n, [(1, 0), (3, 1)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_snapshot_is_the_latest_book_at_the_asked_depth_and_the_baseline() {
        let mut fx = Fixture::new(0.0);
        fx.publish();
        fx.publish();
        let latest = fx.store.latest(0);
        let mut reply = Vec::new();
        let delivery = Delivery::default();
        let snapshots = fx.outbox.add_books(
            &[(0, latest)],
            1,
            delivery,
            true,
            &mut reply,
            Instant::now(),
        );
        assert_eq!(snapshots, 1);
        let Event::Book(snap) = &reply[0] else {
            panic!("{reply:?}")
        };
        assert_eq!((snap.seq, snap.snap, snap.n), (2, Some(true), 0));
        assert_eq!(snap.depth.bids.len(), 1);
        // A re-subscribe keeps the baseline: seq 2 is still owed.
        fx.collect_at(Instant::now());
        let seq_n: Vec<(u64, u32)> = fx.sent().iter().map(|b| (b.seq, b.n)).collect();
        assert_eq!(seq_n, [(2, 1)]);
        fx.outbox.remove_books(&[0]);
        fx.publish();
        fx.collect_at(Instant::now());
        assert_eq!(fx.sent().len(), 1, "nothing after the unsubscribe");
    }
}
