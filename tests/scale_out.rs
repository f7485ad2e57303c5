//! Scale-out through NATS, end to end: a real nats-server with JetStream,
//! one source node and edge nodes, each tickfeed node a separate process of
//! the built binary (`scale_out/cluster.rs`), and protocol clients on the
//! edges (`common`); a three-server NATS cluster losing the edge's server
//! in `scale_out/failover.rs`. Tests wait for conditions with deadlines, never for
//! fixed times, and compare seqs and counts, never timings. Resuming
//! through edges and the epoch are in `scale_out/resume.rs`, bars through
//! edges in `scale_out/bars.rs`, books in `scale_out/book.rs`.
//!
//! Needs Debian's `nats-server` (`apt-get install -y nats-server`; `.ci/run`
//! installs it); the tests fail, never skip, when it is missing.

#[path = "scale_out/bars.rs"]
mod bars;
#[path = "scale_out/book.rs"]
mod book;
#[path = "scale_out/cluster.rs"]
mod cluster;
mod common;
#[path = "scale_out/costs.rs"]
mod costs;
#[path = "scale_out/failover.rs"]
mod failover;
#[path = "scale_out/resume.rs"]
mod resume;

use cluster::{Broker, Node};
use common::{Client, Scratch, check_seq, is_tick, poll};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tickfeed::clock::now_ns;
use tickfeed::sequence::SeqByName;

/// A generator busy enough to matter and regular enough to reason about:
/// round-robin over 20 symbols, 100 updates per second each.
const FEED: &[&str] = &[
    "--rate",
    "2000",
    "--symbols",
    "20",
    "--skew",
    "0",
    "--seed",
    "7",
];

fn seq(tick: &Value) -> u64 {
    tick["seq"].as_u64().expect("seq")
}

fn n(tick: &Value) -> u64 {
    tick["n"].as_u64().expect("n")
}

/// Subscribes and checks the ack.
async fn subscribe(client: &mut Client, symbols: &[&str]) {
    let reply = client
        .request(json!({"op": "subscribe", "id": 1, "symbols": symbols}))
        .await;
    assert_eq!(reply["ev"], "ack", "{reply}");
}

async fn unsubscribe(client: &mut Client, symbols: &[&str]) {
    let reply = client
        .request(json!({"op": "unsubscribe", "id": 2, "symbols": symbols}))
        .await;
    assert_eq!(reply["ev"], "ack", "{reply}");
}

/// The next live (not snapshot) tick of `sym`.
async fn next_live(client: &mut Client, sym: &str) -> Value {
    client
        .wait_event(|e| is_tick(e) && e["sym"] == sym && e.get("snap").is_none())
        .await
}

/// Reads live ticks of `sym` until `done` holds for the ones read so far.
async fn live_until(client: &mut Client, sym: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut ticks = Vec::new();
    while !done(&ticks) {
        ticks.push(next_live(client, sym).await);
    }
    ticks
}

/// The protocol's conflation invariant over consecutive live ticks: `seq`
/// only rises, and every update not sent is counted in the next `n`.
fn assert_accounted(ticks: &[Value]) {
    let mut seqs = SeqByName::new();
    for tick in ticks {
        check_seq(&mut seqs, tick);
    }
}

/// Reads live ticks of `sym` on both clients at once, `count` each.
async fn read_both(
    a: &mut Client,
    b: &mut Client,
    sym: &str,
    count: usize,
) -> (Vec<Value>, Vec<Value>) {
    let enough = |ticks: &[Value]| ticks.len() >= count;
    tokio::join!(live_until(a, sym, enough), live_until(b, sym, enough))
}

/// Reads live ticks of `sym` on both clients at once until each has read
/// a tick with `n > 0` (updates lost in an outage) and `after` more.
async fn read_both_through_gap(
    a: &mut Client,
    b: &mut Client,
    sym: &str,
    after: usize,
) -> (Vec<Value>, Vec<Value>) {
    let through_gap = |ticks: &[Value]| {
        ticks
            .iter()
            .position(|t| n(t) > 0)
            .is_some_and(|gap| ticks.len() > gap + after)
    };
    tokio::join!(
        live_until(a, sym, through_gap),
        live_until(b, sym, through_gap)
    )
}

