//! Field deltas (`"deltas": true` on a subscribe): a tick that carries only
//! the market fields that changed since the previous seq of its symbol,
//! plus `sym`, `seq`, `ts` and `n`, marked `"d": 1`. A field that was set
//! and is now absent (a book side emptied) is sent as `null`.
//!
//! The router records which fields changed ([`Changed::between`]) when it
//! stores a tick; `codec` encodes the delta once per encoding
//! ([`DeltaOf`]) and shares it, like the full tick. A client applies a
//! delta to the full values it holds for the previous seq
//! ([`TickDelta::apply`]).

use super::Tick;
use schemars::JsonSchema;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::sync::Arc;

/// Which market fields of a tick differ from the previous seq's: one bit
/// per field, in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changed(u8);

const XT: u8 = 1;
const PX: u8 = 1 << 1;
const SZ: u8 = 1 << 2;
const BID: u8 = 1 << 3;
const ASK: u8 = 1 << 4;
const BSZ: u8 = 1 << 5;
const ASZ: u8 = 1 << 6;
const VOL: u8 = 1 << 7;

impl Changed {
    /// Every field: nothing to compare against (a first tick, or a seq
    /// that does not follow the previous one).
    pub const ALL: Changed = Changed(u8::MAX);

    /// The fields of `next` that differ from `previous`'s.
    pub fn between(previous: &Tick, next: &Tick) -> Changed {
        let (a, b) = (&previous.quote, &next.quote);
        let mut bits = 0;
        let mut mark = |bit, differs: bool| {
            if differs {
                bits |= bit;
            }
        };
        mark(XT, previous.xt != next.xt);
        mark(PX, a.px != b.px);
        mark(SZ, a.sz != b.sz);
        mark(BID, a.bid != b.bid);
        mark(ASK, a.ask != b.ask);
        mark(BSZ, a.bsz != b.bsz);
        mark(ASZ, a.asz != b.asz);
        mark(VOL, a.vol != b.vol);
        Changed(bits)
    }

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// True when a delta would carry every field: send the full tick.
    pub fn is_all(self) -> bool {
        self == Changed::ALL
    }
}

/// Serialises `tick` as a delta carrying the `changed` fields: the shape
/// of `ev: tick` with `d: 1` before `n`, which stays last (see
/// `codec::EncodedTick::write_to`).
pub struct DeltaOf<'a> {
    pub tick: &'a Tick,
    pub changed: Changed,
}

impl Serialize for DeltaOf<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (t, q, c) = (self.tick, &self.tick.quote, self.changed);
        let fields = [XT, PX, SZ, BID, ASK, BSZ, ASZ, VOL]
            .iter()
            .filter(|bit| c.has(**bit))
            .count();
        let mut map = serializer.serialize_map(Some(6 + fields))?;
        map.serialize_entry("ev", "tick")?;
        map.serialize_entry("sym", &*t.sym)?;
        map.serialize_entry("seq", &t.seq)?;
        map.serialize_entry("ts", &t.ts)?;
        if c.has(XT) {
            map.serialize_entry("xt", &t.xt)?;
        }
        if c.has(PX) {
            map.serialize_entry("px", &q.px)?;
        }
        if c.has(SZ) {
            map.serialize_entry("sz", &q.sz)?;
        }
        if c.has(BID) {
            map.serialize_entry("bid", &q.bid)?;
        }
        if c.has(ASK) {
            map.serialize_entry("ask", &q.ask)?;
        }
        if c.has(BSZ) {
            map.serialize_entry("bsz", &q.bsz)?;
        }
        if c.has(ASZ) {
            map.serialize_entry("asz", &q.asz)?;
        }
        if c.has(VOL) {
            map.serialize_entry("vol", &q.vol)?;
        }
        map.serialize_entry("d", &1u8)?;
        map.serialize_entry("n", &t.n)?;
        map.end()
    }
}

/// A delta as a client reads it: for each market field, absent (unchanged),
/// `Some(None)` (now absent: sent as `null`) or `Some(Some(value))`. Its
/// JSON Schema (`docs/asyncapi.json`) is the wire shape [`DeltaOf`]
/// writes: a field is absent when unchanged, so none is required.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[schemars(
    description = "A field delta (subscribe with \"deltas\": true): only the fields \
    that changed since seq - 1, whose full values the client holds; a field sent as null \
    is now absent, a field not sent is unchanged."
)]
pub struct TickDelta {
    /// The symbol this update is about.
    #[schemars(pattern(super::SYMBOL_PATTERN))]
    pub sym: Arc<str>,
    /// Per-symbol sequence number; the client holds `seq - 1`.
    pub seq: u64,
    /// When the source emitted the update, ns since the Unix epoch.
    pub ts: u64,
    /// Original event time, when it changed; `null` when now absent.
    #[serde(default, deserialize_with = "present")]
    #[schemars(skip_serializing_if = "Option::is_none")]
    pub xt: Option<Option<u64>>,
    /// Last trade price, when it changed.
    #[serde(default, deserialize_with = "present")]
    #[schemars(skip_serializing_if = "Option::is_none")]
    pub px: Option<Option<f64>>,
    /// Last trade size, when it changed.
    #[serde(default, deserialize_with = "present")]
    #[schemars(skip_serializing_if = "Option::is_none")]
    pub sz: Option<Option<u64>>,
    /// Best bid price, when it changed; `null` when the bid side emptied.
    #[serde(default, deserialize_with = "present")]
    #[schemars(skip_serializing_if = "Option::is_none")]
    pub bid: Option<Option<f64>>,
    /// Best ask price, when it changed; `null` when the ask side emptied.
    #[serde(default, deserialize_with = "present")]
    #[schemars(skip_serializing_if = "Option::is_none")]
    pub ask: Option<Option<f64>>,
    /// Shares at the best bid, when they changed.
    #[serde(default, deserialize_with = "present")]
    #[schemars(skip_serializing_if = "Option::is_none")]
    pub bsz: Option<Option<u64>>,
    /// Shares at the best ask, when they changed.
    #[serde(default, deserialize_with = "present")]
    #[schemars(skip_serializing_if = "Option::is_none")]
    pub asz: Option<Option<u64>>,
    /// Cumulative volume, when it changed (it is never cleared).
    #[serde(default)]
    #[schemars(with = "u64", skip_serializing_if = "Option::is_none")]
    pub vol: Option<u64>,
    /// Always 1: marks the tick as a delta.
    #[schemars(range(min = 1, max = 1))]
    pub d: u8,
    /// Always 0: a delta follows the seq before it.
    #[schemars(range(min = 0, max = 0))]
    pub n: u32,
}

