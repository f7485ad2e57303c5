//! Server statistics: counters and per-stage latency histograms.
//!
//! Counters are atomics bumped once per frame or request, never per event
//! per client. Latencies are recorded for every event into a histogram
//! local to the worker thread (no lock, no sharing) and merged into the
//! shared histograms at most once a second per thread; readers of
//! `/api/stats` and `/metrics` therefore see figures up to a second old.
//!
//! `outcomes` counts why connections ended and why requests were refused;
//! `health` holds the broker's connection state and the source's last
//! event, which `/readyz` reads; `history` what the rings retain.

mod health;
mod history;
mod outcomes;

pub use health::{BrokerHealth, SourceHealth};
pub use history::{HistoryGauges, HistoryStatus};
pub use outcomes::{CloseReason, Outcomes, Refusal};

use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Highest latency a histogram tracks: one hour, in ns. Larger values are
/// clamped so that a broken clock cannot lose a sample.
const MAX_TRACKED_NS: u64 = 3_600_000_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;
/// How often a thread merges its local histograms into the shared ones.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// The "recent" view covers between one and two of these.
const WINDOW: Duration = Duration::from_secs(5);

/// Measured stages of the data path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Source emission to the router's fan-out (`ts` to routing).
    Route = 0,
    /// Source emission to the socket write that carried the event.
    Deliver = 1,
    /// Source node to edge node through the broker (scale-out only).
    Hop = 2,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Route, Stage::Deliver, Stage::Hop];
    pub fn name(self) -> &'static str {
        match self {
            Stage::Route => "route",
            Stage::Deliver => "deliver",
            Stage::Hop => "hop",
        }
    }
}

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED_NS, SIGNIFICANT_DIGITS)
        .expect("static histogram bounds are valid")
}

/// Percentiles of one stage in microseconds (`docs/protocol.md`, `/api/stats`).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, JsonSchema)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub count: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        let us = |ns: u64| (ns as f64 / 100.0).round() / 10.0;
        Self {
            p50: us(h.value_at_quantile(0.5)),
            p90: us(h.value_at_quantile(0.9)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
            count: h.len(),
        }
    }
}

/// One stage's shared histograms: since start, and a rolling recent window.
#[derive(Debug)]
struct StageHistograms {
    total: Histogram<u64>,
    current: Histogram<u64>,
    previous: Histogram<u64>,
    current_started: Instant,
}

impl StageHistograms {
    fn new() -> Self {
        Self {
            total: new_histogram(),
            current: new_histogram(),
            previous: new_histogram(),
            current_started: Instant::now(),
        }
    }

    fn rotate_if_due(&mut self) {
        if self.current_started.elapsed() >= WINDOW {
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.reset();
            self.current_started = Instant::now();
        }
    }

    fn add(&mut self, local: &Histogram<u64>) {
        self.rotate_if_due();
        self.total.add(local).expect("same bounds");
        self.current.add(local).expect("same bounds");
    }

    fn recent(&mut self) -> Histogram<u64> {
        self.rotate_if_due();
        let mut recent = self.current.clone();
        recent.add(&self.previous).expect("same bounds");
        recent
    }
}

