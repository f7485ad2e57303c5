//! The edge role: the local router's source on an edge node, fed from NATS
//! with only what local clients want. The router reports [`Interest`]; the
//! edge holds a subscription to a symbol's subject while the symbol has a
//! local subscriber, and to `tickfeed.ticks.>` alone while someone holds
//! `*`. A quiet edge holds no tick subscription at all.
//!
//! Snapshots: on `Wanted` the edge subscribes first, then reads the
//! symbol's last value from the broker's stream (`store`), routes it, and
//! sends `Ready`; the router answers the waiting subscribe only then, so its
//! snapshot is the one every node gives.
//!
//! Faults: the NATS client reconnects by itself and renews every
//! subscription; the edge then reads the universe and the last value of
//! every wanted symbol again. Every tick passes `inbound`'s `seq` filter,
//! so nothing is duplicated and an outage shows as a jump in `seq` (`n`).
//! The broker hop (source `ts` to receipt here) of ticks and books is
//! recorded as `hop`.
//!
//! Epoch: the edge announces its source's epoch to its router
//! (`SourceMsg::Epoch`), read from the broker at start and after a
//! reconnect, and followed on `tickfeed.epoch`. When it changes (a source
//! restarted on an empty store: seqs start again), the edge forgets the
//! seqs it forwarded and reads every wanted symbol's latest value again;
//! its router drops the old seq space and closes its connections, whose
//! clients reconnect into the new epoch.
//!
//! Bars: on `WantedBars` (a bars subscriber of a symbol whose bars here
//! are not the source's yet) the edge delivers the symbol as on `Wanted`
//! and hands its router the source's bars, as of a tick at or after the
//! last one the edge has, before `Ready`; the router aggregates only later
//! ticks (`nats::bars`, `router/bars.rs`).
//!
//! Books: on `WantedBook` (a symbol's first local book subscriber) the edge
//! subscribes to `tickfeed.book.<SYMBOL>`, reads the symbol's last stored
//! book, routes it (numbered already: `SourceMsg::NumberedBooks`; the
//! router drops what is not past its latest) and sends `Ready`; on
//! `UnwantedBook` it unsubscribes. Books carry the source's `seq`, so an
//! edge's book events are the source node's.
//!
//! This file runs the edge task; `subscriptions.rs` turns interest into
//! NATS subscriptions and snapshot reads, `bars.rs` fetches the bars,
//! `books.rs` reads and forwards books.

mod bars;
mod books;
mod subscriptions;

use super::inbound::Inbound;
use super::payload;
use super::store::LastValues;
use super::subject::{self, ALL_TICKS, EPOCH, UNIVERSE};
use super::{Connection, NatsError};
use crate::clock::now_ns;
use crate::protocol::{Tick, WILDCARD};
use crate::router::Interest;
use crate::shutdown::{DoneGuard, Shutdown, ShutdownTrigger};
use crate::source::{SourceMsg, SourceSender};
use crate::stats::{Stage, Stats, record_latencies};
use async_nats::connection::State;
use futures_util::stream::{SelectAll, TakeUntil};
use futures_util::{FutureExt, StreamExt};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most ticks forwarded to the router in one batch: amortises the hand-off
/// under load while keeping each of the router's turns short.
const MAX_BATCH: usize = 1024;
/// Interest changes applied together (their snapshot reads overlap).
const INTEREST_BATCH: usize = 256;
/// How often the edge's status in `/api/stats` (`source`) is refreshed.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// One subscription's messages; it ends (and unsubscribes) when the
/// matching sender in `Edge::subscriptions` is dropped.
type Incoming = TakeUntil<async_nats::Subscriber, oneshot::Receiver<()>>;

/// Counters shown in the edge's status, beside `inbound`'s.
#[derive(Debug, Default, serde::Serialize)]
struct Counters {
    snapshots_read: u64,
    reconnects: u64,
    slow_consumer: u64,
    /// Times a symbol's bars came from the source for a bars subscriber,
    /// and times they did not (the source did not answer).
    bars_seeded: u64,
    bars_unseeded: u64,
    /// Last books read for book snapshots, and book messages that could
    /// not be read.
    book_snapshots_read: u64,
    books_unreadable: u64,
}

/// A connected edge that has read the universe and the epoch, ready to
/// run.
pub struct Edge {
    url: String,
    connection: Connection,
    store: LastValues,
    universe: Vec<Arc<str>>,
    universe_updates: async_nats::Subscriber,
    /// The source's epoch, unless no source has stored one yet.
    epoch: Option<String>,
    epoch_updates: async_nats::Subscriber,
}

async fn subscribe(
    client: &async_nats::Client,
    subject: &'static str,
) -> Result<async_nats::Subscriber, NatsError> {
    client
        .subscribe(subject)
        .await
        .map_err(|cause| NatsError::Subscribe {
            subject: subject.into(),
            cause,
        })
}

