//! The edge's subscription management: interest changes from the router
//! become NATS subscriptions (one per wanted symbol, or one to every tick
//! subject while someone holds `*`; one per symbol whose books are wanted),
//! and newly wanted symbols get their last values read from the broker's
//! stream, their bars from the source (`bars.rs`) and their last books
//! (`books.rs`), before `Ready` is sent.

use super::{EdgeState, Incoming};
use crate::nats::store::FETCH_TIMEOUT;
use crate::nats::subject::{self, ALL_TICKS};
use crate::protocol::{Tick, WILDCARD};
use crate::router::Interest;
use crate::source::SourceMsg;
use async_nats::connection::State;
use futures_util::StreamExt;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Snapshot reads in flight at once.
const PARALLEL_READS: usize = 16;

impl EdgeState {
    /// Applies interest changes, then routes the latest values of the newly
    /// wanted symbols, hands over the source's bars of those whose bars
    /// are wanted, and answers with `Ready`.
    pub(super) async fn apply(&mut self, changes: Vec<Interest>) -> bool {
        let mut ready = Vec::new();
        let mut read = Vec::new();
        let mut read_all = false;
        let mut seed = Vec::new();
        let mut read_books = Vec::new();
        for change in changes {
            match change {
                Interest::Wanted(name) if &*name == WILDCARD => {
                    self.wildcard = true;
                    self.subscribe(name.clone(), ALL_TICKS.into()).await;
                    read_all = true;
                    ready.push(name);
                }
                Interest::Unwanted(name) if &*name == WILDCARD => {
                    self.wildcard = false;
                    for symbol in self.wanted.clone() {
                        self.subscribe(symbol.clone(), subject::for_symbol(&symbol))
                            .await;
                    }
                    self.subscriptions.remove(&name);
                }
                Interest::Wanted(name) => {
                    self.want(&name, &mut read).await;
                    ready.push(name);
                }
                Interest::WantedBars(name) => {
                    self.want(&name, &mut read).await;
                    seed.push(name.clone());
                    ready.push(name);
                }
                Interest::Unwanted(name) => {
                    self.wanted.remove(&name);
                    if !self.wildcard {
                        self.subscriptions.remove(&name);
                    }
                }
                Interest::WantedBook(name) => {
                    self.want_book(&name, &mut read_books).await;
                    ready.push(name);
                }
                Interest::UnwantedBook(name) => {
                    self.book_subscriptions.remove(&name);
                }
            }
        }
        if self.wildcard {
            self.subscriptions.retain(|key, _| &**key == WILDCARD);
        }
        let latest = self.read_latest(read_all, read).await;
        let seeds = self.fetch_bars(seed, &latest).await;
        let books = self.read_books(read_books).await;
        let open = self.forward(latest).await
            && (seeds.is_empty() || self.out.send(SourceMsg::Bars(seeds)).await.is_ok())
            && self.forward_books(books).await
            && self.out.send(SourceMsg::Ready(ready)).await.is_ok();
        self.report();
        open
    }

    /// Delivers `name` from now on, unless it is already: subscribes, and
    /// adds it to the snapshots to `read` (unless `*` brings it anyway).
    async fn want(&mut self, name: &Arc<str>, read: &mut Vec<Arc<str>>) {
        if self.wanted.insert(name.clone()) && !self.wildcard {
            self.subscribe(name.clone(), subject::for_symbol(name))
                .await;
            read.push(name.clone());
        }
    }

    /// Subscribes to `subject` under `key` unless already subscribed.
    async fn subscribe(&mut self, key: Arc<str>, subject: String) {
        if self.subscriptions.contains_key(&key) {
            return;
        }
        if let Some((messages, cancel)) = open(&self.client, subject).await {
            self.incoming.push(messages);
            self.subscriptions.insert(key, cancel);
        }
    }

    /// The latest stored values of `names` (or of everything). Empty while
    /// the broker is away: a subscribe then gets no snapshot rather than
    /// wait, and the values arrive with the next update or the reconnect.
    pub(super) async fn read_latest(&mut self, all: bool, names: Vec<Arc<str>>) -> Vec<Tick> {
        if (!all && names.is_empty()) || self.client.connection_state() != State::Connected {
            return Vec::new();
        }
        // A round trip first, so the broker has the new subscriptions: an
        // update it takes after this comes live, not only in the read.
        let _ = tokio::time::timeout(FETCH_TIMEOUT, self.client.flush()).await;
        let read = if all {
            self.store
                .all_last()
                .await
                .map(|ticks| ticks.into_iter().map(Ok).collect())
        } else {
            let store = &self.store;
            Ok(futures_util::stream::iter(names)
                .map(|name| async move { store.last(&name).await })
                .buffer_unordered(PARALLEL_READS)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .filter_map(Result::transpose)
                .collect::<Vec<_>>())
        };
        let mut ticks = Vec::new();
        match read {
            Ok(results) => {
                for result in results {
                    match result {
                        Ok(tick) => ticks.push(tick),
                        Err(e) => tracing::warn!("reading a last value: {e}"),
                    }
                }
            }
            Err(e) => tracing::warn!("reading last values: {e}"),
        }
        self.counters.snapshots_read += ticks.len() as u64;
        ticks
    }
}

/// Subscribes to `subject`: its messages, which end (and unsubscribe) when
/// the returned sender is dropped. `None`, logged, if the client refused.
pub(super) async fn open(
    client: &async_nats::Client,
    subject: String,
) -> Option<(Incoming, oneshot::Sender<()>)> {
    match client.subscribe(subject.clone()).await {
        Ok(subscriber) => {
            let (cancel, cancelled) = oneshot::channel();
            Some((subscriber.take_until(cancelled), cancel))
        }
        Err(e) => {
            tracing::warn!("subscribing to {subject}: {e}");
            None
        }
    }
}
