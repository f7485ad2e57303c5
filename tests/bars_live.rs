//! The live bars channel (`docs/protocol.md`, "Bars"): a subscribe is
//! acked with its channel and timeframe, the open bar follows as a
//! snapshot, then updates and each final bar once, in order; ticks and
//! bars share a connection; a client that stalls gets every final bar of
//! 100 symbols when it reads again.

mod common;

use common::{Client, DEADLINE, poll, start_server};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

const SEC: u64 = 1_000_000_000;

/// Every known symbol, from the `symbols` request.
async fn symbol_names(client: &mut Client) -> Vec<String> {
    let reply = client.request(json!({"op":"symbols","id":1})).await;
    serde_json::from_value(reply["symbols"].clone()).unwrap()
}

/// The final bars `/api/bars` holds for `sym` in 1s, by `t`.
async fn api_finals(server: &common::TestServer, sym: &str) -> BTreeMap<u64, Value> {
    let bars = server
        .get_json(&format!("/api/bars?sym={sym}&tf=1s&limit=10000"))
        .await;
    bars.as_array()
        .unwrap()
        .iter()
        .filter(|b| b["final"] == true)
        .map(|b| (b["t"].as_u64().unwrap(), b.clone()))
        .collect()
}

#[tokio::test]
async fn a_bars_subscribe_is_acked_then_sends_the_open_bar_updates_and_each_final_once() {
    let server = start_server(&["--symbols", "3", "--rate", "600", "--skew", "0"]).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let sym = symbol_names(&mut client).await.remove(0);
    let ack = client
        .request(json!({"op":"subscribe","id":9,"channel":"bars","tf":"1s","symbols":[sym]}))
        .await;
    assert_eq!(
        ack,
        json!({"ev":"ack","id":9,"op":"subscribe","channel":"bars","tf":"1s","symbols":[sym]})
    );
    let mut events = Vec::new();
    while events
        .iter()
        .filter(|e: &&Value| e["final"] == true)
        .count()
        < 3
    {
        let event = client.next_event().await;
        assert_eq!(
            (event["ev"].as_str(), event["tf"].as_str()),
            (Some("bar"), Some("1s"))
        );
        assert_eq!(event["sym"], sym.as_str());
        events.push(event);
    }
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            event.get("snap").is_some(),
            i == 0 && event["snap"] == true,
            "{event}"
        );
    }
    let (mut last_final, mut open) = (None::<u64>, None::<u64>);
    for event in &events {
        let t = event["t"].as_u64().unwrap();
        assert_eq!(t % SEC, 0, "aligned: {event}");
        if event["final"] == true {
            assert!(
                last_final.is_none_or(|last| t > last),
                "finals in order, once"
            );
            assert!(
                open.is_none_or(|open| t >= open),
                "no final after a newer open bar"
            );
            last_final = Some(t);
        } else {
            assert!(
                last_final.is_none_or(|last| t > last),
                "the open bar is newer"
            );
            open = Some(t);
        }
    }
    let stored = api_finals(&server, &sym).await;
    for event in events.iter().filter(|e| e["final"] == true) {
        assert_eq!(
            &stored[&event["t"].as_u64().unwrap()],
            event,
            "as /api/bars holds it"
        );
    }
    server.shutdown_after(client).await;
}

#[tokio::test]
async fn ticks_and_bars_share_a_connection_and_unsubscribe_names_channel_and_tf() {
    let server = start_server(&["--symbols", "3", "--rate", "600", "--skew", "0"]).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let sym = symbol_names(&mut client).await.remove(0);
    client
        .request(json!({"op":"subscribe","id":1,"symbols":[sym]}))
        .await;
    client
        .request(json!({"op":"subscribe","id":2,"channel":"bars","tf":"1m","symbols":[sym]}))
        .await;
    let (mut ticks, mut bars) = (0, 0);
    while ticks < 5 || bars < 5 {
        match client.next_event().await["ev"].as_str() {
            Some("tick") => ticks += 1,
            Some("bar") => bars += 1,
            other => panic!("{other:?}"),
        }
    }
    let ack = client
        .request(json!({"op":"unsubscribe","id":3,"channel":"bars","tf":"1m","symbols":[sym]}))
        .await;
    assert_eq!(
        ack,
        json!({"ev":"ack","id":3,"op":"unsubscribe","channel":"bars","tf":"1m","symbols":[sym]})
    );
    // Bars written before the ack may still be queued; after the ack's
    // frame, ticks only.
    client.backlog.clear();
    for _ in 0..50 {
        assert_eq!(client.next_event().await["ev"], "tick");
    }
    server.shutdown_after(client).await;
}

#[tokio::test]
async fn a_stalled_client_of_1s_bars_of_100_symbols_gets_every_final_bar_in_order() {
    let server = start_server(&["--symbols", "100", "--rate", "5000", "--skew", "0"]).await;
    let mut slow = Client::connect_small_buffer(&server.ws_url(), server.addr).await;
    let names = symbol_names(&mut slow).await;
    assert_eq!(names.len(), 100);
    // Bars starting from the next second on close after the subscribe.
    let first = (tickfeed::clock::now_ns() / SEC + 1) * SEC;
    let cutoff = first + 3 * SEC;
    let ack = slow
        .request(json!({"op":"subscribe","id":5,"channel":"bars","tf":"1s","symbols":names}))
        .await;
    assert_eq!(ack["symbols"].as_array().unwrap().len(), 100);
    // Stall: read nothing until bars up to the cutoff closed.
    poll("bars past the cutoff", || async {
        let stored = api_finals(&server, &names[0]).await;
        stored.keys().any(|t| *t > cutoff).then_some(())
    })
    .await;
    let mut expected = HashMap::new();
    for name in &names {
        let finals: Vec<Value> = api_finals(&server, name)
            .await
            .into_iter()
            .filter(|(t, _)| (first..=cutoff).contains(t))
            .map(|(_, bar)| bar)
            .collect();
        expected.insert(name.clone(), finals);
    }
    let mut received: HashMap<String, Vec<Value>> = HashMap::new();
    let covered = |received: &HashMap<String, Vec<Value>>| {
        expected.iter().all(|(name, finals)| {
            let got = received.get(name).map_or(&[][..], Vec::as_slice);
            finals.iter().all(|bar| got.contains(bar))
        })
    };
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !covered(&received) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "every final bar within the deadline"
        );
        let event = slow.next_event().await;
        if event["ev"] == "bar" && event["final"] == true {
            let name = event["sym"].as_str().unwrap().to_string();
            received.entry(name).or_default().push(event);
        }
    }
    assert!(
        expected.values().map(Vec::len).sum::<usize>() >= 300,
        "bars of 100 symbols"
    );
    for (name, finals) in &received {
        let ts: Vec<u64> = finals.iter().map(|b| b["t"].as_u64().unwrap()).collect();
        assert!(
            ts.windows(2).all(|w| w[0] < w[1]),
            "{name}: in order, once: {ts:?}"
        );
    }
    server.shutdown_after(slow).await;
}
