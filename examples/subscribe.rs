//! A tickfeed client in Rust: subscribes, checks the conflation invariant
//! on every tick with `tickfeed::sequence`, and reconnects, resuming where
//! it stopped with `from` and `epoch` (`docs/protocol.md`). Events are
//! read into the crate's own `protocol::Event`. The same client as
//! `examples/python/subscribe.py` and `examples/js/subscribe.mjs`.
//!
//! ```sh
//! cargo run --release &                         # the default feed
//! cargo run --example subscribe -- ws://127.0.0.1:8080/ws --symbols AAPL,MSFT --count 5000
//! ```
//!
//! With tokens, set `TICKFEED_TOKEN`. Prints one JSON summary line and
//! exits 0 after `--count` ticks or `--seconds`, 1 when the invariant
//! breaks, 2 when the server refuses the subscription, 3 when it stays
//! unreachable.

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;
use tickfeed::protocol::{ErrorCode, Event, Tick};
use tickfeed::sequence::{Verdict, verdict};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// How long to keep retrying a server that does not answer.
const RECONNECT_GIVE_UP: Duration = Duration::from_secs(30);

#[derive(Parser)]
struct Args {
    /// e.g. ws://127.0.0.1:8080/ws
    url: String,
    /// Comma-separated symbols, or `*`.
    #[arg(long, default_value = "*", value_delimiter = ',')]
    symbols: Vec<String>,
    /// Stop after this many ticks.
    #[arg(long, default_value_t = 10_000)]
    count: u64,
    /// Or after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
}

/// Why a connection ended.
enum End {
    /// Enough ticks, or the time is up.
    Done,
    /// The connection dropped or could not be opened: reconnect.
    Dropped(String),
    /// The invariant broke (exit 1) or the server refused (exit 2).
    Fatal(String, u8),
}

/// What the client holds across connections: the epoch of its seqs and
/// the last seq of each symbol, which make the next subscribe a resume.
#[derive(Default)]
struct Stream {
    epoch: String,
    last_seq: BTreeMap<String, u64>,
    ticks: u64,
    snapshots: u64,
    connections: u64,
    resumed: u64,
    lost: u64,
}

impl Stream {
    fn hello(&mut self, epoch: String) {
        self.connections += 1;
        if epoch != self.epoch {
            // A new seq space (the server restarted): old seqs mean nothing.
            self.epoch = epoch;
            self.last_seq.clear();
        }
    }

    fn subscribe_request(&self, symbols: &[String]) -> serde_json::Value {
        let mut request = json!({"op": "subscribe", "id": 1, "symbols": symbols});
        if !self.last_seq.is_empty() {
            request["epoch"] = json!(self.epoch);
            request["from"] = json!(self.last_seq);
        }
        request
    }

    fn ack(&mut self, resumed: BTreeMap<String, Option<u64>>) {
        for (sym, lost) in resumed {
            match lost {
                // A snapshot follows instead.
                None => drop(self.last_seq.remove(&sym)),
                Some(lost) => {
                    self.resumed += 1;
                    self.lost += lost;
                }
            }
        }
    }

    fn tick(&mut self, tick: &Tick) -> Result<(), String> {
        let snap = tick.snap == Some(true);
        let prev = self.last_seq.get(&*tick.sym).copied();
        match verdict(prev, tick.seq, u64::from(tick.n), snap) {
            Verdict::Ok => {}
            broken => {
                let (sym, seq, n) = (&tick.sym, tick.seq, tick.n);
                return Err(format!(
                    "{sym}: {broken:?}: seq {prev:?} then {seq} with n={n}"
                ));
            }
        }
        self.last_seq.insert(tick.sym.to_string(), tick.seq);
        if snap {
            self.snapshots += 1;
        } else {
            self.ticks += 1;
        }
        Ok(())
    }

    fn summary(&self) -> serde_json::Value {
        json!({
            "client": "rust",
            "ticks": self.ticks,
            "snapshots": self.snapshots,
            "reconnects": self.connections.saturating_sub(1),
            "resumed": self.resumed,
            "lost": self.lost,
        })
    }
}

/// One connection: hello, subscribe (or resume), then ticks until `done`
/// or the connection drops.
async fn stream_once(args: &Args, url: &str, stream: &mut Stream, until: Instant) -> End {
    let socket = match tokio_tungstenite::connect_async(url).await {
        Ok((socket, _)) => socket,
        Err(error) => return End::Dropped(error.to_string()),
    };
    let (mut tx, mut rx) = socket.split();
    loop {
        if stream.ticks >= args.count {
            return End::Done;
        }
        let message = match tokio::time::timeout_at(until, rx.next()).await {
            Err(_) => return End::Done,
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(error))) => return End::Dropped(error.to_string()),
            Ok(None) => return End::Dropped("closed".into()),
        };
        let Message::Text(text) = message else {
            continue;
        };
        let events: Vec<Event> = match serde_json::from_str(&text) {
            Ok(events) => events,
            Err(error) => return End::Fatal(format!("a frame that does not parse: {error}"), 1),
        };
        for event in events {
            match event {
                Event::Hello { epoch, .. } => {
                    stream.hello(epoch);
                    let request = stream.subscribe_request(&args.symbols).to_string();
                    if let Err(error) = tx.send(Message::text(request)).await {
                        return End::Dropped(error.to_string());
                    }
                }
                Event::Tick(tick) => {
                    if let Err(broken) = stream.tick(&tick) {
                        return End::Fatal(format!("invariant broken: {broken}"), 1);
                    }
                }
                Event::Ack {
                    id: Some(1),
                    resumed,
                    ..
                } => stream.ack(resumed.unwrap_or_default()),
                Event::Error { code, msg, .. } => {
                    eprintln!("server refused: {code:?}: {msg}");
                    if code != ErrorCode::UnknownSymbol {
                        return End::Fatal(format!("refused: {msg}"), 2);
                    }
                }
                _ => {}
            }
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut url = args.url.clone();
    if let Ok(token) = std::env::var("TICKFEED_TOKEN") {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("token={token}"));
    }
    let until = Instant::now() + Duration::from_secs_f64(args.seconds);
    let mut stream = Stream::default();
    let (mut delay, mut unreachable_since) = (Duration::from_millis(100), None);
    while Instant::now() < until {
        let connections = stream.connections;
        match stream_once(&args, &url, &mut stream, until).await {
            End::Done => break,
            End::Fatal(why, code) => {
                eprintln!("{why}");
                println!("{}", stream.summary());
                return ExitCode::from(code);
            }
            End::Dropped(why) => {
                let now = Instant::now();
                if stream.connections > connections {
                    // It was up: start afresh.
                    (delay, unreachable_since) = (Duration::from_millis(100), Some(now));
                }
                let since = *unreachable_since.get_or_insert(now);
                if now - since > RECONNECT_GIVE_UP {
                    eprintln!("giving up: {why}");
                    return ExitCode::from(3);
                }
                eprintln!("connection lost ({why}); reconnecting");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    println!("{}", stream.summary());
    ExitCode::SUCCESS
}
