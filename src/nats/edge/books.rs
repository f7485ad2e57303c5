//! The edge's part in books through NATS: a subscription to
//! `tickfeed.book.<SYMBOL>` per symbol with a local book subscriber, the
//! last stored book of each newly wanted one (its snapshot), and live books
//! forwarded to the router as they come, numbered by the source.

use super::subscriptions::open;
use super::{EdgeState, MAX_BATCH};
use crate::clock::now_ns;
use crate::nats::book::decode_book;
use crate::nats::store::FETCH_TIMEOUT;
use crate::nats::subject;
use crate::protocol::BookEvent;
use crate::source::SourceMsg;
use crate::stats::{Stage, record_latencies};
use async_nats::connection::State;
use futures_util::{FutureExt, StreamExt};
use std::sync::Arc;

/// Book snapshot reads in flight at once.
const PARALLEL_READS: usize = 16;

impl EdgeState {
    /// Receives `name`'s books from now on, unless it does already, and
    /// adds it to the snapshots to `read`.
    pub(super) async fn want_book(&mut self, name: &Arc<str>, read: &mut Vec<Arc<str>>) {
        if self.book_subscriptions.contains_key(name) {
            return;
        }
        if let Some((messages, cancel)) = open(&self.client, subject::book_of(name)).await {
            self.book_incoming.push(messages);
            self.book_subscriptions.insert(name.clone(), cancel);
            read.push(name.clone());
        }
    }

    /// The latest stored books of `names`. Empty while the broker is away:
    /// a subscribe then gets no snapshot rather than wait; the book comes
    /// with its next change or the reconnect.
    pub(super) async fn read_books(&mut self, names: Vec<Arc<str>>) -> Vec<BookEvent> {
        if names.is_empty() || self.client.connection_state() != State::Connected {
            return Vec::new();
        }
        // A round trip first, so the broker has the new subscriptions: a
        // book it takes after this comes live, not only in the read.
        let _ = tokio::time::timeout(FETCH_TIMEOUT, self.client.flush()).await;
        let store = &self.store;
        let results: Vec<_> = futures_util::stream::iter(names)
            .map(|name| async move { store.last_book(&name).await })
            .buffer_unordered(PARALLEL_READS)
            .collect()
            .await;
        let mut books = Vec::new();
        for result in results {
            match result {
                Ok(Some(book)) => books.push(book),
                Ok(None) => {}
                Err(e) => tracing::warn!("reading a last book: {e}"),
            }
        }
        self.counters.book_snapshots_read += books.len() as u64;
        books
    }

    /// Reads and routes the latest book of every symbol whose books are
    /// wanted (after a reconnect or a new epoch). Returns false once the
    /// router is gone.
    pub(super) async fn refresh_books(&mut self) -> bool {
        let names = self.book_subscriptions.keys().cloned().collect();
        let books = self.read_books(names).await;
        self.forward_books(books).await
    }

    /// Forwards live books: the first, and whatever else is already
    /// waiting, as one batch. Their broker hop is recorded as the ticks'.
    pub(super) async fn live_books(&mut self, first: async_nats::Message) -> bool {
        let mut books = Vec::new();
        self.decode_book_into(&first, &mut books);
        while books.len() < MAX_BATCH {
            match self.book_incoming.next().now_or_never() {
                Some(Some(message)) => self.decode_book_into(&message, &mut books),
                _ => break,
            }
        }
        record_latencies(
            &self.stats,
            Stage::Hop,
            now_ns(),
            books.iter().map(|b| b.ts),
        );
        self.forward_books(books).await
    }

    /// Passes books to the router, which keeps those past its latest.
    /// Returns false once the router is gone.
    pub(super) async fn forward_books(&mut self, books: Vec<BookEvent>) -> bool {
        books.is_empty() || self.out.send(SourceMsg::NumberedBooks(books)).await.is_ok()
    }

    fn decode_book_into(&mut self, message: &async_nats::Message, books: &mut Vec<BookEvent>) {
        let decoded = match subject::symbol_of_book(&message.subject) {
            Some(symbol) => decode_book(Arc::from(&*symbol), &message.payload)
                .map_err(|e| format!("{}: {e}", message.subject)),
            None => Err(format!("{} names no symbol", message.subject)),
        };
        match decoded {
            Ok(book) => books.push(book),
            Err(e) => {
                if self.counters.books_unreadable == 0 {
                    tracing::warn!("ignoring a book message: {e}");
                }
                self.counters.books_unreadable += 1;
            }
        }
    }
}
