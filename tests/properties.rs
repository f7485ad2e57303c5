//! Property tests of the data path through the public API: the router
//! (`router::Router`), the symbol table it writes, and per-client outboxes
//! (`session::outbox::Outbox`) driven the way sessions drive them, for
//! arbitrary interleavings of updates, subscribes, unsubscribes and
//! collections by clients that keep up or read slowly, in both encodings.
//!
//! Time is tokio's paused clock, moved by `Wait` steps, so readers that
//! collect promptly, slow readers, pauses and bursts are all exact.
//!
//! After every step each client's stream obeys the protocol: per symbol,
//! within one subscription, consecutive live ticks satisfy
//! `B.seq - A.seq - 1 == B.n` starting from the subscribe-time baseline, so
//! no seq is ever delivered twice; nothing arrives for a symbol not
//! subscribed; a collection leaves the client holding the latest seq of
//! everything it subscribes to (nothing lost); and it follows the keep-up
//! rule exactly: when the oldest update the client has not seen is still
//! in the ring and younger than `max_lag` by the time the client reads it
//! (its age plus the client's read delay), it receives every missed update
//! with `n == 0`; otherwise exactly one event, the latest, whose `n`
//! counts the rest (bounded output, however long it was away).

use proptest::prelude::*;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tickfeed::codec::Encoding;
use tickfeed::protocol::{Event, SymbolSet, Tick};
use tickfeed::router::Router;
use tickfeed::sequence::{Verdict, verdict};
use tickfeed::session::outbox::{Delivery, Outbox};
use tickfeed::stats::Stats;
use tickfeed::symbols::SymbolTable;
use tokio::time::Instant;

const SYMBOLS: [&str; 5] = ["AAPL", "MSFT", "NVDA", "AMZN", "TSLA"];
/// Updates retained per symbol: small, so bursts overrun it.
const HISTORY: u64 = 32;
const MAX_LAG: Duration = Duration::from_millis(500);
const CLIENTS: usize = 3;
/// Small frames, so that collections split into several.
const MAX_FRAME_BYTES: usize = 512;

#[derive(Debug, Clone)]
enum Symbols {
    All,
    Named(Vec<usize>),
}

#[derive(Debug, Clone)]
enum Op {
    /// `count` updates of one symbol.
    Update {
        symbol: usize,
        count: u64,
    },
    Subscribe {
        client: usize,
        symbols: Symbols,
        snapshot: bool,
    },
    Unsubscribe {
        client: usize,
        symbols: Symbols,
    },
    /// The client's session drains its mailbox; the client's last round
    /// trip (its read delay) was `rtt_ms`.
    Collect {
        client: usize,
        rtt_ms: u64,
    },
    /// Time passes (a pause, or a slow reader's time between reads).
    Wait {
        ms: u64,
    },
}

fn symbols() -> impl Strategy<Value = Symbols> {
    prop_oneof![
        1 => Just(Symbols::All),
        4 => proptest::collection::vec(0..SYMBOLS.len(), 1..4).prop_map(Symbols::Named),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..SYMBOLS.len(), prop_oneof![3 => 1..4u64, 1 => 1..(3 * HISTORY)])
            .prop_map(|(symbol, count)| Op::Update { symbol, count }),
        2 => (0..CLIENTS, symbols(), any::<bool>()).prop_map(|(client, symbols, snapshot)| Op::Subscribe { client, symbols, snapshot }),
        1 => (0..CLIENTS, symbols()).prop_map(|(client, symbols)| Op::Unsubscribe { client, symbols }),
        3 => (0..CLIENTS, prop_oneof![3 => Just(0u64), 1 => 0..700u64]).prop_map(|(client, rtt_ms)| Op::Collect { client, rtt_ms }),
        2 => prop_oneof![3 => 0..200u64, 1 => 200..1500u64].prop_map(|ms| Op::Wait { ms }),
    ]
}

/// What the protocol lets one client expect, kept beside its outbox.
#[derive(Default)]
struct Expect {
    named: HashSet<usize>,
    wildcard: bool,
    excluded: HashSet<usize>,
    /// Per subscribed symbol: the last live seq received, or the baseline.
    last: HashMap<usize, u64>,
}

impl Expect {
    fn subscribed(&self, symbol: usize) -> bool {
        self.named.contains(&symbol) || (self.wildcard && !self.excluded.contains(&symbol))
    }

    /// Starts a subscription period for symbols that were not subscribed.
    fn begin(&mut self, symbol: usize, latest: u64) {
        self.last.entry(symbol).or_insert(latest);
    }

    /// Ends the periods of symbols no longer subscribed.
    fn end_unsubscribed(&mut self) {
        let gone: Vec<usize> = self
            .last
            .keys()
            .copied()
            .filter(|s| !self.subscribed(*s))
            .collect();
        for symbol in gone {
            self.last.remove(&symbol);
        }
    }
}

