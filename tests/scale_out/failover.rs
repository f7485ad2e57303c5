//! A NATS cluster losing a server: three nats-servers routed together, the
//! last-value stream kept on all three (`--nats-replicas 3`), the source on
//! one server and an edge given the other two (`--nats A,B`). Killing the
//! server the edge is connected to moves the edge to a survivor; its
//! WebSocket clients stream on with no seq twice, and what was lost in the
//! move is counted in `n`.

use super::cluster::{Broker, Node};
use super::common::{Client, Scratch, poll};
use super::{assert_accounted, n, read_both, read_both_through_gap, subscribe};

/// 1,000 updates per second on each of 4 symbols, so that a failover of
/// tens of milliseconds loses some.
const BUSY_FEED: &[&str] = &[
    "--rate",
    "4000",
    "--symbols",
    "4",
    "--skew",
    "0",
    "--seed",
    "7",
    "--nats-replicas",
    "3",
];

/// Which of `servers` the connection `name` is on, among those `allowed`.
async fn server_of(servers: &[Broker], name: &str, allowed: impl Fn(usize) -> bool) -> usize {
    poll(&format!("{name} on one of the servers"), || async {
        for (at, server) in servers.iter().enumerate() {
            if allowed(at) && server.serves(name).await {
                return Some(at);
            }
        }
        None
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_clients_stream_on_when_the_edges_nats_server_dies() {
    let scratch = Scratch::new("nats-cluster");
    let mut servers = Broker::cluster(&scratch, 3).await;
    let source = Node::start(&scratch, "source", "source", &servers[0].url(), BUSY_FEED).await;
    let edge_servers = format!("{},{}", servers[1].url(), servers[2].url());
    let edge = Node::start(
        &scratch,
        "edge",
        "edge",
        &edge_servers,
        &["--nats-replicas", "3"],
    )
    .await;
    let name = edge.nats_name("edge");
    let (mut a, mut b) = (
        Client::connect(&edge.ws_url()).await,
        Client::connect(&edge.ws_url()).await,
    );
    subscribe(&mut a, &["AAPL"]).await;
    subscribe(&mut b, &["AAPL"]).await;
    let (mut from_a, mut from_b) = read_both(&mut a, &mut b, "AAPL", 20).await;

    let used = server_of(&servers, &name, |at| at != 0).await;
    servers[used].kill().await;
    let (after_a, after_b) = read_both_through_gap(&mut a, &mut b, "AAPL", 20).await;
    let lost: u64 = after_a.iter().map(n).sum();
    from_a.extend(after_a);
    from_b.extend(after_b);
    assert_accounted(&from_a);
    assert_accounted(&from_b);
    let moved = server_of(&servers, &name, |at| at != used).await;
    let status = edge.get_json("/api/stats").await["source"].clone();
    assert!(
        status["counters"]["reconnects"].as_u64() >= Some(1),
        "{status}"
    );
    println!(
        "edge moved from nats-{} to nats-{}; {lost} updates of AAPL counted in n",
        used + 1,
        moved + 1
    );
    drop(source);
}
