//! The bytes of NATS messages: one tick per message, and the universe.
//!
//! A tick is a compact MessagePack array (rmp-serde's default, positional
//! shape, about 60 bytes) led by a format version:
//! `[1, seq, ts, xt, px, sz, bid, ask, bsz, asz, vol]`, absent fields as
//! nil. The symbol is not repeated: it is the subject (`subject.rs`). `n`
//! and `snap` are per-client and never cross the broker. The universe is a
//! MessagePack array of symbol names. Written by the publisher, read by the
//! edge and by the publisher at start (to continue `seq`).
//!
//! The epoch is its text. A history request (edge to source) is
//! `[1, epoch, after, until, limit, newest]` (`until` nil for "the
//! latest"); its reply is an array of ticks as above, oldest first, empty
//! when the source holds none in that range or numbers in another epoch.

use crate::history::{HistoryRange, Keep};
use crate::protocol::{Quote, Tick};
use bytes::Bytes;
use std::sync::Arc;

/// Version of the tick layout; a reader refuses others rather than guess.
const FORMAT: u8 = 1;

/// A payload that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("not a tickfeed payload: {0}")]
    Malformed(#[from] rmp_serde::decode::Error),
    #[error(
        "tick format {0} is not supported (this build reads format {FORMAT}); upgrade this node"
    )]
    Format(u8),
    #[error("book format {0} is not supported (this build reads format 1); upgrade this node")]
    BookFormat(u8),
    #[error("not an epoch: {0:?}")]
    Epoch(String),
}

/// The wire shape: `(format, seq, ts, xt, quote fields in order)`, an
/// array whose positions are the format (absent fields are nil, never
/// skipped).
type WireTick = (
    u8,
    u64,
    u64,
    Option<u64>,
    Option<f64>,
    Option<u64>,
    Option<f64>,
    Option<f64>,
    Option<u64>,
    Option<u64>,
    u64,
);

/// Encodes a tick (without its symbol, which is the subject).
pub fn encode_tick(tick: &Tick) -> Bytes {
    Bytes::from(rmp_serde::to_vec(&wire_tick(tick)).expect("a tick always encodes"))
}

fn wire_tick(tick: &Tick) -> WireTick {
    let Quote {
        px,
        sz,
        bid,
        ask,
        bsz,
        asz,
        vol,
    } = tick.quote;
    (
        FORMAT, tick.seq, tick.ts, tick.xt, px, sz, bid, ask, bsz, asz, vol,
    )
}

/// Decodes a tick of `sym`.
pub fn decode_tick(sym: Arc<str>, bytes: &[u8]) -> Result<Tick, PayloadError> {
    tick_of(sym, rmp_serde::from_slice(bytes)?)
}

fn tick_of(sym: Arc<str>, wire: WireTick) -> Result<Tick, PayloadError> {
    let (format, seq, ts, xt, px, sz, bid, ask, bsz, asz, vol) = wire;
    if format != FORMAT {
        return Err(PayloadError::Format(format));
    }
    let quote = Quote {
        px,
        sz,
        bid,
        ask,
        bsz,
        asz,
        vol,
    };
    Ok(Tick {
        xt,
        ..Tick::new(sym, seq, ts, quote)
    })
}

pub fn encode_universe(symbols: &[Arc<str>]) -> Bytes {
    Bytes::from(rmp_serde::to_vec(symbols).expect("names always encode"))
}

pub fn decode_universe(bytes: &[u8]) -> Result<Vec<Arc<str>>, PayloadError> {
    Ok(rmp_serde::from_slice(bytes)?)
}

/// Longest epoch read from the broker; ours are about 20 characters.
const MAX_EPOCH_LEN: usize = 64;

pub fn encode_epoch(epoch: &str) -> Bytes {
    Bytes::copy_from_slice(epoch.as_bytes())
}

/// An epoch as stored: short printable ASCII, since it goes into `hello`
/// and an HTTP header as it is.
pub fn decode_epoch(bytes: &[u8]) -> Result<String, PayloadError> {
    let text = String::from_utf8_lossy(bytes);
    let printable = |c: char| c.is_ascii_graphic();
    if text.is_empty() || text.len() > MAX_EPOCH_LEN || !text.chars().all(printable) {
        return Err(PayloadError::Epoch(text.chars().take(80).collect()));
    }
    Ok(text.into_owned())
}