struct Client {
    outbox: Outbox,
    expect: Expect,
}

struct World {
    router: Router,
    table: Arc<SymbolTable>,
    clients: Vec<Client>,
    seq: [u64; SYMBOLS.len()],
    /// When each update of each symbol was routed, by seq.
    routed_at: [HashMap<u64, Instant>; SYMBOLS.len()],
    encoding: Encoding,
    runtime: tokio::runtime::Runtime,
}

fn tick(sym: &str, seq: u64) -> Tick {
    Tick {
        ts: seq,
        ..Tick::test(sym, seq)
    }
}

fn names(indices: &[usize]) -> Vec<String> {
    // Deduplicated in request order, as `protocol` hands them over.
    let mut seen = HashSet::new();
    indices
        .iter()
        .filter(|i| seen.insert(**i))
        .map(|&i| SYMBOLS[i].to_string())
        .collect()
}

impl World {
    /// A world on `runtime`'s paused clock: call inside `runtime.enter()`.
    fn new(encoding: Encoding, runtime: tokio::runtime::Runtime) -> World {
        let table = Arc::new(SymbolTable::new(16));
        let mut router = Router::new(table.clone(), Arc::new(Stats::new()))
            .with_history(HISTORY as usize, usize::MAX);
        // Every symbol trades once, so every one exists.
        router.route(SYMBOLS.iter().map(|s| tick(s, 1)).collect());
        let clients = (0..CLIENTS)
            .map(|_| Client {
                outbox: Outbox::new(table.clone(), encoding, MAX_FRAME_BYTES, MAX_LAG),
                expect: Expect::default(),
            })
            .collect();
        World {
            router,
            table,
            clients,
            seq: [1; SYMBOLS.len()],
            routed_at: std::array::from_fn(|_| HashMap::from([(1, Instant::now())])),
            encoding,
            runtime,
        }
    }

