//! Field deltas end to end: two real WebSocket clients on the same server
//! and feed, one with `"deltas": true` and one without. The deltas client
//! applies every delta to the values it holds; for every seq both saw, its
//! values equal the full stream's, in JSON and in MessagePack, on the
//! simulated feed and on a LOBSTER replay.

mod common;

use common::{Client, TestServer, is_tick, lobster_path, start_server};
use serde_json::{Value, json};
use std::collections::HashMap;
use tickfeed::protocol::{Tick, TickDelta};

/// Ticks each client reads.
const TICKS: usize = 1_500;

/// Reads until `TICKS` ticks newer than `after` (each symbol's seq when
/// both clients were subscribed) arrived; returns the full values of each
/// (sym, seq) and how many arrived as deltas.
async fn read_values(
    client: &mut Client,
    after: &HashMap<String, u64>,
) -> (HashMap<(String, u64), Tick>, usize) {
    let mut held: HashMap<String, Tick> = HashMap::new();
    let mut seen = HashMap::new();
    let mut deltas = 0;
    let mut newer = 0;
    while newer < TICKS {
        let event = client.wait_event(is_tick).await;
        let sym = event["sym"].as_str().unwrap().to_string();
        let full = if event["d"] == 1 {
            deltas += 1;
            let delta: TickDelta = serde_json::from_value(event).unwrap();
            let mut full = held
                .get(&sym)
                .cloned()
                .expect("a delta only after a full tick of the symbol");
            assert_eq!(full.seq + 1, delta.seq, "a delta follows the seq held");
            delta.apply(&mut full);
            full
        } else {
            serde_json::from_value::<Tick>(event).unwrap()
        };
        if full.seq > after.get(&sym).copied().unwrap_or(0) {
            newer += 1;
        }
        held.insert(sym.clone(), full.clone());
        seen.insert((sym, full.seq), full);
    }
    (seen, deltas)
}

async fn subscribe(server: &TestServer, encoding: &str, deltas: bool) -> Client {
    let url = format!("{}?encoding={encoding}", server.ws_url());
    let mut client = Client::connect(&url).await;
    let ack = client
        .request(json!({"op": "subscribe", "id": 1, "symbols": ["*"], "deltas": deltas, "snapshot": false}))
        .await;
    assert_eq!(ack["ev"], "ack", "{ack}");
    client
}

async fn both_streams_agree(server: &TestServer) {
    for encoding in ["json", "msgpack"] {
        let mut full = subscribe(server, encoding, false).await;
        let mut with_deltas = subscribe(server, encoding, true).await;
        // Both clients keep up, so both get every update from here on.
        let after: HashMap<String, u64> = server
            .get_json("/api/symbols")
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["sym"].as_str().unwrap().to_string(),
                    t["seq"].as_u64().unwrap(),
                )
            })
            .collect();
        let ((full_values, none), (delta_values, deltas)) = tokio::join!(
            read_values(&mut full, &after),
            read_values(&mut with_deltas, &after)
        );
        assert_eq!(none, 0, "no deltas unless asked");
        assert!(
            deltas > TICKS / 2,
            "{encoding}: most ticks are deltas ({deltas})"
        );
        let mut compared = 0;
        for (key, tick) in &delta_values {
            if let Some(expected) = full_values.get(key) {
                let strip = |t: &Tick| (t.xt, t.quote);
                assert_eq!(strip(tick), strip(expected), "{encoding} {key:?}");
                compared += 1;
            }
        }
        assert!(
            compared > TICKS / 4,
            "{encoding}: {compared} seqs in common"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_applying_deltas_holds_the_full_streams_values_on_the_simulated_feed() {
    let server = start_server(&["--symbols", "20", "--rate", "1000"]).await;
    both_streams_agree(&server).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_applying_deltas_holds_the_full_streams_values_on_a_lobster_replay() {
    let lobster = lobster_path();
    let lobster = lobster.to_str().expect("a UTF-8 path");
    let server = start_server(&["--replay", lobster, "--speed", "20", "--loop"]).await;
    both_streams_agree(&server).await;
    server.shutdown().await;
}

/// The wire shape: a delta names what changed and marks itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_carries_sym_seq_ts_n_and_d() {
    let server = start_server(&["--symbols", "1", "--rate", "500"]).await;
    let mut client = subscribe(&server, "json", true).await;
    let delta: Value = client.wait_event(|e| is_tick(e) && e["d"] == 1).await;
    for field in ["sym", "seq", "ts", "n"] {
        assert!(delta.get(field).is_some(), "{field} in {delta}");
    }
    assert_eq!(delta["n"], 0);
    server.shutdown().await;
}
