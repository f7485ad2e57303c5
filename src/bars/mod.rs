//! Bars: OHLCV aggregates of each symbol's trades per timeframe (`1s`,
//! `1m`, `5m`, `1h`, `1d`), live and as history. Their wire shape,
//! [`Timeframe`] and [`Bar`], is the protocol's (`protocol/bar.rs`).
//!
//! - `aggregate.rs`: [`Aggregator`], the pure rule that turns ticks into
//!   bars; the router drives it on every routed tick, `tickfeed feed bars`
//!   on every row of a file, so both give the same bars.
//! - `cell.rs`: the seqlock cell a bar is published in, so the router writes
//!   without locking or allocating and sessions read without locking.
//! - `store.rs`: [`BarStore`], each symbol's partial bar and the rings of
//!   its final bars per timeframe, within `--bars-keep` and
//!   `--bars-memory`; the router writes it, sessions and `/api/bars` read it.
//! - `seed.rs`: [`BarSeed`], one symbol's bars as of one tick, which a
//!   NATS source hands an edge whose clients want the symbol's bars.
//! - `offline.rs`: `tickfeed feed bars`, files to CSV.
//!
//! Imports `protocol`, `symbols` (ids) and `feed` (the offline command).

mod aggregate;
mod cell;
pub mod offline;
mod seed;
mod store;

pub use crate::protocol::{Bar, Timeframe};
pub use aggregate::{Aggregator, BarSink, OpenBar};
pub use seed::{BarSeed, SymbolBars};
pub use store::{BarStore, DEFAULT_BARS_MEMORY, DEFAULT_KEEP, Retention, SeriesRead};

/// Words of a [`Bar`] in a cell.
pub(crate) const BAR_WORDS: usize = 8;

/// A bar as the words of a cell, and back.
pub(crate) fn to_words(bar: Bar) -> [u64; BAR_WORDS] {
    let b = bar;
    [
        b.t,
        b.o.to_bits(),
        b.h.to_bits(),
        b.l.to_bits(),
        b.c.to_bits(),
        b.v,
        b.trades,
        b.vwap.to_bits(),
    ]
}

pub(crate) fn from_words(w: [u64; BAR_WORDS]) -> Bar {
    Bar {
        t: w[0],
        o: f64::from_bits(w[1]),
        h: f64::from_bits(w[2]),
        l: f64::from_bits(w[3]),
        c: f64::from_bits(w[4]),
        v: w[5],
        trades: w[6],
        vwap: f64::from_bits(w[7]),
    }
}
