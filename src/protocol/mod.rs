//! Protocol v1 message types: what clients send (requests) and what the
//! server sends (events), independent of their encoding (see `codec`).
//!
//! The wire contract is `docs/protocol.md`.
//! Requests are parsed once (`parse.rs`) into a validated [`Request`];
//! anything that does not fit becomes a [`RequestError`] carrying the
//! protocol error code and the request id when one could be read.

mod bar;
mod book;
mod delta;
mod parse;
mod request_shape;

pub use bar::{Bar, Timeframe};
pub use book::{BookEvent, BookUpdate, DEFAULT_DEPTH, Depth, Level, MAX_DEPTH};
pub use delta::{Changed, DeltaOf, TickDelta, TickOnWire};
pub use parse::{parse_json_request, parse_msgpack_request};
pub use request_shape::{RequestShape, SymbolKey};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Protocol version announced in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest accepted symbol name, in bytes.
pub const MAX_SYMBOL_LEN: usize = 32;
/// The subscription that means "every symbol, including later ones".
pub const WILDCARD: &str = "*";
/// [`is_valid_symbol`] as a regular expression, for the JSON Schemas.
pub const SYMBOL_PATTERN: &str = r"^[A-Za-z0-9._/:^=-]{1,32}$";

/// The market state of one symbol after an update: the last trade, the
/// top of the book and the day's volume. The one place the market fields
/// are declared; the tick, the NATS payload, the feed formats, the
/// generator and the replayer all carry this type, so a new field is added
/// here, in its encodings and in `docs/protocol.md`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Quote {
    /// Price of the last trade, carried forward until the next one; absent
    /// before the symbol's first trade.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schemars(with = "f64")]
    pub px: Option<f64>,
    /// Size of the last trade in shares, carried forward with `px`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schemars(with = "u64")]
    pub sz: Option<u64>,
    /// Best bid price; absent while the bid side is empty.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schemars(with = "f64")]
    pub bid: Option<f64>,
    /// Best ask price; absent while the ask side is empty.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schemars(with = "f64")]
    pub ask: Option<f64>,
    /// Shares offered at the best bid.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schemars(with = "u64")]
    pub bsz: Option<u64>,
    /// Shares offered at the best ask.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schemars(with = "u64")]
    pub asz: Option<u64>,
    /// Shares traded so far (cumulative; never falls on a connection).
    pub vol: u64,
}

/// One market update as clients see it. Field order is the wire order (the
/// quote's fields sit between `xt` and `snap`); `n` stays last so that
/// `codec` can re-encode the merge count without re-serialising the whole
/// tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    description = "A full market update: every field of the symbol's state after it. \
    For two consecutive non-snapshot ticks A then B of a symbol, B.seq - A.seq - 1 == B.n."
)]
pub struct Tick {
    /// The symbol this update is about.
    #[schemars(pattern(SYMBOL_PATTERN))]
    pub sym: Arc<str>,
    /// Per-symbol sequence number: +1 per source update, never backwards.
    pub seq: u64,
    /// When the source emitted the update, ns since the Unix epoch. Above
    /// 2^53: JavaScript's `JSON.parse` rounds it (`docs/protocol.md`).
    pub ts: u64,
    /// Original event time of a replayed update, ns since the Unix epoch
    /// (above 2^53, like `ts`); absent for live and simulated data.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schemars(with = "u64")]
    pub xt: Option<u64>,
    /// The market state after the update, flattened into the tick.
    #[serde(flatten)]
    pub quote: Quote,
    /// `true` on the snapshot sent in reply to a subscribe; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schemars(with = "bool")]
    pub snap: Option<bool>,
    /// Updates of this symbol merged into this one for this client
    /// (`seq - previous seq - 1`); 0 for a client that keeps up.
    pub n: u32,
}

impl Tick {
    /// A live update of `sym`, numbered `seq` and emitted at `ts`: no
    /// original time, not a snapshot, nothing merged.
    pub fn new(sym: Arc<str>, seq: u64, ts: u64, quote: Quote) -> Tick {
        Tick {
            sym,
            seq,
            ts,
            xt: None,
            quote,
            snap: None,
            n: 0,
        }
    }

    /// For tests and benchmarks: the `seq`th update of `sym`, emitted now,
    /// with a trade of 100 at 189.25, a full quote and `vol = 100 * seq`.
    /// Change what a test needs with struct update syntax.
    pub fn test(sym: &str, seq: u64) -> Tick {
        Tick::new(
            sym.into(),
            seq,
            crate::clock::now_ns(),
            Quote {
                px: Some(189.25),
                sz: Some(100),
                bid: Some(189.24),
                ask: Some(189.26),
                bsz: Some(300),
                asz: Some(200),
                vol: seq * 100,
            },
        )
    }
}

