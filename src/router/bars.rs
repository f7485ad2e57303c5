//! The router's part in bars: every routed tick goes through the
//! [`Aggregator`] into the [`BarStore`], on the router task, so bars see
//! exactly the ticks clients see, in routing order.
//!
//! The time base is the source's: `xt` on a replay, `ts` otherwise. A
//! live source's bars also close on the clock: the router calls
//! [`BarRouting::on_clock`] every [`CLOCK_PERIOD`], which moves the
//! aggregator's time to now minus [`CLOCK_GRACE`] (a tick stamped just
//! before a boundary is still on its way; on a NATS edge
//! [`EDGE_CLOCK_GRACE`], which covers the broker hop), so a bar closes
//! within that grace plus `CLOCK_PERIOD` of its end even when nothing
//! trades. A
//! replay closes bars when `xt` passes their end, and its last bars when
//! the source ends; a replay's next `--loop` pass (its `xt` goes back)
//! closes what is open and starts over.
//!
//! It also holds who subscribes to which bars: a bar that changed or
//! closed marks the bar's bit in each subscriber's mailbox
//! (`conflate::bar_key`), which never blocks or allocates.
//!
//! Through NATS: a source's router hands out a symbol's bars as of its
//! latest tick ([`BarRouting::export`]); an edge's router takes them
//! ([`BarRouting::seed`]) and from then on aggregates only that symbol's
//! ticks with a higher `seq` (the edge subscribed before it asked, so the
//! ticks it holds may include some the seed already has).

use super::{ClientId, Subscriber};
use crate::bars::{Aggregator, Bar, BarSeed, BarSink, BarStore, Timeframe};
use crate::clock::now_ns;
use crate::conflate::{Mailbox, bar_key};
use crate::protocol::Tick;
use crate::symbols::SymbolId;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// How often the router moves a live source's bar time to the clock.
pub(super) const CLOCK_PERIOD: Duration = Duration::from_millis(20);
/// How far behind the clock a live source's bar time stays.
const CLOCK_GRACE: Duration = Duration::from_millis(10);
/// The same on a NATS edge, whose ticks come one broker hop after the
/// source routed them: a trade the source counted in a bar must reach the
/// edge before the edge closes that bar, or the two bars differ. 40 ms
/// covers the hop's p99 in most runs measured under load (5 to 33 ms,
/// `docs/scaling.md`, "Sizing figures") and keeps an edge's bars closing
/// within 100 ms of their end.
const EDGE_CLOCK_GRACE: Duration = Duration::from_millis(40);

/// Aggregation state and the store it fills (router only).
#[derive(Debug)]
pub(super) struct BarRouting {
    aggregator: Aggregator,
    store: Arc<BarStore>,
    /// The source stamps `xt` (a replay): its time is the data's, not the
    /// clock's.
    replay: bool,
    /// Subscribers by symbol id, then timeframe.
    subscribers: Vec<[Vec<Subscriber>; 5]>,
    /// What each client holds, by `bar_key`, to leave in O(subscriptions).
    held: HashMap<ClientId, HashSet<u32>>,
    /// By symbol id, the `seq` of the last tick a seed included (a NATS
    /// edge's): ticks up to it are in the bars already.
    seeded_through: Vec<u64>,
    /// How far behind the clock a live source's bar time stays here.
    grace: Duration,
}

/// Writes the aggregator's bars into the store and marks subscribers.
struct Publish<'a> {
    store: &'a BarStore,
    subscribers: &'a [[Vec<Subscriber>; 5]],
}

impl Publish<'_> {
    fn mark(&self, id: SymbolId, tf: Timeframe) {
        if let Some(subs) = self.subscribers.get(id as usize) {
            for sub in &subs[tf.index()] {
                sub.mailbox.mark_bar(bar_key(id, tf));
            }
        }
    }
}

impl BarSink for Publish<'_> {
    fn partial(&mut self, id: SymbolId, tf: Timeframe, bar: &Bar) {
        self.store.set_partial(id, tf, bar);
        self.mark(id, tf);
    }

    fn closed(&mut self, id: SymbolId, tf: Timeframe, bar: &Bar) {
        self.store.push_final(id, tf, bar);
        self.mark(id, tf);
    }
}

impl BarRouting {
    pub(super) fn new(store: Arc<BarStore>) -> BarRouting {
        BarRouting {
            aggregator: Aggregator::new(),
            store,
            replay: false,
            subscribers: Vec::new(),
            held: HashMap::new(),
            seeded_through: Vec::new(),
            grace: CLOCK_GRACE,
        }
    }

    /// Trails the clock by [`EDGE_CLOCK_GRACE`] instead of
    /// [`CLOCK_GRACE`]: the source is a NATS edge's.
    pub(super) fn behind_a_broker(&mut self) {
        self.grace = EDGE_CLOCK_GRACE;
    }

