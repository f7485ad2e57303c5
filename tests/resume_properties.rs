//! Property test of resuming across connections, through the public API:
//! the router (`router::Router`) and per-connection outboxes
//! (`session::outbox::Outbox`) driven the way sessions drive them, for
//! arbitrary interleavings of updates (bursts past the ring), collections
//! by prompt and slow readers, disconnects and resumes with `from`, on
//! the same node or on another (a NATS edge that was not serving the
//! symbols: it holds their latest values only and fetches the rest from
//! the source's rings, as `session::requests` does, or fails to).
//!
//! One client holds, per symbol, the last seq it received. Its first
//! connection subscribes with a snapshot; every later one resumes after
//! what it holds. Across all its connections, per symbol:
//! - consecutive non-snapshot ticks satisfy `B.seq - A.seq - 1 == B.n`
//!   (the invariant holds across the reconnect);
//! - no seq is delivered twice outside a snapshot;
//! - a resume reports exactly the updates it cannot send (`resumed`), and
//!   sends every retained one after the client's seq with `n == 0`;
//! - on a connection with field deltas, the client that applies each delta
//!   to the values it holds has exactly the source's values of every seq
//!   it receives.

use proptest::prelude::*;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tickfeed::codec::{EncodedTick, Encoding};
use tickfeed::history::{HistoryRange, Keep};
use tickfeed::protocol::{Quote, SymbolSet, Tick, TickDelta};
use tickfeed::router::Router;
use tickfeed::sequence::{Verdict, verdict};
use tickfeed::session::outbox::{Collected, Delivery, Outbox};
use tickfeed::stats::Stats;
use tickfeed::symbols::SymbolTable;
use tokio::time::Instant;

const SYMBOLS: [&str; 3] = ["AAPL", "MSFT", "NVDA"];
/// Updates retained per symbol: small, so time away overruns it.
const HISTORY: u64 = 16;
const MAX_LAG: Duration = Duration::from_millis(500);
const MAX_FRAME_BYTES: usize = 512;

#[derive(Debug, Clone)]
enum Op {
    Update {
        symbol: usize,
        count: u64,
    },
    /// The connection's session drains its mailbox.
    Collect {
        read_delay_ms: u64,
    },
    /// The connection drops (what was written but not collected is lost
    /// with it) and a new one resumes after what the client holds, on
    /// another node when `elsewhere` (whose fetch from the source fails
    /// when `fetch_fails`).
    Reconnect {
        max_hz: bool,
        deltas: bool,
        elsewhere: bool,
        fetch_fails: bool,
    },
    Wait {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..SYMBOLS.len(), prop_oneof![3 => 1..4u64, 1 => 1..(3 * HISTORY)])
            .prop_map(|(symbol, count)| Op::Update { symbol, count }),
        3 => prop_oneof![3 => Just(0u64), 1 => 0..900u64].prop_map(|read_delay_ms| Op::Collect { read_delay_ms }),
        2 => (
            prop_oneof![5 => Just(false), 1 => Just(true)],
            any::<bool>(),
            any::<bool>(),
            prop_oneof![4 => Just(false), 1 => Just(true)],
        )
            .prop_map(|(max_hz, deltas, elsewhere, fetch_fails)| Op::Reconnect { max_hz, deltas, elsewhere, fetch_fails }),
        1 => (0..1500u64).prop_map(|ms| Op::Wait { ms }),
    ]
}

struct World {
    /// The source: every update, its ring, what other nodes fetch.
    source: Router,
    source_table: Arc<SymbolTable>,
    /// The node the client is connected to, fed every update too.
    router: Router,
    table: Arc<SymbolTable>,
    outbox: Outbox,
    /// Connections so far; each is a client id for the router.
    connection: u64,
    /// The connection asked for `max_hz`, so a collection may defer.
    paced: bool,
    encoding: Encoding,
    /// Latest seq of each symbol at the source.
    seq: [u64; SYMBOLS.len()],
    /// Per symbol: the last seq the client holds.
    held: [u64; SYMBOLS.len()],
    /// Per symbol: the full values the client holds (deltas applied).
    values: [Tick; SYMBOLS.len()],
    /// Per symbol: every non-snapshot seq delivered, on any connection.
    delivered: [HashSet<u64>; SYMBOLS.len()],
    runtime: tokio::runtime::Runtime,
}

/// The `seq`th update of `sym`: its fields change now and then, some
/// together, and the book sides empty sometimes, so deltas carry every
/// combination.
fn tick(sym: &str, seq: u64) -> Tick {
    let step = |every: u64, spread: u64| ((seq / every) % spread) as f64 / 100.0;
    let quote = Quote {
        px: (!seq.is_multiple_of(3)).then(|| 100.0 + step(2, 7)),
        sz: Some(100 * (seq / 3 % 4)),
        bid: (!seq.is_multiple_of(11)).then(|| 99.0 + step(3, 5)),
        ask: (!seq.is_multiple_of(13)).then(|| 101.0 + step(5, 3)),
        bsz: Some(100 + seq / 4 % 3),
        asz: (!seq.is_multiple_of(13)).then_some(200),
        vol: seq / 2 * 100,
    };
    Tick::new(sym.into(), seq, seq, quote)
}

