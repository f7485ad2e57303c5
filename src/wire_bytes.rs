//! The wire bytes of ticks, pinned: JSON and MessagePack events, frames
//! carrying a re-encoded merge count, and the NATS payload, compared byte
//! for byte with encodings captured before the market fields moved into one
//! type. A change here is a protocol change (`docs/protocol.md`,
//! `docs/scaling.md`), never a refactoring.

use crate::codec::{EncodedTick, Encoding, FrameBuilder, encode_event};
use crate::nats::payload::{decode_tick, encode_tick};
use crate::protocol::{Event, Quote, Tick};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every market field set.
fn full() -> Tick {
    let quote = Quote {
        px: Some(189.25),
        sz: Some(100),
        bid: Some(189.24),
        ask: Some(189.26),
        bsz: Some(300),
        asz: Some(200),
        vol: 1_234_567,
    };
    Tick::new("AAPL".into(), 42, 1_764_000_000_123_456_789, quote)
}

/// A trade and no quote.
fn trade_only() -> Tick {
    let quote = Quote {
        px: Some(412.5),
        sz: Some(300),
        vol: 900,
        ..Quote::default()
    };
    Tick::new("BRK.B".into(), 7, 1_700_000_000_000_000_001, quote)
}

/// A quote and no trade yet.
fn quote_only() -> Tick {
    let quote = Quote {
        bid: Some(1.0825),
        ask: Some(1.0826),
        bsz: Some(1_000_000),
        asz: Some(2_500_000),
        ..Quote::default()
    };
    Tick::new("EUR/USD".into(), 1, 5, quote)
}

/// A replayed tick: with its original time `xt`.
fn with_xt() -> Tick {
    let full = full();
    let quote = Quote {
        px: Some(0.0001),
        vol: 0,
        ..full.quote
    };
    Tick {
        xt: Some(1_700_000_000_000_000_000),
        ..Tick::new("MSFT".into(), 65_536, full.ts, quote)
    }
}

fn snapshot() -> Tick {
    Tick {
        snap: Some(true),
        ..full()
    }
}

const FULL_JSON: &str = r#"{"ev":"tick","sym":"AAPL","seq":42,"ts":1764000000123456789,"px":189.25,"sz":100,"bid":189.24,"ask":189.26,"bsz":300,"asz":200,"vol":1234567,"n":0}"#;
const FULL_MSGPACK: &str = "8ca26576a47469636ba373796da44141504ca37365712aa27473cf187afca76f25cd15a27078cb4067a80000000000a2737a64a3626964cb4067a7ae147ae148a361736bcb4067a851eb851eb8a362737acd012ca361737accc8a3766f6cce0012d687a16e00";

#[test]
fn tick_events_encode_to_the_same_bytes_as_before() {
    let cases = [
        (full(), FULL_JSON, FULL_MSGPACK),
        (
            trade_only(),
            r#"{"ev":"tick","sym":"BRK.B","seq":7,"ts":1700000000000000001,"px":412.5,"sz":300,"vol":900,"n":0}"#,
            "88a26576a47469636ba373796da542524b2e42a373657107a27473cf17979cfe362a0001a27078cb4079c80000000000a2737acd012ca3766f6ccd0384a16e00",
        ),
        (
            quote_only(),
            r#"{"ev":"tick","sym":"EUR/USD","seq":1,"ts":5,"bid":1.0825,"ask":1.0826,"bsz":1000000,"asz":2500000,"vol":0,"n":0}"#,
            "8aa26576a47469636ba373796da74555522f555344a373657101a2747305a3626964cb3ff151eb851eb852a361736bcb3ff1525460aa64c3a362737ace000f4240a361737ace002625a0a3766f6c00a16e00",
        ),
        (
            with_xt(),
            r#"{"ev":"tick","sym":"MSFT","seq":65536,"ts":1764000000123456789,"xt":1700000000000000000,"px":0.0001,"sz":100,"bid":189.24,"ask":189.26,"bsz":300,"asz":200,"vol":0,"n":0}"#,
            "8da26576a47469636ba373796da44d534654a3736571ce00010000a27473cf187afca76f25cd15a27874cf17979cfe362a0000a27078cb3f1a36e2eb1c432da2737a64a3626964cb4067a7ae147ae148a361736bcb4067a851eb851eb8a362737acd012ca361737accc8a3766f6c00a16e00",
        ),
        (
            snapshot(),
            r#"{"ev":"tick","sym":"AAPL","seq":42,"ts":1764000000123456789,"px":189.25,"sz":100,"bid":189.24,"ask":189.26,"bsz":300,"asz":200,"vol":1234567,"snap":true,"n":0}"#,
            "8da26576a47469636ba373796da44141504ca37365712aa27473cf187afca76f25cd15a27078cb4067a80000000000a2737a64a3626964cb4067a7ae147ae148a361736bcb4067a851eb851eb8a362737acd012ca361737accc8a3766f6cce0012d687a4736e6170c3a16e00",
        ),
    ];
    for (tick, json, msgpack) in cases {
        let event = Event::Tick(tick.clone());
        let text = String::from_utf8(encode_event(Encoding::Json, &event)).unwrap();
        assert_eq!(text, json, "{tick:?}");
        let bytes = encode_event(Encoding::Msgpack, &event);
        assert_eq!(hex(&bytes), msgpack, "{tick:?}");
        assert_eq!(serde_json::from_str::<Event>(json).unwrap(), event);
        assert_eq!(rmp_serde::from_slice::<Event>(&bytes).unwrap(), event);
    }
}

#[test]
fn frames_with_a_patched_merge_count_keep_their_bytes() {
    let shared = EncodedTick::new(full());
    assert_eq!(shared.bytes(Encoding::Json).as_ref(), FULL_JSON.as_bytes());
    assert_eq!(hex(shared.bytes(Encoding::Msgpack)), FULL_MSGPACK);
    let prefix = &FULL_MSGPACK[..FULL_MSGPACK.len() - 2];
    for (n, msgpack_n) in [(3u32, "03"), (200, "ccc8"), (70_000, "ce00011170")] {
        let mut frame = FrameBuilder::new(Encoding::Json);
        shared.write_to(&mut frame, n);
        let json = format!("[{}{n}}}]", &FULL_JSON[..FULL_JSON.len() - 2]);
        assert_eq!(String::from_utf8(frame.finish().to_vec()).unwrap(), json);
        let mut frame = FrameBuilder::new(Encoding::Msgpack);
        shared.write_to(&mut frame, n);
        assert_eq!(hex(&frame.finish()), format!("91{prefix}{msgpack_n}"));
    }
}

#[test]
fn nats_payloads_encode_to_the_same_bytes_as_before() {
    let cases = [
        (
            full(),
            "9b012acf187afca76f25cd15c0cb4067a8000000000064cb4067a7ae147ae148cb4067a851eb851eb8cd012cccc8ce0012d687",
        ),
        (
            trade_only(),
            "9b0107cf17979cfe362a0001c0cb4079c80000000000cd012cc0c0c0c0cd0384",
        ),
        (
            with_xt(),
            "9b01ce00010000cf187afca76f25cd15cf17979cfe362a0000cb3f1a36e2eb1c432d64cb4067a7ae147ae148cb4067a851eb851eb8cd012cccc800",
        ),
    ];
    for (tick, expected) in cases {
        let bytes = encode_tick(&tick);
        assert_eq!(hex(&bytes), expected, "{tick:?}");
        assert_eq!(decode_tick(tick.sym.clone(), &bytes).unwrap(), tick);
    }
}
