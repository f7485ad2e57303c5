//! Bytes on the wire: JSON or MessagePack encoding of protocol events, the
//! per-tick shared encoding, and the per-client frame builder that batches
//! many events into one WebSocket message.
//!
//! Hot-path contract: each tick is serialised at most once per encoding
//! ([`EncodedTick`]) and the bytes are shared by every client. A client that
//! needs a non-zero merge count `n` copies the shared prefix and appends its
//! own `n` (the field is last on purpose, see `protocol::Tick`). A tick's
//! delta against the previous seq (`protocol::delta`) is encoded once too,
//! on first use, for the clients that asked for deltas.

use crate::protocol::{Changed, DeltaOf, Event, Tick};
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::OnceLock;

/// Wire encoding of server frames, chosen at the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[derive(clap::ValueEnum)]
pub enum Encoding {
    Json,
    Msgpack,
}

impl Encoding {
    pub const ALL: [Encoding; 2] = [Encoding::Json, Encoding::Msgpack];

    /// Name used in `hello`, `?encoding=` and reports.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Msgpack => "msgpack",
        }
    }

    /// The `Sec-WebSocket-Protocol` value that selects this encoding.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Encoding::Json => "tickfeed.v1.json",
            Encoding::Msgpack => "tickfeed.v1.msgpack",
        }
    }

    pub fn from_subprotocol(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|e| e.subprotocol() == value.trim())
    }

    pub fn from_name(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == value)
    }
}

impl std::str::FromStr for Encoding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or_else(|| format!("unknown encoding {s:?}: use json or msgpack"))
    }
}

/// Serialises one event. Events are plain data, so this cannot fail.
pub fn encode_event(encoding: Encoding, event: &Event) -> Vec<u8> {
    match encoding {
        Encoding::Json => serde_json::to_vec(event).expect("events serialise to JSON"),
        Encoding::Msgpack => {
            rmp_serde::to_vec_named(event).expect("events serialise to MessagePack")
        }
    }
}

/// Serialises a whole frame (an array of events) for the control path.
pub fn encode_frame(encoding: Encoding, events: &[Event]) -> Bytes {
    let mut frame = FrameBuilder::new(encoding);
    for event in events {
        frame.push_encoded(&encode_event(encoding, event));
    }
    frame.finish()
}

/// A tick from the source, with its encodings made lazily, once, and shared.
#[derive(Debug)]
pub struct EncodedTick {
    pub tick: Tick,
    /// When the router published it; tells a session whether the tick
    /// arrived while the client was ready to receive (see `session::outbox`).
    pub routed_at: tokio::time::Instant,
    /// The market fields that differ from the previous seq's.
    pub changed: Changed,
    json: OnceLock<Bytes>,
    msgpack: OnceLock<Bytes>,
    json_delta: OnceLock<Bytes>,
    msgpack_delta: OnceLock<Bytes>,
}

impl EncodedTick {
    /// Wraps a live tick; `n` must be 0 and `snap` unset (both are per client).
    pub fn new(tick: Tick) -> Self {
        Self::with_changes(tick, Changed::ALL)
    }

    /// Wraps a live tick whose `changed` fields differ from the previous
    /// seq's (the router compares them as it stores the tick).
    pub fn with_changes(tick: Tick, changed: Changed) -> Self {
        debug_assert!(tick.n == 0 && tick.snap.is_none());
        Self {
            tick,
            routed_at: tokio::time::Instant::now(),
            changed,
            json: OnceLock::new(),
            msgpack: OnceLock::new(),
            json_delta: OnceLock::new(),
            msgpack_delta: OnceLock::new(),
        }
    }

