//! The connection phase: opens every client at its ramp time, at most
//! [`CONNECT_CONCURRENCY`] handshakes at once, and hands each connected
//! client to its worker. Failures are counted, and the first one kept to
//! say why.

use super::client::CONNECT_TIMEOUT;
use super::connection::{Connection, Pace, SlowReading};
use super::target::ClientSide;
use super::worker::NewClient;
use super::workload::ClientPlan;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

/// Handshakes in flight at once: enough to open thousands of connections
/// per second on loopback without flooding the server's accept queue.
const CONNECT_CONCURRENCY: usize = 128;

/// How the connection phase went.
#[derive(Debug, Default)]
pub(super) struct ConnectStats {
    pub opened: AtomicU64,
    pub failed: AtomicU64,
    /// Reason for the lock: written once, by the first failure.
    first_error: Mutex<Option<String>>,
}

impl ConnectStats {
    fn fail(&self, why: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.first_error
            .lock()
            .expect("connect stats lock")
            .get_or_insert(why);
    }

    pub(super) fn first_error(&self) -> Option<String> {
        self.first_error.lock().expect("connect stats lock").clone()
    }
}

/// What the connector needs for one run.
pub(super) struct Connector {
    pub side: Arc<ClientSide>,
    pub symbols: Arc<Vec<String>>,
    /// One inbox per worker; client `i` goes to worker `i % len`.
    pub inboxes: Vec<mpsc::Sender<NewClient>>,
    /// How slow clients read.
    pub slow_reading: SlowReading,
    /// `SO_RCVBUF` of slow clients; `None` keeps the OS default.
    pub slow_recv_buffer: Option<usize>,
    pub stats: Arc<ConnectStats>,
}

impl Connector {
    /// Opens every client of `plans` at its time; returns once all are
    /// started (not necessarily connected).
    pub(super) async fn run(self, plans: Vec<ClientPlan>) {
        let start = Instant::now();
        let permits = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
        let nats = matches!(*self.side, ClientSide::Nats { .. });
        for (index, plan) in plans.into_iter().enumerate() {
            tokio::time::sleep_until(start + plan.connect_at).await;
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (side, symbols, stats) =
                (self.side.clone(), self.symbols.clone(), self.stats.clone());
            let inbox = self.inboxes[index % self.inboxes.len()].clone();
            let pace = plan.slow.then(Pace::default);
            let slow = pace.clone().map(|pace| (self.slow_reading, pace));
            // NATS confirms subscriptions before handing over; an idle
            // client has nothing to confirm.
            let subscribed = nats || plan.symbols.is_empty();
            let recv_buffer = self.slow_recv_buffer.filter(|_| plan.slow);
            tokio::spawn(async move {
                let names: Vec<&str> = plan
                    .symbols
                    .iter()
                    .map(|&s| symbols[s as usize].as_str())
                    .collect();
                let connected =
                    tokio::time::timeout(CONNECT_TIMEOUT, side.connect(&names, recv_buffer)).await;
                drop(permit);
                match connected {
                    Ok(Ok(wire)) => {
                        stats.opened.fetch_add(1, Ordering::Relaxed);
                        let connection = Connection::new(index as u32, wire, slow);
                        let client = NewClient {
                            index,
                            connection,
                            symbols: plan.symbols,
                            pace,
                            subscribed,
                        };
                        // A closed inbox means the run already ended.
                        let _ = inbox.send(client).await;
                    }
                    Ok(Err(e)) => stats.fail(format!("{e:#}")),
                    Err(_) => stats.fail(format!("no connection within {CONNECT_TIMEOUT:?}")),
                }
            });
        }
    }
}
