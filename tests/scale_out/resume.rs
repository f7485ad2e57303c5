//! Resuming through edges: the epoch is the source's on every edge, and a
//! client that a load balancer moves to another edge (one not serving its
//! symbol a moment ago) resumes just as it would on the same node, the
//! edge fetching what its rings lack from the source. Also: the epoch
//! across source restarts, with and without the broker's store.

use super::cluster::{Broker, Node};
use super::common::{Client, Scratch, check_seq, is_tick, poll};
use super::{FEED, n, seq, subscribe};
use serde_json::{Value, json};
use tickfeed::sequence::SeqByName;

fn epoch_of(client: &Client) -> String {
    client.hello["epoch"]
        .as_str()
        .expect("hello names the epoch")
        .to_string()
}

/// The latest seq of AAPL on `node` (0 before its first update).
async fn latest_aapl(node: &Node) -> u64 {
    let latest: Vec<Value> = serde_json::from_value(node.get_json("/api/symbols").await).unwrap();
    latest
        .iter()
        .find(|t| t["sym"] == "AAPL")
        .and_then(|t| t["seq"].as_u64())
        .unwrap_or(0)
}

/// Waits until `node` has published AAPL's update `seq`.
async fn wait_for_aapl(node: &Node, seq: u64) -> u64 {
    poll("AAPL to trade on while the client is away", || async {
        let latest = latest_aapl(node).await;
        (latest >= seq).then_some(latest)
    })
    .await
}

/// Reads AAPL ticks, checking the invariant across connections in `seqs`
/// (snapshots only set the baseline), until one has at least `until`.
async fn read_through(client: &mut Client, seqs: &mut SeqByName, until: u64) -> Vec<Value> {
    let mut ticks = Vec::new();
    loop {
        let tick = client
            .wait_event(|e| is_tick(e) && e["sym"] == "AAPL")
            .await;
        check_seq(seqs, &tick);
        let reached = seq(&tick) >= until;
        ticks.push(tick);
        if reached {
            return ticks;
        }
    }
}

/// A first connection on `edge`: subscribes to AAPL with a snapshot,
/// reads 20 more updates and leaves. Returns its epoch and the last seq
/// it holds.
async fn read_then_leave(edge: &Node, seqs: &mut SeqByName) -> (String, u64) {
    let mut client = Client::connect(&edge.ws_url()).await;
    subscribe(&mut client, &["AAPL"]).await;
    let snapshot = client.wait_event(|e| is_tick(e) && e["snap"] == true).await;
    check_seq(seqs, &snapshot);
    let ticks = read_through(&mut client, seqs, seq(&snapshot) + 20).await;
    (epoch_of(&client), seq(ticks.last().unwrap()))
}

/// Connects to `node` and resumes AAPL after `held` in `epoch`; returns
/// the client and the ack.
async fn resume(node: &Node, epoch: &str, held: u64) -> (Client, Value) {
    let mut client = Client::connect(&node.ws_url()).await;
    let ack = client
        .request(json!({"op": "subscribe", "id": 2, "symbols": ["AAPL"], "epoch": epoch, "from": {"AAPL": held}}))
        .await;
    assert_eq!(ack["ev"], "ack", "{ack}");
    (client, ack)
}

/// A broker, a source with `feed` and two edges (fields drop in order:
/// the processes before their directory).
struct TwoEdges {
    edge_a: Node,
    edge_b: Node,
    source: Node,
    broker: Broker,
    scratch: Scratch,
}

async fn two_edges(name: &str, feed: &[&str]) -> TwoEdges {
    let scratch = Scratch::new(name);
    let broker = Broker::start(&scratch).await;
    let source = Node::start(&scratch, "source", "source", &broker.url(), feed).await;
    let edge_a = Node::start(&scratch, "edge-a", "edge", &broker.url(), &[]).await;
    let edge_b = Node::start(&scratch, "edge-b", "edge", &broker.url(), &[]).await;
    TwoEdges {
        edge_a,
        edge_b,
        source,
        broker,
        scratch,
    }
}

