//! The page's pure logic evaluated in the browser: the MessagePack decoder
//! (web/js/msgpack.js) against bytes from rmp-serde, the latency window
//! (web/js/latency.js) against known values, trade detection and tick
//! direction (web/js/tape.js), and resume bookkeeping (web/js/resume.js,
//! with the subscribes web/js/ratecontrol.js plans from it), and field
//! deltas expanded to full ticks (web/js/deltas.js). Part of
//! `tests/dashboard.rs`.

use super::browser::Browser;
use super::open;
use serde::Serialize;
use serde_json::{Value, json};

/// `serialize_bytes`, so rmp-serde writes MessagePack `bin`.
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

#[derive(Serialize)]
struct Kinds {
    nil: Option<u8>,
    yes: bool,
    no: bool,
    u8_max: u8,
    u16_max: u16,
    u32_max: u32,
    u64_big: u64,
    i8_min: i8,
    i16_min: i16,
    i32_min: i32,
    i64_min: i64,
    neg_fix: i8,
    f32_val: f32,
    f64_val: f64,
    empty: String,
    fixstr: String,
    str8: String,
    str16: String,
    str32: String,
    utf8: String,
    bin8: Bytes,
    bin16: Bytes,
    array16: Vec<u16>,
    nested: Vec<Vec<i64>>,
}

