//! How long after a bar's end its final event reaches a client, on a live
//! feed and on a replay (`docs/benchmarks.md`, "Bars").
//!
//! It subscribes to the ticks and the bars of some symbols on one
//! connection and, for every final bar, measures from the bar's end to
//! the moment the event is read: on a live feed the end is `t + tf` on the
//! clock; on a replay (ticks carry `xt`) it is the moment the source
//! emitted the first tick at or past the end (`ts` of that tick), since a
//! replay's time is the file's. Prints one JSON line of percentiles in ms.
//!
//! ```sh
//! cargo run --release -- --symbols 20 &
//! cargo run --release --example bar_latency -- ws://127.0.0.1:8080/ws 1s 60 SYM1 SYM2 ...
//! ```
//! (arguments: URL, timeframe, how many final bars to measure, symbols).

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tickfeed::clock::now_ns;
use tickfeed::protocol::Timeframe;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, tf, count, symbols @ ..] = args.as_slice() else {
        eprintln!("usage: bar_latency URL TF COUNT SYMBOL...");
        std::process::exit(2);
    };
    let tf = Timeframe::parse(tf).expect("a timeframe: 1s, 1m, 5m, 1h or 1d");
    let count: u64 = count.parse().expect("a count of bars");
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("connect");
    for request in [
        json!({"op":"subscribe","symbols":symbols,"snapshot":false}),
        json!({"op":"subscribe","channel":"bars","tf":tf.name(),"symbols":symbols,"snapshot":false}),
    ] {
        let text = request.to_string();
        socket.send(Message::text(text)).await.expect("send");
    }
    // Replays: the interval start of each tick's `xt` with the `ts` of the
    // first tick in it (the source's time passing into it).
    let mut passed: BTreeMap<u64, u64> = BTreeMap::new();
    let mut latency_us = Histogram::<u64>::new(3).expect("histogram");
    let mut replay = false;
    while latency_us.len() < count {
        let text = match socket.next().await {
            Some(Ok(Message::Text(text))) => text,
            // Flow-control probes; tungstenite answers them.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("the connection ended: {other:?}"),
        };
        let read_at = now_ns();
        let events: Vec<Value> = serde_json::from_str(&text).expect("a JSON frame");
        for event in events {
            match (event["ev"].as_str(), event["final"].as_bool()) {
                (Some("tick"), _) => {
                    if let Some(xt) = event["xt"].as_u64() {
                        replay = true;
                        let ts = event["ts"].as_u64().unwrap_or(read_at);
                        passed.entry(tf.start(xt)).or_insert(ts);
                    }
                }
                (Some("bar"), Some(true)) => {
                    let end = event["t"].as_u64().unwrap_or(0) + tf.ns();
                    let from = if replay {
                        // The first tick at or past the end closed the bar.
                        let Some((_, ts)) = passed.range(end..).next() else {
                            continue;
                        };
                        *ts
                    } else {
                        end
                    };
                    latency_us
                        .record(read_at.saturating_sub(from) / 1_000)
                        .expect("in range");
                }
                _ => {}
            }
        }
    }
    let ms = |q: f64| latency_us.value_at_quantile(q) as f64 / 1_000.0;
    println!(
        "{}",
        json!({
            "feed": if replay { "replay" } else { "live" },
            "tf": tf.name(),
            "bars": latency_us.len(),
            "p50_ms": ms(0.5),
            "p99_ms": ms(0.99),
            "max_ms": latency_us.max() as f64 / 1_000.0,
        })
    );
}
