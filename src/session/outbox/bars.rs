//! A client's bars subscriptions: per symbol and timeframe, the index of
//! the next final bar to send and the `max_hz` pacing of the open bar.
//!
//! When the router marks a bar (`conflate::bar_key`), the session sends,
//! from the store, every final bar after the last one it sent, in order,
//! each once with `final: true` (never merged: they are read by index, as
//! long as the store retains them), then the open bar with `final: false`,
//! conflated to its latest state and paced by `max_hz`. So the state per
//! subscription is one index and a pacing slot, whatever the client's
//! speed.

use super::{Delivery, Emitter, Outbox, take_slot};
use crate::bars::BarStore;
use crate::conflate::{Mailbox, bar_key, from_bar_key};
use crate::protocol::{Bar, BarEvent, Event, Timeframe};
use crate::symbols::{SymbolId, SymbolTable};
use std::time::Duration;
use tokio::time::Instant;

/// Delivery state of one symbol's bars in one timeframe.
#[derive(Debug)]
pub(super) struct BarSubscription {
    /// Index of the next final bar to send.
    next_final: u64,
    interval: Option<Duration>,
    next_due: Instant,
}

impl Outbox {
    /// Records granted bars subscriptions (`(symbol, index of its first
    /// final)` from the router); appends the open bars as snapshots to
    /// `reply` when asked. A re-subscribe keeps its place in the finals.
    pub fn add_bars(
        &mut self,
        granted: &[(SymbolId, u64)],
        tf: Timeframe,
        delivery: Delivery,
        snapshot: bool,
        reply: &mut Vec<Event>,
        now: Instant,
    ) -> u64 {
        let mut snapshots = 0;
        for &(id, first) in granted {
            let sub = self
                .bars
                .entry(bar_key(id, tf))
                .or_insert_with(|| BarSubscription {
                    next_final: first,
                    interval: None,
                    next_due: now,
                });
            sub.interval = delivery.interval();
            let Some(store) = &self.bar_store else {
                continue;
            };
            if !snapshot {
                continue;
            }
            // Bars that closed since the router granted the subscription
            // go first, so the snapshot is the bar open now and never
            // overtakes a final.
            push_finals(store, &self.table, id, tf, sub, |event| reply.push(event));
            match store.partial_at(id, tf) {
                Some((index, bar)) if index == sub.next_final => {
                    reply.push(bar_event(&self.table, id, tf, bar, Some(true), false));
                    snapshots += 1;
                }
                _ => {}
            }
        }
        snapshots
    }

    pub fn remove_bars(&mut self, ids: &[SymbolId], tf: Timeframe) {
        for &id in ids {
            self.bars.remove(&bar_key(id, tf));
        }
    }

    /// Bars subscriptions held.
    pub fn bar_subscription_count(&self) -> usize {
        self.bars.len()
    }
}

/// Sends what changed in the marked bars: finals in order, then the open
/// bar when its `max_hz` slot is due (re-marked otherwise).
pub(super) fn collect_bars(
    outbox: &mut BarsView<'_>,
    mailbox: &Mailbox,
    now: Instant,
    emit: &mut Emitter<'_>,
) {
    let Some(store) = outbox.store else {
        return;
    };
    mailbox.drain_bars(|key| {
        let Some(sub) = outbox.subs.get_mut(&key) else {
            return;
        };
        let (id, tf) = from_bar_key(key);
        push_finals(store, outbox.table, id, tf, sub, |event| emit.event(&event));
        let Some((index, bar)) = store.partial_at(id, tf) else {
            return;
        };
        if index != sub.next_final {
            return;
        }
        if let Some(interval) = sub.interval
            && !take_slot(interval, &mut sub.next_due, now, outbox.deferred_until)
        {
            mailbox.defer_bar(key);
            return;
        }
        emit.event(&bar_event(outbox.table, id, tf, bar, None, false));
    });
}

/// Passes every retained final bar from `sub.next_final` on to `push`,
/// oldest first, each with `final: true`, and moves `next_final` past them.
fn push_finals(
    store: &BarStore,
    table: &SymbolTable,
    id: SymbolId,
    tf: Timeframe,
    sub: &mut BarSubscription,
    mut push: impl FnMut(Event),
) {
    let read = store.read(id, tf);
    for index in sub.next_final.max(read.oldest)..read.finals {
        if let Some(bar) = store.final_bar(id, tf, index) {
            push(bar_event(table, id, tf, bar, None, true));
        }
    }
    sub.next_final = sub.next_final.max(read.finals);
}

/// The parts of an [`Outbox`] bars delivery reads and writes, borrowed
/// beside its frame.
pub(super) struct BarsView<'a> {
    pub table: &'a SymbolTable,
    pub store: Option<&'a BarStore>,
    pub subs: &'a mut std::collections::HashMap<u32, BarSubscription>,
    pub deferred_until: &'a mut Option<Instant>,
}

fn bar_event(
    table: &SymbolTable,
    id: SymbolId,
    tf: Timeframe,
    bar: Bar,
    snap: Option<bool>,
    is_final: bool,
) -> Event {
    Event::Bar(BarEvent {
        sym: table.cell(id).name().cloned().unwrap_or_default(),
        tf,
        bar,
        snap,
        is_final,
    })
}

impl Emitter<'_> {
    /// Appends a bar event, splitting at the size cap.
    fn event(&mut self, event: &Event) {
        self.frame.push_event(event);
        self.out.events += 1;
        if self.frame.byte_len() >= self.max_frame_bytes {
            self.frames.push(self.frame.finish());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bars::{DEFAULT_BARS_MEMORY, Retention};
    use crate::codec::Encoding;
    use crate::protocol::Bar;
    use std::sync::Arc;

    fn bar(t: u64) -> Bar {
        Bar {
            t,
            o: t as f64,
            ..Bar::default()
        }
    }

    /// `(t, snap, final)` of each bar event.
    fn shapes(events: &[Event]) -> Vec<(u64, Option<bool>, bool)> {
        events
            .iter()
            .map(|e| match e {
                Event::Bar(b) => (b.bar.t, b.snap, b.is_final),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_bar_that_closes_between_grant_and_subscribe_comes_before_the_snapshot() {
        let table = Arc::new(SymbolTable::new(4));
        table.push("AAPL".into()).unwrap();
        let store = Arc::new(BarStore::new(4, Retention::default(), DEFAULT_BARS_MEMORY));
        let mut outbox = Outbox::new(table, Encoding::Json, 1 << 20, Duration::from_secs(1))
            .with_bars(store.clone());
        let tf = Timeframe::S1;
        store.set_partial(0, tf, &bar(0));
        // The router grants with no final closed yet; then bar 0 closes
        // and bar 1 opens before the session records the subscription.
        let granted = [(0, store.read(0, tf).finals)];
        store.push_final(0, tf, &bar(0));
        store.set_partial(0, tf, &bar(1));
        let mut reply = Vec::new();
        let delivery = Delivery {
            max_hz: 0.0,
            deltas: false,
        };
        let snapshots = outbox.add_bars(&granted, tf, delivery, true, &mut reply, Instant::now());
        assert_eq!(snapshots, 1);
        assert_eq!(
            shapes(&reply),
            vec![(0, None, true), (1, Some(true), false)],
            "the final of bar 0, then bar 1 as the snapshot"
        );
    }
}
