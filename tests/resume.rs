//! Resuming after a reconnect (`subscribe` with `from` and `epoch`) and
//! recent history over HTTP (`/api/ticks`), against the real server on
//! port 0 with a real WebSocket client. Time away is waited for by polling
//! the symbol's seq, never by sleeping a fixed time.

mod common;

use common::{Client, TestServer, check_seq, is_tick, poll, start_server};
use serde_json::{Value, json};
use tickfeed::sequence::SeqByName;

/// One symbol at 500 updates/s: the resume target.
const ONE_SYMBOL_AT_500: &[&str] = &["--symbols", "1", "--rate", "500"];

async fn the_symbol(client: &mut Client) -> String {
    let reply = client.request(json!({"op": "symbols", "id": 99})).await;
    reply["symbols"][0]
        .as_str()
        .expect("one symbol")
        .to_string()
}

async fn latest_seq(server: &TestServer, sym: &str) -> u64 {
    let latest = server.get_json("/api/symbols").await;
    latest
        .as_array()
        .expect("an array")
        .iter()
        .find(|t| t["sym"] == sym)
        .and_then(|t| t["seq"].as_u64())
        .unwrap_or(0)
}

/// Waits until `sym` has had at least `count` updates after `seq`.
async fn wait_for_updates_after(server: &TestServer, sym: &str, seq: u64, count: u64) -> u64 {
    poll("updates while away", || async {
        let latest = latest_seq(server, sym).await;
        (latest >= seq + count).then_some(latest)
    })
    .await
}

/// Reads ticks of `sym`, checking the invariant in `seqs`, until one has
/// at least `seq`; returns the ticks read.
async fn read_until(client: &mut Client, seqs: &mut SeqByName, sym: &str, seq: u64) -> Vec<Value> {
    let mut ticks = Vec::new();
    loop {
        let event = client.wait_event(|e| is_tick(e) && e["sym"] == sym).await;
        if event["snap"] != true {
            check_seq(seqs, &event);
        }
        let reached = event["seq"].as_u64().unwrap() >= seq;
        ticks.push(event);
        if reached {
            return ticks;
        }
    }
}

