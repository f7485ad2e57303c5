//! The router: the one owner of topic state (which client wants which
//! symbol) and the only writer of the symbol table.
//!
//! It runs as a single task fed by two bounded channels: batches from the
//! source and commands from sessions. Because both are handled by one task,
//! "register a subscriber and read the latest tick for its snapshot" is
//! atomic with respect to updates: no tick is lost or repeated between a
//! snapshot and the live stream. Fan-out marks each subscriber's mailbox
//! (`conflate`), which never blocks, so a slow client never delays the
//! router or any other client.
//!
//! An on-demand source (the NATS edge, `nats::edge`) is told which symbols
//! local clients want through [`Interest`]; a subscribe that makes a symbol
//! wanted is answered once that source has routed its latest value
//! (`SourceMsg::Ready`), so the snapshot is current. Without such a source
//! none of this runs.
//!
//! Files: this one holds the router's state, routing and subscriptions;
//! `handle.rs` the handle sessions talk through, `interest.rs` the
//! on-demand interest and warming, `retention.rs` the history rings'
//! bounds, `bars.rs` the aggregation of routed ticks into bars, `book.rs`
//! the numbering and subscribers of books.

mod bars;
mod book;
mod handle;
mod interest;
mod retention;
#[cfg(test)]
mod tests;

pub use handle::{RouterGone, RouterHandle};
pub use interest::{Interest, InterestSender};
pub use retention::Retention;

use crate::bars::{BarStore, DEFAULT_BARS_MEMORY};
use crate::books::{BookStore, EncodedBook};
use crate::clock::now_ns;
use crate::codec::EncodedTick;
use crate::conflate::Mailbox;
use crate::history::{DEFAULT_HISTORY, DEFAULT_HISTORY_MEMORY};
use crate::protocol::{BookEvent, BookUpdate, Changed, DEFAULT_DEPTH, SymbolSet, Tick, WILDCARD};
use crate::shutdown::{DoneGuard, Shutdown};
use crate::source::{SourceMsg, SourceReceiver};
use crate::stats::{Stage, Stats, record_latencies};
use crate::symbols::{SymbolId, SymbolTable};
use handle::Command;
use interest::Parked;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{mpsc, oneshot};

/// Identifies one connection to the router.
pub type ClientId = u64;

/// Commands queued per session before it waits; sessions send one at a time
/// and wait for the reply, so this only absorbs bursts of many sessions.
const COMMAND_QUEUE: usize = 1024;

/// A symbol granted to a subscriber, with its latest tick at the moment it
/// was registered (the snapshot, and the baseline for `n`).
#[derive(Debug)]
pub struct Grant {
    pub id: SymbolId,
    pub latest: Option<Arc<EncodedTick>>,
}

/// Reply to a subscribe.
#[derive(Debug, Default)]
pub struct Subscribed {
    pub granted: Vec<Grant>,
    /// Requested names the router does not know.
    pub unknown: Vec<String>,
}

/// Reply to a bars subscribe: each granted symbol with the index of the
/// first final bar it will be sent (the finals closed so far).
#[derive(Debug, Default)]
pub struct BarsSubscribed {
    pub granted: Vec<(SymbolId, u64)>,
    /// Requested names the router does not know.
    pub unknown: Vec<String>,
}

/// Reply to a book subscribe: each granted symbol with its latest book
/// (the snapshot, and the baseline for `n`).
#[derive(Debug, Default)]
pub struct BookSubscribed {
    pub granted: Vec<(SymbolId, Option<Arc<EncodedBook>>)>,
    /// Requested names the router does not know.
    pub unknown: Vec<String>,
}

#[derive(Debug)]
struct Subscriber {
    client: ClientId,
    mailbox: Arc<Mailbox>,
}

