//! The source role: sits between the source and the local router, forwards
//! everything to the router, and publishes every tick on its symbol's
//! subject and the universe on `tickfeed.symbols`. The broker's stream
//! (`store`) keeps the last message of each, for edges' snapshots.
//!
//! Books are numbered here, before they are published (the rule is
//! `books::number`, at this node's `--depth`), and go to the local router
//! numbered (`SourceMsg::NumberedBooks`) and to `tickfeed.book.<SYMBOL>`
//! (`book.rs`), so every node serves the same `seq` for the same levels.
//! A restart in the same epoch continues each symbol's book `seq` from
//! its stored last book.
//!
//! `seq` continues across source restarts: at start the publisher reads the
//! last stored tick of every symbol and offsets that symbol's `seq` by it,
//! so a restarted generator or replay carries on where the previous one
//! stopped (the local router sees the same offset numbers). Only `seq`
//! continues: prices and `vol` start afresh with the new source.
//!
//! The epoch (`epoch.rs`) goes with `seq`: a publisher that continues the
//! stored seqs continues the stored epoch; one that finds no stored ticks
//! makes a new epoch and stores it (`tickfeed.epoch`) before it publishes
//! anything, so edges announce it before any tick of it. The local router
//! gets it first too, so `hello` on the source node names it.
//!
//! Publishing never delays the local router. Ticks go to the broker through
//! a bounded queue of [`PUBLISH_QUEUE_BATCHES`]; while the broker is away
//! that queue fills and further batches are dropped and counted. Edges see
//! the outage as a jump in `seq`, which their clients see as `n`.

use super::book;
use super::payload;
use super::store::LastValues;
use super::subject::{self, UNIVERSE};
use super::{Connection, NatsError};
use crate::books;
use crate::epoch::new_epoch;
use crate::protocol::{BookEvent, BookUpdate, Tick};
use crate::shutdown::{DoneGuard, Shutdown, ShutdownTrigger};
use crate::source::{SourceMsg, SourceReceiver, SourceSender};
use async_nats::Subject;
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Batches waiting for the broker: about a quarter of a second of updates
/// (the generator emits a batch a millisecond), so a hiccup is absorbed but
/// an outage is dropped rather than hoarded and replayed late.
const PUBLISH_QUEUE_BATCHES: usize = 256;
/// How long shutdown waits for queued publishes to reach the broker.
const FLUSH_GRACE: Duration = Duration::from_secs(2);

/// What goes to the broker, already encoded.
type Outgoing = Vec<(Subject, Bytes)>;

/// Per-symbol publishing state.
struct Route {
    subject: Subject,
    /// Last stored `seq` at start, added to every `seq` of this source.
    base: u64,
}

/// Per-symbol book publishing state.
struct BookRoute {
    subject: Subject,
    /// The last book numbered (or stored, at start): the one the next
    /// update is compared with and numbered after.
    last: Option<BookEvent>,
}

/// A connected publisher that knows where each symbol's `seq` and book
/// `seq` stand and in which epoch.
pub struct Publisher {
    connection: Connection,
    routes: HashMap<Arc<str>, Route>,
    book_routes: HashMap<Arc<str>, BookRoute>,
    epoch: String,
    /// The stream's copies, to recreate it as it was after a reconnect.
    replicas: usize,
}

/// The epoch a starting source continues: the stored one when it also
/// continues stored seqs. `None`: seqs start afresh, so a new epoch.
fn continued_epoch(continues_seqs: bool, stored: Option<String>) -> Option<String> {
    stored.filter(|_| continues_seqs)
}

impl Publisher {
    /// Reads the stored `seq` of every symbol and the stored epoch, and
    /// stores a new epoch when seqs start afresh.
    pub async fn prepare(connection: Connection, store: LastValues) -> Result<Self, NatsError> {
        let stored = store.all_last().await?;
        let mut stored_books = Vec::new();
        let epoch = match continued_epoch(!stored.is_empty(), store.epoch().await?) {
            Some(epoch) => {
                stored_books = store.all_last_books().await?;
                tracing::info!(
                    symbols = stored.len(),
                    books = stored_books.len(),
                    %epoch,
                    "continuing seq and epoch from the broker's last values"
                );
                epoch
            }
            None => {
                let epoch = new_epoch();
                store.store_epoch(&epoch).await?;
                tracing::info!(%epoch, continued_seqs = stored.len(), "a new epoch");
                epoch
            }
        };
        let routes = stored
            .into_iter()
            .map(|t| {
                (
                    t.sym.clone(),
                    Route {
                        subject: subject::for_symbol(&t.sym).into(),
                        base: t.seq,
                    },
                )
            })
            .collect();
        let book_routes = stored_books
            .into_iter()
            .map(|book| {
                (
                    book.sym.clone(),
                    BookRoute {
                        subject: subject::book_of(&book.sym).into(),
                        last: Some(book),
                    },
                )
            })
            .collect();
        Ok(Self {
            connection,
            routes,
            book_routes,
            epoch,
            replicas: store.replicas(),
        })
    }

