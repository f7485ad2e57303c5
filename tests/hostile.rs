//! Hostile clients against the real server, each followed by proof that a
//! well-behaved client on the same server was unaffected (it received every
//! seq with `n == 0`): slow-loris handshakes, a flood of silent connections
//! over the pending-handshake cap, request floods, oversized and fragmented
//! frames, invalid UTF-8, binary frames in JSON mode, ping floods,
//! subscription churn, and the subscription and connection limits.

mod common;
mod witness;

use common::{Client, DEADLINE, is_tick, start_server};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Bytes, Message};
use witness::Witness;

/// A quiet market: 25 updates per second for each of 4 symbols, so that a
/// witness keeps up however loaded the machine is.
const QUIET: [&str; 6] = ["--rate", "100", "--symbols", "4", "--skew", "0"];

/// How many live ticks the witness must see after each attack.
const AFTER: u64 = 50;

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    QUIET.iter().copied().chain(extra.iter().copied()).collect()
}

/// Reads until the server hangs up; returns what it sent.
async fn until_hung_up(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(DEADLINE, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept a slow-loris connection open");
    received
}

/// True when the server has hung up `stream` (end of stream or reset),
/// checked without waiting.
async fn hung_up_now(stream: &mut TcpStream) -> bool {
    let mut probe = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::ZERO, stream.read(&mut probe)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Sends a request head one byte at a time, forever, until the server
/// hangs up; returns how many bytes it managed to send.
async fn trickle(addr: SocketAddr) -> usize {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = b"GET /ws HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
    stream.write_all(head).await.unwrap();
    let mut sent = head.len();
    let mut pace = tokio::time::interval(Duration::from_millis(50));
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        pace.tick().await;
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server kept a trickling client open"
        );
        if stream.write_all(b"a").await.is_err() {
            return sent;
        }
        sent += 1;
        // A hang-up shows as end of stream before writes start failing.
        if hung_up_now(&mut stream).await {
            return sent;
        }
    }
}

