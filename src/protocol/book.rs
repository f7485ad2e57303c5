//! Order book depth: the top price levels of one symbol's book, as a
//! source hands them to the router (`docs/protocol.md`, "Book"). Sources
//! build books (`feed::book` for LOBSTER, the generator's simulated book);
//! this is only their shape.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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
