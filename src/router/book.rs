//! The router's part in books: each `BookUpdate` a source sends is cut to
//! `--depth` levels, numbered in its symbol's own book sequence (+1 per
//! change of those levels; an update that changed none of them is not a
//! change; `books::number`) and stored as the symbol's latest book
//! (`books`), encoded at most once per encoding and depth, on first use.
//! Behind NATS, books come numbered already (the source's publisher
//! numbers them before publishing) and are stored with their `seq`.
//!
//! It also holds who subscribes to which books: a change marks the
//! symbol's book bit in each subscriber's mailbox (`conflate`), which never
//! blocks or allocates; the session reads the latest book and counts what
//! it merged from the seqs.

use super::{ClientId, Subscriber};
use crate::books::{self, BookStore, EncodedBook};
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
    /// its top `--depth` levels differ from the latest book's. Returns
    /// whether it was a change.
    pub(super) fn update(&mut self, id: SymbolId, update: BookUpdate) -> bool {
        let previous = self.store.load(id);
        let previous = previous.as_ref().map(|latest| &latest.book);
        match books::number(previous, update, self.store.depth()) {
            Some(book) => {
                self.keep(id, book);
                true
            }
            None => false,
        }
    }

    /// A book numbered already (by a NATS source's publisher), cut to
    /// `--depth`: stored and marked unless the latest book's `seq` is as
    /// far (an edge may receive a book both live and as its snapshot).
    /// Returns whether it was news.
    pub(super) fn numbered(&mut self, id: SymbolId, book: BookEvent) -> bool {
        if let Some(latest) = self.store.load(id).as_ref()
            && latest.seq() >= book.seq
        {
            return false;
        }
        let depth = self.store.depth();
        let book = if book.depth.levels() > depth {
            BookEvent {
                depth: book.depth.truncated(depth),
                ..book
            }
        } else {
            book
        };
        self.keep(id, book);
        true
    }

    fn keep(&mut self, id: SymbolId, book: BookEvent) {
        self.store.store(id, Arc::new(EncodedBook::new(book)));
        for sub in self.subscribers.get(id as usize).into_iter().flatten() {
            sub.mailbox.mark_book(id);
        }
    }

    /// Some local client subscribes to the books of `id`.
    pub(super) fn serves(&self, id: SymbolId) -> bool {
        self.subscribers
            .get(id as usize)
            .is_some_and(|subs| !subs.is_empty())
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

    /// Removes `client`'s subscription to the books of `id`, if held;
    /// returns whether it was.
    pub(super) fn unsubscribe(&mut self, client: ClientId, id: SymbolId) -> bool {
        if let Some(held) = self.held.get_mut(&client)
            && held.remove(&id)
        {
            self.subscribers[id as usize].retain(|s| s.client != client);
            return true;
        }
        false
    }

    /// Forgets every book subscription of a client that left; returns the
    /// ids it held.
    pub(super) fn leave(&mut self, client: ClientId) -> Vec<SymbolId> {
        let held: Vec<SymbolId> = self.held.remove(&client).into_iter().flatten().collect();
        for &id in &held {
            self.subscribers[id as usize].retain(|s| s.client != client);
        }
        held
    }

    /// Book subscriptions held (for tests and stats).
    pub(super) fn subscription_count(&self) -> usize {
        self.held.values().map(HashSet::len).sum()
    }
}