    /// Appends this tick to `frame` as a delta against the previous seq,
    /// which the client holds (so `n == 0`); the full tick when every
    /// field changed.
    pub fn write_delta_to(&self, frame: &mut FrameBuilder) {
        if self.changed.is_all() {
            return self.write_to(frame, 0);
        }
        let cell = match frame.encoding {
            Encoding::Json => &self.json_delta,
            Encoding::Msgpack => &self.msgpack_delta,
        };
        let bytes = cell.get_or_init(|| {
            let delta = DeltaOf {
                tick: &self.tick,
                changed: self.changed,
            };
            Bytes::from(match frame.encoding {
                Encoding::Json => serde_json::to_vec(&delta).expect("deltas serialise to JSON"),
                Encoding::Msgpack => {
                    rmp_serde::to_vec_named(&delta).expect("deltas serialise to MessagePack")
                }
            })
        });
        frame.push_encoded(bytes);
    }

    pub fn seq(&self) -> u64 {
        self.tick.seq
    }

    /// The shared encoding with `n == 0`.
    pub fn bytes(&self, encoding: Encoding) -> &Bytes {
        let cell = match encoding {
            Encoding::Json => &self.json,
            Encoding::Msgpack => &self.msgpack,
        };
        cell.get_or_init(|| Bytes::from(encode_event(encoding, &Event::Tick(self.tick.clone()))))
    }

    /// Appends this tick to `frame` with merge count `n`: the shared bytes
    /// when `n == 0`, otherwise the shared prefix and a re-encoded `n`.
    pub fn write_to(&self, frame: &mut FrameBuilder, n: u32) {
        frame.push_with_n(self.bytes(frame.encoding), n);
    }
}

/// Room reserved at the front of a MessagePack frame for the array header,
/// which is only known once every event is in (array32 takes 5 bytes).
const MSGPACK_HEADER_ROOM: usize = 5;

/// A frame larger than this (a resume, a replay after a pause) leaves its
/// builder with a fresh buffer, so a burst does not pin memory per client.
const KEEP_BUFFER_BYTES: usize = 64 * 1024;

/// Builds one frame (an array of events) in a buffer reused between frames.
#[derive(Debug)]
pub struct FrameBuilder {
    encoding: Encoding,
    buf: BytesMut,
    events: u32,
}

impl FrameBuilder {
    pub fn new(encoding: Encoding) -> Self {
        let mut builder = Self {
            encoding,
            buf: BytesMut::new(),
            events: 0,
        };
        builder.reset();
        builder
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Number of events in the frame being built.
    pub fn len(&self) -> usize {
        self.events as usize
    }

    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// Bytes in the frame so far.
    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.events = 0;
        match self.encoding {
            Encoding::Json => self.buf.put_u8(b'['),
            Encoding::Msgpack => self.buf.put_bytes(0, MSGPACK_HEADER_ROOM),
        }
    }

    fn begin_event(&mut self) {
        if self.events > 0 && self.encoding == Encoding::Json {
            self.buf.put_u8(b',');
        }
        self.events += 1;
    }

    /// Appends one event, serialised straight into the frame (no buffer of
    /// its own).
    pub fn push_event(&mut self, event: &Event) {
        self.begin_event();
        let mut writer = (&mut self.buf).writer();
        match self.encoding {
            Encoding::Json => {
                serde_json::to_writer(writer, event).expect("events serialise to JSON")
            }
            Encoding::Msgpack => rmp_serde::encode::write_named(&mut writer, event)
                .expect("events serialise to MessagePack"),
        }
    }

    /// Appends one already-encoded event.
    pub fn push_encoded(&mut self, event: &[u8]) {
        self.begin_event();
        self.buf.put_slice(event);
    }

