//! The aggregation rule, pure: ticks in, bars out, no clock and no I/O.
//!
//! A tick is a trade when the symbol's `vol` rose: its `px` at a size of
//! the rise (the shares traded since the previous tick, which is `sz` for
//! one trade). A symbol's first tick counts as a trade when its `vol` is
//! its `sz` (the feed starts there); otherwise its `vol` is where counting
//! starts. A symbol that has not traded yet takes its mid price from
//! each tick with both a bid and an ask, at no volume; its first trade
//! replaces any open mid-price bar, and from then on only trades count.
//!
//! Time is the source's: each tick's time base (`xt` on a replay, `ts`
//! otherwise) moves the aggregator's clock forward, and when the clock
//! passes the end of a timeframe's interval every open bar of that
//! timeframe closes ([`BarSink::closed`]). Because every open bar of a
//! timeframe lies in the interval of the clock, closing is a walk over the
//! open ones only. A live source also moves the clock on a timer
//! ([`Aggregator::advance`]) so bars close when nothing trades. A tick
//! whose time is before the clock (late) counts in the current interval.

use super::{Bar, SymbolBars, Timeframe};
use crate::protocol::Quote;
use crate::symbols::SymbolId;

/// Where bars go: the server's store, or the offline command's CSV.
pub trait BarSink {
    /// The open bar of `id` in `tf` after a tick changed it.
    fn partial(&mut self, id: SymbolId, tf: Timeframe, bar: &Bar);
    /// A bar that will not change again.
    fn closed(&mut self, id: SymbolId, tf: Timeframe, bar: &Bar);
}

/// What one tick adds to a bar.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sample {
    Trade { px: f64, size: u64 },
    Mid(f64),
}

/// An open bar and the sums behind its `vwap` (also what a NATS edge is
/// seeded with, `seed.rs`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OpenBar {
    pub bar: Bar,
    /// Sum of price x weight (size for trades, 1 for mids).
    pub price_weight: f64,
    pub weight: f64,
}

impl OpenBar {
    fn new(t: u64, sample: Sample) -> OpenBar {
        let (px, size, weight) = sample.parts();
        OpenBar {
            bar: Bar {
                t,
                o: px,
                h: px,
                l: px,
                c: px,
                v: size,
                trades: u64::from(size > 0),
                vwap: px,
            },
            price_weight: px * weight,
            weight,
        }
    }

    fn add(&mut self, sample: Sample) {
        let (px, size, weight) = sample.parts();
        let bar = &mut self.bar;
        bar.h = bar.h.max(px);
        bar.l = bar.l.min(px);
        bar.c = px;
        bar.v += size;
        bar.trades += u64::from(size > 0);
        self.price_weight += px * weight;
        self.weight += weight;
        bar.vwap = self.price_weight / self.weight;
    }
}

impl Sample {
    /// Price, shares and the weight in `vwap`.
    fn parts(self) -> (f64, u64, f64) {
        match self {
            Sample::Trade { px, size } => (px, size, size as f64),
            Sample::Mid(mid) => (mid, 0, 1.0),
        }
    }
}

/// The `vol` before a symbol's first tick: 0 when that tick's trade is
/// all the volume so far (the feed starts with it), else the tick's own
/// `vol` (joining a feed mid-way, as an edge does: what traded before is
/// not in any bar here).
fn first_tick_baseline(quote: &Quote) -> u64 {
    match quote.sz {
        Some(sz) if quote.px.is_some() && quote.vol == sz => 0,
        _ if quote.px.is_none() => 0,
        _ => quote.vol,
    }
}

/// One symbol's state.
#[derive(Debug, Default)]
struct SymbolState {
    /// `vol` of the symbol's previous tick; `None` before the first.
    vol: Option<u64>,
    traded: bool,
    open: [Option<OpenBar>; 5],
}

/// Bars of every symbol in every timeframe.
#[derive(Debug, Default)]
pub struct Aggregator {
    symbols: Vec<SymbolState>,
    /// Per timeframe, the symbols with an open bar.
    open: [Vec<SymbolId>; 5],
    /// The source's time: the latest time base seen or advanced to.
    now: u64,
}

impl Aggregator {
    pub fn new() -> Aggregator {
        Aggregator::default()
    }

