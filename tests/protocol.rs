//! Every row of docs/protocol.md against the real server and a real WebSocket
//! client: hello, subscribe/ack/ids, snapshots, `*`, unsubscribe, symbols,
//! ping/pong, errors that keep the connection open, and both encodings.

mod common;

use common::{Client, is_tick, start_server};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn hello_is_the_first_frame_and_describes_the_session() {
    let server = start_server(&["--rate", "100", "--symbols", "50"]).await;
    let client = Client::connect(&server.ws_url()).await;
    let hello = &client.hello;
    assert_eq!(hello["v"], 1);
    assert_eq!(hello["encoding"], "json");
    assert_eq!(hello["heartbeat_s"], 15);
    assert_eq!(hello["symbols"], 50);
    assert!(hello["server"].as_str().unwrap().starts_with("tickfeed "));
    assert!(!hello["session"].as_str().unwrap().is_empty());
    server.shutdown_after(client).await;
}

#[tokio::test]
async fn subscribe_acks_with_id_then_snapshot_then_live_ticks_in_order() {
    let server = start_server(&["--rate", "2000", "--symbols", "5"]).await;
    let mut client = Client::connect(&server.ws_url()).await;
    // Wait until AAPL has traded so a snapshot exists.
    common::poll("a first AAPL tick", || async {
        let ticks = server.get_json("/api/symbols").await;
        ticks
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["sym"] == "AAPL")
            .then_some(())
    })
    .await;
    let ack = client
        .request(json!({"op":"subscribe","id":1,"symbols":["AAPL","MSFT"]}))
        .await;
    assert_eq!(
        ack,
        json!({"ev":"ack","id":1,"op":"subscribe","symbols":["AAPL","MSFT"]})
    );
    let snapshot = client
        .wait_event(|e| is_tick(e) && e["sym"] == "AAPL")
        .await;
    assert_eq!(snapshot["snap"], true, "first AAPL event is the snapshot");
    let mut last = snapshot["seq"].as_u64().unwrap();
    for _ in 0..20 {
        let tick = client
            .wait_event(|e| is_tick(e) && e["sym"] == "AAPL")
            .await;
        assert!(tick.get("snap").is_none());
        let seq = tick["seq"].as_u64().unwrap();
        assert_eq!(
            seq,
            last + 1 + tick["n"].as_u64().unwrap(),
            "no gap unaccounted: {tick}"
        );
        last = seq;
        for field in ["ts", "bid", "ask", "bsz", "asz", "vol"] {
            assert!(tick.get(field).is_some(), "{field} in {tick}");
        }
    }
    server.shutdown_after(client).await;
}

#[tokio::test]
async fn snapshot_false_sends_only_live_ticks() {
    let server = start_server(&["--rate", "1000", "--symbols", "3"]).await;
    let mut client = Client::connect(&server.ws_url()).await;
    client
        .request(json!({"op":"subscribe","id":5,"symbols":["AAPL"],"snapshot":false}))
        .await;
    for _ in 0..10 {
        let tick = client.wait_event(is_tick).await;
        assert!(tick.get("snap").is_none(), "{tick}");
    }
    server.shutdown_after(client).await;
}

#[tokio::test]
async fn wildcard_streams_every_symbol_and_unsubscribe_all_stops_it() {
    let server = start_server(&["--rate", "3000", "--symbols", "10", "--skew", "0"]).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let ack = client
        .request(json!({"op":"subscribe","id":2,"symbols":["*"],"snapshot":false}))
        .await;
    assert_eq!(ack["symbols"], json!(["*"]));
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 10 {
        let tick = client.wait_event(is_tick).await;
        seen.insert(tick["sym"].as_str().unwrap().to_string());
    }
    let ack = client
        .request(json!({"op":"unsubscribe","id":3,"symbols":["*"]}))
        .await;
    assert_eq!(
        ack,
        json!({"ev":"ack","id":3,"op":"unsubscribe","symbols":["*"]})
    );
    // After the ack no tick may follow: a ping's pong must be the next event.
    client.send(json!({"op":"ping","id":4})).await;
    let next = client.next_event().await;
    assert_eq!(
        next["ev"], "pong",
        "no ticks after unsubscribing everything: {next}"
    );
    server.shutdown_after(client).await;
}