impl Edge {
    /// Reads the universe and the epoch and subscribes to their updates.
    pub async fn prepare(
        url: String,
        connection: Connection,
        store: LastValues,
    ) -> Result<Self, NatsError> {
        let universe_updates = subscribe(&connection.client, UNIVERSE).await?;
        let epoch_updates = subscribe(&connection.client, EPOCH).await?;
        let universe = store.universe().await?;
        let epoch = store.epoch().await?;
        tracing::info!(
            symbols = universe.len(),
            ?epoch,
            "universe and epoch read from NATS"
        );
        Ok(Self {
            url,
            connection,
            store,
            universe,
            universe_updates,
            epoch,
            epoch_updates,
        })
    }

    /// The client, for the history requests the edge sends.
    pub(crate) fn client(&self) -> &async_nats::Client {
        &self.connection.client
    }

    /// The last-value stream, for `/api/book`'s reads.
    pub(crate) fn store(&self) -> &LastValues {
        &self.store
    }

    /// Starts the edge task, which first declares the universe to `out`.
    pub fn spawn(
        self,
        interest: mpsc::UnboundedReceiver<Interest>,
        out: SourceSender,
        stats: Arc<Stats>,
        trigger: &ShutdownTrigger,
    ) {
        let Connection { client, events } = self.connection;
        let state = EdgeState {
            url: self.url,
            client,
            store: self.store,
            out,
            stats,
            wanted: HashSet::new(),
            wildcard: false,
            subscriptions: HashMap::new(),
            incoming: SelectAll::new(),
            book_subscriptions: HashMap::new(),
            book_incoming: SelectAll::new(),
            inbound: Inbound::default(),
            counters: Counters::default(),
            epoch: None,
        };
        let tasks = Tasks {
            interest,
            universe_updates: self.universe_updates,
            epoch_updates: self.epoch_updates,
            events,
            shutdown: trigger.subscribe(),
        };
        let start = Start {
            universe: self.universe,
            epoch: self.epoch,
        };
        tokio::spawn(state.run(start, tasks, trigger.guard()));
    }
}

/// What the edge read at start, told to the router first.
struct Start {
    universe: Vec<Arc<str>>,
    epoch: Option<String>,
}

/// Everything the edge task waits on besides its subscriptions.
struct Tasks {
    interest: mpsc::UnboundedReceiver<Interest>,
    universe_updates: async_nats::Subscriber,
    epoch_updates: async_nats::Subscriber,
    events: mpsc::Receiver<async_nats::Event>,
    shutdown: Shutdown,
}

/// The edge task's state; owned by that task alone.
struct EdgeState {
    url: String,
    client: async_nats::Client,
    store: LastValues,
    out: SourceSender,
    stats: Arc<Stats>,
    /// Symbols with a local subscriber.
    wanted: HashSet<Arc<str>>,
    /// Someone holds `*`: one subscription to every tick subject instead.
    wildcard: bool,
    /// Live subscriptions by symbol, or `*`.
    subscriptions: HashMap<Arc<str>, oneshot::Sender<()>>,
    incoming: SelectAll<Incoming>,
    /// Book subscriptions by symbol (those with a local book subscriber),
    /// and their messages.
    book_subscriptions: HashMap<Arc<str>, oneshot::Sender<()>>,
    book_incoming: SelectAll<Incoming>,
    inbound: Inbound,
    counters: Counters,
    /// The epoch told to the router, if any yet.
    epoch: Option<String>,
}

impl EdgeState {
    async fn run(mut self, start: Start, mut tasks: Tasks, done: DoneGuard) {
        if let Some(epoch) = start.epoch
            && !self.follow_epoch(epoch).await
        {
            return;
        }
        if self
            .out
            .send(SourceMsg::Declare(start.universe))
            .await
            .is_err()
        {
            return;
        }
        let mut status = tokio::time::interval(STATUS_INTERVAL);
        let mut changes = Vec::new();
        let mut lost = false;
        loop {
            let router_open = tokio::select! {
                biased;
                _ = tasks.shutdown.wait() => break,
                // Before the ticks: a new epoch's ticks may come right after.
                Some(message) = tasks.epoch_updates.next() => match payload::decode_epoch(&message.payload) {
                    Ok(epoch) => self.follow_epoch(epoch).await,
                    Err(e) => {
                        tracing::warn!("ignoring an epoch message: {e}");
                        true
                    }
                },
                n = tasks.interest.recv_many(&mut changes, INTEREST_BATCH) => {
                    if n == 0 {
                        break;
                    }
                    self.apply(std::mem::take(&mut changes)).await
                }
                Some(message) = self.incoming.next(), if !self.incoming.is_empty() => self.live(message).await,
                Some(message) = self.book_incoming.next(), if !self.book_incoming.is_empty() => self.live_books(message).await,
                Some(message) = tasks.universe_updates.next() => self.declare(&message.payload).await,
                Some(event) = tasks.events.recv() => self.connection_event(event, &mut lost).await,
                _ = status.tick() => {
                    self.report();
                    true
                }
            };
            if !router_open {
                break;
            }
        }
        drop(done);
    }