    /// The source's time so far.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// One tick of symbol `id` at source time `time`.
    pub fn tick(&mut self, id: SymbolId, time: u64, quote: &Quote, sink: &mut impl BarSink) {
        self.advance(time, sink);
        let index = id as usize;
        if self.symbols.len() <= index {
            self.symbols.resize_with(index + 1, SymbolState::default);
        }
        let state = &mut self.symbols[index];
        let before = state.vol.unwrap_or_else(|| first_tick_baseline(quote));
        // Open mid-price bars give way to the symbol's first trade.
        let first_trade = !state.traded && quote.px.is_some() && quote.vol > before;
        let sample = match (quote.px, quote.bid, quote.ask) {
            (Some(px), ..) if quote.vol > before => {
                state.traded = true;
                Some(Sample::Trade {
                    px,
                    size: quote.vol - before,
                })
            }
            (_, Some(bid), Some(ask)) if !state.traded => Some(Sample::Mid((bid + ask) / 2.0)),
            _ => None,
        };
        state.vol = Some(before.max(quote.vol));
        let Some(sample) = sample else {
            return;
        };
        for tf in Timeframe::ALL {
            let slot = &mut state.open[tf.index()];
            match slot {
                Some(open) if first_trade => *open = OpenBar::new(open.bar.t, sample),
                Some(open) => open.add(sample),
                None => {
                    *slot = Some(OpenBar::new(tf.start(self.now), sample));
                    self.open[tf.index()].push(id);
                }
            }
            let bar = slot.as_ref().map(|o| o.bar).expect("just set");
            sink.partial(id, tf, &bar);
        }
    }

    /// Moves the source's time to `time` (never back), closing every bar
    /// whose interval ended at or before it.
    pub fn advance(&mut self, time: u64, sink: &mut impl BarSink) {
        if time <= self.now {
            return;
        }
        for tf in Timeframe::ALL {
            if tf.start(time) != tf.start(self.now) {
                self.close(tf, sink);
            }
        }
        self.now = time;
    }

    /// Closes every open bar (the feed ended, or a replay starts a new
    /// pass), leaving the time where it is.
    pub fn close_all(&mut self, sink: &mut impl BarSink) {
        for tf in Timeframe::ALL {
            self.close(tf, sink);
        }
    }

    /// Closes every open bar and restarts the time at `time`, which may be
    /// earlier (a replay's next pass).
    pub fn restart(&mut self, time: u64, sink: &mut impl BarSink) {
        self.close_all(sink);
        self.now = time;
    }

    /// The state of `id`'s bars: its last `vol`, whether it traded, and
    /// its open bars (what a NATS source hands an edge, `seed.rs`).
    pub fn state_of(&self, id: SymbolId) -> SymbolBars {
        let state = self.symbols.get(id as usize);
        SymbolBars {
            vol: state.and_then(|s| s.vol),
            traded: state.is_some_and(|s| s.traded),
            open: state.map_or([None; 5], |s| s.open),
        }
    }

    /// Replaces `id`'s state with `bars`, taken from a source whose time
    /// was `now` (a NATS edge starting to serve the symbol). The time moves
    /// to `now` if that is later; an open bar whose interval this
    /// aggregator's time has already passed closes at once, the others
    /// stay open and are published to `sink`.
    pub fn seed(&mut self, id: SymbolId, now: u64, bars: SymbolBars, sink: &mut impl BarSink) {
        self.forget(id);
        self.advance(now, sink);
        let state = &mut self.symbols[id as usize];
        state.vol = bars.vol;
        state.traded = bars.traded;
        for tf in Timeframe::ALL {
            match bars.open[tf.index()] {
                Some(open) if open.bar.t < tf.start(self.now) => sink.closed(id, tf, &open.bar),
                Some(open) => {
                    state.open[tf.index()] = Some(open);
                    self.open[tf.index()].push(id);
                    sink.partial(id, tf, &open.bar);
                }
                None => {}
            }
        }
    }

    /// Drops `id`'s state and open bars unpublished, as if it had never
    /// ticked (its bars are about to be replaced).
    pub fn forget(&mut self, id: SymbolId) {
        let index = id as usize;
        if self.symbols.len() <= index {
            self.symbols.resize_with(index + 1, SymbolState::default);
        }
        self.symbols[index] = SymbolState::default();
        for open in &mut self.open {
            open.retain(|&other| other != id);
        }
    }

    fn close(&mut self, tf: Timeframe, sink: &mut impl BarSink) {
        for id in self.open[tf.index()].drain(..) {
            if let Some(open) = self.symbols[id as usize].open[tf.index()].take() {
                sink.closed(id, tf, &open.bar);
            }
        }
    }
}

#[cfg(test)]
mod tests;
