//! The NATS target: the same workload against nats-server's WebSocket
//! listener, the broker people use for this today.
//!
//! The bench is its own source here: a publisher thread (`bench-publisher`)
//! runs the same simulated market as tickfeed's generator, at the same
//! rate and skew (`--skew`; 0 spreads updates evenly), and publishes each
//! update as one message on `tickfeed.ticks.<SYMBOL>` whose payload is the
//! tick event in the chosen encoding (`seq` and `ts` included, `n` always
//! 0: NATS has no conflation). Each bench client is a minimal NATS client
//! over ws:// (`nats_client.rs`) subscribed to its symbols' subjects.

use super::connection::Wire;
use super::nats_client::{self, NatsError};
use crate::clock::now_ns;
use crate::codec::{Encoding, encode_event};
use crate::protocol::Event;
use crate::source::generator::{GeneratorConfig, Market};
use anyhow::Context;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

/// Prefix of every subject the bench publishes on.
const SUBJECT_PREFIX: &str = "tickfeed.ticks.";
/// The publisher wakes this often to send what is due (as the generator).
const PACE_INTERVAL: Duration = Duration::from_millis(1);
/// Most updates sent in one wake-up, bounding a catch-up burst.
const MAX_BATCH: u64 = 10_000;

/// The subject carrying `symbol`'s updates.
pub(super) fn subject(symbol: &str) -> String {
    format!("{SUBJECT_PREFIX}{symbol}")
}

/// Publishes the simulated market to nats-server until stopped.
pub(super) struct Publisher {
    /// `nats-server VERSION`, from the server's INFO.
    pub server: String,
    published: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Publisher {
    /// Connects to `url` and starts publishing the simulated market.
    pub(super) async fn start(
        url: &str,
        config: GeneratorConfig,
        encoding: Encoding,
    ) -> anyhow::Result<Self> {
        let published = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = watch::channel(false);
        let (ready_tx, ready) = oneshot::channel();
        let url = url.to_string();
        let count = published.clone();
        let thread = std::thread::Builder::new()
            .name("bench-publisher".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(publish(url, config, encoding, count, stopped, ready_tx))
            })?;
        let server = match ready.await {
            Ok(server) => server,
            Err(_) => {
                let failure = thread
                    .join()
                    .map_err(|_| anyhow::anyhow!("the publisher thread panicked"))?;
                return Err(failure
                    .err()
                    .unwrap_or_else(|| anyhow::anyhow!("the publisher stopped at once")));
            }
        };
        Ok(Self {
            server,
            published,
            stop,
            thread: Some(thread),
        })
    }

    /// Updates handed to the NATS client so far.
    pub(super) fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Stops publishing and waits for the thread.
    pub(super) async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the publisher thread panicked"))?
    }
}

async fn publish(
    url: String,
    config: GeneratorConfig,
    encoding: Encoding,
    published: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
    ready: oneshot::Sender<String>,
) -> anyhow::Result<()> {
    let client = async_nats::connect(url.as_str())
        .await
        .with_context(|| format!("--nats-url {url}: cannot connect"))?;
    let mut market = Market::new(&config);
    let subjects: HashMap<Arc<str>, async_nats::Subject> = market
        .symbols()
        .into_iter()
        .map(|s| (s.clone(), subject(&s).into()))
        .collect();
    let _ = ready.send(format!("nats-server {}", client.server_info().version));
    let started = Instant::now();
    let mut emitted: u64 = 0;
    let mut pace = tokio::time::interval(PACE_INTERVAL);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = pace.tick() => {}
        }
        let due = (started.elapsed().as_secs_f64() * config.rate) as u64;
        let count = due.saturating_sub(emitted).min(MAX_BATCH);
        for _ in 0..count {
            let tick = market.next_tick(now_ns());
            let subject = subjects[&tick.sym].clone();
            let payload = encode_event(encoding, &Event::Tick(tick));
            client
                .publish(subject, payload.into())
                .await
                .context("publishing to nats-server")?;
        }
        emitted = emitted.max(due - count) + count;
        published.fetch_add(count, Ordering::Relaxed);
    }
    client.flush().await.context("flushing to nats-server")?;
    Ok(())
}

/// Opens one bench client on nats-server's WebSocket listener subscribed
/// to `symbols` (see `nats_client.rs`).
pub(super) async fn connect(
    ws_url: &str,
    symbols: &[&str],
    recv_buffer: Option<usize>,
) -> Result<Wire, NatsError> {
    let subjects: Vec<String> = symbols.iter().map(|s| subject(s)).collect();
    let stream = nats_client::connect(ws_url, &subjects, recv_buffer).await?;
    Ok(Wire::Nats(Box::new(stream)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_symbol_makes_a_valid_subject() {
        for listing in crate::source::universe::default_universe() {
            let s = subject(&listing.symbol);
            assert!(!s.contains(['*', '>', ' ']) && !s.contains(".."), "{s}");
        }
    }
}