    /// The client, for the history requests the source answers.
    pub(super) fn client(&self) -> &async_nats::Client {
        &self.connection.client
    }

    /// Starts the forwarding task (source to router) and the writer task
    /// (queue to broker); books are numbered at `depth` levels per side
    /// (`--depth`).
    pub fn spawn(
        self,
        input: SourceReceiver,
        out: SourceSender,
        depth: usize,
        trigger: &ShutdownTrigger,
    ) {
        let (queue_tx, queue_rx) = mpsc::channel(PUBLISH_QUEUE_BATCHES);
        let tee = Tee {
            epoch: Some(self.epoch.clone()),
            routes: self.routes,
            book_routes: self.book_routes,
            depth,
            universe: Vec::new(),
            declared: HashSet::new(),
            queue: queue_tx,
            dropped: 0,
        };
        tokio::spawn(tee.run(input, out, trigger.subscribe(), trigger.guard()));
        let writer = Writer {
            connection: self.connection,
            universe: None,
            epoch: self.epoch,
            replicas: self.replicas,
        };
        tokio::spawn(writer.run(queue_rx, trigger.subscribe(), trigger.guard()));
    }
}

/// Forwards to the router and queues for the broker.
struct Tee {
    /// Told the router before anything else, then `None`.
    epoch: Option<String>,
    routes: HashMap<Arc<str>, Route>,
    book_routes: HashMap<Arc<str>, BookRoute>,
    /// Book levels per side numbered and published (`--depth`).
    depth: usize,
    /// Every symbol declared so far, in order, and as a set.
    universe: Vec<Arc<str>>,
    declared: HashSet<Arc<str>>,
    queue: mpsc::Sender<Outgoing>,
    /// Batches dropped since the queue last had room.
    dropped: u64,
}

impl Tee {
    async fn run(
        mut self,
        mut input: SourceReceiver,
        out: SourceSender,
        mut shutdown: Shutdown,
        done: DoneGuard,
    ) {
        if let Some(epoch) = self.epoch.take()
            && out.send(SourceMsg::Epoch(epoch)).await.is_err()
        {
            return;
        }
        loop {
            let msg = tokio::select! {
                _ = shutdown.wait() => break,
                msg = input.recv() => match msg {
                    Some(msg) => msg,
                    None => break,
                },
            };
            let msg = match msg {
                SourceMsg::Ticks(batch) => SourceMsg::Ticks(self.publish_ticks(batch)),
                SourceMsg::Declare(names) => {
                    self.publish_universe(&names);
                    SourceMsg::Declare(names)
                }
                SourceMsg::Books(updates) => SourceMsg::NumberedBooks(self.publish_books(updates)),
                other @ (SourceMsg::Ready(_)
                | SourceMsg::Epoch(_)
                | SourceMsg::NumberedBooks(_)
                | SourceMsg::Bars(_)) => other,
            };
            if out.send(msg).await.is_err() {
                break;
            }
        }
        drop(done);
    }

    /// Continues each tick's `seq` and queues the batch for the broker.
    fn publish_ticks(&mut self, mut batch: Vec<Tick>) -> Vec<Tick> {
        let mut outgoing = Vec::with_capacity(batch.len());
        for tick in &mut batch {
            let route = self
                .routes
                .entry(tick.sym.clone())
                .or_insert_with(|| Route {
                    subject: subject::for_symbol(&tick.sym).into(),
                    base: 0,
                });
            tick.seq += route.base;
            outgoing.push((route.subject.clone(), payload::encode_tick(tick)));
        }
        self.queue_for_broker(outgoing);
        batch
    }

    /// Numbers each update that changed its symbol's top levels and
    /// queues those books for the broker; returns them for the router.
    fn publish_books(&mut self, updates: Vec<BookUpdate>) -> Vec<BookEvent> {
        let mut books = Vec::with_capacity(updates.len());
        let mut outgoing = Vec::with_capacity(updates.len());
        for update in updates {
            let route = self
                .book_routes
                .entry(update.sym.clone())
                .or_insert_with(|| BookRoute {
                    subject: subject::book_of(&update.sym).into(),
                    last: None,
                });
            let Some(numbered) = books::number(route.last.as_ref(), update, self.depth) else {
                continue;
            };
            outgoing.push((route.subject.clone(), book::encode_book(&numbered)));
            route.last = Some(numbered.clone());
            books.push(numbered);
        }
        if !outgoing.is_empty() {
            self.queue_for_broker(outgoing);
        }
        books
    }

    fn publish_universe(&mut self, names: &[Arc<str>]) {
        let before = self.universe.len();
        for name in names {
            if self.declared.insert(name.clone()) {
                self.universe.push(name.clone());
            }
        }
        if self.universe.len() > before {
            self.queue_for_broker(vec![(
                UNIVERSE.into(),
                payload::encode_universe(&self.universe),
            )]);
        }
    }