/// Process-wide counters and histograms, shared as `Arc<Stats>`.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    pub connections: AtomicI64,
    pub connections_total: AtomicU64,
    pub subscriptions: AtomicI64,
    pub ticks_in: AtomicU64,
    /// Book changes routed (updates that changed a symbol's top levels).
    pub books_in: AtomicU64,
    pub events_out: AtomicU64,
    /// Book events sent, not counting snapshots (also in `events_out`).
    pub books_out: AtomicU64,
    pub events_conflated: AtomicU64,
    pub updates_merged: AtomicU64,
    /// Snapshots sent: ticks, bars and books.
    pub snapshots_out: AtomicU64,
    pub frames_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub requests: AtomicU64,
    pub request_errors: AtomicU64,
    /// Times a client's in-flight window was full and its writes waited
    /// for it to consume (`session::flow`).
    pub flow_pauses: AtomicU64,
    /// How late the runtime runs a task that is due, in ns
    /// (`scheduling_lag`): the server's share of every round trip.
    scheduling_lag_ns: AtomicU64,
    /// What the history rings retain, published by the router per batch.
    pub history: HistoryGauges,
    /// Closes by reason and refusals by reason.
    pub outcomes: Outcomes,
    /// The NATS connection, on `--nats` nodes.
    pub broker: BrokerHealth,
    /// When the source's last update was routed.
    pub source_health: SourceHealth,
    /// Reason for the lock: merged into at most once a second per thread
    /// and read by stats requests; never taken per event.
    stages: [Mutex<StageHistograms>; 3],
    /// Source-specific status (kind, rates, replay position), written by the
    /// source about once a second. Locked briefly to swap a small value.
    source: Mutex<serde_json::Value>,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            connections: AtomicI64::new(0),
            connections_total: AtomicU64::new(0),
            subscriptions: AtomicI64::new(0),
            ticks_in: AtomicU64::new(0),
            books_in: AtomicU64::new(0),
            events_out: AtomicU64::new(0),
            books_out: AtomicU64::new(0),
            events_conflated: AtomicU64::new(0),
            updates_merged: AtomicU64::new(0),
            snapshots_out: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            request_errors: AtomicU64::new(0),
            flow_pauses: AtomicU64::new(0),
            scheduling_lag_ns: AtomicU64::new(0),
            history: HistoryGauges::default(),
            outcomes: Outcomes::default(),
            broker: BrokerHealth::default(),
            source_health: SourceHealth::default(),
            stages: std::array::from_fn(|_| Mutex::new(StageHistograms::new())),
            source: Mutex::new(serde_json::Value::Null),
        }
    }

    pub fn set_scheduling_lag(&self, lag: Duration) {
        let ns = u64::try_from(lag.as_nanos()).unwrap_or(u64::MAX);
        self.scheduling_lag_ns.store(ns, Ordering::Relaxed);
    }

    pub fn scheduling_lag(&self) -> Duration {
        Duration::from_nanos(self.scheduling_lag_ns.load(Ordering::Relaxed))
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn set_source_status(&self, status: serde_json::Value) {
        *self.source.lock().expect("stats lock") = status;
    }

    fn merge(&self, stage: Stage, local: &Histogram<u64>) {
        self.stages[stage as usize]
            .lock()
            .expect("stats lock")
            .add(local);
    }

    /// Copies of one stage's histograms: (since start, recent window).
    pub fn histograms(&self, stage: Stage) -> (Histogram<u64>, Histogram<u64>) {
        let mut s = self.stages[stage as usize].lock().expect("stats lock");
        (s.total.clone(), s.recent())
    }

    /// A consistent-enough copy of every figure, for the HTTP endpoints.
    pub fn snapshot(&self, symbols: usize) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut latency_us = serde_json::Map::new();
        let mut recent_us = serde_json::Map::new();
        for stage in Stage::ALL {
            let (total, recent) = self.histograms(stage);
            if stage == Stage::Hop && total.is_empty() {
                continue;
            }
            latency_us.insert(
                stage.name().into(),
                serde_json::to_value(Percentiles::of(&total)).expect("plain data"),
            );
            recent_us.insert(
                stage.name().into(),
                serde_json::to_value(Percentiles::of(&recent)).expect("plain data"),
            );
        }
        StatsSnapshot {
            uptime_s: (self.uptime().as_secs_f64() * 10.0).round() / 10.0,
            connections: self.connections.load(Ordering::Relaxed).max(0) as u64,
            connections_total: get(&self.connections_total),
            connections_refused: [
                Refusal::Origin,
                Refusal::OverCapacity,
                Refusal::ShuttingDown,
            ]
            .into_iter()
            .map(|r| self.outcomes.refusals(r))
            .sum(),
            subscriptions: self.subscriptions.load(Ordering::Relaxed).max(0) as u64,
            symbols,
            ticks_in: get(&self.ticks_in),
            events_out: get(&self.events_out),
            events_conflated: get(&self.events_conflated),
            updates_merged: get(&self.updates_merged),
            snapshots_out: get(&self.snapshots_out),
            frames_out: get(&self.frames_out),
            bytes_out: get(&self.bytes_out),
            requests: get(&self.requests),
            request_errors: get(&self.request_errors),
            slow_consumer_closes: self.outcomes.closes(CloseReason::SlowConsumer),
            heartbeat_closes: self.outcomes.closes(CloseReason::HeartbeatTimeout),
            abuse_closes: self.outcomes.closes(CloseReason::Abuse),
            flow_pauses: get(&self.flow_pauses),
            scheduling_lag_ms: self.scheduling_lag().as_secs_f64() * 1e3,
            history: self.history.snapshot(),
            requests_unauthorized: self.outcomes.refusals(Refusal::Unauthorized),
            handshakes_shed: self.outcomes.refusals(Refusal::HandshakeShed),
            books_in: get(&self.books_in),
            books_out: get(&self.books_out),
            latency_us: serde_json::Value::Object(latency_us),
            recent_latency_us: serde_json::Value::Object(recent_us),
            recent_window_s: WINDOW.as_secs() * 2,
            source: self.source.lock().expect("stats lock").clone(),
        }
    }
}