    /// Registers `client` for the bars of `id` in `tf`.
    pub(super) fn subscribe(
        &mut self,
        client: ClientId,
        mailbox: &Arc<Mailbox>,
        id: SymbolId,
        tf: Timeframe,
    ) {
        if self.held.entry(client).or_default().insert(bar_key(id, tf)) {
            if self.subscribers.len() <= id as usize {
                self.subscribers
                    .resize_with(id as usize + 1, Default::default);
            }
            self.subscribers[id as usize][tf.index()].push(Subscriber {
                client,
                mailbox: mailbox.clone(),
            });
        }
    }

    /// Removes `client`'s subscription to the bars of `id` in `tf`, if held.
    pub(super) fn unsubscribe(&mut self, client: ClientId, id: SymbolId, tf: Timeframe) {
        if let Some(held) = self.held.get_mut(&client)
            && held.remove(&bar_key(id, tf))
        {
            self.subscribers[id as usize][tf.index()].retain(|s| s.client != client);
        }
    }

    /// Forgets every bars subscription of a client that left; returns the
    /// symbols it held.
    pub(super) fn leave(&mut self, client: ClientId) -> Vec<SymbolId> {
        let mut ids = Vec::new();
        for key in self.held.remove(&client).into_iter().flatten() {
            let (id, tf) = crate::conflate::from_bar_key(key);
            self.subscribers[id as usize][tf.index()].retain(|s| s.client != client);
            ids.push(id);
        }
        ids
    }

    /// Someone subscribes to bars of `id` (in any timeframe).
    pub(super) fn holds(&self, id: SymbolId) -> bool {
        self.subscribers
            .get(id as usize)
            .is_some_and(|tfs| tfs.iter().any(|subs| !subs.is_empty()))
    }

    /// The symbol's bars as of its tick `seq` (a NATS source's answer to
    /// an edge), but for its finals, which the caller reads from the
    /// store outside the router task: the finals closed so far per
    /// timeframe are returned beside it.
    pub(super) fn export(&self, id: SymbolId, seq: u64) -> (BarSeed, [u64; 5]) {
        let seed = BarSeed {
            seq,
            now: self.aggregator.now(),
            replay: self.replay,
            state: self.aggregator.state_of(id),
            finals: Default::default(),
        };
        (
            seed,
            Timeframe::ALL.map(|tf| self.store.read(id, tf).finals),
        )
    }

    /// Continues the bars of `id` from `seed` (a NATS edge's first bars
    /// subscriber of the symbol, whose subscribe waits for this: no client
    /// holds an index into these bars yet).
    pub(super) fn seed(&mut self, id: SymbolId, seed: &BarSeed) {
        self.aggregator.forget(id);
        let mut sink = Publish {
            store: &self.store,
            subscribers: &self.subscribers,
        };
        if seed.replay && !self.replay {
            // The clock moved this node's time so far; the data's starts here.
            self.replay = true;
            self.aggregator.restart(seed.now, &mut sink);
        }
        for tf in Timeframe::ALL {
            self.store.seed(id, tf, &seed.finals[tf.index()]);
        }
        self.aggregator.seed(id, seed.now, seed.state, &mut sink);
        if self.seeded_through.len() <= id as usize {
            self.seeded_through.resize(id as usize + 1, 0);
        }
        self.seeded_through[id as usize] = seed.seq;
        self.store.set_current(id, true);
    }

    /// The symbol is no longer served here (a NATS edge): its bars stop
    /// following the source's.
    pub(super) fn released(&mut self, id: SymbolId) {
        self.store.set_current(id, false);
    }

    /// Seqs started again (a new epoch): no seed bounds them any more.
    pub(super) fn forget_seeds(&mut self) {
        self.seeded_through.clear();
    }

    /// Bars subscriptions held (for tests and stats).
    pub(super) fn subscription_count(&self) -> usize {
        self.held.values().map(HashSet::len).sum()
    }

    pub(super) fn store(&self) -> &Arc<BarStore> {
        &self.store
    }

    /// One routed tick of symbol `id`.
    pub(super) fn tick(&mut self, id: SymbolId, tick: &Tick) {
        if self
            .seeded_through
            .get(id as usize)
            .is_some_and(|&through| tick.seq <= through)
        {
            return;
        }
        let mut sink = Publish {
            store: &self.store,
            subscribers: &self.subscribers,
        };
        let time = match tick.xt {
            Some(xt) => {
                self.replay = true;
                if xt < self.aggregator.now() {
                    self.aggregator.restart(xt, &mut sink);
                }
                xt
            }
            None => tick.ts,
        };
        self.aggregator.tick(id, time, &tick.quote, &mut sink);
    }

    /// The clock moved: a live source's bars that ended close.
    pub(super) fn on_clock(&mut self) {
        if !self.replay {
            let now = now_ns().saturating_sub(self.grace.as_nanos() as u64);
            let mut sink = Publish {
                store: &self.store,
                subscribers: &self.subscribers,
            };
            self.aggregator.advance(now, &mut sink);
        }
    }

    /// The source ended: every open bar is final.
    pub(super) fn source_ended(&mut self) {
        let mut sink = Publish {
            store: &self.store,
            subscribers: &self.subscribers,
        };
        self.aggregator.close_all(&mut sink);
    }
}