    fn queue_for_broker(&mut self, outgoing: Outgoing) {
        match self.queue.try_send(outgoing) {
            Ok(()) if self.dropped > 0 => {
                tracing::info!(
                    batches = self.dropped,
                    "publishing to NATS again; batches dropped meanwhile"
                );
                self.dropped = 0;
            }
            Ok(()) => {}
            Err(_) => {
                if self.dropped == 0 {
                    tracing::warn!(
                        "NATS is not taking updates; dropping them until it does (edges will see a gap)"
                    );
                }
                self.dropped += 1;
            }
        }
    }
}

/// Hands queued messages to the broker; after a reconnect makes sure the
/// stream exists and the universe and epoch are stored (the broker may
/// have lost all three).
struct Writer {
    connection: Connection,
    /// The latest universe message, to publish again after a reconnect.
    universe: Option<Bytes>,
    epoch: String,
    replicas: usize,
}

impl Writer {
    async fn run(
        mut self,
        mut queue: mpsc::Receiver<Outgoing>,
        mut shutdown: Shutdown,
        done: DoneGuard,
    ) {
        let client = self.connection.client.clone();
        let mut lost = false;
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
                batch = queue.recv() => {
                    let Some(batch) = batch else { break };
                    // Waits while the broker is away; shutdown must not.
                    tokio::select! {
                        _ = shutdown.wait() => break,
                        _ = self.publish(batch) => {}
                    }
                }
                Some(event) = self.connection.events.recv() => match event {
                    async_nats::Event::Disconnected => {
                        tracing::warn!("lost NATS; reconnecting");
                        lost = true;
                    }
                    async_nats::Event::Connected if lost => {
                        lost = false;
                        self.restore().await;
                    }
                    other => tracing::debug!("NATS: {other}"),
                },
            }
        }
        if tokio::time::timeout(FLUSH_GRACE, client.flush())
            .await
            .is_err()
        {
            tracing::warn!("NATS did not take the last updates within {FLUSH_GRACE:?}");
        }
        drop(done);
    }

    async fn publish(&mut self, batch: Outgoing) {
        for (subject, payload) in batch {
            if subject.as_str() == UNIVERSE {
                self.universe = Some(payload.clone());
            }
            if let Err(e) = self.connection.client.publish(subject, payload).await {
                tracing::warn!("publishing to NATS: {e}");
            }
        }
    }

    async fn restore(&mut self) {
        tracing::info!("NATS reconnected");
        match LastValues::open(self.connection.client.clone(), self.replicas).await {
            Ok(store) => {
                if let Err(e) = store.store_epoch(&self.epoch).await {
                    tracing::warn!("after reconnecting: {e}");
                }
            }
            Err(e) => tracing::warn!("after reconnecting: {e}"),
        }
        if let Some(universe) = self.universe.clone()
            && let Err(e) = self.connection.client.publish(UNIVERSE, universe).await
        {
            tracing::warn!("publishing the universe: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_continues_only_with_the_seqs() {
        let stored = || Some("19ad1c2e3f0-9a3b4c5d".to_string());
        assert_eq!(continued_epoch(true, stored()), stored());
        assert_eq!(
            continued_epoch(false, stored()),
            None,
            "an empty store: seqs restart"
        );
        assert_eq!(
            continued_epoch(true, None),
            None,
            "a store from before epochs"
        );
    }

    fn update(bid: f64) -> BookUpdate {
        BookUpdate {
            sym: "AAPL".into(),
            ts: 7,
            xt: None,
            depth: crate::protocol::Depth {
                bids: vec![(bid, 100), (bid - 0.01, 200), (bid - 0.02, 300)],
                asks: vec![(bid + 0.02, 100)],
            },
        }
    }

    #[test]
    fn books_are_numbered_after_the_stored_one_and_published_once_each() {
        let (queue, mut queued) = mpsc::channel(8);
        let stored = books::number(None, update(10.0), 2).map(|book| BookEvent { seq: 41, ..book });
        let mut tee = Tee {
            epoch: None,
            routes: HashMap::new(),
            book_routes: HashMap::from([(
                Arc::from("AAPL"),
                BookRoute {
                    subject: subject::book_of("AAPL").into(),
                    last: stored,
                },
            )]),
            depth: 2,
            universe: Vec::new(),
            declared: HashSet::new(),
            queue,
            dropped: 0,
        };
        // The stored book again, then one whose third level alone moved
        // (beyond --depth 2): no change. Then a change: 42.
        let mut deeper = update(10.0);
        deeper.depth.bids[2].1 = 1;
        assert!(tee.publish_books(vec![update(10.0), deeper]).is_empty());
        assert!(queued.try_recv().is_err(), "nothing published");
        let books = tee.publish_books(vec![update(10.5)]);
        assert_eq!(books.iter().map(|b| b.seq).collect::<Vec<_>>(), [42]);
        assert_eq!(books[0].depth.bids.len(), 2, "cut to --depth");
        let published = queued.try_recv().unwrap();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].0.as_str(), "tickfeed.book.AAPL");
        assert_eq!(
            book::decode_book("AAPL".into(), &published[0].1).unwrap(),
            books[0],
            "the router's book is the one published"
        );
    }
}