/// The `/api/stats` document.
#[derive(Debug, Clone, Serialize, serde::Deserialize, JsonSchema)]
pub struct StatsSnapshot {
    pub uptime_s: f64,
    pub connections: u64,
    pub connections_total: u64,
    pub connections_refused: u64,
    pub subscriptions: u64,
    pub symbols: usize,
    pub ticks_in: u64,
    pub events_out: u64,
    /// Events sent with `n > 0`.
    pub events_conflated: u64,
    /// Sum of `n`: source updates merged away by conflation.
    pub updates_merged: u64,
    pub snapshots_out: u64,
    pub frames_out: u64,
    pub bytes_out: u64,
    pub requests: u64,
    pub request_errors: u64,
    pub slow_consumer_closes: u64,
    pub heartbeat_closes: u64,
    pub abuse_closes: u64,
    pub flow_pauses: u64,
    /// How late the runtime ran a due task, at most, over the last one to
    /// two seconds.
    pub scheduling_lag_ms: f64,
    pub history: HistoryStatus,
    /// Defaults keep reports from servers that predate these readable.
    #[serde(default)]
    pub requests_unauthorized: u64,
    #[serde(default)]
    pub handshakes_shed: u64,
    /// Book changes routed.
    #[serde(default)]
    pub books_in: u64,
    /// Book events sent, not counting snapshots (also in `events_out`).
    #[serde(default)]
    pub books_out: u64,
    /// Per stage, since start: p50/p90/p99/p999/max in us and count.
    #[schemars(with = "BTreeMap<String, Percentiles>")]
    pub latency_us: serde_json::Value,
    /// Per stage, over the last `recent_window_s` seconds at most.
    #[schemars(with = "BTreeMap<String, Percentiles>")]
    pub recent_latency_us: serde_json::Value,
    pub recent_window_s: u64,
    /// What the source reports about itself: `kind` and its own figures.
    pub source: serde_json::Value,
}

/// Per-thread histograms, merged into [`Stats`] once a second.
struct LocalRecorder {
    stages: [Histogram<u64>; 3],
    last_flush: Option<Instant>,
}

thread_local! {
    static LOCAL: RefCell<LocalRecorder> = RefCell::new(LocalRecorder {
        stages: std::array::from_fn(|_| new_histogram()),
        last_flush: None,
    });
}

/// Records `now_ns - ts` for every `ts` into this thread's histogram of
/// `stage`, merging into `stats` when a flush is due.
pub fn record_latencies(
    stats: &Stats,
    stage: Stage,
    now_ns: u64,
    ts: impl IntoIterator<Item = u64>,
) {
    LOCAL.with(|local| {
        let mut local = local.borrow_mut();
        let hist = &mut local.stages[stage as usize];
        for ts in ts {
            hist.saturating_record(now_ns.saturating_sub(ts).clamp(1, MAX_TRACKED_NS));
        }
        let due = local
            .last_flush
            .is_none_or(|t| t.elapsed() >= FLUSH_INTERVAL);
        if due {
            local.last_flush = Some(Instant::now());
            for stage in Stage::ALL {
                let hist = &mut local.stages[stage as usize];
                if !hist.is_empty() {
                    stats.merge(stage, hist);
                    hist.reset();
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_recording_is_visible_at_once_then_batched() {
        let stats = Stats::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                record_latencies(&stats, Stage::Deliver, 5_000_000, [1_000_000, 4_000_000]);
            });
        });
        let (total, recent) = stats.histograms(Stage::Deliver);
        assert_eq!((total.len(), recent.len()), (2, 2));
        let p = Percentiles::of(&total);
        assert!(
            p.p50 >= 999.0 && p.p50 <= 1001.0 && p.max >= 3995.0,
            "{p:?}"
        );
    }

    #[test]
    fn snapshot_reports_counters_and_stages() {
        let stats = Stats::new();
        stats.ticks_in.fetch_add(3, Ordering::Relaxed);
        let snap = stats.snapshot(10);
        assert_eq!((snap.ticks_in, snap.symbols), (3, 10));
        assert!(snap.latency_us.get("route").is_some());
        assert!(snap.latency_us.get("hop").is_none(), "hop only when used");
    }
}
