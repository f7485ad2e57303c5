//! Reading server frames as fast as possible: only the fields the bench
//! needs (`ev`, `sym`, `seq`, `ts`, `n`, `snap`) are decoded, everything
//! else is skipped.
//!
//! JSON uses a hand-written field scan over the bytes (about 150 ns per
//! event against 360 ns for serde_json into a struct, measured on this project's machine), so
//! the client is not what saturates. It accepts any valid JSON object in
//! any field order, but does not validate what it skips. MessagePack is
//! scanned the same way, marker by marker (`rmp::Marker`): about half the
//! client CPU of rmp-serde into a borrowing struct, whose field matching
//! checked every key as UTF-8.
//!
//! A frame is an array of events (tickfeed) or a single event object (one
//! NATS message).

use rmp::Marker;
use std::borrow::Cow;

/// Kinds of event the bench tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Tick,
    Book,
    Ack,
    Error,
    Other,
}

impl Kind {
    fn of(ev: &str) -> Self {
        match ev {
            "tick" => Kind::Tick,
            "book" => Kind::Book,
            "ack" => Kind::Ack,
            "error" => Kind::Error,
            _ => Kind::Other,
        }
    }
}

/// The fields of one event the bench uses; absent numbers read as 0.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct EventView<'a> {
    pub kind: Kind,
    pub sym: Cow<'a, str>,
    pub seq: u64,
    pub ts: u64,
    pub n: u64,
    pub snap: bool,
}

/// A frame the bench cannot read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unreadable frame at byte {at}: {what}")]
pub(super) struct ParseError {
    pub at: usize,
    pub what: &'static str,
}

/// Calls `on_event` for every event of a JSON frame.
pub(super) fn json_events(
    frame: &[u8],
    mut on_event: impl FnMut(EventView<'_>),
) -> Result<(), ParseError> {
    let mut s = Scanner {
        bytes: frame,
        at: 0,
    };
    s.skip_ws();
    match s.peek() {
        Some(b'[') => {
            s.at += 1;
            s.skip_ws();
            if s.peek() == Some(b']') {
                return Ok(());
            }
            loop {
                on_event(s.object()?);
                s.skip_ws();
                match s.next_byte() {
                    Some(b',') => s.skip_ws(),
                    Some(b']') => return Ok(()),
                    _ => return Err(s.error("expected , or ] between events")),
                }
            }
        }
        Some(b'{') => {
            on_event(s.object()?);
            Ok(())
        }
        _ => Err(s.error("expected [ or {")),
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn error(&self, what: &'static str) -> ParseError {
        ParseError { at: self.at, what }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next_byte(&mut self) -> Option<u8> {
        let b = self.peek();
        self.at += 1;
        b
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), ParseError> {
        self.skip_ws();
        if self.next_byte() == Some(byte) {
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    /// One object, picking out the fields the bench needs.
    fn object(&mut self) -> Result<EventView<'a>, ParseError> {
        self.expect(b'{', "expected an event object")?;
        let mut view = EventView {
            kind: Kind::Other,
            sym: Cow::Borrowed(""),
            seq: 0,
            ts: 0,
            n: 0,
            snap: false,
        };
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(view);
        }
        loop {
            self.skip_ws();
            let (key, _) = self.string()?;
            self.expect(b':', "expected : after a key")?;
            self.skip_ws();
            match key {
                b"ev" => view.kind = Kind::of(&self.text()?),
                b"sym" => view.sym = self.text()?,
                b"seq" => view.seq = self.number()?,
                b"ts" => view.ts = self.number()?,
                b"n" => view.n = self.number()?,
                b"snap" => view.snap = self.boolean()?,
                _ => self.skip_value()?,
            }
            self.skip_ws();
            match self.next_byte() {
                Some(b',') => continue,
                Some(b'}') => return Ok(view),
                _ => return Err(self.error("expected , or } in an object")),
            }
        }
    }

    /// The raw bytes between the quotes, and whether they hold escapes.
    fn string(&mut self) -> Result<(&'a [u8], bool), ParseError> {
        if self.next_byte() != Some(b'"') {
            return Err(self.error("expected a string"));
        }
        let start = self.at;
        let mut escaped = false;
        loop {
            match self.next_byte() {
                Some(b'"') => return Ok((&self.bytes[start..self.at - 1], escaped)),
                Some(b'\\') => {
                    escaped = true;
                    self.at += 1;
                }
                Some(_) => {}
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    /// A string value, unescaped only when it has escapes.
    fn text(&mut self) -> Result<Cow<'a, str>, ParseError> {
        let start = self.at;
        let (raw, escaped) = self.string()?;
        if escaped {
            serde_json::from_slice::<String>(&self.bytes[start..self.at])
                .map(Cow::Owned)
                .map_err(|_| self.error("bad escape in a string"))
        } else {
            std::str::from_utf8(raw)
                .map(Cow::Borrowed)
                .map_err(|_| self.error("string is not UTF-8"))
        }
    }

    fn number(&mut self) -> Result<u64, ParseError> {
        let start = self.at;
        let mut value: u64 = 0;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(digit - b'0')))
                .ok_or_else(|| self.error("number too large for u64"))?;
            self.at += 1;
        }
        if self.at == start || matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return Err(self.error("expected an unsigned integer"));
        }
        Ok(value)
    }

    fn boolean(&mut self) -> Result<bool, ParseError> {
        let rest = &self.bytes[self.at..];
        if rest.starts_with(b"true") {
            self.at += 4;
            Ok(true)
        } else if rest.starts_with(b"false") {
            self.at += 5;
            Ok(false)
        } else {
            Err(self.error("expected true or false"))
        }
    }

    /// Skips any value: string, number, literal, or nested object/array.
    fn skip_value(&mut self) -> Result<(), ParseError> {
        match self.peek() {
            Some(b'"') => self.string().map(|_| ()),
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                loop {
                    match self.peek() {
                        Some(b'"') => {
                            self.string()?;
                            continue;
                        }
                        Some(b'{' | b'[') => depth += 1,
                        Some(b'}' | b']') => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                return Ok(());
                            }
                        }
                        Some(_) => {}
                        None => return Err(self.error("unterminated object or array")),
                    }
                    self.at += 1;
                }
            }
            Some(_) => {
                while !matches!(
                    self.peek(),
                    Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') | None
                ) {
                    self.at += 1;
                }
                Ok(())
            }
            None => Err(self.error("expected a value")),
        }
    }
}

