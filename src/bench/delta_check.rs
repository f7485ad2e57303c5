//! With `--deltas`, the bench checks that field deltas lose nothing: two
//! connections of its own beside the measured clients, on the same server
//! and feed, subscribe to the same symbols, one with `"deltas": true` and
//! one without. The first applies every delta to the values it holds; when
//! the run ends, for every (symbol, seq) both received, its values must
//! equal the full stream's. Each difference is a violation in the report.
//!
//! Both connections decode every event in full (`serde`), unlike the
//! measured clients' scanner: they are two, so their cost does not matter.

use super::client::{Endpoint, SubscribeOptions};
use crate::codec::Encoding;
use crate::protocol::{Tick, TickDelta};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// Symbols both connections subscribe to: the first listed, which the
/// simulated market's skew makes the busiest.
const CHECKED_SYMBOLS: usize = 16;
/// Values each connection records at most, so a long run stays bounded.
const MAX_RECORDED: usize = 1 << 20;

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeltaCheck {
    /// Symbols both connections subscribed to.
    pub symbols: usize,
    /// (symbol, seq) pairs both connections received and compared.
    pub compared: u64,
    /// Of the deltas connection's ticks, how many came as deltas.
    pub as_deltas: u64,
    /// Compared pairs whose values differ, plus deltas that did not follow
    /// the seq the connection held.
    pub mismatches: u64,
    /// The first mismatch, described.
    pub first_mismatch: Option<String>,
}

/// The values one connection holds for each (symbol, seq) it received.
#[derive(Default)]
struct Received {
    values: HashMap<(Arc<str>, u64), Tick>,
    as_deltas: u64,
    /// Deltas that did not follow the seq held for their symbol.
    orphans: u64,
    first_orphan: Option<String>,
}

/// The two connections, reading until stopped.
pub(super) struct DeltaChecker {
    symbols: usize,
    stop: watch::Sender<bool>,
    full: JoinHandle<anyhow::Result<Received>>,
    deltas: JoinHandle<anyhow::Result<Received>>,
}

impl DeltaChecker {
    /// Opens both connections to `endpoint`, subscribed like the measured
    /// clients (`options`) to the first listed of `symbols`.
    pub(super) async fn start(
        endpoint: &Endpoint,
        options: SubscribeOptions,
        symbols: &[String],
    ) -> anyhow::Result<Self> {
        let names: Vec<&str> = symbols
            .iter()
            .take(CHECKED_SYMBOLS)
            .map(String::as_str)
            .collect();
        let (stop, stopped) = watch::channel(false);
        let open = |deltas| {
            endpoint.connect(
                &names,
                SubscribeOptions {
                    max_hz: 0.0,
                    deltas,
                    ..options
                },
                None,
            )
        };
        let (full, deltas) = (open(false).await?, open(true).await?);
        let encoding = endpoint.encoding;
        Ok(Self {
            symbols: names.len(),
            full: tokio::spawn(read(*full, encoding, stopped.clone())),
            deltas: tokio::spawn(read(*deltas, encoding, stopped)),
            stop,
        })
    }

    /// Stops both connections and compares what they received.
    pub(super) async fn finish(self) -> anyhow::Result<DeltaCheck> {
        let _ = self.stop.send(true);
        let full = self.full.await??;
        let deltas = self.deltas.await??;
        Ok(compare(self.symbols, &full, &deltas))
    }
}

/// Reads frames until `stopped`, turning each tick into full values.
async fn read<S>(
    mut ws: tokio_tungstenite::WebSocketStream<S>,
    encoding: Encoding,
    mut stopped: watch::Receiver<bool>,
) -> anyhow::Result<Received>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut received = Received::default();
    let mut held: HashMap<Arc<str>, Tick> = HashMap::new();
    loop {
        let message = tokio::select! {
            _ = stopped.changed() => break,
            message = ws.next() => message,
        };
        let Some(message) = message else { break };
        let events: Vec<Value> = match (message?, encoding) {
            (Message::Text(text), _) => serde_json::from_str(&text)?,
            (Message::Binary(bytes), Encoding::Msgpack) => rmp_serde::from_slice(&bytes)?,
            _ => continue,
        };
        for event in events.into_iter().filter(|e| e["ev"] == "tick") {
            let tick = if event["d"] == 1 {
                received.as_deltas += 1;
                let delta: TickDelta = serde_json::from_value(event)?;
                match held.get(&delta.sym) {
                    Some(previous) if previous.seq + 1 == delta.seq => {
                        let mut tick = previous.clone();
                        delta.apply(&mut tick);
                        tick
                    }
                    previous => {
                        received.orphans += 1;
                        received.first_orphan.get_or_insert_with(|| {
                            format!(
                                "{} seq {} came as a delta while seq {:?} was held",
                                delta.sym,
                                delta.seq,
                                previous.map(|t| t.seq)
                            )
                        });
                        continue;
                    }
                }
            } else {
                serde_json::from_value::<Tick>(event)?
            };
            if received.values.len() < MAX_RECORDED {
                received
                    .values
                    .insert((tick.sym.clone(), tick.seq), tick.clone());
            }
            held.insert(tick.sym.clone(), tick);
        }
    }
    Ok(received)
}

/// Compares the values of every (symbol, seq) both connections received:
/// the emission time, the original time and every market field.
fn compare(symbols: usize, full: &Received, deltas: &Received) -> DeltaCheck {
    let mut check = DeltaCheck {
        symbols,
        as_deltas: deltas.as_deltas,
        mismatches: deltas.orphans,
        first_mismatch: deltas.first_orphan.clone(),
        ..DeltaCheck::default()
    };
    for (key, applied) in &deltas.values {
        let Some(expected) = full.values.get(key) else {
            continue;
        };
        check.compared += 1;
        let same =
            (expected.ts, expected.xt, expected.quote) == (applied.ts, applied.xt, applied.quote);
        if !same {
            check.mismatches += 1;
            check.first_mismatch.get_or_insert_with(|| {
                format!(
                    "{} seq {}: the full stream has {:?}, the deltas applied give {:?}",
                    key.0, key.1, expected.quote, applied.quote
                )
            });
        }
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(ticks: &[Tick]) -> Received {
        Received {
            values: ticks
                .iter()
                .map(|t| ((t.sym.clone(), t.seq), t.clone()))
                .collect(),
            ..Received::default()
        }
    }

    #[test]
    fn equal_values_compare_clean_and_a_changed_field_is_a_mismatch() {
        let full = received(&[Tick::test("AAPL", 1), Tick::test("AAPL", 2)]);
        let mut tick = Tick::test("AAPL", 2);
        tick.ts = full.values[&("AAPL".into(), 2)].ts;
        let clean = compare(1, &full, &received(&[tick.clone()]));
        assert_eq!((clean.compared, clean.mismatches), (1, 0));
        tick.quote.bid = Some(1.0);
        let wrong = compare(1, &full, &received(&[tick]));
        assert_eq!((wrong.compared, wrong.mismatches), (1, 1));
        assert!(wrong.first_mismatch.unwrap().contains("AAPL seq 2"));
    }
}