/// Router state; owned by the router task alone.
pub struct Router {
    table: Arc<SymbolTable>,
    stats: Arc<Stats>,
    ids: HashMap<Arc<str>, SymbolId>,
    /// Recent updates of every symbol, within `--history` and
    /// `--history-memory`.
    retention: Retention,
    /// Bars of every symbol, built from the routed ticks.
    bars: bars::BarRouting,
    /// Every symbol's latest book, numbered, and its subscribers.
    book: book::BookRouting,
    topics: Vec<Vec<Subscriber>>,
    wildcard: Vec<Subscriber>,
    /// Symbols each client holds explicitly, to leave in O(subscriptions).
    clients: HashMap<ClientId, HashSet<SymbolId>>,
    dropped_table_full: u64,
    /// Reports interest to an on-demand source; `None` for a local source.
    interest: Option<InterestSender>,
    /// Names reported `Wanted` or `WantedBars`, with how many reports of
    /// each have no `Ready` yet.
    warming: HashMap<Arc<str>, u32>,
    /// Subscribes waiting for some of `warming`.
    parked: Vec<Parked>,
    /// Fired once the source's first message is handled (see `first_message`).
    first_message: Option<oneshot::Sender<()>>,
}

impl Router {
    pub fn new(table: Arc<SymbolTable>, stats: Arc<Stats>) -> Self {
        let bars = BarStore::new(
            table.capacity(),
            crate::bars::Retention::default(),
            DEFAULT_BARS_MEMORY,
        );
        Self {
            bars: bars::BarRouting::new(Arc::new(bars)),
            book: book::BookRouting::new(Arc::new(BookStore::new(table.capacity(), DEFAULT_DEPTH))),
            table,
            stats,
            ids: HashMap::new(),
            retention: Retention::new(DEFAULT_HISTORY, DEFAULT_HISTORY_MEMORY),
            topics: Vec::new(),
            wildcard: Vec::new(),
            clients: HashMap::new(),
            dropped_table_full: 0,
            interest: None,
            warming: HashMap::new(),
            parked: Vec::new(),
            first_message: None,
        }
    }

    /// Resolves once the source's first message (normally its symbol list)
    /// has been handled, so a server can take clients only when `hello`
    /// and `symbols` already show the universe.
    pub fn first_message(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.first_message = Some(tx);
        rx
    }

    /// Keeps up to `per_symbol` recent updates of each symbol, within
    /// `budget_bytes` over all of them (see `history`).
    pub fn with_history(mut self, per_symbol: usize, budget_bytes: usize) -> Self {
        self.retention = Retention::new(per_symbol, budget_bytes);
        self
    }

    /// Keeps `retention` final bars per symbol and timeframe, within
    /// `budget_bytes` over all of them (see `bars::store`).
    pub fn with_bars(mut self, retention: crate::bars::Retention, budget_bytes: usize) -> Self {
        let store = BarStore::new(self.table.capacity(), retention, budget_bytes);
        self.bars = bars::BarRouting::new(Arc::new(store));
        if self.interest.is_some() {
            self.bars.behind_a_broker();
        }
        self
    }

    /// Keeps and serves `depth` book levels per side (`--depth`).
    pub fn with_depth(mut self, depth: usize) -> Self {
        let store = BookStore::new(self.table.capacity(), depth);
        self.book = book::BookRouting::new(Arc::new(store));
        self
    }

    /// Starts the router task; returns the handle sessions use.
    pub fn spawn(
        self,
        source: SourceReceiver,
        shutdown: Shutdown,
        done: DoneGuard,
    ) -> RouterHandle {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let handle = RouterHandle {
            commands: tx,
            table: self.table.clone(),
            bars: self.bars.store().clone(),
            books: self.book.store().clone(),
        };
        tokio::spawn(async move {
            self.run(source, rx, shutdown).await;
            drop(done);
        });
        handle
    }