/// Calls `on_event` for every event of a MessagePack frame.
pub(super) fn msgpack_events(
    frame: &[u8],
    mut on_event: impl FnMut(EventView<'_>),
) -> Result<(), ParseError> {
    let mut s = MsgpackScanner {
        bytes: frame,
        at: 0,
    };
    let events = match Marker::from_u8(s.peek()?) {
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => s.array_len()?,
        _ => {
            on_event(s.object()?);
            return s.end();
        }
    };
    for _ in 0..events {
        on_event(s.object()?);
    }
    s.end()
}

/// Deepest nesting of a skipped MessagePack value.
const MAX_DEPTH: usize = 32;

/// A cursor over MessagePack bytes that reads only what the bench needs:
/// keys are compared as bytes, unneeded values skipped by their length
/// (no UTF-8 check, no allocation).
struct MsgpackScanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> MsgpackScanner<'a> {
    fn error(&self, what: &'static str) -> ParseError {
        ParseError { at: self.at, what }
    }

    fn peek(&self) -> Result<u8, ParseError> {
        self.bytes
            .get(self.at)
            .copied()
            .ok_or_else(|| self.error("frame ends inside a value"))
    }

    fn marker(&mut self) -> Result<Marker, ParseError> {
        let byte = self.peek()?;
        self.at += 1;
        Ok(Marker::from_u8(byte))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], ParseError> {
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.error("frame ends inside a value"))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    /// A big-endian unsigned integer of `len` bytes.
    fn be(&mut self, len: usize) -> Result<u64, ParseError> {
        Ok(self
            .take(len)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn end(&self) -> Result<(), ParseError> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(self.error("bytes after the last event"))
        }
    }

    fn array_len(&mut self) -> Result<u64, ParseError> {
        match self.marker()? {
            Marker::FixArray(len) => Ok(u64::from(len)),
            Marker::Array16 => self.be(2),
            Marker::Array32 => self.be(4),
            _ => Err(self.error("expected an array of events")),
        }
    }

    fn str_bytes(&mut self) -> Result<&'a [u8], ParseError> {
        let len = match self.marker()? {
            Marker::FixStr(len) => u64::from(len),
            Marker::Str8 => self.be(1)?,
            Marker::Str16 => self.be(2)?,
            Marker::Str32 => self.be(4)?,
            _ => return Err(self.error("expected a string")),
        };
        self.take(len as usize)
    }

    fn text(&mut self) -> Result<Cow<'a, str>, ParseError> {
        let raw = self.str_bytes()?;
        std::str::from_utf8(raw)
            .map(Cow::Borrowed)
            .map_err(|_| self.error("string is not UTF-8"))
    }

    fn uint(&mut self) -> Result<u64, ParseError> {
        match self.marker()? {
            Marker::FixPos(v) => Ok(u64::from(v)),
            Marker::U8 => self.be(1),
            Marker::U16 => self.be(2),
            Marker::U32 => self.be(4),
            Marker::U64 => self.be(8),
            _ => Err(self.error("expected an unsigned integer")),
        }
    }

    fn boolean(&mut self) -> Result<bool, ParseError> {
        match self.marker()? {
            Marker::True => Ok(true),
            Marker::False => Ok(false),
            _ => Err(self.error("expected true or false")),
        }
    }

    /// One event (a map), picking out the fields the bench needs.
    fn object(&mut self) -> Result<EventView<'a>, ParseError> {
        let fields = match self.marker()? {
            Marker::FixMap(len) => u64::from(len),
            Marker::Map16 => self.be(2)?,
            Marker::Map32 => self.be(4)?,
            _ => return Err(self.error("expected an event map")),
        };
        let mut view = EventView {
            kind: Kind::Other,
            sym: Cow::Borrowed(""),
            seq: 0,
            ts: 0,
            n: 0,
            snap: false,
        };
        for _ in 0..fields {
            match self.str_bytes()? {
                b"ev" => view.kind = Kind::of(&self.text()?),
                b"sym" => view.sym = self.text()?,
                b"seq" => view.seq = self.uint()?,
                b"ts" => view.ts = self.uint()?,
                b"n" => view.n = self.uint()?,
                b"snap" => view.snap = self.boolean()?,
                _ => self.skip(0)?,
            }
        }
        Ok(view)
    }

    /// Steps over one value of any type, nested at most [`MAX_DEPTH`] deep.
    fn skip(&mut self, depth: usize) -> Result<(), ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error("values nested too deep"));
        }
        // Bytes to step over, or nested values to skip.
        let (bytes, values) = match self.marker()? {
            Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::True | Marker::False => {
                (0, 0)
            }
            Marker::U8 | Marker::I8 => (1, 0),
            Marker::U16 | Marker::I16 => (2, 0),
            Marker::U32 | Marker::I32 | Marker::F32 => (4, 0),
            Marker::U64 | Marker::I64 | Marker::F64 => (8, 0),
            Marker::FixStr(len) => (u64::from(len), 0),
            Marker::Str8 | Marker::Bin8 => (self.be(1)?, 0),
            Marker::Str16 | Marker::Bin16 => (self.be(2)?, 0),
            Marker::Str32 | Marker::Bin32 => (self.be(4)?, 0),
            Marker::FixExt1 => (2, 0),
            Marker::FixExt2 => (3, 0),
            Marker::FixExt4 => (5, 0),
            Marker::FixExt8 => (9, 0),
            Marker::FixExt16 => (17, 0),
            Marker::Ext8 => (self.be(1)? + 1, 0),
            Marker::Ext16 => (self.be(2)? + 1, 0),
            Marker::Ext32 => (self.be(4)? + 1, 0),
            Marker::FixArray(len) => (0, u64::from(len)),
            Marker::Array16 => (0, self.be(2)?),
            Marker::Array32 => (0, self.be(4)?),
            Marker::FixMap(len) => (0, 2 * u64::from(len)),
            Marker::Map16 => (0, 2 * self.be(2)?),
            Marker::Map32 => (0, 2 * self.be(4)?),
            Marker::Reserved => return Err(self.error("reserved MessagePack marker")),
        };
        self.take(bytes as usize)?;
        (0..values).try_for_each(|_| self.skip(depth + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{EncodedTick, Encoding, FrameBuilder, encode_frame};
    use crate::protocol::{Event, Quote, Tick};

    fn tick(seq: u64, n: u32, snap: Option<bool>) -> Tick {
        let mut tick = Tick::test("BRK.B", seq);
        tick.ts = 1_764_000_000_123_456_789;
        tick.xt = Some(5);
        tick.quote = Quote {
            bid: Some(1e-7),
            ask: Some(-3.5e10),
            bsz: None,
            asz: None,
            vol: 1_234_567,
            ..tick.quote
        };
        Tick { snap, n, ..tick }
    }

    fn read(encoding: Encoding, frame: &[u8]) -> Vec<(Kind, String, u64, u64, u64, bool)> {
        let mut out = Vec::new();
        let push =
            |e: EventView<'_>| out.push((e.kind, e.sym.into_owned(), e.seq, e.ts, e.n, e.snap));
        match encoding {
            Encoding::Json => json_events(frame, push).unwrap(),
            Encoding::Msgpack => msgpack_events(frame, push).unwrap(),
        }
        out
    }

    #[test]
    fn both_encodings_read_the_server_frames_the_same() {
        for encoding in Encoding::ALL {
            let mut frame = FrameBuilder::new(encoding);
            EncodedTick::new(tick(7, 0, None)).write_to(&mut frame, 0);
            EncodedTick::new(tick(9, 0, None)).write_to(&mut frame, 1);
            frame.push_encoded(&crate::codec::encode_event(
                encoding,
                &Event::Tick(tick(3, 0, Some(true))),
            ));
            let events = read(encoding, &frame.finish());
            let ts = 1_764_000_000_123_456_789;
            assert_eq!(
                events,
                [
                    (Kind::Tick, "BRK.B".into(), 7, ts, 0, false),
                    (Kind::Tick, "BRK.B".into(), 9, ts, 1, false),
                    (Kind::Tick, "BRK.B".into(), 3, ts, 0, true),
                ],
                "{encoding:?}"
            );
        }
    }

    #[test]
    fn replies_are_told_apart_and_their_nested_fields_skipped() {
        for encoding in Encoding::ALL {
            let frame = encode_frame(
                encoding,
                &[Event::Ack {
                    id: Some(1),
                    op: "subscribe".into(),
                    channel: None,
                    tf: None,
                    depth: None,
                    symbols: Some(vec!["A".into(), "B".into()]),
                    resumed: Some(std::collections::BTreeMap::from([
                        ("A".to_string(), Some(3)),
                        ("B".to_string(), None),
                    ])),
                }],
            );
            assert_eq!(read(encoding, &frame)[0].0, Kind::Ack);
        }
        let frame = br#"[{"ev":"error","id":1,"code":"unknown_symbol","msg":"no \"X\" [here]","symbols":["X"]}, {"ev":"hello","nested":{"a":[1,{"b":"}"}]},"v":1}]"#;
        let kinds: Vec<Kind> = read(Encoding::Json, frame).iter().map(|e| e.0).collect();
        assert_eq!(kinds, [Kind::Error, Kind::Other]);
    }

    #[test]
    fn a_book_event_is_read_with_its_levels_skipped() {
        let book = serde_json::json!([{"ev": "book", "sym": "AAPL", "seq": 12, "ts": 99,
            "bids": [[229.96, 400], [229.95, 100]], "asks": [[229.99, 2700]], "n": 3}]);
        let json = serde_json::to_vec(&book).unwrap();
        let msgpack = rmp_serde::to_vec_named(&book).unwrap();
        for (encoding, frame) in [(Encoding::Json, json), (Encoding::Msgpack, msgpack)] {
            assert_eq!(
                read(encoding, &frame),
                [(Kind::Book, "AAPL".into(), 12, 99, 3, false)],
                "{encoding:?}"
            );
        }
    }

    #[test]
    fn a_single_object_is_one_event_and_escapes_are_decoded() {
        let events = read(
            Encoding::Json,
            br#" {"sym":"A\/B","ev":"tick","n":2,"seq":5,"ts":6} "#,
        );
        assert_eq!(events, [(Kind::Tick, "A/B".into(), 5, 6, 2, false)]);
        let one = crate::codec::encode_event(Encoding::Msgpack, &Event::Tick(tick(4, 0, None)));
        assert_eq!(read(Encoding::Msgpack, &one)[0].2, 4);
    }

    #[test]
    fn broken_frames_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"[",
            b"[{\"seq\":",
            b"[{\"seq\":-1}]",
            b"[{\"seq\":1.5}]",
            b"{\"ev\":\"tick\"",
            b"[{\"a\":[}]",
            b"nope",
        ] {
            assert!(
                json_events(bad, |_| {}).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = [[0x91u8; 40].as_slice(), &[0xc0]].concat();
        for bad in [
            &[0x91, 0xc1][..],
            &[0x92, 0x80],
            &[0x91, 0x81, 0xa3, b's', b'e', b'q'],
            &[0x91, 0x81, 0xa3, b's', b'e', b'q', 0xcd, 0x01],
            &[0x91, 0x81, 0xa1, b'x', 0xdd, 0xff, 0xff, 0xff, 0xff],
            &[0x80, 0x80],
            &[0x91, 0x81, 0xa1, b'x'],
        ] {
            assert!(msgpack_events(bad, |_| {}).is_err(), "{bad:x?}");
        }
        let mut deep_event = vec![0x91, 0x81, 0xa1, b'x'];
        deep_event.extend_from_slice(&deep);
        assert!(msgpack_events(&deep_event, |_| {}).is_err());
    }
}
