//! The router's part in books: each `BookUpdate` a source sends is cut to
//! `--depth` levels, numbered in its symbol's own book sequence (+1 per
//! change of those levels; an update that changed none of them is not a
//! change) and stored as the symbol's latest book (`books`), encoded at
//! most once per encoding and depth, on first use.
//!
//! It also holds who subscribes to which books: a change marks the
//! symbol's book bit in each subscriber's mailbox (`conflate`), which never
//! blocks or allocates; the session reads the latest book and counts what
//! it merged from the seqs.

use super::{ClientId, Subscriber};
use crate::books::{BookStore, EncodedBook};
use crate::conflate::Mailbox;
use crate::protocol::{BookEvent, BookUpdate};
use crate::symbols::SymbolId;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Book state and subscribers (router only).
#[derive(Debug)]
pub(super) struct BookRouting {
    store: Arc<BookStore>,
    /// Subscribers by symbol id.
    subscribers: Vec<Vec<Subscriber>>,
    /// The symbols each client holds, to leave in O(subscriptions).
    held: HashMap<ClientId, HashSet<SymbolId>>,
}

impl BookRouting {
    pub(super) fn new(store: Arc<BookStore>) -> BookRouting {
        BookRouting {
            store,
            subscribers: Vec::new(),
            held: HashMap::new(),
        }
    }

    pub(super) fn store(&self) -> &Arc<BookStore> {
        &self.store
    }

    /// One source update of symbol `id`: stored, numbered and marked when
    /// its top `--depth` levels differ from the latest book's. Returns the
    /// stored book, if it was a change.
    pub(super) fn update(&mut self, id: SymbolId, update: BookUpdate) -> Option<Arc<EncodedBook>> {
        let depth = update.depth.truncated(self.store.depth());
        let previous = self.store.load(id);
        let seq = match previous.as_ref() {
            Some(previous) if previous.book.depth == depth => return None,
            Some(previous) => previous.seq() + 1,
            None => 1,
        };
        let book = Arc::new(EncodedBook::new(BookEvent {
            sym: update.sym,
            seq,
            ts: update.ts,
            xt: update.xt,
            depth,
            snap: None,
            n: 0,
        }));
        self.store.store(id, book.clone());
        for sub in self.subscribers.get(id as usize).into_iter().flatten() {
            sub.mailbox.mark_book(id);
        }
        Some(book)
    }

    /// Registers `client` for the books of `id`; returns the latest book
    /// (the snapshot, and the baseline of `n`).
    pub(super) fn subscribe(
        &mut self,
        client: ClientId,
        mailbox: &Arc<Mailbox>,
        id: SymbolId,
    ) -> Option<Arc<EncodedBook>> {
        if self.held.entry(client).or_default().insert(id) {
            if self.subscribers.len() <= id as usize {
                self.subscribers.resize_with(id as usize + 1, Vec::new);
            }
            self.subscribers[id as usize].push(Subscriber {
                client,
                mailbox: mailbox.clone(),
            });
        }
        self.store.latest(id)
    }

    /// Removes `client`'s subscription to the books of `id`, if held.
    pub(super) fn unsubscribe(&mut self, client: ClientId, id: SymbolId) {
        if let Some(held) = self.held.get_mut(&client)
            && held.remove(&id)
        {
            self.subscribers[id as usize].retain(|s| s.client != client);
        }
    }

    /// Forgets every book subscription of a client that left.
    pub(super) fn leave(&mut self, client: ClientId) {
        for id in self.held.remove(&client).into_iter().flatten() {
            self.subscribers[id as usize].retain(|s| s.client != client);
        }
    }

    /// Book subscriptions held (for tests and stats).
    pub(super) fn subscription_count(&self) -> usize {
        self.held.values().map(HashSet::len).sum()
    }
}