    async fn run(
        mut self,
        mut source: SourceReceiver,
        mut commands: mpsc::Receiver<Command>,
        mut shutdown: Shutdown,
    ) {
        let mut source_open = true;
        let mut bar_clock = tokio::time::interval(bars::CLOCK_PERIOD);
        bar_clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.wait() => break,
                Some(command) = commands.recv() => self.handle(command),
                _ = bar_clock.tick() => self.bars.on_clock(),
                msg = source.recv(), if source_open => {
                    match msg {
                        Some(SourceMsg::Declare(names)) => {
                            for name in names {
                                self.intern(&name);
                            }
                        }
                        Some(SourceMsg::Ticks(batch)) => self.route(batch),
                        Some(SourceMsg::Ready(names)) => self.ready(&names),
                        Some(SourceMsg::Bars(seeds)) => {
                            for (name, seed) in seeds {
                                if let Some(id) = self.intern(&name) {
                                    self.bars.seed(id, &seed);
                                }
                            }
                        }
                        Some(SourceMsg::Books(updates)) => self.route_books(updates),
                        Some(SourceMsg::NumberedBooks(books)) => self.route_numbered_books(books),
                        Some(SourceMsg::Epoch(epoch)) => {
                            // Comes first, before the symbols that start
                            // the server taking clients.
                            self.set_epoch(epoch);
                            continue;
                        }
                        None => {
                            tracing::info!("source finished; serving the last values");
                            self.bars.source_ended();
                            source_open = false;
                        }
                    }
                    if let Some(first) = self.first_message.take() {
                        let _ = first.send(());
                    }
                }
            }
        }
    }

    /// Starts numbering in `epoch` (the source named its seq space). When
    /// that is a change, every latest value and retained update is of the
    /// old seq space and is dropped, and every subscriber is woken: its
    /// session sees the new epoch and closes (`session::Stop`), so that no
    /// connection mixes two seq spaces.
    pub fn set_epoch(&mut self, epoch: String) {
        if self.table.epoch() == epoch {
            return;
        }
        tracing::info!(%epoch, "seqs are now of epoch {epoch}");
        self.table.set_epoch(epoch);
        self.retention.forget_all(&self.table);
        self.bars.forget_seeds();
        for id in 0..self.topics.len() as SymbolId {
            self.table.clear(id);
            self.book.store().clear(id);
        }
        for (id, subscribers) in self.topics.iter().enumerate() {
            for sub in subscribers {
                sub.mailbox.mark(id as SymbolId);
            }
        }
        if !self.topics.is_empty() {
            for sub in &self.wildcard {
                sub.mailbox.mark(0);
            }
        }
        self.stats.history.publish(&self.retention.status());
    }

    /// The id of `name`, creating the symbol on first sight.
    fn intern(&mut self, name: &Arc<str>) -> Option<SymbolId> {
        if let Some(id) = self.ids.get(name) {
            return Some(*id);
        }
        match self.table.push(name.clone()) {
            Ok(id) => {
                self.ids.insert(name.clone(), id);
                self.topics.push(Vec::new());
                Some(id)
            }
            Err(full) => {
                if self.dropped_table_full == 0 {
                    tracing::warn!(symbol = %name, "{full}; its updates are dropped");
                }
                self.dropped_table_full += 1;
                None
            }
        }
    }

    /// Fans a batch out: retain each tick in its symbol's ring, store it as
    /// the latest, then mark the mailbox of every subscriber.
    pub fn route(&mut self, batch: Vec<Tick>) {
        let now = now_ns();
        record_latencies(&self.stats, Stage::Route, now, batch.iter().map(|t| t.ts));
        self.stats.source_health.routed_at(now);
        self.stats
            .ticks_in
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        for tick in batch {
            let Some(id) = self.intern(&tick.sym) else {
                continue;
            };
            // What changed since the previous seq, for clients on deltas.
            let changed = match self.table.cell(id).load().as_ref() {
                Some(previous) if previous.seq() + 1 == tick.seq => {
                    Changed::between(&previous.tick, &tick)
                }
                _ => Changed::ALL,
            };
            self.bars.tick(id, &tick);
            let tick = Arc::new(EncodedTick::with_changes(tick, changed));
            self.retention.store(&self.table, id, &tick);
            self.table.store(id, tick);
            for sub in self.topics[id as usize].iter().chain(&self.wildcard) {
                sub.mailbox.mark(id);
            }
        }
        self.stats.history.publish(&self.retention.status());
    }

    /// Numbers and stores each book update that changed its symbol's top
    /// levels, and marks the book bit of every subscriber.
    pub fn route_books(&mut self, updates: Vec<BookUpdate>) {
        let mut changes = 0;
        for update in updates {
            let Some(id) = self.intern(&update.sym) else {
                continue;
            };
            changes += u64::from(self.book.update(id, update));
        }
        self.stats.books_in.fetch_add(changes, Ordering::Relaxed);
    }

    /// Stores and marks books numbered already (`SourceMsg::NumberedBooks`).
    /// On an edge, only those of symbols it serves books of: it drops the
    /// book of a symbol whose last book subscriber left.
    pub fn route_numbered_books(&mut self, books: Vec<BookEvent>) {
        let mut changes = 0;
        for book in books {
            let Some(id) = self.intern(&book.sym) else {
                continue;
            };
            if self.interest.is_some() && !self.book.serves(id) {
                continue;
            }
            changes += u64::from(self.book.numbered(id, book));
        }
        self.stats.books_in.fetch_add(changes, Ordering::Relaxed);
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Subscribe {
                client,
                mailbox,
                symbols,
                reply,
            } => {
                let all = matches!(symbols, SymbolSet::All);
                let subscribed = self.subscribe(client, mailbox, symbols);
                self.reply_when_warm(subscribed, all, reply);
            }
            Command::Unsubscribe {
                client,
                symbols,
                reply,
            } => {
                let _ = reply.send(self.unsubscribe(client, symbols));
            }
            Command::SubscribeBars {
                client,
                mailbox,
                tf,
                symbols,
                reply,
            } => {
                let (mut ids, mut unseeded, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
                for name in symbols {
                    match self.ids.get(name.as_str()) {
                        Some(&id) => {
                            // Bars are taken only while no client holds an
                            // index into them (a failed take is not retried
                            // under a subscriber's feet).
                            if !self.bars.store().is_current(id) && !self.bars.holds(id) {
                                unseeded.push(id);
                            }
                            self.bars.subscribe(client, &mailbox, id, tf);
                            ids.push(id);
                        }
                        None => unknown.push(name),
                    }
                }
                self.want_bars(self.names(&unseeded));
                self.reply_bars_when_warm(ids, tf, unknown, reply);
            }
            Command::UnsubscribeBars {
                client,
                tf,
                symbols,
                reply,
            } => {
                let ids = self.known_ids(&symbols);
                for &id in &ids {
                    self.bars.unsubscribe(client, id, tf);
                }
                self.release(ids.clone());
                let _ = reply.send(ids);
            }
            Command::SubscribeBook {
                client,
                mailbox,
                symbols,
                reply,
            } => {
                let (mut ids, mut first, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
                for name in symbols {
                    match self.ids.get(name.as_str()) {
                        Some(&id) => {
                            if !self.book.serves(id) {
                                first.push(id);
                            }
                            self.book.subscribe(client, &mailbox, id);
                            ids.push(id);
                        }
                        None => unknown.push(name),
                    }
                }
                self.want_book(self.names(&first));
                self.reply_book_when_warm(ids, unknown, reply);
            }
            Command::UnsubscribeBook {
                client,
                symbols,
                reply,
            } => {
                let ids = self.known_ids(&symbols);
                let held = ids
                    .iter()
                    .copied()
                    .filter(|&id| self.book.unsubscribe(client, id))
                    .collect();
                self.release_books(held);
                let _ = reply.send(ids);
            }
            Command::Leave { client } => {
                self.unsubscribe(client, SymbolSet::All);
                let ids = self.bars.leave(client);
                self.release(ids);
                let held = self.book.leave(client);
                self.release_books(held);
            }
            Command::BarSeed { symbol, reply } => {
                let taken = self.ids.get(symbol.as_str()).map(|&id| {
                    let seq = self.table.cell(id).latest().map_or(0, |t| t.seq());
                    let (seed, finals) = self.bars.export(id, seq);
                    (id, seed, finals)
                });
                let _ = reply.send(taken);
            }
        }
    }

    /// Some local client subscribes to ticks or bars of `id`.
    fn serves(&self, id: SymbolId) -> bool {
        !self.topics[id as usize].is_empty() || self.bars.holds(id)
    }

    /// Of `ids`, whose subscriptions just went, those no longer served
    /// are unwanted (reported to an on-demand source).
    fn release(&mut self, mut ids: Vec<SymbolId>) {
        ids.sort_unstable();
        ids.dedup();
        ids.retain(|&id| !self.serves(id));
        for &id in &ids {
            self.bars.released(id);
        }
        self.unwant(self.names(&ids));
    }

    /// Of `ids`, whose book subscriptions just went, those with no book
    /// subscriber left are unwanted; on an edge their books stop coming,
    /// so the stale latest book is dropped.
    fn release_books(&mut self, mut ids: Vec<SymbolId>) {
        if self.interest.is_none() {
            return;
        }
        ids.sort_unstable();
        ids.dedup();
        ids.retain(|&id| !self.book.serves(id));
        for &id in &ids {
            self.book.store().clear(id);
        }
        self.unwant_book(self.names(&ids));
    }

    /// The ids of the names that exist.
    fn known_ids(&self, names: &[String]) -> Vec<SymbolId> {
        names
            .iter()
            .filter_map(|name| self.ids.get(name.as_str()).copied())
            .collect()
    }

    fn grant(&self, id: SymbolId) -> Grant {
        Grant {
            id,
            latest: self.table.cell(id).latest(),
        }
    }

    pub fn subscribe(
        &mut self,
        client: ClientId,
        mailbox: Arc<Mailbox>,
        symbols: SymbolSet,
    ) -> Subscribed {
        let mut reply = Subscribed::default();
        match symbols {
            SymbolSet::All => {
                if !self.wildcard.iter().any(|s| s.client == client) {
                    if self.wildcard.is_empty() {
                        self.want([Arc::from(WILDCARD)]);
                    }
                    self.wildcard.push(Subscriber { client, mailbox });
                }
                reply.granted = (0..self.topics.len() as SymbolId)
                    .map(|id| self.grant(id))
                    .collect();
            }
            SymbolSet::Named(names) => {
                let held = self.clients.entry(client).or_default();
                let mut first = Vec::new();
                for name in names {
                    let Some(&id) = self.ids.get(name.as_str()) else {
                        reply.unknown.push(name);
                        continue;
                    };
                    if held.insert(id) {
                        if self.topics[id as usize].is_empty() && !self.bars.holds(id) {
                            first.push(id);
                        }
                        self.topics[id as usize].push(Subscriber {
                            client,
                            mailbox: mailbox.clone(),
                        });
                    }
                    reply.granted.push(Grant {
                        id,
                        latest: self.table.cell(id).latest(),
                    });
                }
                self.want(self.names(&first));
            }
        }
        reply
    }

    fn names(&self, ids: &[SymbolId]) -> Vec<Arc<str>> {
        ids.iter()
            .filter_map(|&id| self.table.cell(id).name().cloned())
            .collect()
    }

    /// Removes subscriptions. Returns the ids of every named symbol that
    /// exists (held or not, so a session can exclude it from `*`), or for
    /// `All` the ids that were held.
    pub fn unsubscribe(&mut self, client: ClientId, symbols: SymbolSet) -> Vec<SymbolId> {
        let held = self.clients.get_mut(&client);
        let (ids, removed): (Vec<SymbolId>, Vec<SymbolId>) = match symbols {
            SymbolSet::All => {
                let had_wildcard = !self.wildcard.is_empty();
                self.wildcard.retain(|s| s.client != client);
                if had_wildcard && self.wildcard.is_empty() {
                    self.unwant([Arc::from(WILDCARD)]);
                }
                let removed: Vec<SymbolId> =
                    self.clients.remove(&client).into_iter().flatten().collect();
                (removed.clone(), removed)
            }
            SymbolSet::Named(names) => {
                let ids: Vec<SymbolId> = names
                    .iter()
                    .filter_map(|name| self.ids.get(name.as_str()).copied())
                    .collect();
                let removed = match held {
                    Some(held) => ids.iter().copied().filter(|id| held.remove(id)).collect(),
                    None => Vec::new(),
                };
                (ids, removed)
            }
        };
        for &id in &removed {
            self.topics[id as usize].retain(|s| s.client != client);
        }
        self.release(removed);
        ids
    }

    /// Bars subscriptions of every client (for tests and stats).
    pub fn bar_subscription_count(&self) -> usize {
        self.bars.subscription_count()
    }

    /// Book subscriptions of every client (for tests and stats).
    pub fn book_subscription_count(&self) -> usize {
        self.book.subscription_count()
    }

    /// Subscribers of one symbol, not counting `*` (for tests and stats).
    pub fn subscriber_count(&self, id: SymbolId) -> usize {
        self.topics.get(id as usize).map_or(0, Vec::len)
    }
}