/// Protocol error codes (`docs/protocol.md`, "ack and error").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not a JSON object, a missing or mistyped field.
    BadRequest,
    /// An `op` the server does not know.
    UnknownOp,
    /// Symbols that do not exist or are not legal names (listed in the
    /// error's `symbols`).
    UnknownSymbol,
    /// Over `--max-subscriptions` for this connection.
    TooManySubscriptions,
    /// Over the connection's request rate.
    RateLimited,
    /// A request over `--max-request-bytes`.
    TooLarge,
    /// No valid token (HTTP only: the handshake is refused with 401).
    Unauthorized,
}

/// Every server event. Serialised as an object whose `ev` field names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Event {
    /// The first frame of every connection.
    Hello {
        /// Protocol version ([`PROTOCOL_VERSION`]).
        v: u32,
        /// Server name and version, e.g. `tickfeed 0.1.0`.
        server: String,
        /// This connection's id, as in the server's logs.
        session: String,
        /// The encoding of every later frame: `json` or `msgpack`.
        encoding: String,
        /// Seconds between the server's WebSocket pings.
        heartbeat_s: u64,
        /// Symbols known when the client connected.
        symbols: usize,
        /// The seq space of every tick on this connection: a client may
        /// resume after a seq it holds (`subscribe` with `from`) only in
        /// the same epoch.
        epoch: String,
    },
    /// A request was carried out (in part, when an `error` follows).
    Ack {
        /// The request's `id`, when it had one.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        #[schemars(with = "u64")]
        id: Option<u64>,
        /// The request's `op`.
        op: String,
        /// For a subscribe or unsubscribe of bars or books: `"bars"` or
        /// `"book"`.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        #[schemars(with = "String")]
        channel: Option<String>,
        /// For a subscribe or unsubscribe of bars: their timeframe.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        #[schemars(with = "Timeframe")]
        tf: Option<Timeframe>,
        /// For a subscribe of books: the levels per side its book events
        /// carry (the `depth` asked, or the server's `--depth`).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        #[schemars(with = "u64")]
        depth: Option<usize>,
        /// For a subscribe or unsubscribe: the symbols it applied to.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        #[schemars(with = "Vec<String>")]
        symbols: Option<Vec<String>>,
        /// For a subscribe with `from`: per symbol, the updates after the
        /// client's seq that can no longer be sent (0: every one follows),
        /// or `null` where the epoch did not match and a snapshot follows.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        #[schemars(with = "BTreeMap<String, Option<u64>>")]
        resumed: Option<BTreeMap<String, Option<u64>>>,
    },
    /// A request, or part of it, was refused.
    Error {
        /// The request's `id`, when it could be read.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        #[schemars(with = "u64")]
        id: Option<u64>,
        /// Why, as a stable code.
        code: ErrorCode,
        /// Why, in words, naming the field or limit.
        msg: String,
        /// The symbols refused, for `unknown_symbol`.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        #[schemars(with = "Vec<String>")]
        symbols: Option<Vec<String>>,
    },
    /// Reply to `symbols`: every known symbol.
    Symbols {
        /// The request's `id`, when it had one.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        #[schemars(with = "u64")]
        id: Option<u64>,
        /// Every symbol the server knows, in table order.
        symbols: Vec<String>,
    },
    /// Reply to `ping`.
    Pong {
        /// The request's `id`, when it had one.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        #[schemars(with = "u64")]
        id: Option<u64>,
        /// The request's `t`, echoed unchanged.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        t: Option<serde_json::Value>,
    },
    /// A market update (or a snapshot, with `snap`), full or, on a
    /// subscription with `deltas`, a field delta (`d: 1`).
    Tick(#[schemars(with = "TickOnWire")] Tick),
    /// A bar of one symbol in one timeframe: the open one as it grows
    /// (`final: false`, or the snapshot with `snap`), or a closed one
    /// (`final: true`), sent once.
    Bar(BarEvent),
    /// A symbol's top book levels after a change (or the snapshot, with
    /// `snap`), conflated like ticks: `n` counts the changes merged.
    Book(BookEvent),
}

/// A tick event as `/api/symbols` and `/api/ticks` serve it: always full,
/// never a delta. The same bytes as [`Event::Tick`].
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "ev", rename_all = "snake_case")]
#[schemars(description = "A tick event as /api serves it: always full, never a delta.")]
pub enum FullTickEvent {
    /// A market update with every field.
    Tick(Tick),
}

/// A bar event as `/api/bars` serves it. The same bytes as [`Event::Bar`].
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "ev", rename_all = "snake_case")]
#[schemars(description = "A bar event as /api/bars serves it.")]
pub enum HistoryBarEvent {
    /// A closed bar (`final: true`) or the open one (`final: false`).
    Bar(BarEvent),
}