    fn symbol_index(&self, id: u32) -> usize {
        let name = self.table.cell(id).name().expect("named symbol");
        SYMBOLS
            .iter()
            .position(|s| **s == **name)
            .expect("known symbol")
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Update { symbol, count } => {
                let ticks = (0..*count)
                    .map(|_| {
                        self.seq[*symbol] += 1;
                        self.routed_at[*symbol].insert(self.seq[*symbol], Instant::now());
                        tick(SYMBOLS[*symbol], self.seq[*symbol])
                    })
                    .collect();
                self.router.route(ticks);
            }
            Op::Subscribe {
                client,
                symbols,
                snapshot,
            } => self.subscribe(*client, symbols, *snapshot)?,
            Op::Unsubscribe { client, symbols } => self.unsubscribe(*client, symbols),
            Op::Collect { client, rtt_ms } => {
                self.collect(*client, Duration::from_millis(*rtt_ms))?
            }
            Op::Wait { ms } => self
                .runtime
                .block_on(tokio::time::advance(Duration::from_millis(*ms))),
        }
        Ok(())
    }

    /// What `session::requests` does for a subscribe.
    fn subscribe(
        &mut self,
        c: usize,
        symbols: &Symbols,
        snapshot: bool,
    ) -> Result<(), TestCaseError> {
        let client = &mut self.clients[c];
        let mailbox = client.outbox.mailbox();
        let set = match symbols {
            Symbols::All => SymbolSet::All,
            Symbols::Named(indices) => SymbolSet::Named(names(indices)),
        };
        let granted = self.router.subscribe(c as u64, mailbox, set).granted;
        if matches!(symbols, Symbols::All) {
            client.outbox.add_wildcard(Delivery::default());
        }
        let mut reply = Vec::new();
        client.outbox.add(
            &granted,
            Delivery::default(),
            snapshot,
            &mut reply,
            Instant::now(),
        );
        match symbols {
            Symbols::All => {
                client.expect.wildcard = true;
                client.expect.excluded.clear();
            }
            Symbols::Named(indices) => {
                for &i in indices {
                    client.expect.named.insert(i);
                    client.expect.excluded.remove(&i);
                }
            }
        }
        let granted_symbols: Vec<usize> = granted.iter().map(|g| self.symbol_index(g.id)).collect();
        for &symbol in &granted_symbols {
            self.clients[c].expect.begin(symbol, self.seq[symbol]);
        }
        let snapshots: Vec<&Tick> = reply
            .iter()
            .filter_map(|e| {
                if let Event::Tick(t) = e {
                    Some(t)
                } else {
                    None
                }
            })
            .collect();
        prop_assert_eq!(
            snapshots.len(),
            if snapshot { granted_symbols.len() } else { 0 }
        );
        for snap in snapshots {
            let symbol = SYMBOLS.iter().position(|s| **s == *snap.sym).unwrap();
            prop_assert_eq!(snap.snap, Some(true));
            prop_assert_eq!(snap.seq, self.seq[symbol], "a snapshot is the latest value");
        }
        Ok(())
    }

    /// What `session::requests` does for an unsubscribe.
    fn unsubscribe(&mut self, c: usize, symbols: &Symbols) {
        let client = &mut self.clients[c];
        if client.outbox.mailbox_ref().is_some() {
            match symbols {
                Symbols::All => {
                    self.router.unsubscribe(c as u64, SymbolSet::All);
                    client.outbox.remove_all();
                }
                Symbols::Named(indices) => {
                    let removed = self
                        .router
                        .unsubscribe(c as u64, SymbolSet::Named(names(indices)));
                    client.outbox.remove(&removed);
                }
            }
        }
        let expect = &mut client.expect;
        match symbols {
            Symbols::All => {
                expect.named.clear();
                expect.wildcard = false;
                expect.excluded.clear();
            }
            Symbols::Named(indices) => {
                for &i in indices {
                    expect.named.remove(&i);
                    if expect.wildcard {
                        expect.excluded.insert(i);
                    }
                }
            }
        }
        expect.end_unsubscribed();
    }

    fn collect(&mut self, c: usize, read_delay: Duration) -> Result<(), TestCaseError> {
        let mut frames = Vec::new();
        let now = Instant::now();
        let client = &mut self.clients[c];
        let before: HashMap<usize, u64> = client.expect.last.clone();
        // The session's writes until it is idle: each takes one full frame
        // at most, and a write that held some back wakes the next one.
        loop {
            let written = frames.len();
            client.outbox.collect(now, read_delay, &mut frames);
            if frames.len() == written {
                break;
            }
        }
        let mut per_symbol: HashMap<usize, u64> = HashMap::new();
        for frame in &frames {
            prop_assert!(
                frame.len() <= MAX_FRAME_BYTES + 512,
                "frame of {} bytes",
                frame.len()
            );
            for event in decode(self.encoding, frame) {
                let Event::Tick(t) = event else {
                    return Err(TestCaseError::fail("only ticks are collected"));
                };
                let symbol = SYMBOLS.iter().position(|s| **s == *t.sym).unwrap();
                prop_assert!(
                    client.expect.subscribed(symbol),
                    "{} arrived unsubscribed",
                    t.sym
                );
                prop_assert!(t.snap.is_none());
                let last = client
                    .expect
                    .last
                    .get_mut(&symbol)
                    .expect("a subscription period");
                prop_assert_eq!(
                    verdict(Some(*last), t.seq, u64::from(t.n), false),
                    Verdict::Ok,
                    "{}: seq {} after {} with n {}",
                    t.sym,
                    t.seq,
                    last,
                    t.n
                );
                *last = t.seq;
                *per_symbol.entry(symbol).or_default() += 1;
            }
        }
        for (&symbol, &last) in &client.expect.last {
            prop_assert_eq!(
                last,
                self.seq[symbol],
                "{} not up to date after a collection",
                SYMBOLS[symbol]
            );
            let sent = per_symbol.get(&symbol).copied().unwrap_or(0);
            let Some(&previous) = before.get(&symbol) else {
                continue;
            };
            let missed = last - previous;
            if missed == 0 {
                prop_assert_eq!(sent, 0);
                continue;
            }
            let oldest_missed_at = self.routed_at[symbol][&(previous + 1)];
            let age_when_read = now + read_delay - oldest_missed_at;
            let keeps_up = missed <= HISTORY && age_when_read <= MAX_LAG;
            prop_assert_eq!(
                sent,
                if keeps_up { missed } else { 1 },
                "{} missed {} updates, the oldest {:?} old when read",
                SYMBOLS[symbol],
                missed,
                age_when_read
            );
        }
        prop_assert!(client.outbox.subscription_count() <= SYMBOLS.len() + 1);
        Ok(())
    }
}

fn decode(encoding: Encoding, frame: &[u8]) -> Vec<Event> {
    let value: Value = match encoding {
        Encoding::Json => serde_json::from_slice(frame).expect("JSON frame"),
        Encoding::Msgpack => rmp_serde::from_slice(frame).expect("MessagePack frame"),
    };
    serde_json::from_value(value).expect("an array of events")
}

proptest! {
    // Failures print their minimal case; no regression files in the tree.
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn conflation_invariant_and_bounded_output_hold_for_any_interleaving(
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
        // Whatever happened, a final collection brings everyone up to date.
        for client in 0..CLIENTS {
            world.apply(&Op::Collect { client, rtt_ms: 0 })?;
        }
    }
}
