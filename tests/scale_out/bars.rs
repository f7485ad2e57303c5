//! Bars through NATS edges (`docs/scaling.md`, "Bars through edges"): an
//! edge whose first client of a symbol's bars comes takes the source's
//! bars of it, so a client of a brand-new edge gets the same bars as on
//! the source, from the bar that was open before the edge served the
//! symbol on, and the edge's `/api/bars` answers as the source's, history
//! included.
//!
//! The source replays `feeds/sample.csv`: bars on a replay close by the
//! file's time (`xt`), so which bar each trade lands in is the same on
//! every node, and the comparison is exact.

use super::cluster::{Broker, Node};
use super::common::{Client, Scratch, poll};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// `feeds/sample.csv` at twice its pace, looping: AAPL trades every second.
fn replay() -> [&'static str; 5] {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/feeds/sample.csv");
    ["--replay", sample, "--speed", "2", "--loop"]
}

/// `/api/bars` of `sym` in 1s on `node`, bars starting before `to`.
async fn api_bars(node: &Node, sym: &str, to: u64) -> Vec<Value> {
    let path = format!("/api/bars?sym={sym}&tf=1s&limit=10000&to={to}");
    let bars = node.get_json(&path).await;
    bars.as_array()
        .unwrap_or_else(|| panic!("{path}: {bars}"))
        .clone()
}

/// The final bars in `bars`, by `t`.
fn finals_by_t(bars: &[Value]) -> BTreeMap<u64, Value> {
    bars.iter()
        .filter(|b| b["final"] == true)
        .map(|b| (b["t"].as_u64().unwrap(), b.clone()))
        .collect()
}

/// The bar's values, without the fields that say how it was sent.
fn values(bar: &Value) -> Value {
    let fields = ["t", "o", "h", "l", "c", "v", "trades", "vwap"];
    fields
        .iter()
        .map(|f| (f.to_string(), bar[f].clone()))
        .collect()
}

/// Waits until the source holds at least `count` final 1s bars of `sym`;
/// returns the newest one's start.
async fn source_finals(source: &Node, sym: &str, count: usize) -> u64 {
    poll(
        &format!("{count} final 1s bars of {sym} on the source"),
        || async {
            let finals = finals_by_t(&api_bars(source, sym, u64::MAX).await);
            (finals.len() >= count).then(|| *finals.keys().last().unwrap())
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bars_on_a_fresh_edge_equal_the_sources_including_those_from_before_it_served_the_symbol() {
    let scratch = Scratch::new("bars");
    let broker = Broker::start(&scratch).await;
    let source = Node::start(&scratch, "source", "source", &broker.url(), &replay()).await;
    // History the edge never saw: three 1s bars close on the source first.
    let before_edge = source_finals(&source, "AAPL", 3).await;
    let edge = Node::start(&scratch, "edge", "edge", &broker.url(), &[]).await;

    // A ticks client makes the edge serve AAPL, but takes no bars from
    // the source.
    let mut ticks = Client::connect(&edge.ws_url()).await;
    let ack = ticks
        .request(json!({"op":"subscribe","id":1,"symbols":["AAPL"]}))
        .await;
    assert_eq!(ack["ev"], "ack", "{ack}");
    ticks
        .wait_event(|e| e["ev"] == "tick" && e.get("snap").is_none())
        .await;
    let status = edge.get_json("/api/stats").await["source"].clone();
    assert_eq!(status["counters"]["bars_seeded"], 0, "{status}");

    // A bars client on the edge: snapshot first, then finals, each once
    // and in order, the first of them the bar that was open before its
    // subscribe, with the trades from before the edge served AAPL.
    let mut client = Client::connect(&edge.ws_url()).await;
    let ack = client
        .request(json!({"op":"subscribe","id":1,"channel":"bars","tf":"1s","symbols":["AAPL"]}))
        .await;
    assert_eq!(ack["ev"], "ack", "{ack}");
    let mut finals: Vec<Value> = Vec::new();
    while finals.len() < 4 {
        let bar = client.wait_event(|e| e["ev"] == "bar").await;
        if bar["final"] == true {
            finals.push(bar);
        }
    }
    let starts: Vec<u64> = finals.iter().map(|b| b["t"].as_u64().unwrap()).collect();
    assert!(
        starts.windows(2).all(|w| w[0] < w[1]),
        "finals once each, in order: {starts:?}"
    );
    let last = *starts.last().unwrap();
    let on_source = finals_by_t(&api_bars(&source, "AAPL", last + 1).await);
    for bar in &finals {
        let t = bar["t"].as_u64().unwrap();
        let expected = on_source
            .get(&t)
            .unwrap_or_else(|| panic!("the source has no final bar at {t}"));
        assert_eq!(values(bar), values(expected), "the final bar at {t}");
    }

    // The edge's /api/bars is the source's, with the bars from before it
    // started: every bar before `last` is final on both.
    let on_edge = api_bars(&edge, "AAPL", last).await;
    assert_eq!(on_edge, api_bars(&source, "AAPL", last).await);
    assert!(
        finals_by_t(&on_edge).contains_key(&before_edge),
        "the edge holds the bars from before it served AAPL"
    );
    let status = edge.get_json("/api/stats").await["source"].clone();
    assert_eq!(status["counters"]["bars_seeded"], 1, "{status}");
    assert_eq!(status["counters"]["bars_unseeded"], 0, "{status}");

    // A symbol the edge does not serve: its /api/bars asks the source.
    let msft_last = source_finals(&source, "MSFT", 2).await;
    assert_eq!(
        api_bars(&edge, "MSFT", msft_last).await,
        api_bars(&source, "MSFT", msft_last).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_whose_source_does_not_answer_says_so_and_serves_bars_of_its_own() {
    let scratch = Scratch::new("bars-no-source");
    let broker = Broker::start(&scratch).await;
    // The source stores the epoch and the universe, then is gone.
    let source = Node::start(&scratch, "source", "source", &broker.url(), &replay()).await;
    source_finals(&source, "AAPL", 1).await;
    source.kill().await;
    let edge = Node::start(&scratch, "edge", "edge", &broker.url(), &[]).await;

    let mut client = Client::connect(&edge.ws_url()).await;
    let ack = client
        .request(json!({"op":"subscribe","id":1,"channel":"bars","tf":"1s","symbols":["AAPL"]}))
        .await;
    assert_eq!(ack["ev"], "ack", "{ack}");
    let status = edge.get_json("/api/stats").await["source"].clone();
    assert_eq!(status["counters"]["bars_unseeded"], 1, "{status}");
    let log = std::fs::read_to_string(scratch.file("edge.log")).unwrap();
    assert!(
        log.contains("asking the source for the bars of AAPL"),
        "the edge logs why: {log}"
    );
    let bars = edge.get_json("/api/bars?sym=AAPL&tf=1s").await;
    assert!(bars.is_array(), "/api/bars answers from the edge: {bars}");
}