/// A book event as `/api/book` serves it. The same shape as [`Event::Book`].
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "ev", rename_all = "snake_case")]
#[schemars(description = "A book event as /api/book serves it.")]
pub enum CurrentBookEvent {
    /// The symbol's current top levels.
    Book(BookEvent),
}

/// The `bar` event: a [`Bar`] with its symbol and timeframe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "SymbolBar")] // "BarEvent" names the event, with its `ev`
pub struct BarEvent {
    /// The symbol the bar is about.
    #[schemars(pattern(SYMBOL_PATTERN))]
    pub sym: Arc<str>,
    /// The bar's length.
    pub tf: Timeframe,
    /// The bar's start and values, flattened into the event.
    #[serde(flatten)]
    pub bar: Bar,
    /// `true` on the snapshot sent in reply to a subscribe; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schemars(with = "bool")]
    pub snap: Option<bool>,
    /// The bar is closed and will not change.
    #[serde(rename = "final")]
    pub is_final: bool,
}

/// Which symbols a subscribe or unsubscribe names.
#[derive(Debug, Clone, PartialEq)]
pub enum SymbolSet {
    /// `["*"]`: everything, including symbols that appear later.
    All,
    /// Explicit, valid names (duplicates removed, request order kept).
    Named(Vec<String>),
}

/// A subscribe's `from` (the last seq the client holds, per symbol) and
/// the `epoch` those seqs belong to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResumeFrom {
    /// The epoch of the client's seqs; `None` when the request had none.
    pub epoch: Option<String>,
    /// Last seq held per symbol (valid names only).
    pub last_seq: BTreeMap<String, u64>,
}

/// A validated client request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Subscribe {
        id: Option<u64>,
        symbols: SymbolSet,
        /// Invalid names from the request, reported back as `unknown_symbol`.
        invalid: Vec<String>,
        max_hz: f64,
        snapshot: bool,
        /// Field deltas where the client holds the previous seq.
        deltas: bool,
        /// `from` and `epoch`: where the client's previous connection
        /// stopped, to resume rather than take snapshots.
        resume: Option<ResumeFrom>,
    },
    Unsubscribe {
        id: Option<u64>,
        symbols: SymbolSet,
    },
    /// `subscribe` with `"channel":"bars"`: bars of named symbols in one
    /// timeframe.
    SubscribeBars {
        id: Option<u64>,
        tf: Timeframe,
        /// Valid names, duplicates removed.
        symbols: Vec<String>,
        /// Invalid names from the request, reported back as `unknown_symbol`.
        invalid: Vec<String>,
        max_hz: f64,
        snapshot: bool,
    },
    /// `unsubscribe` with `"channel":"bars"`.
    UnsubscribeBars {
        id: Option<u64>,
        tf: Timeframe,
        symbols: Vec<String>,
    },
    /// `subscribe` with `"channel":"book"`: books of named symbols.
    SubscribeBook {
        id: Option<u64>,
        /// Valid names, duplicates removed.
        symbols: Vec<String>,
        /// Invalid names from the request, reported back as `unknown_symbol`.
        invalid: Vec<String>,
        /// Levels per side, 1 to `MAX_DEPTH`; `None`: the server's
        /// `--depth` (which also bounds it, checked by the session).
        depth: Option<usize>,
        max_hz: f64,
        snapshot: bool,
    },
    /// `unsubscribe` with `"channel":"book"`.
    UnsubscribeBook {
        id: Option<u64>,
        symbols: Vec<String>,
    },
    Symbols {
        id: Option<u64>,
    },
    Ping {
        id: Option<u64>,
        t: Option<serde_json::Value>,
    },
}

impl Request {
    /// The request's `id`, echoed in its replies.
    pub fn id(&self) -> Option<u64> {
        match self {
            Request::Subscribe { id, .. }
            | Request::Unsubscribe { id, .. }
            | Request::SubscribeBars { id, .. }
            | Request::UnsubscribeBars { id, .. }
            | Request::SubscribeBook { id, .. }
            | Request::UnsubscribeBook { id, .. }
            | Request::Symbols { id }
            | Request::Ping { id, .. } => *id,
        }
    }
}

/// Why a request was refused; becomes an `error` event.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code:?}: {msg}")]
pub struct RequestError {
    pub id: Option<u64>,
    pub code: ErrorCode,
    pub msg: String,
}

impl RequestError {
    pub fn new(id: Option<u64>, code: ErrorCode, msg: impl Into<String>) -> Self {
        Self {
            id,
            code,
            msg: msg.into(),
        }
    }

    pub fn into_event(self) -> Event {
        Event::Error {
            id: self.id,
            code: self.code,
            msg: self.msg,
            symbols: None,
        }
    }
}

/// True when `name` is a legal symbol: 1 to 32 characters from
/// `A-Z a-z 0-9 . - _ / : ^ =`.
pub fn is_valid_symbol(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SYMBOL_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_/:^=".contains(&b))
}
