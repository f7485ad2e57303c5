//! The bench report: one serde struct per sweep point, units in the field
//! names, built by `measured.rs` from what the clients measured and the
//! server's figures around the measured window. Rendered as a table
//! (`table.rs`), JSON (`--json`), HdrHistogram text (`hdr.rs`) and SVG
//! (`plot.rs`).

use super::args::Channel;
use super::connection::SlowMode;
pub use super::delta_check::DeltaCheck;
use super::tally::{AgeSpan, Merges};
use crate::stats::Percentiles;
use hdrhistogram::Histogram;
use serde::Serialize;

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub tickfeed_version: String,
    /// The command line, to re-run it.
    pub command: String,
    pub machine: Machine,
    pub points: Vec<PointReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: Option<String>,
    pub os: String,
}

impl Machine {
    pub fn this() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_string())
            });
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            os: std::env::consts::OS.into(),
        }
    }
}

/// One sweep point.
#[derive(Debug, Clone, Serialize)]
pub struct PointReport {
    pub label: String,
    /// What was measured, e.g. `nats-server 2.9.10 at ws://127.0.0.1:4223`.
    pub target: String,
    pub settings: Settings,
    pub connections: Connections,
    pub source: Source,
    pub delivery: Delivery,
    /// End-to-end latency (receive time minus `ts`) of fast clients.
    pub latency_fast: Option<Latency>,
    pub latency_slow: Option<Latency>,
    pub server_stages: Option<ServerStages>,
    pub conflation: Conflation,
    pub resources: Resources,
    pub violations: Violations,
    /// `error` events the clients received.
    pub errors_received: u64,
    /// Why the first connection closed during the run, if one did.
    pub first_close_reason: Option<String>,
    /// Per second of the measured window.
    pub timeline: Vec<TimelinePoint>,
    /// Slow clients' data age per second of the run, warm-up included.
    pub slow_age_timeline: Vec<AgePoint>,
    /// Slow clients' data age after the first 5 s of the measured window;
    /// `None` when the window is no longer or no slow tick came after.
    pub slow_after_5s: Option<AgeSummary>,
    /// With `--deltas`: two connections of the bench's own, one with
    /// deltas applied and one with full ticks, compared (`delta_check.rs`).
    pub delta_check: Option<DeltaCheck>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub clients: usize,
    pub slow_clients: usize,
    pub symbols: usize,
    pub symbols_per_client: usize,
    /// Symbols of every fast client, the first K listed (`--hot-symbols`).
    pub hot_symbols: Option<usize>,
    /// Subscriptions of all clients together.
    pub subscriptions: usize,
    /// Of the in-process server's or the NATS publisher's market; `None`
    /// for a server at `--url`, which sets its own.
    pub skew: Option<f64>,
    pub encoding: String,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub ramp_per_s: Option<f64>,
    /// How slow clients read (`event`, `frame`, `burst`) and their pause.
    pub slow_mode: SlowMode,
    pub slow_delay_ms: f64,
    /// SO_RCVBUF of slow clients; `None` = the OS default.
    pub slow_recv_buffer_bytes: Option<usize>,
    pub max_hz: f64,
    /// Clients subscribed with field deltas.
    pub deltas: bool,
    /// What was measured: `ticks` or `book` events.
    pub channel: Channel,
    /// Levels per side of each book subscription; `None` for ticks.
    pub depth: Option<usize>,
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Connections {
    pub opened: u64,
    pub failed: u64,
    pub subscribed: u64,
    pub closed_during_run: u64,
    pub connect_s: f64,
    pub first_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Source {
    /// `None` when an external server chooses its rate.
    pub asked_per_s: Option<f64>,
    /// Updates emitted during the measured window, per second.
    pub achieved_per_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// Every subscriber of every update, at the achieved source rate,
    /// when updates are known to spread evenly over symbols (skew 0).
    pub expected_events_per_s: Option<f64>,
    pub events_per_s: f64,
    pub events: u64,
    pub frames_per_s: f64,
    pub events_per_frame: f64,
    pub megabytes_per_s: f64,
    /// Bytes of frame payload per delivered event (what deltas shrink).
    pub bytes_per_event: f64,
    /// The server's own count of tick events written, when it reports it.
    pub server_events_out_per_s: Option<f64>,
}

/// Percentiles in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    pub events: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub p9999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// From a histogram in ns; `None` when empty.
    pub fn of(h: &Histogram<u64>) -> Option<Self> {
        let ms = |ns: u64| ns as f64 / 1e6;
        (!h.is_empty()).then(|| Self {
            events: h.len(),
            mean_ms: h.mean() / 1e6,
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            p9999_ms: ms(h.value_at_quantile(0.9999)),
            max_ms: ms(h.max()),
        })
    }
}

/// The server's stage latencies from its own histograms, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStages {
    /// `measured window` in-process; `since server start` from /api/stats.
    pub window: String,
    /// Source emission to fan-out.
    pub route: StageLatency,
    /// Source emission to the socket write.
    pub deliver: StageLatency,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageLatency {
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub count: u64,
}

impl From<Percentiles> for StageLatency {
    fn from(p: Percentiles) -> Self {
        Self {
            p50_us: p.p50,
            p90_us: p.p90,
            p99_us: p.p99,
            p999_us: p.p999,
            max_us: p.max,
            count: p.count,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Conflation {
    /// Ticks the clients received with `n > 0`, and the sum of `n`.
    pub events_with_merges: u64,
    pub updates_merged: u64,
    pub snapshots: u64,
    /// The same for fast clients alone (prompt readers should see none)
    /// and for slow ones; the two add up to the totals above.
    pub fast: Merges,
    pub slow: Merges,
}

#[derive(Debug, Clone, Serialize)]
pub struct Resources {
    /// CPU cores busy on average over the measured window.
    pub server_cpu_cores: Option<f64>,
    pub server_rss_bytes: Option<u64>,
    /// Before the first client connected.
    pub server_rss_before_connect_bytes: Option<u64>,
    /// RSS growth from before connecting to the end, per connection opened.
    pub server_rss_per_connection_bytes: Option<f64>,
    pub server_figures: String,
    pub client_cpu_cores: Option<f64>,
    pub client_threads: usize,
    pub publisher_cpu_cores: Option<f64>,
    /// CPU used on this machine by everything but the bench and the
    /// server: well above 0, the run was disturbed.
    pub other_cpu_cores: Option<f64>,
    pub bench_rss_bytes: Option<u64>,
}

/// Must all be 0.
#[derive(Debug, Clone, Serialize)]
pub struct Violations {
    pub total: u64,
    pub seq_backwards: u64,
    /// Consecutive ticks whose `seq` gap is not `n` (updates lost or
    /// invented without being counted).
    pub gaps_not_counted: u64,
    pub unexpected_symbol: u64,
    pub unreadable_frames: u64,
    /// Values a client applying deltas held that differ from the full
    /// stream's at the same seq (`--deltas`).
    pub delta_mismatches: u64,
}

/// One second of the measured window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TimelinePoint {
    pub t_s: u64,
    pub fast_events: u64,
    pub fast_mean_ms: Option<f64>,
    pub fast_max_ms: Option<f64>,
    pub slow_events: u64,
    pub slow_mean_ms: Option<f64>,
    pub slow_max_ms: Option<f64>,
}

impl TimelinePoint {
    pub fn new(t_s: u64, fast: &AgeSpan, slow: &AgeSpan) -> Self {
        let ms = |ns: f64| (ns / 1e3).round() / 1e3;
        let max = |s: &AgeSpan| (s.events > 0).then(|| ms(s.max_ns as f64));
        Self {
            t_s,
            fast_events: fast.events,
            fast_mean_ms: fast.mean_ns().map(ms),
            fast_max_ms: max(fast),
            slow_events: slow.events,
            slow_mean_ms: slow.mean_ns().map(ms),
            slow_max_ms: max(slow),
        }
    }
}

/// Slow clients' data age over one second of the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgePoint {
    /// Seconds from the start of the measured window; negative in warm-up.
    pub t_s: i64,
    /// `warmup` or `measured`.
    pub phase: &'static str,
    #[serde(flatten)]
    pub age: AgeSummary,
}

/// Ticks and their age (receive time minus `ts`), to within 1%.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgeSummary {
    pub events: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles_are_in_order_and_in_milliseconds() {
        let mut h = crate::stats::new_histogram();
        for ms in 1..=1000u64 {
            h.record(ms * 1_000_000).unwrap();
        }
        let l = Latency::of(&h).unwrap();
        assert!((l.p50_ms - 500.0).abs() < 1.0, "{l:?}");
        assert!(
            l.p50_ms <= l.p90_ms
                && l.p90_ms <= l.p99_ms
                && l.p99_ms <= l.p999_ms
                && l.p999_ms <= l.max_ms
        );
        assert_eq!(Latency::of(&crate::stats::new_histogram()), None);
    }

    #[test]
    fn timeline_points_carry_means_and_maxima_of_each_class() {
        let mut fast = AgeSpan::default();
        fast.add(2_000_000);
        fast.add(4_000_000);
        let p = TimelinePoint::new(3, &fast, &AgeSpan::default());
        assert_eq!(
            (p.t_s, p.fast_events, p.fast_mean_ms, p.fast_max_ms),
            (3, 2, Some(3.0), Some(4.0))
        );
        assert_eq!((p.slow_events, p.slow_mean_ms), (0, None));
    }
}
