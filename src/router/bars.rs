//! The router's part in bars: every routed tick goes through the
//! [`Aggregator`] into the [`BarStore`], on the router task, so bars see
//! exactly the ticks clients see, in routing order.
//!
//! The time base is the source's: `xt` on a replay, `ts` otherwise. A
//! live source's bars also close on the clock: the router calls
//! [`BarRouting::on_clock`] every [`CLOCK_PERIOD`], which moves the
//! aggregator's time to now minus [`CLOCK_GRACE`] (a tick stamped just
//! before a boundary is still on its way), so a bar closes within
//! `CLOCK_GRACE + CLOCK_PERIOD` of its end even when nothing trades. A
//! replay closes bars when `xt` passes their end, and its last bars when
//! the source ends; a replay's next `--loop` pass (its `xt` goes back)
//! closes what is open and starts over.

use crate::bars::{Aggregator, Bar, BarSink, BarStore, Timeframe};
use crate::clock::now_ns;
use crate::protocol::Tick;
use crate::symbols::SymbolId;
use std::sync::Arc;
use std::time::Duration;

/// How often the router moves a live source's bar time to the clock.
pub(super) const CLOCK_PERIOD: Duration = Duration::from_millis(20);
/// How far behind the clock a live source's bar time stays.
const CLOCK_GRACE: Duration = Duration::from_millis(10);

/// Aggregation state and the store it fills (router only).
#[derive(Debug)]
pub(super) struct BarRouting {
    aggregator: Aggregator,
    store: Arc<BarStore>,
    /// The source stamps `xt` (a replay): its time is the data's, not the
    /// clock's.
    replay: bool,
}

/// Writes the aggregator's bars into the store.
struct Publish<'a> {
    store: &'a BarStore,
}

impl BarSink for Publish<'_> {
    fn partial(&mut self, id: SymbolId, tf: Timeframe, bar: &Bar) {
        self.store.set_partial(id, tf, bar);
    }

    fn closed(&mut self, id: SymbolId, tf: Timeframe, bar: &Bar) {
        self.store.push_final(id, tf, bar);
    }
}

impl BarRouting {
    pub(super) fn new(store: Arc<BarStore>) -> BarRouting {
        BarRouting {
            aggregator: Aggregator::new(),
            store,
            replay: false,
        }
    }

    pub(super) fn store(&self) -> &Arc<BarStore> {
        &self.store
    }

    /// One routed tick of symbol `id`.
    pub(super) fn tick(&mut self, id: SymbolId, tick: &Tick) {
        let mut sink = Publish { store: &self.store };
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
            let now = now_ns().saturating_sub(CLOCK_GRACE.as_nanos() as u64);
            let mut sink = Publish { store: &self.store };
            self.aggregator.advance(now, &mut sink);
        }
    }

    /// The source ended: every open bar is final.
    pub(super) fn source_ended(&mut self) {
        let mut sink = Publish { store: &self.store };
        self.aggregator.close_all(&mut sink);
    }
}