    /// Appends one already-encoded event whose last field is `"n":0`
    /// (ticks, books), with merge count `n`: the shared bytes as they are
    /// when `n == 0`, otherwise all but the 0 and a newly written `n`.
    pub fn push_with_n(&mut self, event: &[u8], n: u32) {
        if n == 0 {
            self.push_encoded(event);
            return;
        }
        self.begin_event();
        match self.encoding {
            Encoding::Json => {
                // The event ends in `"n":0}`: keep `"n":`, write n, close.
                self.buf.put_slice(&event[..event.len() - 2]);
                self.buf.put_slice(itoa::Buffer::new().format(n).as_bytes());
                self.buf.put_u8(b'}');
            }
            Encoding::Msgpack => {
                // The event ends in fixstr "n" then positive fixint 0.
                self.buf.put_slice(&event[..event.len() - 1]);
                let mut writer = (&mut self.buf).writer();
                rmp::encode::write_uint(&mut writer, u64::from(n))
                    .expect("writing to memory cannot fail");
            }
        }
    }

    /// Closes the array and hands out the frame; the builder starts afresh.
    pub fn finish(&mut self) -> Bytes {
        match self.encoding {
            Encoding::Json => self.buf.put_u8(b']'),
            Encoding::Msgpack => {
                let mut header = [0u8; MSGPACK_HEADER_ROOM];
                let len = msgpack_array_header(self.events, &mut header);
                let start = MSGPACK_HEADER_ROOM - len;
                self.buf[start..MSGPACK_HEADER_ROOM].copy_from_slice(&header[..len]);
                let _ = self.buf.split_to(start);
            }
        }
        let frame = self.buf.split().freeze();
        if frame.len() > KEEP_BUFFER_BYTES {
            // The rest of a large allocation would stay with this client
            // for good; a fresh buffer grows again only as frames need.
            self.buf = BytesMut::new();
        }
        self.reset();
        frame
    }
}