#[tokio::test]
async fn slow_loris_handshakes_are_dropped_at_the_handshake_timeout() {
    let server = start_server(&args(&["--handshake-timeout", "1s"])).await;
    let mut witness = Witness::join(&server.ws_url()).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut partial = TcpStream::connect(server.addr).await.unwrap();
    partial
        .write_all(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n")
        .await
        .unwrap();
    let trickler = tokio::spawn(trickle(server.addr));
    for stream in [&mut silent, &mut partial] {
        let reply = until_hung_up(stream).await;
        assert!(
            reply.is_empty() || reply.starts_with(b"HTTP/1.1 408"),
            "{}",
            String::from_utf8_lossy(&reply)
        );
    }
    assert!(trickler.await.unwrap() > 0);
    witness.sees_every_seq(AFTER).await;
    server.shutdown_after(witness).await;
}

/// Polls until exactly the first `count` of `streams` are hung up; asserts
/// that the others are still open then.
async fn until_oldest_hung_up(streams: &mut [TcpStream], count: usize) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut hung_up = vec![false; streams.len()];
    loop {
        for (stream, hung_up) in streams.iter_mut().zip(hung_up.iter_mut()) {
            *hung_up = *hung_up || hung_up_now(stream).await;
        }
        if hung_up.iter().filter(|h| **h).count() >= count {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {hung_up:?} of the silent connections were closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let expected: Vec<bool> = (0..streams.len()).map(|i| i < count).collect();
    assert_eq!(
        hung_up, expected,
        "the oldest {count} closed, the rest open"
    );
}

#[tokio::test]
async fn silent_connections_over_the_pending_cap_are_shed_oldest_first() {
    const CAP: usize = 8;
    const SILENT: usize = 20;
    // A handshake timeout far beyond the test: whatever closes was shed.
    let server = start_server(&args(&[
        "--max-pending-handshakes",
        "8",
        "--handshake-timeout",
        "120s",
    ]))
    .await;
    let mut witness = Witness::join(&server.ws_url()).await;
    let mut silent = Vec::new();
    for _ in 0..SILENT {
        silent.push(TcpStream::connect(server.addr).await.unwrap());
    }
    until_oldest_hung_up(&mut silent, SILENT - CAP).await;
    // A well-behaved client still gets in, in place of the oldest silent one.
    let mut client = Client::connect(&server.ws_url()).await;
    let ack = client
        .request(json!({"op":"subscribe","id":1,"symbols":["*"]}))
        .await;
    assert_eq!(ack["ev"], "ack", "{ack}");
    client.wait_event(is_tick).await;
    until_oldest_hung_up(&mut silent, SILENT - CAP + 1).await;
    // CAP - 1 are pending now, so this request takes a free slot.
    let stats = server.get_json("/api/stats").await;
    assert_eq!(stats["handshakes_shed"], SILENT - CAP + 1, "{stats}");
    witness.sees_every_seq(AFTER).await;
    server.shutdown_after((witness, client)).await;
}

#[tokio::test]
async fn a_request_flood_is_rate_limited_then_closed_with_1008() {
    let server = start_server(&args(&[
        "--max-requests-per-sec",
        "5",
        "--request-burst",
        "10",
        "--abuse-threshold",
        "50",
    ]))
    .await;
    let mut witness = Witness::join(&server.ws_url()).await;
    let mut flooder = Client::connect(&server.ws_url()).await;
    for id in 0..1_000 {
        if flooder
            .ws
            .send(Message::text(json!({"op":"ping","id":id}).to_string()))
            .await
            .is_err()
        {
            break;
        }
    }
    let limited = flooder.wait_event(|e| e["code"] == "rate_limited").await;
    assert_eq!(limited["ev"], "error");
    let (code, reason) = flooder.closed().await.expect("close frame");
    assert_eq!(code, 1008, "{reason}");
    witness.sees_every_seq(AFTER).await;
    server.shutdown_after((witness, flooder)).await;
}

#[tokio::test]
async fn an_oversized_frame_is_closed_with_1009_and_a_large_request_is_refused() {
    let server = start_server(&args(&[
        "--max-request-bytes",
        "4KiB",
        "--max-message-bytes",
        "16KiB",
    ]))
    .await;
    let mut witness = Witness::join(&server.ws_url()).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let padding = "x".repeat(8 * 1024);
    let large = json!({"op":"ping","id":1,"t":padding}).to_string();
    client.send_raw(Message::text(large)).await;
    // Too large to be read, so the refusal cannot carry its id.
    let refused = client.wait_event(|e| e["ev"] == "error").await;
    assert_eq!(refused["code"], "too_large", "{refused}");
    let pong = client.request(json!({"op":"ping","id":2})).await;
    assert_eq!(pong["ev"], "pong", "a refused request keeps the connection");
    let _ = client.ws.send(Message::text("y".repeat(64 * 1024))).await;
    let (code, reason) = client.closed().await.expect("close frame");
    assert_eq!(code, 1009, "{reason}");
    witness.sees_every_seq(AFTER).await;
    server.shutdown_after((witness, client)).await;
}

fn fragment(payload: &str, opcode: Data, is_final: bool) -> Message {
    Message::Frame(Frame::message(
        Bytes::copy_from_slice(payload.as_bytes()),
        OpCode::Data(opcode),
        is_final,
    ))
}

#[tokio::test]
async fn a_fragmented_request_is_reassembled_and_fragments_past_the_limit_close_with_1009() {
    let server = start_server(&args(&[
        "--max-request-bytes",
        "4KiB",
        "--max-message-bytes",
        "16KiB",
    ]))
    .await;
    let mut witness = Witness::join(&server.ws_url()).await;
    let mut client = Client::connect(&server.ws_url()).await;
    client
        .send_raw(fragment(r#"{"op":"pi"#, Data::Text, false))
        .await;
    client
        .send_raw(Message::Ping(Bytes::from_static(b"between fragments")))
        .await;
    client
        .send_raw(fragment(r#"ng","id":"#, Data::Continue, false))
        .await;
    client.send_raw(fragment("7}", Data::Continue, true)).await;
    let pong = client.wait_event(|e| e["id"] == 7).await;
    assert_eq!(pong["ev"], "pong", "{pong}");
    client.send_raw(fragment("[", Data::Text, false)).await;
    let chunk = "z".repeat(4 * 1024);
    for _ in 0..8 {
        if client
            .ws
            .send(fragment(&chunk, Data::Continue, false))
            .await
            .is_err()
        {
            break;
        }
    }
    let (code, reason) = client.closed().await.expect("close frame");
    assert_eq!(code, 1009, "{reason}");
    witness.sees_every_seq(AFTER).await;
    server.shutdown_after((witness, client)).await;
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_is_closed_with_1007() {
    let server = start_server(&QUIET).await;
    let mut witness = Witness::join(&server.ws_url()).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let invalid = Bytes::from_static(b"{\"op\":\"ping\",\"t\":\"\xff\xfe\"}");
    client
        .send_raw(Message::Frame(Frame::message(
            invalid,
            OpCode::Data(Data::Text),
            true,
        )))
        .await;
    let (code, reason) = client.closed().await.expect("close frame");
    assert_eq!(code, 1007, "{reason}");
    witness.sees_every_seq(AFTER).await;
    server.shutdown_after((witness, client)).await;
}

#[tokio::test]
async fn a_frame_that_breaks_the_websocket_protocol_is_closed_with_1002() {
    let server = start_server(&QUIET).await;
    let mut witness = Witness::join(&server.ws_url()).await;
    let mut client = Client::connect(&server.ws_url()).await;
    // A continuation frame with no message to continue.
    client.send_raw(fragment("}", Data::Continue, true)).await;
    let (code, reason) = client.closed().await.expect("close frame");
    assert_eq!(code, 1002, "{reason}");
    witness.sees_every_seq(AFTER).await;
    server.shutdown_after((witness, client)).await;
}

#[tokio::test]
async fn a_binary_frame_in_json_mode_is_a_bad_request_that_keeps_the_connection() {
    let server = start_server(&QUIET).await;
    let mut witness = Witness::join(&server.ws_url()).await;
    let mut client = Client::connect(&server.ws_url()).await;
    client
        .send_raw(Message::Binary(Bytes::from_static(b"\x81\xa2op\xa4ping")))
        .await;
    let error = client.wait_event(|e| e["ev"] == "error").await;
    assert_eq!(error["code"], "bad_request", "{error}");
    let pong = client.request(json!({"op":"ping","id":3})).await;
    assert_eq!(pong["ev"], "pong");
    witness.sees_every_seq(AFTER).await;
    server.shutdown_after((witness, client)).await;
}

#[tokio::test]
async fn a_ping_flood_is_closed_with_1008() {
    let server = start_server(&args(&[
        "--max-requests-per-sec",
        "20",
        "--request-burst",
        "40",
        "--abuse-threshold",
        "100",
    ]))
    .await;
    let mut witness = Witness::join(&server.ws_url()).await;
    let client = Client::connect(&server.ws_url()).await;
    let flood = tokio::spawn(async move {
        let (mut sink, mut stream) = client.ws.split();
        let writer = tokio::spawn(async move {
            for i in 0..100_000u32 {
                if sink
                    .send(Message::Ping(Bytes::copy_from_slice(&i.to_be_bytes())))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        let mut close = None;
        while let Ok(Some(message)) = tokio::time::timeout(DEADLINE, stream.next()).await {
            match message {
                Ok(Message::Close(frame)) => {
                    close = frame.map(|f| u16::from(f.code));
                    break;
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        writer.abort();
        close
    });
    assert_eq!(flood.await.unwrap(), Some(1008));
    witness.sees_every_seq(AFTER).await;
    server.shutdown_after(witness).await;
}

#[tokio::test]
async fn churning_thousands_of_subscriptions_per_second_leaves_no_trace() {
    let server = start_server(&[
        "--rate",
        "100",
        "--symbols",
        "2000",
        "--skew",
        "0",
        "--max-subscriptions",
        "2000",
    ])
    .await;
    let mut witness = Witness::join(&server.ws_url()).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let names = client.request(json!({"op":"symbols","id":0})).await["symbols"].clone();
    assert_eq!(names.as_array().unwrap().len(), 2000);
    let started = tokio::time::Instant::now();
    let rounds = 40u64;
    for round in 0..rounds {
        let id = 2 * round + 1;
        let ack = client
            .request(json!({"op":"subscribe","id":id,"symbols":names,"snapshot":round % 2 == 0}))
            .await;
        assert_eq!(ack["ev"], "ack", "{ack}");
        let ack = client
            .request(json!({"op":"unsubscribe","id":id + 1,"symbols":names}))
            .await;
        assert_eq!(ack["ev"], "ack", "{ack}");
    }
    let per_second = (rounds * 2 * 2000) as f64 / started.elapsed().as_secs_f64();
    println!("churned {per_second:.0} symbol subscriptions per second");
    // Only the witness's `*` is left.
    server
        .wait_for_stats("churned subscriptions gone", |s| s["subscriptions"] == 1)
        .await;
    witness.sees_every_seq(AFTER).await;
    server.shutdown_after((witness, client)).await;
}

#[tokio::test]
async fn exceeding_the_subscription_and_connection_limits_is_refused_cleanly() {
    let server = start_server(&args(&[
        "--max-subscriptions",
        "3",
        "--max-connections",
        "3",
    ]))
    .await;
    let mut witness = Witness::join(&server.ws_url()).await;
    let mut client = Client::connect(&server.ws_url()).await;
    let refused = client
        .request(json!({"op":"subscribe","id":1,"symbols":["AAPL","MSFT","NVDA","AMZN"]}))
        .await;
    assert_eq!(refused["code"], "too_many_subscriptions");
    let _third = Client::connect(&server.ws_url()).await;
    for _ in 0..20 {
        match Client::connect_with(&server.ws_url(), &[]).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 503)
            }
            other => panic!(
                "expected 503 over the connection limit, got {:?}",
                other.map(|c| c.hello)
            ),
        }
    }
    let pong = client.request(json!({"op":"ping","id":2})).await;
    assert_eq!(
        pong["ev"], "pong",
        "refusals left the open connections alone"
    );
    witness.sees_every_seq(AFTER).await;
    server.shutdown_after((witness, client, _third)).await;
}
