//! The bytes of NATS messages: one tick per message, and the universe.
//!
//! A tick is a compact MessagePack array (rmp-serde's default, positional
//! shape, about 60 bytes) led by a format version:
//! `[1, seq, ts, xt, px, sz, bid, ask, bsz, asz, vol]`, absent fields as
//! nil. The symbol is not repeated: it is the subject (`subject.rs`). `n`
//! and `snap` are per-client and never cross the broker. The universe is a
//! MessagePack array of symbol names. Written by the publisher, read by the
//! edge and by the publisher at start (to continue `seq`).

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
    let Quote {
        px,
        sz,
        bid,
        ask,
        bsz,
        asz,
        vol,
    } = tick.quote;
    let wire: WireTick = (
        FORMAT, tick.seq, tick.ts, tick.xt, px, sz, bid, ask, bsz, asz, vol,
    );
    Bytes::from(rmp_serde::to_vec(&wire).expect("a tick always encodes"))
}

/// Decodes a tick of `sym`.
pub fn decode_tick(sym: Arc<str>, bytes: &[u8]) -> Result<Tick, PayloadError> {
    let (format, seq, ts, xt, px, sz, bid, ask, bsz, asz, vol): WireTick =
        rmp_serde::from_slice(bytes)?;
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
    fn the_universe_round_trips() {
        let names: Vec<Arc<str>> = vec!["AAPL".into(), "BRK.B".into()];
        assert_eq!(decode_universe(&encode_universe(&names)).unwrap(), names);
    }
}