/// A first connection: subscribes with a snapshot, reads a few live ticks
/// and disconnects. Returns the epoch, the symbol and the last seq held.
async fn first_connection(server: &TestServer, seqs: &mut SeqByName) -> (String, String, u64) {
    let mut client = Client::connect(&server.ws_url()).await;
    let epoch = client.hello["epoch"]
        .as_str()
        .expect("hello has an epoch")
        .to_string();
    let sym = the_symbol(&mut client).await;
    // A symbol with no value yet has no snapshot (protocol.md): wait for
    // its first update, which a server just started may not have routed.
    wait_for_updates_after(server, &sym, 0, 1).await;
    let ack = client
        .request(json!({"op": "subscribe", "id": 1, "symbols": [sym]}))
        .await;
    assert_eq!(ack["ev"], "ack");
    assert!(ack.get("resumed").is_none(), "no from, no resumed: {ack}");
    let snapshot = client.wait_event(is_tick).await;
    assert_eq!(snapshot["snap"], true);
    seqs.observe_json(&snapshot);
    let start = snapshot["seq"].as_u64().unwrap();
    let ticks = read_until(&mut client, seqs, &sym, start + 20).await;
    let held = ticks.last().unwrap()["seq"].as_u64().unwrap();
    drop(client);
    (epoch, sym, held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_away_for_a_second_gets_every_missed_update_and_resumed_zero() {
    let server = start_server(ONE_SYMBOL_AT_500).await;
    let mut seqs = SeqByName::default();
    let (epoch, sym, held) = first_connection(&server, &mut seqs).await;
    // About a second of updates at 500/s go by while it is away.
    let latest = wait_for_updates_after(&server, &sym, held, 500).await;

    let mut client = Client::connect(&server.ws_url()).await;
    assert_eq!(
        client.hello["epoch"],
        epoch.as_str(),
        "same server, same epoch"
    );
    let ack = client
        .request(json!({"op": "subscribe", "id": 2, "symbols": [sym], "epoch": epoch, "from": {&sym: held}}))
        .await;
    assert_eq!(ack["ev"], "ack", "{ack}");
    assert_eq!(ack["resumed"], json!({&sym: 0}), "{ack}");
    let first = client.wait_event(is_tick).await;
    assert_eq!(
        first["seq"].as_u64(),
        Some(held + 1),
        "resumes right after the seq held"
    );
    assert_eq!(first["n"], 0);
    assert!(
        first.get("snap").is_none(),
        "no snapshot on a resume: {first}"
    );
    check_seq(&mut seqs, &first);
    // Every update missed while away comes from the ring, one by one (the
    // invariant is checked on every tick read, the live ones after too,
    // whose merging depends on how promptly this client reads).
    let ticks = read_until(&mut client, &mut seqs, &sym, latest + 10).await;
    let missed = ticks
        .iter()
        .take_while(|t| t["seq"].as_u64() <= Some(latest));
    assert!(
        missed
            .clone()
            .all(|t| t["n"] == 0 && t.get("snap").is_none())
    );
    assert_eq!(missed.count() as u64, latest - held - 1, "after the first");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_longer_than_the_ring_is_reported_exactly() {
    let mut args = ONE_SYMBOL_AT_500.to_vec();
    args.extend(["--history", "64"]);
    let server = start_server(&args).await;
    let mut seqs = SeqByName::default();
    let (epoch, sym, held) = first_connection(&server, &mut seqs).await;
    wait_for_updates_after(&server, &sym, held, 300).await;

    let mut client = Client::connect(&server.ws_url()).await;
    let ack = client
        .request(json!({"op": "subscribe", "id": 2, "symbols": [sym], "epoch": epoch, "from": {&sym: held}}))
        .await;
    let lost = ack["resumed"][&sym].as_u64().expect("a count");
    assert!(lost > 0, "300 updates away with 64 retained: {ack}");
    let first = client.wait_event(is_tick).await;
    assert!(first.get("snap").is_none());
    assert_eq!(
        first["n"].as_u64(),
        Some(lost),
        "the first tick's n is the gap reported"
    );
    assert_eq!(first["seq"].as_u64(), Some(held + lost + 1));
    check_seq(&mut seqs, &first);
    // Then the retained updates, one by one, and live.
    let until = first["seq"].as_u64().unwrap() + 100;
    let ticks = read_until(&mut client, &mut seqs, &sym, until).await;
    assert!(
        ticks.iter().take(60).all(|t| t["n"] == 0),
        "the ring replays with n = 0"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_epoch_gets_a_snapshot_and_null() {
    let server = start_server(ONE_SYMBOL_AT_500).await;
    let mut seqs = SeqByName::default();
    let (epoch, sym, held) = first_connection(&server, &mut seqs).await;
    let mut client = Client::connect(&server.ws_url()).await;
    for (id, request) in [
        (2, json!({"epoch": "not-this-one", "from": {&sym: held}})),
        (3, json!({"from": {&sym: held}})),
        // A seq beyond the latest belongs to no client of this epoch.
        (
            4,
            json!({"epoch": epoch, "from": {&sym: held + 10_000_000}}),
        ),
    ] {
        let mut subscribe = json!({"op": "subscribe", "id": id, "symbols": [sym]});
        subscribe
            .as_object_mut()
            .unwrap()
            .extend(request.as_object().unwrap().clone());
        let ack = client.request(subscribe).await;
        assert_eq!(ack["resumed"], json!({&sym: null}), "{ack}");
        let snapshot = client.wait_event(|e| is_tick(e) && e["snap"] == true).await;
        assert_eq!(snapshot["sym"], sym.as_str());
        client
            .request(json!({"op": "unsubscribe", "id": 100 + id, "symbols": [sym]}))
            .await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_has_a_new_epoch_and_resumes_with_snapshots() {
    let server = start_server(ONE_SYMBOL_AT_500).await;
    let mut seqs = SeqByName::default();
    let (epoch, sym, held) = first_connection(&server, &mut seqs).await;
    server.shutdown().await;

    let restarted = start_server(ONE_SYMBOL_AT_500).await;
    // A snapshot needs a first update of the symbol in the new epoch.
    wait_for_updates_after(&restarted, &sym, 0, 1).await;
    let mut client = Client::connect(&restarted.ws_url()).await;
    let new_epoch = client.hello["epoch"].as_str().unwrap().to_string();
    assert_ne!(new_epoch, epoch, "seqs restarted, so the epoch changed");
    let ack = client
        .request(json!({"op": "subscribe", "id": 1, "symbols": [sym], "epoch": epoch, "from": {&sym: held}}))
        .await;
    assert_eq!(ack["resumed"], json!({&sym: null}), "{ack}");
    let snapshot = client.wait_event(is_tick).await;
    assert_eq!(
        snapshot["snap"], true,
        "a snapshot in the new epoch: {snapshot}"
    );
    restarted.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symbols_without_from_get_the_usual_snapshot_beside_a_resume() {
    let server = start_server(&["--symbols", "3", "--rate", "300"]).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let epoch = client.hello["epoch"].as_str().unwrap().to_string();
    let listed = client.request(json!({"op": "symbols", "id": 1})).await;
    let names: Vec<String> = listed["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let (resumed_sym, fresh_sym) = (&names[0], &names[1]);
    let held = poll("a first update of both", || async {
        let seq = latest_seq(&server, resumed_sym).await;
        let fresh_traded = latest_seq(&server, fresh_sym).await > 0;
        (seq > 0 && fresh_traded).then_some(seq)
    })
    .await;
    let ack = client
        .request(json!({"op": "subscribe", "id": 2, "symbols": [resumed_sym, fresh_sym], "epoch": epoch, "from": {resumed_sym: held}}))
        .await;
    assert_eq!(
        ack["resumed"],
        json!({resumed_sym: 0}),
        "only symbols named in from: {ack}"
    );
    let snapshot = client.wait_event(|e| is_tick(e) && e["snap"] == true).await;
    assert_eq!(snapshot["sym"], fresh_sym.as_str());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_from_fields_are_refused_with_the_field_named() {
    let server = start_server(ONE_SYMBOL_AT_500).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let reply = client
        .request(json!({"op": "subscribe", "id": 7, "symbols": ["AAPL"], "from": {"AAPL": "x"}}))
        .await;
    assert_eq!(reply["ev"], "error");
    assert_eq!(reply["code"], "bad_request");
    assert!(
        reply["msg"].as_str().unwrap().contains("from.AAPL"),
        "{reply}"
    );
    // The connection goes on.
    let pong = client.request(json!({"op": "ping", "id": 8})).await;
    assert_eq!(pong["ev"], "pong");
    server.shutdown().await;
}

async fn get(server: &TestServer, path: &str) -> reqwest::Response {
    reqwest::get(server.http_url(path)).await.expect("GET")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_ticks_returns_retained_updates_oldest_first_with_the_invariant() {
    let server = start_server(ONE_SYMBOL_AT_500).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let epoch = client.hello["epoch"].as_str().unwrap().to_string();
    let sym = the_symbol(&mut client).await;
    wait_for_updates_after(&server, &sym, 0, 200).await;

    let response = get(&server, &format!("/api/ticks?sym={sym}&after=50&limit=100")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["tickfeed-epoch"].to_str().unwrap(),
        epoch,
        "the seqs' epoch is in a header"
    );
    let ticks: Vec<Value> = response.json().await.unwrap();
    assert_eq!(ticks.len(), 100);
    for (i, tick) in ticks.iter().enumerate() {
        assert_eq!(tick["ev"], "tick", "the WebSocket's shape: {tick}");
        assert_eq!(tick["sym"], sym.as_str());
        assert_eq!(
            tick["seq"].as_u64(),
            Some(51 + i as u64),
            "oldest first, after 50"
        );
        assert_eq!(tick["n"], 0);
    }
    // Without `after`: the latest `limit`, oldest first.
    let latest: Vec<Value> = get(&server, &format!("/api/ticks?sym={sym}&limit=5"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(latest.len(), 5);
    let seqs: Vec<u64> = latest.iter().map(|t| t["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert!(seqs[4] >= 200);
    // After the latest: nothing yet.
    let none: Vec<Value> = get(&server, &format!("/api/ticks?sym={sym}&after=99999999"))
        .await
        .json()
        .await
        .unwrap();
    assert!(none.is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_ticks_counts_what_the_ring_no_longer_holds_in_n() {
    let mut args = ONE_SYMBOL_AT_500.to_vec();
    args.extend(["--history", "32"]);
    let server = start_server(&args).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let sym = the_symbol(&mut client).await;
    wait_for_updates_after(&server, &sym, 0, 100).await;
    let ticks: Vec<Value> = get(&server, &format!("/api/ticks?sym={sym}&after=1"))
        .await
        .json()
        .await
        .unwrap();
    assert!(ticks.len() <= 32);
    let first = &ticks[0];
    assert_eq!(
        first["n"].as_u64().unwrap(),
        first["seq"].as_u64().unwrap() - 2,
        "n counts the updates after 1 that are gone: {first}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_ticks_refuses_bad_requests_with_json_errors() {
    let server = start_server(ONE_SYMBOL_AT_500).await;
    for (path, status, code, names) in [
        ("/api/ticks?sym=NOPE", 404, "unknown_symbol", "NOPE"),
        ("/api/ticks", 400, "bad_request", "sym"),
        ("/api/ticks?sym=bad%20sym", 400, "bad_request", "sym"),
        ("/api/ticks?sym=AAPL&after=-3", 400, "bad_request", "after"),
        ("/api/ticks?sym=AAPL&limit=0", 400, "bad_request", "limit"),
        (
            "/api/ticks?sym=AAPL&limit=10001",
            400,
            "bad_request",
            "limit",
        ),
        ("/api/ticks?sym=AAPL&limit=ten", 400, "bad_request", "limit"),
    ] {
        let response = get(&server, path).await;
        assert_eq!(response.status(), status, "{path}");
        let body: Value = response.json().await.expect("a JSON error");
        assert_eq!(body["error"], code, "{path}: {body}");
        assert!(
            body["msg"].as_str().unwrap().contains(names),
            "{path}: {body}"
        );
    }
    server.shutdown().await;
}