/// Decode `bytes` in the page; BigInts come back as decimal strings.
async fn page_decode(b: &Browser, bytes: &[u8], bigint: bool) -> Value {
    let script = "const v = tickfeed.msgpackDecode(Uint8Array.from(arguments[0]), { bigint: arguments[1] }); \
        return JSON.parse(JSON.stringify(v, (k, x) => typeof x === 'bigint' ? x.toString() : \
            x instanceof Uint8Array ? { bin: Array.from(x) } : x));";
    b.js_with(script, vec![json!(bytes), json!(bigint)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_decoder_matches_rmp_serde_bytes() {
    let (server, b) = open("/?symbols=").await;

    // A real frame shape: every event kind, with a nanosecond timestamp above 2^53.
    let ts: u64 = 1_764_000_000_123_456_789;
    let frame = json!([
        {"ev": "hello", "v": 1, "server": "tickfeed 0.1.0", "session": "k3J9x", "encoding": "msgpack", "heartbeat_s": 15, "symbols": 500},
        {"ev": "ack", "id": 1, "op": "subscribe", "symbols": ["AAPL", "MSFT"]},
        {"ev": "error", "id": 2, "code": "unknown_symbol", "msg": "no such symbol: XXX", "symbols": ["XXX"]},
        {"ev": "pong", "id": 4, "t": 123},
        {"ev": "tick", "sym": "AAPL", "seq": 42, "ts": ts, "px": 189.25, "sz": 100, "bid": 189.24, "ask": 189.26,
         "bsz": 300, "asz": 200, "vol": 1_234_567, "n": 0, "snap": true},
    ]);
    let bytes = rmp_serde::to_vec_named(&frame).expect("encode");
    let exact = page_decode(&b, &bytes, true).await;
    let mut expected = frame.clone();
    expected[4]["ts"] = json!(ts.to_string());
    assert_eq!(exact, expected, "bigint mode is exact");
    let plain = page_decode(&b, &bytes, false).await;
    let got = plain[4]["ts"].as_f64().expect("ts as a Number by default");
    assert!(
        (got - ts as f64).abs() <= 256.0,
        "ts as a double within its precision: {got}"
    );

    // Every MessagePack family rmp-serde writes.
    let kinds = Kinds {
        nil: None,
        yes: true,
        no: false,
        u8_max: u8::MAX,
        u16_max: u16::MAX,
        u32_max: u32::MAX,
        u64_big: u64::MAX,
        i8_min: i8::MIN,
        i16_min: i16::MIN,
        i32_min: i32::MIN,
        i64_min: i64::MIN,
        neg_fix: -7,
        f32_val: 0.1,
        f64_val: -1234.5678e-3,
        empty: String::new(),
        fixstr: "x".repeat(31),
        str8: "y".repeat(200),
        str16: "z".repeat(70_000 / 2),
        str32: "w".repeat(70_000),
        utf8: "déjà vu ≈ 📈".to_string(),
        bin8: Bytes(vec![0, 1, 2, 255]),
        bin16: Bytes((0..300u32).map(|i| i as u8).collect()),
        array16: (0..20).collect(),
        nested: vec![vec![], vec![-1, 1 << 40, -(1 << 40)]],
    };
    let bytes = rmp_serde::to_vec_named(&kinds).expect("encode");
    let got = page_decode(&b, &bytes, true).await;
    let expected = json!({
        "nil": null, "yes": true, "no": false,
        "u8_max": 255, "u16_max": 65535, "u32_max": 4_294_967_295u64, "u64_big": u64::MAX.to_string(),
        "i8_min": -128, "i16_min": -32768, "i32_min": -2_147_483_648i64, "i64_min": i64::MIN.to_string(),
        "neg_fix": -7, "f32_val": 0.1f32 as f64, "f64_val": -1234.5678e-3,
        "empty": "", "fixstr": kinds.fixstr, "str8": kinds.str8, "str16": kinds.str16, "str32": kinds.str32,
        "utf8": "déjà vu ≈ 📈",
        "bin8": {"bin": [0, 1, 2, 255]}, "bin16": {"bin": kinds.bin16.0},
        "array16": kinds.array16, "nested": [[], [-1, 1u64 << 40, -(1i64 << 40)]],
    });
    assert_eq!(got, expected);

    // A map with more than 15 keys (map16) and non-string keys.
    let mut big = serde_json::Map::new();
    for i in 0..40 {
        big.insert(format!("k{i}"), json!(i));
    }
    let bytes = rmp_serde::to_vec_named(&Value::Object(big.clone())).expect("encode");
    assert_eq!(page_decode(&b, &bytes, false).await, Value::Object(big));
    let int_keys: std::collections::BTreeMap<u32, &str> = [(1, "a"), (300, "b")].into();
    let bytes = rmp_serde::to_vec_named(&int_keys).expect("encode");
    assert_eq!(
        page_decode(&b, &bytes, false).await,
        json!({"1": "a", "300": "b"})
    );

    // Extensions (hand-made: rmp-serde does not write them) and bad input.
    let mut ext = Vec::new();
    rmp::encode::write_ext_meta(&mut ext, 4, 5).expect("ext header");
    ext.extend_from_slice(&[9, 8, 7, 6]);
    assert_eq!(
        page_decode(&b, &ext, false).await,
        json!({"ext": 5, "data": {"bin": [9, 8, 7, 6]}})
    );
    let errors = b
        .js(
            "const bad = [[0x92, 0x01], [0x01, 0x02], [0xc1], [0xcd, 0x01]]; \
             return bad.map(x => { try { tickfeed.msgpackDecode(Uint8Array.from(x)); return 'decoded'; } \
                                   catch (e) { return e.message; } });",
        )
        .await;
    let errors: Vec<String> = serde_json::from_value(errors).unwrap();
    assert!(errors[0].contains("truncated"), "{errors:?}");
    assert!(errors[1].contains("trailing"), "{errors:?}");
    assert!(errors[2].contains("reserved"), "{errors:?}");
    assert!(errors[3].contains("truncated"), "{errors:?}");
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_window_reports_known_percentiles() {
    let (server, b) = open("/?symbols=").await;
    let got = b
        .js("const W = tickfeed.LatencyWindow; \
             const w = new W({ windowMs: 1000, maxSamples: 1000 }); \
             for (let i = 100; i >= 1; i--) w.add(i, 101 - i); \
             const full = w.summary(100); \
             const slid = w.summary(1050); \
             const capped = new W({ windowMs: 1e9, maxSamples: 10 }); \
             for (let i = 1; i <= 20; i++) capped.add(i, i); \
             const empty = new W().summary(0); \
             return { full, slid, capped: capped.summary(20), emptyCount: empty.count, \
                      emptyP50: String(empty.p50), p: W.percentile(Float64Array.from([5]), 99) };")
        .await;
    // Samples 100 down to 1 at times 1..100: nearest-rank percentiles.
    assert_eq!(got["full"]["count"], json!(100));
    assert_eq!(got["full"]["p50"], json!(50));
    assert_eq!(got["full"]["p90"], json!(90));
    assert_eq!(got["full"]["p99"], json!(99));
    assert_eq!(got["full"]["max"], json!(100));
    assert_eq!(got["full"]["min"], json!(1));
    assert_eq!(got["full"]["mean"], json!(50.5));
    // At 1050 the window (1000 ms) keeps times >= 50: values 51 down to 1.
    assert_eq!(got["slid"]["count"], json!(51));
    assert_eq!(got["slid"]["max"], json!(51));
    assert_eq!(got["slid"]["p50"], json!(26));
    // The count bound keeps the newest 10 samples: 11..20.
    assert_eq!(got["capped"]["count"], json!(10));
    assert_eq!(got["capped"]["min"], json!(11));
    assert_eq!(got["capped"]["p50"], json!(15));
    assert_eq!(got["emptyCount"], json!(0));
    assert_eq!(got["emptyP50"], json!("NaN"));
    assert_eq!(got["p"], json!(5));
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}

/// One symbol's ticks as the time & sales tape meets them.
fn tape_ticks() -> Value {
    let tick = |seq: u64, px: f64, vol: u64| {
        json!({"ev": "tick", "sym": "ACME", "seq": seq, "n": 0, "px": px, "vol": vol,
               "ts": 1_764_000_000_000_000_000u64 + seq * 1_000_000})
    };
    let mut snapshot = tick(1, 10.0, 1_000);
    snapshot["snap"] = json!(true);
    let mut merged = tick(10, 10.2, 2_600);
    merged["n"] = json!(1);
    merged["xt"] = json!(1_700_000_000_123_000_000u64);
    let mut next_snapshot = tick(11, 10.3, 2_700);
    next_snapshot["snap"] = json!(true);
    json!([
        snapshot,             // the first tick: a baseline
        tick(2, 10.0, 1_000), // a quote: vol unchanged
        tick(3, 10.5, 1_100), // the first trade: no direction yet
        tick(4, 10.6, 1_300), // uptick
        tick(5, 10.6, 1_400), // zero-plus: stays up
        tick(5, 10.6, 1_400), // a seq already folded in: skipped
        tick(6, 10.4, 1_500), // downtick
        tick(7, 10.4, 1_600), // zero-minus: stays down
        tick(8, 10.9, 1_600), // px moved but vol did not: a quote
        merged,               // two updates in one: one trade of their sum, timed by xt
        next_snapshot,        // a snapshot right after: an update like any other
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_are_volume_rises_with_zero_plus_and_zero_minus_ticks() {
    let (server, b) = open("/?symbols=").await;
    let got = b
        .js_with(
            "const tape = new tickfeed.TradeTape(4); \
             const made = arguments[0].map(t => tape.push(t)); \
             return { made: made.map(t => t && [t.seq, t.px, t.size, t.dir, t.n, Math.round(t.ms)]), \
                      kept: tape.trades.map(t => t.seq), count: tape.count, \
                      noPrev: tickfeed.tradeOf(null, arguments[0][2]), \
                      firstDir: tickfeed.tickDirection(undefined, 0, 5) };",
            vec![tape_ticks()],
        )
        .await;
    // Milliseconds since the epoch: from `ts`, or `xt` where the tick has one.
    let ms = |seq: u64| 1_764_000_000_000 + seq;
    assert_eq!(
        got["made"],
        json!([
            null,
            null,
            [3, 10.5, 100, 0, 0, ms(3)],
            [4, 10.6, 200, 1, 0, ms(4)],
            [5, 10.6, 100, 1, 0, ms(5)],
            null,
            [6, 10.4, 100, -1, 0, ms(6)],
            [7, 10.4, 100, -1, 0, ms(7)],
            null,
            [10, 10.2, 1000, -1, 1, 1_700_000_000_123u64],
            [11, 10.3, 100, 1, 0, ms(11)],
        ])
    );
    assert_eq!(
        got["kept"],
        json!([6, 7, 10, 11]),
        "the newest 4, oldest first"
    );
    assert_eq!(got["count"], json!(7));
    assert_eq!(
        got["noPrev"],
        json!(null),
        "no trade without a previous tick"
    );
    assert_eq!(got["firstDir"], json!(0));
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seq_book_drops_duplicates_resumes_from_held_seqs_and_forgets_them_on_a_new_epoch() {
    let (server, b) = open("/?symbols=").await;
    let got = b
        .js(
            "const book = new tickfeed.SeqBook(); \
             const t = (sym, seq, n, snap) => ({ sym, seq, n, snap }); \
             const r = {}; \
             r.first = book.hello('e1'); \
             r.observed = [t('A', 5, 0, true), t('A', 6, 0), t('A', 6, 0), t('A', 9, 1), t('B', 3, 0, true), \
                           t('C', 1, 0, true)].map(x => book.observe(x)); \
             r.counts = [book.dups, book.gaps]; \
             r.named = book.resumeFor(['A', 'B', 'X']); \
             r.wild = book.resumeFor(['*'], new Set(['C'])); \
             r.none = book.resumeFor(['X']); \
             r.same = book.hello('e1'); \
             r.kept = book.resumeFor(['A']); \
             r.other = book.hello('e2'); \
             r.forgotten = book.resumeFor(['A']); \
             r.lowerSnapshot = book.observe(t('A', 2, 0, true)); \
             r.nextLive = book.observe(t('A', 3, 0)); \
             const plain = tickfeed.planSubscribe({ symbols: ['A', 'B', 'C'], all: false, globalHz: 0, \
               symHz: { C: 4 }, snapshot: true, resume: (s, x) => book.resumeFor(s, x) }); \
             const all = tickfeed.planSubscribe({ symbols: ['A', 'C'], all: true, globalHz: 0, \
               symHz: { A: 1 }, snapshot: true, resume: (s, x) => book.resumeFor(s, x) }); \
             r.plans = [plain, all].map(p => p.map(q => [q.symbols, q.epoch || null, q.from || null])); \
             return r;",
        )
        .await;
    assert_eq!(got["first"], "first");
    assert_eq!(
        got["observed"],
        json!([true, true, false, true, true, true])
    );
    assert_eq!(
        got["counts"],
        json!([1, 1]),
        "one duplicate dropped, one gap n did not count"
    );
    assert_eq!(
        got["named"],
        json!({"epoch": "e1", "from": {"A": 9, "B": 3}})
    );
    assert_eq!(
        got["wild"],
        json!({"epoch": "e1", "from": {"A": 9, "B": 3}})
    );
    assert_eq!(got["none"], json!(null), "nothing held: a plain subscribe");
    assert_eq!(got["same"], "same");
    assert_eq!(got["kept"], json!({"epoch": "e1", "from": {"A": 9}}));
    assert_eq!(got["other"], "new");
    assert_eq!(
        got["forgotten"],
        json!(null),
        "a new epoch forgets the seqs"
    );
    assert_eq!(
        got["lowerSnapshot"],
        json!(true),
        "a snapshot in the new seq space is taken"
    );
    assert_eq!(got["nextLive"], json!(true));
    // In epoch e2 only A is held (seq 3).
    assert_eq!(
        got["plans"],
        json!([
            [[["A", "B"], "e2", {"A": 3}], [["C"], null, null]],
            [[["*"], null, null], [["A"], "e2", {"A": 3}]],
        ])
    );
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_acks_add_up_to_the_badge_words() {
    let (server, b) = open("/?symbols=").await;
    let got = b
        .js(
            "const note = (kind, asked, acks) => tickfeed.resumeNote(kind, asked, tickfeed.tallyResumed(acks)); \
             return { tally: tickfeed.tallyResumed([{ AAPL: 0, MSFT: 37 }, { TSLA: null, NVDA: 1200 }]), \
                      notes: [note('same', true, [{ AAPL: 0 }, { MSFT: 0 }]), \
                              note('same', true, [{ AAPL: 0, MSFT: 37 }, { NVDA: 1200 }]), \
                              note('same', true, [{ AAPL: 3, TSLA: null }]), \
                              note('same', true, [{ TSLA: null }]), \
                              note('same', true, []), \
                              note('new', true, [{ TSLA: null }]), \
                              note('same', false, []), \
                              note('first', false, [])] };",
        )
        .await;
    assert_eq!(
        got["tally"],
        json!({"resumed": 3, "missed": 1237, "snapshots": 1, "worst": [["NVDA", 1200], ["MSFT", 37]]})
    );
    assert_eq!(
        got["notes"],
        json!([
            "resumed · 0 missed",
            "resumed · 1,237 missed",
            "resumed · 3 missed · 1 snapshot",
            "new session · snapshots",
            "resuming…",
            "new session · snapshots",
            "",
            "",
        ])
    );
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deltas_expand_to_full_ticks_and_null_clears_a_field() {
    let (server, b) = open("/?symbols=").await;
    let got = b
        .js_with(
            "const book = new tickfeed.DeltaBook(); \
             return arguments[0].map(t => book.expand(t)).concat([{ applied: book.applied, orphans: book.orphans }]);",
            vec![json!([
                {"ev": "tick", "sym": "A", "seq": 1, "ts": 10, "px": 5.5, "sz": 100, "bid": 4.9, "ask": 5.1, "vol": 100, "n": 0},
                {"ev": "tick", "sym": "A", "seq": 2, "ts": 11, "bid": 4.95, "d": 1, "n": 0},
                {"ev": "tick", "sym": "A", "seq": 3, "ts": 12, "ask": null, "vol": 200, "d": 1, "n": 0},
            ])],
        )
        .await;
    assert_eq!(
        got,
        json!([
            {"ev": "tick", "sym": "A", "seq": 1, "ts": 10, "px": 5.5, "sz": 100, "bid": 4.9, "ask": 5.1, "vol": 100, "n": 0},
            {"ev": "tick", "sym": "A", "seq": 2, "ts": 11, "px": 5.5, "sz": 100, "bid": 4.95, "ask": 5.1, "vol": 100, "n": 0},
            {"ev": "tick", "sym": "A", "seq": 3, "ts": 12, "px": 5.5, "sz": 100, "bid": 4.95, "vol": 200, "n": 0},
            {"applied": 2, "orphans": 0},
        ])
    );
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}