/// Writes the most compact MessagePack array header for `len` elements
/// into `header`; returns its length.
fn msgpack_array_header(len: u32, header: &mut [u8; MSGPACK_HEADER_ROOM]) -> usize {
    let mut rest = &mut header[..];
    rmp::encode::write_array_len(&mut rest, len).expect("array32 fits its room");
    MSGPACK_HEADER_ROOM - rest.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(n: u32) -> Tick {
        let mut tick = Tick::test("AAPL", 42);
        tick.ts = 1_764_000_000_123_456_789;
        tick.quote.vol = 1_234_567;
        tick.n = n;
        tick
    }

    #[test]
    fn an_event_pushed_into_a_frame_reads_back_in_both_encodings() {
        let bar = Event::Bar(crate::protocol::BarEvent {
            sym: "AAPL".into(),
            tf: crate::protocol::Timeframe::M1,
            bar: crate::protocol::Bar {
                t: 1_340_285_400_000_000_000,
                o: 585.33,
                h: 585.75,
                l: 584.91,
                c: 585.5,
                v: 10_234,
                trades: 57,
                vwap: 585.3712,
            },
            snap: None,
            is_final: true,
        });
        for encoding in Encoding::ALL {
            let mut frame = FrameBuilder::new(encoding);
            frame.push_event(&bar);
            frame.push_event(&bar);
            let bytes = frame.finish();
            let events: Vec<Event> = match encoding {
                Encoding::Json => serde_json::from_slice(&bytes).unwrap(),
                Encoding::Msgpack => rmp_serde::from_slice(&bytes).unwrap(),
            };
            assert_eq!(events, [bar.clone(), bar.clone()], "{encoding:?}");
        }
        let json: serde_json::Value =
            serde_json::from_slice(&encode_event(Encoding::Json, &bar)).unwrap();
        assert_eq!(json["ev"], "bar");
        assert_eq!(json["final"], true);
        assert!(json.get("snap").is_none());
    }

    #[test]
    fn json_tick_matches_the_protocol_example() {
        let text = String::from_utf8(encode_event(Encoding::Json, &Event::Tick(tick(0)))).unwrap();
        assert_eq!(
            text,
            r#"{"ev":"tick","sym":"AAPL","seq":42,"ts":1764000000123456789,"px":189.25,"sz":100,"bid":189.24,"ask":189.26,"bsz":300,"asz":200,"vol":1234567,"n":0}"#
        );
    }

    #[test]
    fn patched_merge_count_equals_full_encoding() {
        let shared = EncodedTick::new(tick(0));
        for encoding in Encoding::ALL {
            for n in [1u32, 7, 127, 128, 255, 256, 65_535, 65_536, u32::MAX] {
                let mut frame = FrameBuilder::new(encoding);
                shared.write_to(&mut frame, n);
                let expected = encode_frame(encoding, &[Event::Tick(tick(n))]);
                assert_eq!(frame.finish(), expected, "{encoding:?} n={n}");
            }
        }
    }

    #[test]
    fn a_delta_is_written_once_per_encoding_and_a_full_tick_when_all_changed() {
        let previous = tick(0);
        let mut next = tick(0);
        next.seq = 43;
        next.quote.bid = Some(189.2);
        let changed = Changed::between(&previous, &next);
        let shared = EncodedTick::with_changes(next.clone(), changed);
        for encoding in Encoding::ALL {
            let mut frame = FrameBuilder::new(encoding);
            shared.write_delta_to(&mut frame);
            shared.write_delta_to(&mut frame);
            let bytes = frame.finish();
            let events: Vec<serde_json::Value> = match encoding {
                Encoding::Json => serde_json::from_slice(&bytes).unwrap(),
                Encoding::Msgpack => rmp_serde::from_slice(&bytes).unwrap(),
            };
            assert_eq!(events.len(), 2);
            assert_eq!(
                events[0],
                serde_json::json!({"ev": "tick", "sym": "AAPL", "seq": 43, "ts": next.ts, "bid": 189.2, "d": 1, "n": 0}),
                "{encoding:?}"
            );
            let full = EncodedTick::new(next.clone());
            let mut delta_frame = FrameBuilder::new(encoding);
            full.write_delta_to(&mut delta_frame);
            let mut full_frame = FrameBuilder::new(encoding);
            full.write_to(&mut full_frame, 0);
            assert_eq!(
                delta_frame.finish(),
                full_frame.finish(),
                "nothing to compare: full"
            );
        }
    }

    #[test]
    fn frames_are_arrays_of_events_in_both_encodings() {
        let shared = EncodedTick::new(tick(0));
        for count in [1usize, 15, 16, 70_000] {
            for encoding in Encoding::ALL {
                let mut frame = FrameBuilder::new(encoding);
                for i in 0..count {
                    shared.write_to(&mut frame, (i % 3) as u32);
                }
                let bytes = frame.finish();
                let events: Vec<Event> = match encoding {
                    Encoding::Json => serde_json::from_slice(&bytes).unwrap(),
                    Encoding::Msgpack => rmp_serde::from_slice(&bytes).unwrap(),
                };
                assert_eq!(events.len(), count);
                assert_eq!(
                    events[count - 1],
                    Event::Tick(tick(((count - 1) % 3) as u32))
                );
                assert!(frame.is_empty(), "builder starts afresh");
            }
        }
    }

    #[test]
    fn a_large_frame_does_not_pin_its_buffer() {
        for encoding in Encoding::ALL {
            let mut frame = FrameBuilder::new(encoding);
            let event = encode_event(encoding, &Event::Tick(Tick::test("AAPL", 1)));
            while frame.byte_len() <= KEEP_BUFFER_BYTES {
                frame.push_encoded(&event);
            }
            let large = frame.finish();
            assert!(large.len() > KEEP_BUFFER_BYTES);
            assert!(frame.buf.capacity() < 1024, "{encoding:?}");
            frame.push_encoded(&event);
            let small = frame.finish();
            let events: usize = match encoding {
                Encoding::Json => serde_json::from_slice::<Vec<Event>>(&small).unwrap().len(),
                Encoding::Msgpack => rmp_serde::from_slice::<Vec<Event>>(&small).unwrap().len(),
            };
            assert_eq!(events, 1);
        }
    }
}