#[tokio::test]
async fn unsubscribe_stops_one_symbol_and_keeps_the_others() {
    let server = start_server(&["--rate", "2000", "--symbols", "4", "--skew", "0"]).await;
    let mut client = Client::connect(&server.ws_url()).await;
    client
        .request(json!({"op":"subscribe","id":1,"symbols":["AAPL","MSFT"],"snapshot":false}))
        .await;
    client
        .request(json!({"op":"unsubscribe","id":2,"symbols":["AAPL"]}))
        .await;
    client.backlog.clear();
    for _ in 0..30 {
        let tick = client.wait_event(is_tick).await;
        assert_eq!(tick["sym"], "MSFT");
    }
    server.shutdown_after(client).await;
}

#[tokio::test]
async fn symbols_lists_the_universe_and_ping_echoes_t() {
    let server = start_server(&["--rate", "10", "--symbols", "7"]).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let symbols = client.request(json!({"op":"symbols","id":3})).await;
    assert_eq!(symbols["ev"], "symbols");
    assert_eq!(symbols["symbols"].as_array().unwrap().len(), 7);
    assert_eq!(symbols["symbols"][0], "AAPL");
    let pong = client.request(json!({"op":"ping","id":4,"t":123})).await;
    assert_eq!(pong, json!({"ev":"pong","id":4,"t":123}));
    server.shutdown_after(client).await;
}

#[tokio::test]
async fn unknown_symbols_are_reported_while_known_ones_subscribe() {
    let server = start_server(&["--rate", "500", "--symbols", "5"]).await;
    let mut client = Client::connect(&server.ws_url()).await;
    client
        .send(json!({"op":"subscribe","id":9,"symbols":["AAPL","XXX","bad sym"],"snapshot":false}))
        .await;
    let ack = client.wait_event(|e| e["ev"] == "ack").await;
    assert_eq!(ack["symbols"], json!(["AAPL"]));
    let error = client.wait_event(|e| e["ev"] == "error").await;
    assert_eq!(error["id"], 9);
    assert_eq!(error["code"], "unknown_symbol");
    assert_eq!(error["symbols"], json!(["bad sym", "XXX"]));
    let tick = client.wait_event(is_tick).await;
    assert_eq!(tick["sym"], "AAPL");
    server.shutdown_after(client).await;
}

#[tokio::test]
async fn bad_json_and_unknown_op_get_errors_and_the_connection_stays_open() {
    let server = start_server(&["--rate", "10", "--symbols", "3"]).await;
    let mut client = Client::connect(&server.ws_url()).await;
    client.send_raw(Message::text("{not json")).await;
    let error = client.wait_event(|e| e["ev"] == "error").await;
    assert_eq!(error["code"], "bad_request");
    let error = client.request(json!({"op":"teleport","id":11})).await;
    assert_eq!(
        (error["code"].as_str(), error["id"].as_u64()),
        (Some("unknown_op"), Some(11))
    );
    let error = client
        .request(json!({"op":"subscribe","id":12,"symbols":"AAPL"}))
        .await;
    assert_eq!(error["code"], "bad_request");
    assert!(error["msg"].as_str().unwrap().contains("symbols"));
    client.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    let error = client.wait_event(|e| e["ev"] == "error").await;
    assert_eq!(error["code"], "bad_request", "binary frame in JSON mode");
    let pong = client.request(json!({"op":"ping","id":13})).await;
    assert_eq!(pong["ev"], "pong", "still open after bad requests");
    server.shutdown_after(client).await;
}