/// Two clients of different edges got the same updates: each stream is
/// accounted, and every seq both received is the same update, field for
/// field. A session may merge an update for a client that was momentarily
/// not writable (CPU contention), so a seq one client got can be missing
/// from the other's stream; it is then counted in that stream's `n`.
fn assert_same_updates(a: &[Value], b: &[Value]) {
    assert_accounted(a);
    assert_accounted(b);
    let by_seq = |ticks: &[Value]| -> BTreeMap<u64, Value> {
        ticks
            .iter()
            .map(|t| {
                let mut t = t.clone();
                t.as_object_mut().unwrap().remove("n");
                (seq(&t), t)
            })
            .collect()
    };
    let (a, b) = (by_seq(a), by_seq(b));
    let common: Vec<u64> = a.keys().filter(|s| b.contains_key(s)).copied().collect();
    assert!(
        common.len() * 3 >= a.len().min(b.len()) * 2,
        "the two clients share only {} of their seqs",
        common.len()
    );
    for s in &common {
        assert_eq!(a[s], b[s], "seq {s} must be the same update on both edges");
    }
}

/// The `symbols` list of the client's edge, once it includes `sym` (the
/// universe reaches a new edge from the broker).
async fn symbols_once_known(client: &mut Client, sym: &str) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    loop {
        let reply = client.request(json!({"op": "symbols", "id": 3})).await;
        let symbols: Vec<String> = serde_json::from_value(reply["symbols"].clone()).unwrap();
        if symbols.iter().any(|s| s == sym) {
            return symbols;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the edge never learned {sym}: {symbols:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The snapshot of each of `symbols` that a new client of `node` gets.
async fn snapshots(node: &Node, symbols: &[String]) -> BTreeMap<String, Value> {
    let mut client = Client::connect(&node.ws_url()).await;
    let names: Vec<&str> = symbols.iter().map(String::as_str).collect();
    subscribe(&mut client, &names).await;
    let mut snaps = BTreeMap::new();
    while snaps.len() < symbols.len() {
        let snap = client.wait_event(|e| is_tick(e) && e["snap"] == true).await;
        snaps.insert(snap["sym"].as_str().unwrap().to_string(), snap);
    }
    snaps
}

async fn ticks_in(node: &Node) -> u64 {
    node.get_json("/api/stats").await["ticks_in"]
        .as_u64()
        .expect("ticks_in")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_two_edges_get_identical_seq_streams_and_every_edge_the_same_snapshots() {
    let scratch = Scratch::new("identical");
    let broker = Broker::start(&scratch).await;
    let source = Node::start(&scratch, "source", "source", &broker.url(), FEED).await;
    let edge1 = Node::start(&scratch, "edge1", "edge", &broker.url(), &[]).await;
    let edge2 = Node::start(&scratch, "edge2", "edge", &broker.url(), &[]).await;
    let (mut a, mut b) = (
        Client::connect(&edge1.ws_url()).await,
        Client::connect(&edge2.ws_url()).await,
    );
    subscribe(&mut a, &["AAPL"]).await;
    subscribe(&mut b, &["AAPL"]).await;

    let (from_a, from_b) = read_both(&mut a, &mut b, "AAPL", 150).await;
    assert_same_updates(&from_a, &from_b);

    // The broker hop is measured on the edge.
    poll("the edge to report hop latency", || async {
        let stats = edge1.get_json("/api/stats").await;
        (stats["latency_us"]["hop"]["count"].as_u64() > Some(0)).then_some(())
    })
    .await;

    // Freeze the market, then ask both edges and a brand-new one for
    // snapshots: all come from the broker's last values and agree.
    let listed = a.request(json!({"op": "symbols", "id": 3})).await;
    let mut symbols: Vec<String> = serde_json::from_value(listed["symbols"].clone()).unwrap();
    assert_eq!(symbols.len(), 20, "the edge knows the source's universe");
    symbols.truncate(6);
    source.kill().await;
    let edge3 = Node::start(&scratch, "edge3", "edge", &broker.url(), &[]).await;
    let agreed = poll("snapshots to agree on all three edges", || async {
        let (s1, s2, s3) = (
            snapshots(&edge1, &symbols).await,
            snapshots(&edge2, &symbols).await,
            snapshots(&edge3, &symbols).await,
        );
        (s1 == s2 && s2 == s3).then_some(s3)
    })
    .await;
    assert!(
        agreed.values().all(|t| seq(t) > 0 && t["bid"].is_number()),
        "{agreed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_subscribes_to_a_symbol_only_while_a_client_wants_it() {
    let scratch = Scratch::new("interest");
    let broker = Broker::start(&scratch).await;
    let _source = Node::start(
        &scratch,
        "source",
        "source",
        &broker.url(),
        &["--rate", "200", "--symbols", "20", "--skew", "0"],
    )
    .await;
    let edge = Node::start(&scratch, "edge", "edge", &broker.url(), &[]).await;
    let name = edge.nats_name("edge");
    let (aapl, brk, msft, all) = (
        "tickfeed.ticks.AAPL",
        "tickfeed.ticks.BRK%2EB",
        "tickfeed.ticks.MSFT",
        "tickfeed.ticks.>",
    );

    broker.wait_for_subjects(&name, &[]).await;
    let mut first = Client::connect(&edge.ws_url()).await;
    subscribe(&mut first, &["AAPL"]).await;
    broker.wait_for_subjects(&name, &[aapl]).await;
    let mut second = Client::connect(&edge.ws_url()).await;
    subscribe(&mut second, &["AAPL", "BRK.B"]).await;
    broker.wait_for_subjects(&name, &[aapl, brk]).await;
    next_live(&mut second, "BRK.B").await;

    // AAPL stays while the second client holds it: after these two
    // changes the edge holds AAPL alone, not nothing.
    unsubscribe(&mut first, &["AAPL"]).await;
    unsubscribe(&mut second, &["BRK.B"]).await;
    broker.wait_for_subjects(&name, &[aapl]).await;
    drop(second);
    broker.wait_for_subjects(&name, &[]).await;

    // `*` is one subscription to every subject, in place of named ones,
    // which come back when `*` goes.
    subscribe(&mut first, &["*"]).await;
    broker.wait_for_subjects(&name, &[all]).await;
    let mut third = Client::connect(&edge.ws_url()).await;
    subscribe(&mut third, &["MSFT"]).await;
    unsubscribe(&mut first, &["*"]).await;
    broker.wait_for_subjects(&name, &[msft]).await;
    let before = seq(&next_live(&mut third, "MSFT").await);
    assert!(
        seq(&next_live(&mut third, "MSFT").await) > before,
        "MSFT flows on through its own subscription"
    );
    drop(third);
    broker.wait_for_subjects(&name, &[]).await;
    let status = edge.get_json("/api/stats").await["source"].clone();
    assert_eq!(status["kind"], "nats-edge", "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_edges_resume_after_a_broker_restart_and_clients_see_the_gap_in_n() {
    let scratch = Scratch::new("restart");
    let mut broker = Broker::start(&scratch).await;
    let source = Node::start(&scratch, "source", "source", &broker.url(), FEED).await;
    let edges = [
        Node::start(&scratch, "edge1", "edge", &broker.url(), &[]).await,
        Node::start(&scratch, "edge2", "edge", &broker.url(), &[]).await,
    ];
    let (mut a, mut b) = (
        Client::connect(&edges[0].ws_url()).await,
        Client::connect(&edges[1].ws_url()).await,
    );
    subscribe(&mut a, &["AAPL"]).await;
    subscribe(&mut b, &["AAPL"]).await;
    let some = |ticks: &[Value]| ticks.len() >= 10;
    let (mut from_a, mut from_b) = tokio::join!(
        live_until(&mut a, "AAPL", some),
        live_until(&mut b, "AAPL", some)
    );

    // The source runs on through the outage, long enough to outgrow what
    // the publisher and the NATS client hold back (about 1.3 s at this
    // rate), so that updates are really lost.
    broker.kill().await;
    let produced = ticks_in(&source).await;
    poll("the source to run on through the outage", || async {
        (ticks_in(&source).await >= produced + 6000).then_some(())
    })
    .await;
    broker.restart().await;

    let (after_a, after_b) = read_both_through_gap(&mut a, &mut b, "AAPL", 10).await;
    from_a.extend(after_a);
    from_b.extend(after_b);
    assert_accounted(&from_a);
    assert_accounted(&from_b);
    for (edge, name) in edges.iter().zip(["edge1", "edge2"]) {
        broker
            .wait_for_subjects(&edge.nats_name("edge"), &["tickfeed.ticks.AAPL"])
            .await;
        let status = edge.get_json("/api/stats").await["source"].clone();
        assert!(
            status["counters"]["reconnects"].as_u64() >= Some(1),
            "{name}: {status}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_source_continues_seq_where_the_last_one_stopped() {
    let scratch = Scratch::new("source-restart");
    let broker = Broker::start(&scratch).await;
    let first = Node::start(&scratch, "source1", "source", &broker.url(), FEED).await;
    let edge = Node::start(&scratch, "edge", "edge", &broker.url(), &[]).await;
    let mut client = Client::connect(&edge.ws_url()).await;
    subscribe(&mut client, &["AAPL"]).await;
    let mut ticks = live_until(&mut client, "AAPL", |t| t.len() >= 10).await;

    first.kill().await;
    let restarted_at = now_ns();
    let second = Node::start(&scratch, "source2", "source", &broker.url(), FEED).await;
    let from_second = |t: &Value| t["ts"].as_u64().unwrap() >= restarted_at;
    ticks.extend(
        live_until(&mut client, "AAPL", |t| {
            t.iter().filter(|t| from_second(t)).count() >= 10
        })
        .await,
    );
    assert_accounted(&ticks);
    let first_new = ticks.iter().find(|t| from_second(t)).unwrap();
    assert_eq!(
        n(first_new),
        0,
        "the new source numbers on from the last stored seq: {first_new}"
    );
    let on_source: Vec<Value> =
        serde_json::from_value(second.get_json("/api/symbols").await).unwrap();
    let aapl = on_source.iter().find(|t| t["sym"] == "AAPL").unwrap();
    assert!(
        seq(aapl) >= seq(first_new),
        "the source's own clients see the same numbering: {aapl}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_source_feeds_both_edges() {
    let scratch = Scratch::new("replay");
    let broker = Broker::start(&scratch).await;
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/feeds/sample.csv");
    let replay = ["--replay", sample, "--speed", "4", "--loop"];
    let source = Node::start(&scratch, "source", "source", &broker.url(), &replay).await;
    let edge1 = Node::start(&scratch, "edge1", "edge", &broker.url(), &[]).await;
    let edge2 = Node::start(&scratch, "edge2", "edge", &broker.url(), &[]).await;
    let (mut a, mut b) = (
        Client::connect(&edge1.ws_url()).await,
        Client::connect(&edge2.ws_url()).await,
    );
    let on_edge1 = symbols_once_known(&mut a, "BRK.B").await;
    let on_edge2 = symbols_once_known(&mut b, "BRK.B").await;
    assert_eq!(on_edge1, on_edge2, "both edges list the replay's symbols");

    // BRK.B crosses the broker as tickfeed.ticks.BRK%2EB and back.
    subscribe(&mut a, &["BRK.B"]).await;
    subscribe(&mut b, &["BRK.B"]).await;
    let (from_a, from_b) = read_both(&mut a, &mut b, "BRK.B", 40).await;
    assert_same_updates(&from_a, &from_b);
    assert!(
        from_a.iter().all(|t| t["xt"].is_u64()),
        "replayed ticks keep their original time"
    );
    let on_source = source.get_json("/api/stats").await;
    assert_eq!(on_source["source"]["kind"], "replay", "{on_source}");
}

/// Field deltas work the same through an edge: a client on the edge that
/// applies its deltas holds, for every seq, the values a client on the
/// source node receives in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_deltas_through_an_edge_give_the_sources_full_values() {
    let scratch = Scratch::new("deltas");
    let broker = Broker::start(&scratch).await;
    let source = Node::start(&scratch, "source", "source", &broker.url(), FEED).await;
    let edge = Node::start(&scratch, "edge", "edge", &broker.url(), &[]).await;
    let mut full = Client::connect(&source.ws_url()).await;
    let mut with_deltas = Client::connect(&edge.ws_url()).await;
    subscribe(&mut full, &["AAPL"]).await;
    let ack = with_deltas
        .request(json!({"op": "subscribe", "id": 1, "symbols": ["AAPL"], "deltas": true}))
        .await;
    assert_eq!(ack["ev"], "ack", "{ack}");
    let (from_source, from_edge) = read_both(&mut full, &mut with_deltas, "AAPL", 200).await;
    let mut held: Option<tickfeed::protocol::Tick> = None;
    let mut by_seq = BTreeMap::new();
    let mut deltas = 0;
    for event in from_edge {
        let tick = if event["d"] == 1 {
            deltas += 1;
            let delta: tickfeed::protocol::TickDelta = serde_json::from_value(event).unwrap();
            let mut tick = held.clone().expect("a delta follows a full tick");
            delta.apply(&mut tick);
            tick
        } else {
            serde_json::from_value(event).unwrap()
        };
        by_seq.insert(tick.seq, (tick.xt, tick.quote));
        held = Some(tick);
    }
    assert!(deltas > 50, "the edge sent deltas: {deltas} of 200");
    let mut compared = 0;
    for event in from_source {
        let tick: tickfeed::protocol::Tick = serde_json::from_value(event).unwrap();
        if let Some(values) = by_seq.get(&tick.seq) {
            assert_eq!(*values, (tick.xt, tick.quote), "seq {}", tick.seq);
            compared += 1;
        }
    }
    assert!(compared > 20, "{compared} seqs in common");
}
