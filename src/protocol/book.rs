//! Order book depth: the top price levels of one symbol's book, as a
//! source hands them to the router, and the `book` event clients get
//! (`docs/protocol.md`, "Book"). Sources build books (`feed::book` for
//! LOBSTER, the generator's simulated book); the router numbers and
//! stores them (`books`); this is only their shape.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use super::SYMBOL_PATTERN;

/// Levels per side a book may carry (`--depth` at most this).
pub const MAX_DEPTH: usize = 50;
/// Levels per side when `--depth` is not given.
pub const DEFAULT_DEPTH: usize = 10;

/// One price level: the price and the total size resting there, sent as
/// `[px, sz]`.
pub type Level = (f64, u64);

/// The top levels of a book, best price first on each side: bids falling,
/// asks rising. An empty side is an empty list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Depth {
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

/// A symbol's book after a source event (source to router). When the same
/// event also made a tick, the book's top level equals that tick's quote.
#[derive(Debug, Clone, PartialEq)]
pub struct BookUpdate {
    pub sym: Arc<str>,
    /// When the source emitted it, ns since the Unix epoch (the tick's `ts`
    /// when the event made a tick too).
    pub ts: u64,
    /// Original event time of a replayed update.
    pub xt: Option<u64>,
    /// At most `--depth` levels per side.
    pub depth: Depth,
}

impl Depth {
    /// The top `levels` of each side.
    pub fn truncated(&self, levels: usize) -> Depth {
        Depth {
            bids: self.bids[..self.bids.len().min(levels)].to_vec(),
            asks: self.asks[..self.asks.len().min(levels)].to_vec(),
        }
    }

    /// Levels on the longer side.
    pub fn levels(&self) -> usize {
        self.bids.len().max(self.asks.len())
    }
}

/// The `book` event: a symbol's top levels after a change, numbered in the
/// symbol's own book sequence. Field order is the wire order; `n` stays
/// last so that a merge count can be written after the shared bytes, as
/// for ticks (`codec`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    rename = "SymbolBook", // "BookEvent" names the event, with its `ev`
    description = "A symbol's top book levels, full state, best price first. For two \
    consecutive non-snapshot books A then B of a symbol, B.seq - A.seq - 1 == B.n."
)]
pub struct BookEvent {
    /// The symbol the book is about.
    #[schemars(pattern(SYMBOL_PATTERN))]
    pub sym: Arc<str>,
    /// The symbol's book sequence: +1 per change of its top `--depth`
    /// levels, never backwards; apart from the tick `seq`.
    pub seq: u64,
    /// When the source emitted the change, ns since the Unix epoch (the
    /// tick's `ts` when the same event made a tick).
    pub ts: u64,
    /// Original event time of a replayed change, ns since the Unix epoch;
    /// absent for live and simulated data.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schemars(with = "u64")]
    pub xt: Option<u64>,
    /// The levels, `[px, sz]` each, flattened into the event as `bids`
    /// (price falling) and `asks` (price rising).
    #[serde(flatten)]
    pub depth: Depth,
    /// `true` on the snapshot sent in reply to a subscribe; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schemars(with = "bool")]
    pub snap: Option<bool>,
    /// Book changes of this symbol merged into this one for this client
    /// (`seq - previous seq - 1`); 0 for a client that keeps up.
    pub n: u32,
}