/// A history request's wire shape (see the module header).
type WireRequest = (u8, String, u64, Option<u64>, u32, bool);

/// A request for the retained updates `range` selects, in `epoch`.
pub fn encode_history_request(epoch: &str, range: &HistoryRange) -> Bytes {
    let limit = u32::try_from(range.limit).unwrap_or(u32::MAX);
    let newest = range.keep == Keep::Newest;
    let wire: WireRequest = (
        FORMAT,
        epoch.into(),
        range.after,
        range.until,
        limit,
        newest,
    );
    Bytes::from(rmp_serde::to_vec(&wire).expect("a request always encodes"))
}

pub fn decode_history_request(bytes: &[u8]) -> Result<(String, HistoryRange), PayloadError> {
    let (format, epoch, after, until, limit, newest): WireRequest = rmp_serde::from_slice(bytes)?;
    if format != FORMAT {
        return Err(PayloadError::Format(format));
    }
    let keep = if newest { Keep::Newest } else { Keep::Oldest };
    let range = HistoryRange {
        after,
        until,
        limit: limit as usize,
        keep,
    };
    Ok((epoch, range))
}

/// A history reply: `ticks` (all of one symbol), oldest first.
pub fn encode_ticks<'t>(ticks: impl IntoIterator<Item = &'t Tick>) -> Bytes {
    let wire: Vec<WireTick> = ticks.into_iter().map(wire_tick).collect();
    Bytes::from(rmp_serde::to_vec(&wire).expect("ticks always encode"))
}

pub fn decode_ticks(sym: &Arc<str>, bytes: &[u8]) -> Result<Vec<Tick>, PayloadError> {
    let wire: Vec<WireTick> = rmp_serde::from_slice(bytes)?;
    wire.into_iter().map(|w| tick_of(sym.clone(), w)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick() -> Tick {
        let mut tick = Tick::test("AAPL", 42);
        tick.ts = 1_764_000_000_123_456_789;
        tick.xt = Some(1_700_000_000_000_000_000);
        tick.quote.vol = 1_234_567;
        tick.quote.bsz = None;
        tick
    }

    #[test]
    fn a_tick_survives_the_broker_unchanged_and_small() {
        let bytes = encode_tick(&tick());
        assert!(bytes.len() < 80, "{} bytes", bytes.len());
        assert_eq!(decode_tick("AAPL".into(), &bytes).unwrap(), tick());
    }

    #[test]
    fn garbage_and_future_formats_are_refused_with_a_reason() {
        assert!(matches!(
            decode_tick("A".into(), b"\xc1"),
            Err(PayloadError::Malformed(_))
        ));
        let mut future = encode_tick(&tick()).to_vec();
        future[1] = 9;
        let err = decode_tick("A".into(), &future).unwrap_err();
        assert!(err.to_string().contains("format 9"), "{err}");
    }

    #[test]
    fn history_requests_and_replies_round_trip() {
        let range = HistoryRange {
            after: 1542,
            until: Some(2000),
            limit: 1024,
            keep: Keep::Newest,
        };
        let request = encode_history_request("19ad1c2e3f0-9a3b4c5d", &range);
        assert_eq!(
            decode_history_request(&request).unwrap(),
            ("19ad1c2e3f0-9a3b4c5d".to_string(), range)
        );
        let ticks = vec![tick(), Tick::test("AAPL", 43)];
        let reply = encode_ticks(&ticks);
        assert!(reply.len() < 80 * ticks.len(), "{} bytes", reply.len());
        assert_eq!(decode_ticks(&"AAPL".into(), &reply).unwrap(), ticks);
        assert!(
            decode_ticks(&"AAPL".into(), &encode_ticks(&[]))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn an_epoch_is_short_printable_text() {
        let epoch = "19ad1c2e3f0-9a3b4c5d";
        assert_eq!(decode_epoch(&encode_epoch(epoch)).unwrap(), epoch);
        for bad in ["", "two words", "new\nline", &"x".repeat(65)] {
            assert!(decode_epoch(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_universe_round_trips() {
        let names: Vec<Arc<str>> = vec!["AAPL".into(), "BRK.B".into()];
        assert_eq!(decode_universe(&encode_universe(&names)).unwrap(), names);
    }
}
