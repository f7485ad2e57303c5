//! Limits, authentication, heartbeats and shutdown, each against the real
//! server: over the connection limit the handshake gets 503, over the
//! subscription limit `too_many_subscriptions`, past the request rate
//! `rate_limited` and, when sustained, close 1008; tokens gate the
//! handshake with 401; silent clients are dropped after two heartbeats;
//! shutdown closes everyone with 1001.

mod common;

use common::{Client, start_server};
use serde_json::json;
use tokio_tungstenite::tungstenite::Error as WsError;

fn http_status(error: WsError) -> u16 {
    match error {
        WsError::Http(response) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

#[tokio::test]
async fn over_the_connection_limit_the_handshake_gets_503() {
    let server = start_server(&["--rate", "10", "--max-connections", "2"]).await;
    let _a = Client::connect(&server.ws_url()).await;
    let _b = Client::connect(&server.ws_url()).await;
    let refused = Client::connect_with(&server.ws_url(), &[])
        .await
        .err()
        .expect("third refused");
    assert_eq!(http_status(refused), 503);
    drop(_a);
    // The slot frees once the server sees the first client gone.
    common::poll("a free connection slot", || async {
        Client::connect_with(&server.ws_url(), &[]).await.ok()
    })
    .await;
    server.shutdown_after(_b).await;
}

#[tokio::test]
async fn over_the_subscription_limit_the_request_is_refused_whole() {
    let server = start_server(&[
        "--rate",
        "10",
        "--symbols",
        "10",
        "--max-subscriptions",
        "3",
    ])
    .await;
    let mut client = Client::connect(&server.ws_url()).await;
    let ack = client
        .request(json!({"op":"subscribe","id":1,"symbols":["AAPL","MSFT"],"snapshot":false}))
        .await;
    assert_eq!(ack["ev"], "ack");
    let error = client
        .request(json!({"op":"subscribe","id":2,"symbols":["NVDA","AMZN"]}))
        .await;
    assert_eq!(error["code"], "too_many_subscriptions");
    // Re-subscribing to held symbols adds nothing and is fine.
    let ack = client
        .request(json!({"op":"subscribe","id":3,"symbols":["AAPL","MSFT","NVDA"],"snapshot":false}))
        .await;
    assert_eq!(ack["ev"], "ack");
    server.shutdown_after(client).await;
}

#[tokio::test]
async fn request_flood_is_rate_limited_then_closed_with_1008() {
    let server = start_server(&[
        "--rate",
        "10",
        "--max-requests-per-sec",
        "1",
        "--request-burst",
        "3",
        "--abuse-threshold",
        "20",
    ])
    .await;
    let mut client = Client::connect(&server.ws_url()).await;
    for id in 0..3 {
        let pong = client.request(json!({"op":"ping","id":id})).await;
        assert_eq!(pong["ev"], "pong");
    }
    let limited = client.request(json!({"op":"ping","id":100})).await;
    assert_eq!(limited["ev"], "error");
    assert_eq!(limited["code"], "rate_limited");
    for id in 0..40 {
        client.send(json!({"op":"ping","id":id})).await;
    }
    let (code, reason) = client.closed().await.expect("close frame");
    assert_eq!(code, 1008, "{reason}");
    server.shutdown_after(client).await;
}

#[tokio::test]
async fn tokens_gate_the_handshake_by_header_or_query() {
    let server = start_server(&["--rate", "10", "--token", "s3cret"]).await;
    let refused = Client::connect_with(&server.ws_url(), &[])
        .await
        .err()
        .expect("no token refused");
    assert_eq!(http_status(refused), 401);
    let wrong = Client::connect_with(&server.ws_url(), &[("authorization", "Bearer nope")])
        .await
        .err()
        .expect("wrong token");
    assert_eq!(http_status(wrong), 401);
    let by_header =
        Client::connect_with(&server.ws_url(), &[("authorization", "Bearer s3cret")]).await;
    assert!(by_header.is_ok());
    let by_query = Client::connect_with(&format!("{}?token=s3cret", server.ws_url()), &[]).await;
    assert!(by_query.is_ok());
    let stats = server.get_json("/api/stats").await;
    assert_eq!(stats["requests_unauthorized"], 2);
    server.shutdown_after((by_header, by_query)).await;
}

#[tokio::test]
async fn a_client_that_never_answers_pings_is_dropped_after_two_heartbeats() {
    let server = start_server(&["--rate", "10", "--heartbeat", "1s"]).await;
    let client = Client::connect(&server.ws_url()).await;
    assert_eq!(client.hello["heartbeat_s"], 1);
    // `client` never reads again, so it never answers the server's pings.
    server
        .wait_for_stats("a heartbeat close", |s| s["heartbeat_closes"] == 1)
        .await;
    server
        .wait_for_stats("the connection gone", |s| s["connections"] == 0)
        .await;
    drop(client);
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_reads_answers_pings_and_stays() {
    let server = start_server(&["--rate", "200", "--symbols", "2", "--heartbeat", "1s"]).await;
    let mut client = Client::connect(&server.ws_url()).await;
    client
        .request(json!({"op":"subscribe","id":1,"symbols":["*"]}))
        .await;
    // Read for well over two heartbeats' worth of ticks (by count, not time).
    for _ in 0..700 {
        client.wait_event(common::is_tick).await;
    }
    let stats = server.get_json("/api/stats").await;
    assert_eq!(stats["heartbeat_closes"], 0);
    server.shutdown_after(client).await;
}

#[tokio::test]
async fn shutdown_closes_every_client_with_1001() {
    let server = start_server(&["--rate", "500", "--symbols", "3"]).await;
    let mut a = Client::connect(&server.ws_url()).await;
    let mut b = Client::connect(&server.ws_url()).await;
    a.request(json!({"op":"subscribe","id":1,"symbols":["*"]}))
        .await;
    let shutdown = tokio::spawn(server.shutdown());
    for client in [&mut a, &mut b] {
        let (code, reason) = client.closed().await.expect("close frame");
        assert_eq!((code, reason.as_str()), (1001, "server shutting down"));
    }
    shutdown.await.unwrap();
}