/// Asserts that `edge` serves no symbol now (no tick subscription).
async fn serves_nothing(broker: &Broker, edge: &Node) {
    broker.wait_for_subjects(&edge.nats_name("edge"), &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_moved_to_an_edge_not_serving_its_symbol_gets_every_missed_update() {
    let nodes = two_edges("edge-move", FEED).await;
    let (broker, source) = (&nodes.broker, &nodes.source);
    let (edge_a, edge_b) = (&nodes.edge_a, &nodes.edge_b);
    let epoch = epoch_of(&Client::connect(&source.ws_url()).await);
    for edge in [edge_a, edge_b] {
        let on_edge = epoch_of(&Client::connect(&edge.ws_url()).await);
        assert_eq!(on_edge, epoch, "every edge names the source's epoch");
    }

    let mut seqs = SeqByName::new();
    let (held_epoch, held) = read_then_leave(edge_a, &mut seqs).await;
    assert_eq!(held_epoch, epoch);
    // About a second of AAPL goes by; edge B has never served it.
    let missed_until = wait_for_aapl(source, held + 100).await;
    serves_nothing(broker, edge_b).await;

    let (mut client, ack) = resume(edge_b, &epoch, held).await;
    assert_eq!(ack["resumed"], json!({"AAPL": 0}), "{ack}");
    let ticks = read_through(&mut client, &mut seqs, missed_until + 10).await;
    assert_eq!(seq(&ticks[0]), held + 1, "right after the seq held");
    let missed: Vec<&Value> = ticks.iter().filter(|t| seq(t) <= missed_until).collect();
    assert_eq!(
        missed.len() as u64,
        missed_until - held,
        "every missed update"
    );
    assert!(
        missed.iter().all(|t| n(t) == 0 && t.get("snap").is_none()),
        "each with n = 0 and no snapshot"
    );

    // The edge's time & sales reads the source's history too.
    let page = format!("/api/ticks?sym=AAPL&after={held}&limit=50");
    let (on_source, on_edge) = (source.get_json(&page).await, edge_b.get_json(&page).await);
    assert_eq!(on_edge.as_array().map(Vec::len), Some(50), "{on_edge}");
    assert_eq!(on_edge, on_source, "an edge answers as the source does");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_beyond_the_sources_history_is_reported_exactly_through_an_edge() {
    let mut feed = FEED.to_vec();
    feed.extend(["--history", "32"]);
    let nodes = two_edges("edge-move-gap", &feed).await;
    let (broker, source) = (&nodes.broker, &nodes.source);
    let (edge_a, edge_b) = (&nodes.edge_a, &nodes.edge_b);

    let mut seqs = SeqByName::new();
    let (epoch, held) = read_then_leave(edge_a, &mut seqs).await;
    wait_for_aapl(source, held + 300).await;
    serves_nothing(broker, edge_b).await;

    let (mut client, ack) = resume(edge_b, &epoch, held).await;
    let lost = ack["resumed"]["AAPL"].as_u64().expect("a count");
    assert!(lost > 0, "300 updates away, 32 kept at the source: {ack}");
    let ticks = read_through(&mut client, &mut seqs, held + 400).await;
    let first = &ticks[0];
    assert!(first.get("snap").is_none(), "{first}");
    assert_eq!(n(first), lost, "the first tick's n is the gap reported");
    assert_eq!(seq(first), held + lost + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_restart_that_continues_seq_keeps_the_epoch_and_resumes_still_work() {
    let nodes = two_edges("edge-move-restart", FEED).await;
    let (broker, edge_a, edge_b) = (&nodes.broker, &nodes.edge_a, &nodes.edge_b);
    let mut seqs = SeqByName::new();
    let (epoch, held) = read_then_leave(edge_a, &mut seqs).await;

    nodes.source.kill().await;
    let second = Node::start(&nodes.scratch, "source2", "source", &broker.url(), FEED).await;
    let restarted = epoch_of(&Client::connect(&second.ws_url()).await);
    assert_eq!(restarted, epoch, "seq continues, so the epoch does");
    wait_for_aapl(&second, held + 50).await;
    serves_nothing(broker, edge_b).await;

    let (mut client, ack) = resume(edge_b, &epoch, held).await;
    assert_eq!(epoch_of(&client), epoch);
    let lost = ack["resumed"]["AAPL"]
        .as_u64()
        .unwrap_or_else(|| panic!("the same epoch resumes: {ack}"));
    let ticks = read_through(&mut client, &mut seqs, held + 60).await;
    assert!(ticks[0].get("snap").is_none(), "{}", ticks[0]);
    assert_eq!(n(&ticks[0]), lost, "what no node holds is counted exactly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_on_a_fresh_store_starts_a_new_epoch_that_edges_follow() {
    let scratch = Scratch::new("fresh-store");
    let mut broker = Broker::start(&scratch).await;
    let first = Node::start(&scratch, "source1", "source", &broker.url(), FEED).await;
    let edge = Node::start(&scratch, "edge", "edge", &broker.url(), &[]).await;
    let mut seqs = SeqByName::new();
    let mut staying = Client::connect(&edge.ws_url()).await;
    subscribe(&mut staying, &["AAPL"]).await;
    let (old_epoch, held) = read_then_leave(&edge, &mut seqs).await;
    // Read on, as a live client does, until the server closes.
    let staying = tokio::spawn(async move { staying.closed().await });

    // The whole deployment loses its store: seqs start again.
    first.kill().await;
    broker.kill().await;
    broker.wipe_store();
    broker.restart().await;
    let second = Node::start(&scratch, "source2", "source", &broker.url(), FEED).await;
    let new_epoch = epoch_of(&Client::connect(&second.ws_url()).await);
    assert_ne!(new_epoch, old_epoch, "a fresh store is a new seq space");

    let closed = staying.await.unwrap();
    assert_eq!(
        closed.as_ref().map(|(code, _)| *code),
        Some(1012),
        "a connection of the old epoch is closed: {closed:?}"
    );
    let mut client = poll("the edge to follow the new epoch", || async {
        let client = Client::connect(&edge.ws_url()).await;
        (epoch_of(&client) == new_epoch).then_some(client)
    })
    .await;
    let ack = client
        .request(json!({"op": "subscribe", "id": 2, "symbols": ["AAPL"], "epoch": old_epoch, "from": {"AAPL": held}}))
        .await;
    assert_eq!(ack["resumed"], json!({"AAPL": null}), "{ack}");
    let snapshot = client.wait_event(is_tick).await;
    assert_eq!(
        snapshot["snap"], true,
        "a snapshot in the new epoch: {snapshot}"
    );
}