    /// Forwards live messages: the first, and whatever else is already
    /// waiting, as one batch.
    async fn live(&mut self, first: async_nats::Message) -> bool {
        let mut batch = Vec::new();
        self.inbound.decode_into(&first, &mut batch);
        while batch.len() < MAX_BATCH {
            match self.incoming.next().now_or_never() {
                Some(Some(message)) => self.inbound.decode_into(&message, &mut batch),
                _ => break,
            }
        }
        record_latencies(
            &self.stats,
            Stage::Hop,
            now_ns(),
            batch.iter().map(|t| t.ts),
        );
        self.forward(batch).await
    }

    /// Passes the ticks that are news on to the router. Returns false once
    /// the router is gone.
    async fn forward(&mut self, ticks: Vec<Tick>) -> bool {
        let fresh = self.inbound.fresh(ticks);
        fresh.is_empty() || self.out.send(SourceMsg::Ticks(fresh)).await.is_ok()
    }

    async fn declare(&mut self, bytes: &[u8]) -> bool {
        match payload::decode_universe(bytes) {
            Ok(names) => self.out.send(SourceMsg::Declare(names)).await.is_ok(),
            Err(e) => {
                tracing::warn!("ignoring a universe message: {e}");
                true
            }
        }
    }

    async fn connection_event(&mut self, event: async_nats::Event, lost: &mut bool) -> bool {
        match event {
            async_nats::Event::Disconnected => {
                tracing::warn!(url = %self.url, "lost NATS; reconnecting");
                *lost = true;
                self.report();
                true
            }
            async_nats::Event::Connected if *lost => {
                *lost = false;
                self.counters.reconnects += 1;
                tracing::info!(url = %self.url, "NATS reconnected; catching up");
                self.catch_up().await
            }
            async_nats::Event::SlowConsumer(_) => {
                if self.counters.slow_consumer == 0 {
                    tracing::warn!(
                        "this edge falls behind NATS; the broker drops updates for it (clients see n)"
                    );
                }
                self.counters.slow_consumer += 1;
                true
            }
            other => {
                tracing::debug!("NATS: {other}");
                true
            }
        }
    }

    /// Announces `epoch` to the router unless it is the one announced.
    /// A change means seqs started again: what was forwarded no longer
    /// bounds what is news, and every wanted symbol's latest value is read
    /// again in the new epoch. Returns false once the router is gone.
    async fn follow_epoch(&mut self, epoch: String) -> bool {
        if self.epoch.as_ref() == Some(&epoch) {
            return true;
        }
        let first = self.epoch.is_none();
        tracing::info!(%epoch, "the source's epoch");
        self.epoch = Some(epoch.clone());
        self.inbound.forget();
        if self.out.send(SourceMsg::Epoch(epoch)).await.is_err() {
            return false;
        }
        if first && self.wanted.is_empty() && !self.wildcard && self.book_subscriptions.is_empty() {
            return true;
        }
        let latest = self.read_latest(self.wildcard, self.wanted_names()).await;
        self.forward(latest).await && self.refresh_books().await
    }

    /// Wanted symbols to read one by one (none while `*` reads them all).
    fn wanted_names(&self) -> Vec<Arc<str>> {
        if self.wildcard {
            Vec::new()
        } else {
            self.wanted.iter().cloned().collect()
        }
    }

    /// After a reconnect: the epoch, the universe and the last value of
    /// every wanted symbol may have moved while the edge was away.
    async fn catch_up(&mut self) -> bool {
        match self.store.epoch().await {
            Ok(Some(epoch)) if self.epoch.as_ref() != Some(&epoch) => {
                if !self.follow_epoch(epoch).await {
                    return false;
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("reading the epoch: {e}"),
        }
        let mut open = true;
        match self.store.universe().await {
            Ok(names) if !names.is_empty() => {
                open = self.out.send(SourceMsg::Declare(names)).await.is_ok()
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("reading the universe: {e}"),
        }
        let latest = self.read_latest(self.wildcard, self.wanted_names()).await;
        self.report();
        open && self.forward(latest).await && self.refresh_books().await
    }

    /// Publishes the edge's status as the `source` section of `/api/stats`.
    fn report(&self) {
        let mut subjects: Vec<String> = self
            .subscriptions
            .keys()
            .map(|key| {
                if &**key == WILDCARD {
                    ALL_TICKS.into()
                } else {
                    subject::for_symbol(key)
                }
            })
            .chain(
                self.book_subscriptions
                    .keys()
                    .map(|key| subject::book_of(key)),
            )
            .collect();
        subjects.sort();
        self.stats.set_source_status(serde_json::json!({
            "kind": "nats-edge",
            "url": self.url,
            "connected": self.client.connection_state() == State::Connected,
            "wanted": self.wanted.len(),
            "wildcard": self.wildcard,
            "books": self.book_subscriptions.len(),
            "epoch": self.epoch,
            "subjects": subjects,
            "counters": self.counters,
            "inbound": self.inbound.counters,
        }));
    }
}
