//! Graceful shutdown of the real binary: SIGTERM while clients stream and
//! some have stalled. Every reading client gets what was routed before the
//! signal, then close 1001, and the process exits 0 within a bounded time.

mod common;
mod process;

use common::{Client, is_tick};
use futures_util::StreamExt;
use process::ChildServer;
use serde_json::json;
use std::collections::HashMap;
use tokio_tungstenite::tungstenite::Message;

/// Reads until the server's close frame; returns it with the last seq seen
/// of each symbol.
async fn read_to_close(mut client: Client) -> (Option<(u16, String)>, HashMap<String, u64>) {
    let mut last = HashMap::new();
    while let Some(Ok(message)) = client.ws.next().await {
        match message {
            Message::Text(text) => {
                let events: Vec<serde_json::Value> =
                    serde_json::from_str(&text).expect("JSON frame");
                for tick in events.iter().filter(|e| is_tick(e)) {
                    last.insert(
                        tick["sym"].as_str().unwrap().to_string(),
                        tick["seq"].as_u64().unwrap(),
                    );
                }
            }
            Message::Close(frame) => {
                return (
                    frame.map(|f| (u16::from(f.code), f.reason.to_string())),
                    last,
                );
            }
            _ => {}
        }
    }
    (None, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_flushes_closes_with_1001_and_exits_zero() {
    let mut server = ChildServer::start(
        "sigterm",
        &["--rate", "2000", "--symbols", "20", "--skew", "0"],
        &[],
    )
    .await;
    let mut readers = Vec::new();
    for _ in 0..20 {
        let mut client = Client::connect(&server.ws_url()).await;
        client
            .request(json!({"op":"subscribe","id":1,"symbols":["*"],"snapshot":false}))
            .await;
        readers.push(tokio::spawn(read_to_close(client)));
    }
    // Stalled clients must not hold the shutdown up beyond its grace period.
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let mut client = Client::connect_small_buffer(&server.ws_url(), server.addr).await;
        client
            .send(json!({"op":"subscribe","id":1,"symbols":["*"]}))
            .await;
        stalled.push(client);
    }
    server
        .wait_for_stats("load on every reader", |s| {
            s["events_out"].as_u64().unwrap() > 20_000
        })
        .await;
    let routed: Vec<serde_json::Value> =
        reqwest::get(format!("http://{}/api/symbols", server.addr))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    // The router counts a batch in `ticks_in` before routing it, so once the
    // count moves past this reading, the batches behind those latest values
    // have reached every subscriber's mailbox.
    let counted = server.stats().await["ticks_in"].as_u64().unwrap();
    server
        .wait_for_stats("the next batch routed", |s| {
            s["ticks_in"].as_u64().unwrap() > counted
        })
        .await;
    let status = server.terminate().await;
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        server.log()
    );
    for reader in readers {
        let (close, last) = reader.await.unwrap();
        assert_eq!(close, Some((1001, "server shutting down".to_string())));
        for tick in &routed {
            let sym = tick["sym"].as_str().unwrap();
            let seq = tick["seq"].as_u64().unwrap();
            assert!(
                last.get(sym).is_some_and(|&got| got >= seq),
                "{sym}: routed {seq} before SIGTERM, got {:?}",
                last.get(sym)
            );
        }
    }
    drop(stalled);
}
