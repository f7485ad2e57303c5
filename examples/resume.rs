//! A Rust client that resumes after a reconnect, as `docs/protocol.md`
//! ("Resuming after a reconnect") describes, and checks what it got.
//!
//! It subscribes to one symbol, reads for a few seconds, disconnects,
//! stays away, reconnects with `from` and `epoch`, and reads again. It
//! prints one JSON line: how long it was away, the seq it held, `resumed`
//! from the ack, the first resumed tick, and whether the conflation
//! invariant held across both connections with no seq delivered twice.
//!
//! ```sh
//! cargo run --release &                       # the default feed
//! cargo run --release --example resume -- ws://127.0.0.1:8080/ws AAPL 600
//! ```

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tickfeed::sequence::{SeqByName, Verdict};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long each connection reads.
const READ_FOR: Duration = Duration::from_secs(3);

/// What the two connections saw.
#[derive(Default)]
struct Seen {
    seqs: SeqByName,
    delivered: HashSet<u64>,
    violations: u64,
    repeats: u64,
    held: u64,
}

impl Seen {
    fn tick(&mut self, tick: &Value) {
        let seq = tick["seq"].as_u64().unwrap_or(0);
        if tick["snap"] != true {
            if self.seqs.observe_json(tick) != Verdict::Ok {
                self.violations += 1;
            }
            if !self.delivered.insert(seq) {
                self.repeats += 1;
            }
        } else {
            self.seqs.observe_json(tick);
        }
        self.held = seq;
    }
}

async fn next_events(socket: &mut Socket, until: Instant) -> Option<Vec<Value>> {
    loop {
        let left = until.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, socket.next()).await.ok()?? {
            Ok(Message::Text(text)) => return serde_json::from_str(&text).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Reads `sym`'s ticks for `READ_FOR`; returns the reply with id 1 and the
/// first tick after it.
async fn read(socket: &mut Socket, sym: &str, seen: &mut Seen) -> (Value, Option<Value>) {
    let until = Instant::now() + READ_FOR;
    let (mut ack, mut first) = (Value::Null, None);
    while let Some(events) = next_events(socket, until).await {
        for event in events {
            if event["id"] == 1 {
                ack = event;
            } else if event["ev"] == "tick" && event["sym"] == sym {
                first.get_or_insert_with(|| event.clone());
                seen.tick(&event);
            }
        }
    }
    (ack, first)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, sym, away_s] = args.as_slice() else {
        anyhow::bail!("usage: resume WS_URL SYMBOL SECONDS_AWAY");
    };
    let away = Duration::from_secs_f64(away_s.parse()?);
    let mut seen = Seen::default();

    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    let hello = next_events(&mut socket, Instant::now() + READ_FOR)
        .await
        .unwrap_or_default();
    let epoch = hello
        .first()
        .and_then(|h| h["epoch"].as_str())
        .unwrap_or_default()
        .to_string();
    let subscribe = json!({"op": "subscribe", "id": 1, "symbols": [sym]});
    socket.send(Message::text(subscribe.to_string())).await?;
    read(&mut socket, sym, &mut seen).await;
    socket.close(None).await?;
    let held = seen.held;

    tokio::time::sleep(away).await;

    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    let hello = next_events(&mut socket, Instant::now() + READ_FOR)
        .await
        .unwrap_or_default();
    let resume = json!({"op": "subscribe", "id": 1, "symbols": [sym],
                        "epoch": epoch, "from": {sym.as_str(): held}});
    socket.send(Message::text(resume.to_string())).await?;
    let (ack, first) = read(&mut socket, sym, &mut seen).await;
    let first = first.unwrap_or_default();
    let report = json!({
        "away_s": away.as_secs_f64(),
        "epoch_same": hello.first().and_then(|h| h["epoch"].as_str()) == Some(epoch.as_str()),
        "held": held,
        "resumed": ack["resumed"][sym],
        "first_seq": first["seq"],
        "first_n": first["n"],
        "first_is_snapshot": first["snap"] == true,
        "gap_reported_exactly": first["n"] == ack["resumed"][sym]
            && first["seq"].as_u64() == ack["resumed"][sym].as_u64().map(|lost| held + lost + 1),
        "invariant_violations": seen.violations,
        "seqs_delivered_twice": seen.repeats,
    });
    println!("{report}");
    Ok(())
}