#[tokio::test]
async fn too_large_request_is_refused_and_a_huge_frame_closes_with_1009() {
    let server = start_server(&[
        "--rate",
        "10",
        "--symbols",
        "3",
        "--max-request-bytes",
        "1KiB",
        "--max-message-bytes",
        "64KiB",
    ])
    .await;
    let mut client = Client::connect(&server.ws_url()).await;
    let big = json!({"op":"ping","id":1,"t":"x".repeat(2000)});
    client.send(big).await;
    let error = client.wait_event(|e| e["ev"] == "error").await;
    assert_eq!(error["code"], "too_large");
    let pong = client.request(json!({"op":"ping","id":2})).await;
    assert_eq!(pong["ev"], "pong");
    client.send_raw(Message::text("y".repeat(100_000))).await;
    let (code, _) = client.closed().await.expect("close frame");
    assert_eq!(code, 1009);
    server.shutdown_after(client).await;
}

#[tokio::test]
async fn msgpack_is_chosen_by_subprotocol_and_by_query() {
    let server = start_server(&["--rate", "1000", "--symbols", "3"]).await;
    let mut by_protocol = Client::connect_with(
        &server.ws_url(),
        &[("sec-websocket-protocol", "tickfeed.v1.msgpack")],
    )
    .await
    .unwrap();
    assert_eq!(by_protocol.protocol.as_deref(), Some("tickfeed.v1.msgpack"));
    assert_eq!(by_protocol.hello["encoding"], "msgpack");
    let mut by_query = Client::connect(&format!("{}?encoding=msgpack", server.ws_url())).await;
    assert_eq!(by_query.hello["encoding"], "msgpack");
    let json_default = Client::connect_with(
        &server.ws_url(),
        &[("sec-websocket-protocol", "tickfeed.v1.json")],
    )
    .await
    .unwrap();
    assert_eq!(json_default.protocol.as_deref(), Some("tickfeed.v1.json"));
    for client in [&mut by_protocol, &mut by_query] {
        client
            .request(json!({"op":"subscribe","id":1,"symbols":["AAPL"]}))
            .await;
        let tick = client
            .wait_event(|e| is_tick(e) && e.get("snap").is_none())
            .await;
        assert_eq!(tick["sym"], "AAPL");
        assert!(tick["px"].is_f64() || tick.get("px").is_none());
    }
    // A MessagePack request in a binary frame is accepted in msgpack mode.
    let request = rmp_serde::to_vec_named(&json!({"op":"ping","id":7,"t":5})).unwrap();
    by_query.send_raw(Message::binary(request)).await;
    let pong = by_query.wait_event(|e| e["ev"] == "pong").await;
    assert_eq!(pong, json!({"ev":"pong","id":7,"t":5}));
    server
        .shutdown_after((by_protocol, by_query, json_default))
        .await;
}

#[tokio::test]
async fn http_endpoints_serve_health_symbols_stats_metrics_and_the_page() {
    let server = start_server(&["--rate", "1000", "--symbols", "5"]).await;
    let health = reqwest::get(server.http_url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap().trim(), "ok");
    let ticks = common::poll("ticks in /api/symbols", || async {
        let ticks = server.get_json("/api/symbols").await;
        (ticks.as_array().unwrap().len() == 5).then_some(ticks)
    })
    .await;
    assert_eq!(ticks[0]["ev"], "tick");
    let stats = server
        .wait_for_stats("routed ticks", |s| s["ticks_in"].as_u64().unwrap() > 0)
        .await;
    for stage in ["route", "deliver"] {
        for key in ["p50", "p90", "p99", "p999", "max", "count"] {
            assert!(
                stats["latency_us"][stage].get(key).is_some(),
                "{stage}.{key}"
            );
        }
    }
    let metrics = reqwest::get(server.http_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("tickfeed_ticks_in_total"));
    let page = reqwest::get(server.http_url("/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<html"));
    server.shutdown().await;
}
