//! A symbol's bars at one point of its feed, handed from one node to
//! another: a NATS edge takes them from the source for its first bars
//! subscriber of a symbol (`nats::bars`), so that its bars continue the
//! source's instead of starting with the edge's first tick.
//!
//! A [`BarSeed`] holds, for every timeframe, the retained final bars
//! (oldest first) and the open bar with the sums behind its `vwap`, and
//! the aggregator's state of the symbol ([`SymbolBars`]), all as of the
//! tick `seq`: the source's router takes it between two routed batches,
//! so it includes every tick up to `seq` and none after. The edge seeds
//! its store and aggregator with it and from then on aggregates only
//! ticks above `seq` (`router/bars.rs`).

use super::{Bar, OpenBar, Timeframe};
use serde::{Deserialize, Serialize};

/// What the aggregator holds of one symbol besides its time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SymbolBars {
    /// `vol` of the symbol's last tick; `None` before its first.
    pub vol: Option<u64>,
    /// The symbol has traded (its mid no longer makes bars).
    pub traded: bool,
    /// The open bar of each timeframe, by `Timeframe::index`.
    pub open: [Option<OpenBar>; 5],
}

/// One symbol's bars as of its tick `seq`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BarSeed {
    /// The last tick the bars include (0: none yet).
    pub seq: u64,
    /// The source's bar time when taken.
    pub now: u64,
    /// The source's time is the data's (`xt`, a replay), not the clock's.
    pub replay: bool,
    pub state: SymbolBars,
    /// Retained final bars of each timeframe, oldest first.
    pub finals: [Vec<Bar>; 5],
}

impl BarSeed {
    /// Bars in it.
    pub fn bar_count(&self) -> usize {
        self.finals.iter().map(Vec::len).sum::<usize>() + self.state.open.iter().flatten().count()
    }

    /// What `/api/bars` answers from it, as `BarStore::history` does from
    /// a store: up to `limit` bars of `tf` starting in `[from, to)`.
    pub fn history(
        &self,
        tf: Timeframe,
        from: u64,
        to: u64,
        limit: usize,
    ) -> (Vec<Bar>, Option<Bar>) {
        let open = self.state.open[tf.index()].map(|o| o.bar);
        super::store::window(
            self.finals[tf.index()].iter().copied(),
            open,
            from,
            to,
            limit,
        )
    }
}
