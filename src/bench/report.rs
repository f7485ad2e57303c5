//! The bench report: one serde struct per sweep point, units in the field
//! names, built from what the clients measured and the server's figures
//! at the start and end of the measured window. Rendered as a table
//! (`table.rs`), JSON (`--json`), HdrHistogram text (`hdr.rs`) and SVG
//! (`plot.rs`).

use super::args::{Plan, Point};
use super::tally::{AgeSpan, Tally};
use super::target::Sample;
use crate::stats::Percentiles;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::time::Duration;

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
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub clients: usize,
    pub slow_clients: usize,
    pub symbols: usize,
    pub symbols_per_client: usize,
    pub encoding: String,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub ramp_per_s: Option<f64>,
    /// Time a slow client spends per event it reads.
    pub slow_ms_per_event: f64,
    pub max_hz: f64,
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
    /// assuming updates spread evenly over symbols (known in-process and
    /// for NATS).
    pub expected_events_per_s: Option<f64>,
    pub events_per_s: f64,
    pub events: u64,
    pub frames_per_s: f64,
    pub events_per_frame: f64,
    pub megabytes_per_s: f64,
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

/// How the connection phase ended.
#[derive(Debug, Clone)]
pub struct ConnectOutcome {
    pub opened: u64,
    pub failed: u64,
    pub subscribed: u64,
    pub took: Duration,
    pub first_error: Option<String>,
}

/// Everything one point measured, before it is summarised.
pub struct Measured<'a> {
    pub plan: &'a Plan,
    pub point: &'a Point,
    pub target: String,
    pub server_note: &'static str,
    pub in_process: bool,
    pub slow_clients: usize,
    pub client_threads: usize,
    pub connect: ConnectOutcome,
    /// How long the clients recorded (phase `Measuring`).
    pub window: Duration,
    /// Server figures before the first connection, and just before and
    /// just after the measured window.
    pub before_connect: Sample,
    pub start: Sample,
    pub end: Sample,
    pub tally: &'a Tally,
    pub first_close: Option<String>,
    pub timeline: Vec<TimelinePoint>,
}

impl Measured<'_> {
    /// The number of symbols the source spreads its updates evenly over,
    /// when known: in-process and NATS by construction, a tickfeed at
    /// `--url` when its `/api/stats` reports a uniform generator (skew 0).
    fn spread_universe(&self) -> Option<usize> {
        if self.in_process || self.point.target == super::args::TargetKind::Nats {
            return Some(self.plan.symbols);
        }
        let stats = self.end.stats.as_ref()?;
        (stats.source["skew"].as_f64() == Some(0.0)).then_some(stats.symbols)
    }

    /// Summarises into a [`PointReport`].
    pub fn report(self) -> PointReport {
        let window = self
            .end
            .at
            .duration_since(self.start.at)
            .as_secs_f64()
            .max(1e-9);
        let client_window = self.window.as_secs_f64().max(1e-9);
        let per_s = |count: u64| count as f64 / client_window;
        let delta = |f: fn(&Sample) -> Option<f64>| Some(f(&self.end)? - f(&self.start)?);
        let c = &self.tally.counters;
        let plan = self.plan;
        let achieved = delta(|s| s.source_updates.map(|u| u as f64)).map(|d| d / window);
        let subscriptions = (self.point.clients * plan.symbols_per_client) as f64;
        let universe = self.spread_universe();
        PointReport {
            label: self.point.label.clone(),
            target: self.target,
            settings: Settings {
                clients: self.point.clients,
                slow_clients: self.slow_clients,
                symbols: plan.symbols,
                symbols_per_client: plan.symbols_per_client,
                encoding: plan.encoding.name().into(),
                duration_s: plan.duration.as_secs_f64(),
                warmup_s: plan.warmup.as_secs_f64(),
                ramp_per_s: plan.ramp,
                slow_ms_per_event: plan.slow_delay.as_secs_f64() * 1e3,
                max_hz: plan.max_hz,
                seed: plan.seed,
            },
            connections: Connections {
                opened: self.connect.opened,
                failed: self.connect.failed,
                subscribed: self.connect.subscribed,
                closed_during_run: c.closed,
                connect_s: self.connect.took.as_secs_f64(),
                first_error: self.connect.first_error,
            },
            source: Source {
                asked_per_s: self.point.rate,
                achieved_per_s: achieved,
            },
            delivery: Delivery {
                expected_events_per_s: achieved
                    .zip(universe)
                    .map(|(r, symbols)| r * subscriptions / symbols as f64),
                events_per_s: per_s(c.events),
                events: c.events,
                frames_per_s: per_s(c.frames),
                events_per_frame: if c.frames > 0 {
                    c.events as f64 / c.frames as f64
                } else {
                    0.0
                },
                megabytes_per_s: per_s(c.bytes) / 1e6,
                server_events_out_per_s: delta(|s| s.stats.as_ref().map(|s| s.events_out as f64))
                    .map(|d| d / window),
            },
            latency_fast: Latency::of(&self.tally.fast),
            latency_slow: Latency::of(&self.tally.slow),
            server_stages: server_stages(&self.start, &self.end),
            conflation: Conflation {
                events_with_merges: c.conflated_events,
                updates_merged: c.merged_updates,
                snapshots: c.snapshots,
            },
            resources: Resources {
                server_cpu_cores: delta(|s| s.server_cpu_s).map(|d| d / window),
                server_rss_bytes: self.end.server_rss_bytes,
                server_rss_before_connect_bytes: self.before_connect.server_rss_bytes,
                server_rss_per_connection_bytes: rss_per_connection(
                    self.before_connect.server_rss_bytes,
                    self.end.server_rss_bytes,
                    self.connect.opened,
                ),
                server_figures: self.server_note.into(),
                client_cpu_cores: delta(|s| s.client_cpu_s).map(|d| d / window),
                client_threads: self.client_threads,
                publisher_cpu_cores: delta(|s| s.publisher_cpu_s)
                    .map(|d| d / window)
                    .filter(|_| self.point.target == super::args::TargetKind::Nats),
                bench_rss_bytes: self.end.bench_rss_bytes,
            },
            violations: Violations {
                total: c.violations(),
                seq_backwards: c.seq_backwards,
                gaps_not_counted: c.gaps_not_counted,
                unexpected_symbol: c.unexpected_symbol,
                unreadable_frames: c.unreadable_frames,
            },
            errors_received: c.errors,
            first_close_reason: self.first_close,
            timeline: self.timeline,
        }
    }
}

fn rss_per_connection(before: Option<u64>, after: Option<u64>, connections: u64) -> Option<f64> {
    let grown = after? as f64 - before? as f64;
    (connections > 0).then(|| grown / connections as f64)
}

/// Stage latencies over the window (in-process histograms) or since the
/// server started (`/api/stats`).
fn server_stages(start: &Sample, end: &Sample) -> Option<ServerStages> {
    if let (Some(before), Some(after)) = (&start.stages, &end.stages) {
        let window = |i: usize| {
            let mut h = after[i].clone();
            h.subtract(&before[i])
                .expect("a later copy holds every earlier count");
            StageLatency::from(Percentiles::of(&h))
        };
        return Some(ServerStages {
            window: "measured window".into(),
            route: window(0),
            deliver: window(1),
        });
    }
    let latency = &end.stats.as_ref()?.latency_us;
    let stage = |name: &str| {
        serde_json::from_value::<Percentiles>(latency.get(name)?.clone())
            .ok()
            .map(StageLatency::from)
    };
    Some(ServerStages {
        window: "since server start".into(),
        route: stage("route")?,
        deliver: stage("deliver")?,
    })
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