fn decode(encoding: Encoding, frame: &[u8]) -> Vec<Value> {
    let value: Value = match encoding {
        Encoding::Json => serde_json::from_slice(frame).expect("JSON frame"),
        Encoding::Msgpack => rmp_serde::from_slice(frame).expect("MessagePack frame"),
    };
    serde_json::from_value(value).expect("an array of events")
}

fn all_symbols() -> SymbolSet {
    SymbolSet::Named(SYMBOLS.iter().map(|s| s.to_string()).collect())
}

/// A node: a router with [`HISTORY`] retained per symbol, and its table.
fn node() -> (Router, Arc<SymbolTable>) {
    let table = Arc::new(SymbolTable::new(8));
    let router = Router::new(table.clone(), Arc::new(Stats::new()))
        .with_history(HISTORY as usize, usize::MAX);
    (router, table)
}

impl World {
    /// The first connection: subscribes with snapshots, which set what the
    /// client holds.
    fn new(encoding: Encoding, runtime: tokio::runtime::Runtime) -> World {
        let (mut source, source_table) = node();
        let (mut router, table) = node();
        let first: Vec<Tick> = SYMBOLS.iter().map(|s| tick(s, 1)).collect();
        source.route(first.clone());
        router.route(first);
        let mut outbox = Outbox::new(table.clone(), encoding, MAX_FRAME_BYTES, MAX_LAG);
        let granted = router.subscribe(0, outbox.mailbox(), all_symbols()).granted;
        let mut snapshots = Vec::new();
        let delivery = Delivery {
            max_hz: 0.0,
            deltas: true,
        };
        outbox.add(&granted, delivery, true, &mut snapshots, Instant::now());
        assert_eq!(snapshots.len(), SYMBOLS.len());
        World {
            source,
            source_table,
            router,
            table,
            outbox,
            connection: 0,
            paced: false,
            encoding,
            seq: [1; SYMBOLS.len()],
            held: [1; SYMBOLS.len()],
            values: SYMBOLS.map(|s| tick(s, 1)),
            delivered: std::array::from_fn(|_| HashSet::new()),
            runtime,
        }
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Update { symbol, count } => {
                let ticks = (0..*count)
                    .map(|_| {
                        self.seq[*symbol] += 1;
                        tick(SYMBOLS[*symbol], self.seq[*symbol])
                    })
                    .collect::<Vec<_>>();
                self.source.route(ticks.clone());
                self.router.route(ticks);
            }
            Op::Collect { read_delay_ms } => {
                let mut frames = Vec::new();
                let delay = Duration::from_millis(*read_delay_ms);
                // The session's writes until it is idle: each takes one
                // full frame at most, and one that held some back wakes
                // the next.
                let now = Instant::now();
                loop {
                    let written = frames.len();
                    self.outbox.collect(now, delay, &mut frames);
                    if frames.len() == written {
                        break;
                    }
                }
                self.receive(&frames)?;
                for (symbol, held) in self.held.iter().enumerate() {
                    if !self.paced {
                        prop_assert_eq!(*held, self.seq[symbol], "up to date after a collection");
                    }
                }
            }
            Op::Reconnect {
                max_hz,
                deltas,
                elsewhere,
                fetch_fails,
            } => self.reconnect(*max_hz, *deltas, *elsewhere, *fetch_fails)?,
            Op::Wait { ms } => self
                .runtime
                .block_on(tokio::time::advance(Duration::from_millis(*ms))),
        }
        Ok(())
    }

    /// Checks and records the ticks of `frames` as the client reads them;
    /// returns the sum of their `n` per symbol.
    fn receive(&mut self, frames: &[bytes::Bytes]) -> Result<HashMap<usize, u64>, TestCaseError> {
        let mut merged = HashMap::new();
        for frame in frames {
            for event in decode(self.encoding, frame) {
                prop_assert_eq!(&event["ev"], "tick", "only ticks are data");
                prop_assert!(event.get("snap").is_none(), "a resume sends no snapshot");
                let symbol = SYMBOLS.iter().position(|s| *s == event["sym"]).unwrap();
                let t = if event["d"] == 1 {
                    let delta: TickDelta = serde_json::from_value(event).unwrap();
                    prop_assert_eq!(delta.n, 0, "a delta follows the seq the client holds");
                    prop_assert_eq!(delta.seq, self.values[symbol].seq + 1);
                    let mut full = self.values[symbol].clone();
                    delta.apply(&mut full);
                    full
                } else {
                    serde_json::from_value::<Tick>(event).unwrap()
                };
                let expected = tick(SYMBOLS[symbol], t.seq);
                prop_assert_eq!(
                    (t.xt, t.quote),
                    (expected.xt, expected.quote),
                    "{} seq {}: the client holds the source's values",
                    SYMBOLS[symbol],
                    t.seq
                );
                self.values[symbol] = t.clone();
                let held = &mut self.held[symbol];
                prop_assert_eq!(
                    verdict(Some(*held), t.seq, u64::from(t.n), false),
                    Verdict::Ok,
                    "{}: seq {} after {} with n {}",
                    t.sym,
                    t.seq,
                    *held,
                    t.n
                );
                prop_assert!(
                    self.delivered[symbol].insert(t.seq),
                    "{} seq {} delivered twice",
                    t.sym,
                    t.seq
                );
                *held = t.seq;
                *merged.entry(symbol).or_default() += u64::from(t.n);
            }
        }
        Ok(merged)
    }

    /// A node that was not serving the symbols: its snapshot reads gave
    /// it their latest values, nothing older.
    fn move_elsewhere(&mut self) {
        let (mut router, table) = node();
        let latest = (0..SYMBOLS.len())
            .map(|s| tick(SYMBOLS[s], self.seq[s]))
            .collect();
        router.route(latest);
        self.router = router;
        self.table = table;
        self.connection = 0;
    }

    /// What the node fetches from the source for `grant`, as
    /// `session::requests` does.
    fn fetch(&self, grant: &tickfeed::router::Grant, from: u64, hz: f64) -> Vec<Arc<EncodedTick>> {
        let Some(until) = self.outbox.backfill_until(grant, from, hz) else {
            return Vec::new();
        };
        let name = self.table.cell(grant.id).name().unwrap();
        let (_, cell) = self
            .source_table
            .iter()
            .find(|(_, c)| c.name() == Some(name))
            .unwrap();
        let range = HistoryRange {
            after: from,
            until: Some(until),
            limit: HISTORY as usize,
            keep: Keep::Newest,
        };
        cell.read(&range)
    }

    /// Drops the connection and resumes on a new one, as
    /// `session::requests` does for a subscribe with `from` in the same
    /// epoch.
    fn reconnect(
        &mut self,
        max_hz: bool,
        deltas: bool,
        elsewhere: bool,
        fetch_fails: bool,
    ) -> Result<(), TestCaseError> {
        self.router.unsubscribe(self.connection, SymbolSet::All);
        if elsewhere {
            self.move_elsewhere();
        }
        self.connection += 1;
        self.outbox = Outbox::new(self.table.clone(), self.encoding, MAX_FRAME_BYTES, MAX_LAG);
        let mailbox = self.outbox.mailbox();
        let granted = self
            .router
            .subscribe(self.connection, mailbox, all_symbols())
            .granted;
        let delivery = Delivery {
            max_hz: if max_hz { 4.0 } else { 0.0 },
            deltas,
        };
        let held_before = self.held;
        self.paced = max_hz;
        let mut frames = Vec::new();
        let mut replayed = Collected::default();
        let mut resumed = HashMap::new();
        for grant in &granted {
            let name = self.table.cell(grant.id).name().unwrap().clone();
            let symbol = SYMBOLS.iter().position(|s| **s == *name).unwrap();
            let from = self.held[symbol];
            let fetched = if fetch_fails {
                Vec::new()
            } else {
                self.fetch(grant, from, delivery.max_hz)
            };
            let lost = self.outbox.resume(
                grant,
                from,
                &fetched,
                delivery,
                Instant::now(),
                &mut frames,
                &mut replayed,
            );
            prop_assert!(
                lost.is_some(),
                "a seq the client holds is never beyond the latest"
            );
            resumed.insert(symbol, lost.unwrap());
        }
        self.outbox.finish_frame(&mut frames);
        let merged = self.receive(&frames)?;
        for (symbol, lost) in resumed {
            let from = held_before[symbol];
            prop_assert_eq!(
                merged.get(&symbol).copied().unwrap_or(0),
                lost,
                "{}: resumed reports exactly what the ticks' n count",
                SYMBOLS[symbol]
            );
            prop_assert_eq!(
                self.held[symbol],
                self.seq[symbol],
                "resumed up to the latest"
            );
            if !max_hz {
                // The source keeps the last HISTORY updates: only older
                // ones are lost, unless a node that holds only the latest
                // could not fetch them.
                let latest = self.seq[symbol];
                let expected = if elsewhere && fetch_fails {
                    latest.saturating_sub(from + 1)
                } else {
                    let oldest_retained = latest.saturating_sub(HISTORY - 1).max(1);
                    oldest_retained.saturating_sub(from + 1)
                };
                prop_assert_eq!(lost, expected, "{} resumed after {}", SYMBOLS[symbol], from);
            }
        }
        Ok(())
    }
}

proptest! {
    // Failures print their minimal case; no regression files in the tree.
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn disconnects_and_resumes_keep_the_invariant_and_never_repeat_a_seq(
        msgpack in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a runtime");
        let _clock = runtime.enter();
        let encoding = if msgpack { Encoding::Msgpack } else { Encoding::Json };
        let mut world = World::new(encoding, runtime);
        for op in &ops {
            world.apply(op)?;
        }
        world.apply(&Op::Reconnect { max_hz: false, deltas: true, elsewhere: true, fetch_fails: false })?;
        world.apply(&Op::Collect { read_delay_ms: 0 })?;
    }
}
