//! The wire shape of every request, as types, for the JSON Schemas of the
//! machine-readable contract (`contract`, `docs/asyncapi.json`).
//!
//! `parse.rs` reads requests field by field, so that each refusal names
//! its field; these types say what a correct request looks like. The
//! contract test (`tests/contract.rs`) checks the two agree: every request
//! example of `docs/protocol.md` validates against these schemas and
//! parses.

use super::{MAX_DEPTH, SYMBOL_PATTERN, Timeframe};
use schemars::JsonSchema;
use std::collections::BTreeMap;

/// A symbol name, or `*` (every symbol, including later ones).
const SYMBOL_OR_WILDCARD: &str = r"^(\*|[A-Za-z0-9._/:^=-]{1,32})$";

/// Every request a client sends, one JSON object per frame, named by `op`.
#[derive(JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RequestShape {
    /// Start streaming symbols: a snapshot of each, then every update; or,
    /// with `"channel":"bars"`, their bars in the timeframe `tf`; or, with
    /// `"channel":"book"`, their books of `depth` levels.
    Subscribe {
        /// Any unsigned integer, echoed in the replies.
        id: Option<u64>,
        /// `ticks` (the default), `bars` or `book`.
        channel: Option<Channel>,
        /// With `"channel":"bars"` (and only then, where it is required):
        /// the bars' timeframe.
        tf: Option<Timeframe>,
        /// With `"channel":"book"`: levels per side, at most the server's
        /// `--depth` (the default).
        #[schemars(range(min = 1, max = MAX_DEPTH))]
        depth: Option<usize>,
        /// The symbols; `["*"]` is every symbol, including later ones
        /// (ticks only: bars and books take named symbols).
        #[schemars(length(min = 1), inner(pattern(SYMBOL_OR_WILDCARD)))]
        symbols: Vec<String>,
        /// At most this many events per second per symbol, conflated in
        /// between; absent or 0: as fast as the client reads.
        #[schemars(range(min = 0.0))]
        max_hz: Option<f64>,
        /// Send a snapshot of each symbol first (default `true`).
        snapshot: Option<bool>,
        /// Send only the fields that changed (default `false`).
        deltas: Option<bool>,
        /// The `epoch` of `hello` on the connection the seqs of `from`
        /// came from.
        epoch: Option<String>,
        /// Resume: per symbol, the last seq held.
        from: Option<BTreeMap<SymbolKey, u64>>,
    },
    /// Stop streaming symbols; `["*"]` stops everything. With
    /// `"channel":"bars"` and `tf`: stop those bars; with
    /// `"channel":"book"`: stop those books.
    Unsubscribe {
        /// Any unsigned integer, echoed in the ack.
        id: Option<u64>,
        /// `ticks` (the default), `bars` or `book`.
        channel: Option<Channel>,
        /// With `"channel":"bars"`: the timeframe subscribed.
        tf: Option<Timeframe>,
        /// The symbols to stop.
        #[schemars(length(min = 1), inner(pattern(SYMBOL_OR_WILDCARD)))]
        symbols: Vec<String>,
    },
    /// List the known symbols.
    Symbols {
        /// Any unsigned integer, echoed in the reply.
        id: Option<u64>,
    },
    /// Application-level ping, answered by `pong`.
    Ping {
        /// Any unsigned integer, echoed in the pong.
        id: Option<u64>,
        /// Any value, echoed unchanged.
        t: Option<serde_json::Value>,
    },
}

/// A symbol name as a map key (`from`): 1 to 32 characters from
/// `A-Z a-z 0-9 . - _ / : ^ =`.
#[derive(JsonSchema, PartialEq, Eq, PartialOrd, Ord)]
#[schemars(transparent)]
pub struct SymbolKey(#[schemars(pattern(SYMBOL_PATTERN))] pub String);

/// What a subscription streams.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Ticks: market updates.
    Ticks,
    /// Bars: OHLCV aggregates in one timeframe.
    Bars,
    /// Book: the top price levels of each symbol's order book.
    Book,
}