/// The two shapes of a tick on `/ws`, for the JSON Schema of
/// [`super::Event::Tick`]: a field delta (`d: 1`) or a full tick.
#[derive(JsonSchema)]
#[serde(untagged)]
#[schemars(description = "A tick: a field delta (d: 1) or a full tick.")]
pub enum TickOnWire {
    /// Only what changed since the previous seq (`"deltas": true`).
    Delta(TickDelta),
    /// Every field.
    Full(Tick),
}

/// A field that is present, even as `null`, reads as `Some`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

impl TickDelta {
    /// Turns `previous`, the full tick of the seq before this one, into
    /// the full tick of this one.
    pub fn apply(&self, previous: &mut Tick) {
        fn set<T: Copy>(field: &mut Option<T>, change: Option<Option<T>>) {
            if let Some(value) = change {
                *field = value;
            }
        }
        previous.seq = self.seq;
        previous.ts = self.ts;
        previous.n = self.n;
        previous.snap = None;
        set(&mut previous.xt, self.xt);
        let q = &mut previous.quote;
        set(&mut q.px, self.px);
        set(&mut q.sz, self.sz);
        set(&mut q.bid, self.bid);
        set(&mut q.ask, self.ask);
        set(&mut q.bsz, self.bsz);
        set(&mut q.asz, self.asz);
        if let Some(vol) = self.vol {
            q.vol = vol;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Quote;
    use proptest::prelude::*;

    fn field<T: std::fmt::Debug + Clone + 'static>(
        values: impl Strategy<Value = T>,
    ) -> impl Strategy<Value = Option<T>> {
        proptest::option::of(values)
    }

    fn tick(seq: u64) -> impl Strategy<Value = Tick> {
        // Few distinct values, so that fields often stay the same.
        let price = || field(prop_oneof![Just(189.25), Just(189.26), Just(0.0001)]);
        let size = || field(prop_oneof![Just(0u64), Just(100), Just(u64::MAX)]);
        (
            field(prop_oneof![Just(1u64), Just(2)]),
            (price(), size(), price(), price(), size(), size()),
            prop_oneof![Just(0u64), Just(100), Just(1 << 40)],
        )
            .prop_map(move |(xt, (px, sz, bid, ask, bsz, asz), vol)| Tick {
                xt,
                quote: Quote {
                    px,
                    sz,
                    bid,
                    ask,
                    bsz,
                    asz,
                    vol,
                },
                ..Tick::new(
                    "BRK.B".into(),
                    seq,
                    1_764_000_000_000_000_000 + seq,
                    Quote::default(),
                )
            })
    }

    fn roundtrip(encoding: &str, delta: &DeltaOf<'_>) -> TickDelta {
        match encoding {
            "json" => serde_json::from_slice(&serde_json::to_vec(delta).unwrap()).unwrap(),
            _ => rmp_serde::from_slice(&rmp_serde::to_vec_named(delta).unwrap()).unwrap(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        /// The issue's test: a delta applied to the previous full tick
        /// equals the full tick, for every combination of fields set,
        /// cleared, changed and unchanged, in both encodings.
        #[test]
        fn a_delta_applied_to_the_previous_tick_gives_the_full_tick(
            previous in tick(41),
            next in tick(42),
        ) {
            let changed = Changed::between(&previous, &next);
            for encoding in ["json", "msgpack"] {
                let delta = roundtrip(encoding, &DeltaOf { tick: &next, changed });
                prop_assert_eq!(delta.d, 1);
                let mut applied = previous.clone();
                delta.apply(&mut applied);
                prop_assert_eq!(&applied, &next, "{}", encoding);
            }
        }
    }

    #[test]
    fn a_delta_carries_only_what_changed_and_null_for_what_was_cleared() {
        let previous = Tick::test("AAPL", 41);
        let mut next = Tick::test("AAPL", 42);
        next.ts = 7;
        next.quote.vol = previous.quote.vol;
        next.quote.bid = Some(189.23);
        next.quote.asz = None;
        let changed = Changed::between(&previous, &next);
        let text = serde_json::to_string(&DeltaOf {
            tick: &next,
            changed,
        })
        .unwrap();
        assert_eq!(
            text,
            r#"{"ev":"tick","sym":"AAPL","seq":42,"ts":7,"bid":189.23,"asz":null,"d":1,"n":0}"#
        );
        assert!(!changed.is_all());
    }
}
