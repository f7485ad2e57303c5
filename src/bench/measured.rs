//! Turning what one sweep point measured into its [`PointReport`]: client
//! counters over the clients' window, server figures as differences
//! between the samples taken around it.

use super::args::{Channel, Plan, Point, TargetKind};
use super::delta_check::DeltaCheck;
use super::report::{
    Conflation, Connections, Delivery, Latency, PointReport, Resources, ServerStages, Settings,
    Source, StageLatency, TimelinePoint, Violations,
};
use super::slow_age::{AgesBySecond, SETTLE_S};
use super::tally::Tally;
use super::target::Sample;
use crate::stats::Percentiles;
use std::time::Duration;

/// How the connection phase ended.
#[derive(Debug, Clone)]
pub(super) struct ConnectOutcome {
    pub opened: u64,
    pub failed: u64,
    pub subscribed: u64,
    pub took: Duration,
    pub first_error: Option<String>,
}

/// Everything one point measured, before it is summarised.
pub(super) struct Measured<'a> {
    pub plan: &'a Plan,
    pub point: &'a Point,
    pub target: String,
    pub server_note: &'static str,
    pub in_process: bool,
    pub slow_clients: usize,
    /// Subscriptions of all clients together.
    pub subscriptions: usize,
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
    pub slow_ages: &'a AgesBySecond,
    /// With `--deltas`: deltas applied against the full stream.
    pub delta_check: Option<DeltaCheck>,
}

impl Measured<'_> {
    /// Summarises into a [`PointReport`].
    pub(super) fn report(self) -> PointReport {
        let c = &self.tally.counters;
        let merges = c.merges();
        PointReport {
            label: self.point.label.clone(),
            settings: self.settings(),
            connections: Connections {
                opened: self.connect.opened,
                failed: self.connect.failed,
                subscribed: self.connect.subscribed,
                closed_during_run: c.closed,
                connect_s: self.connect.took.as_secs_f64(),
                first_error: self.connect.first_error.clone(),
            },
            source: Source {
                asked_per_s: self.point.rate,
                achieved_per_s: self.source_rate(),
            },
            delivery: self.delivery(),
            latency_fast: Latency::of(&self.tally.fast),
            latency_slow: Latency::of(&self.tally.slow),
            server_stages: server_stages(&self.start, &self.end),
            conflation: Conflation {
                events_with_merges: merges.events_with_merges,
                updates_merged: merges.updates_merged,
                snapshots: c.snapshots,
                fast: c.fast_merges,
                slow: c.slow_merges,
            },
            resources: self.resources(),
            violations: Violations {
                total: c.violations() + self.delta_mismatches(),
                seq_backwards: c.seq_backwards,
                gaps_not_counted: c.gaps_not_counted,
                unexpected_symbol: c.unexpected_symbol,
                unreadable_frames: c.unreadable_frames,
                delta_mismatches: self.delta_mismatches(),
            },
            errors_received: c.errors,
            first_close_reason: self.first_close,
            timeline: self.timeline,
            slow_age_timeline: self.slow_ages.timeline(),
            slow_after_5s: self.slow_ages.since_second(SETTLE_S),
            target: self.target,
            delta_check: self.delta_check,
        }
    }

    fn delta_mismatches(&self) -> u64 {
        self.delta_check.as_ref().map_or(0, |d| d.mismatches)
    }

    fn settings(&self) -> Settings {
        let plan = self.plan;
        Settings {
            clients: self.point.clients,
            slow_clients: self.slow_clients,
            symbols: plan.symbols,
            symbols_per_client: plan.symbols_per_client,
            hot_symbols: plan.hot_symbols,
            subscriptions: self.subscriptions,
            skew: self.skew(),
            encoding: plan.encoding.name().into(),
            duration_s: plan.duration.as_secs_f64(),
            warmup_s: plan.warmup.as_secs_f64(),
            ramp_per_s: plan.ramp,
            slow_mode: plan.slow_reading.mode,
            slow_delay_ms: plan.slow_reading.delay.as_secs_f64() * 1e3,
            slow_recv_buffer_bytes: plan.slow_recv_buffer,
            max_hz: plan.max_hz,
            deltas: plan.deltas,
            channel: plan.channel,
            depth: (plan.channel == Channel::Book).then_some(plan.depth),
            seed: plan.market.seed,
        }
    }

    /// Change per second of a sampled figure over the measured window.
    fn sampled_rate(&self, figure: fn(&Sample) -> Option<f64>) -> Option<f64> {
        let seconds = self
            .end
            .at
            .duration_since(self.start.at)
            .as_secs_f64()
            .max(1e-9);
        Some((figure(&self.end)? - figure(&self.start)?) / seconds)
    }

    fn source_rate(&self) -> Option<f64> {
        self.sampled_rate(|s| s.source_updates.map(|u| u as f64))
    }

    /// The skew the bench gave the market: in-process and NATS.
    fn skew(&self) -> Option<f64> {
        (self.in_process || self.point.target == TargetKind::Nats).then_some(self.plan.market.skew)
    }

    /// The number of symbols the source spreads its updates evenly over,
    /// when known: in-process and NATS with `--skew 0`, a tickfeed at
    /// `--url` when its `/api/stats` reports a uniform generator (skew 0).
    fn spread_universe(&self) -> Option<usize> {
        if let Some(skew) = self.skew() {
            return (skew == 0.0).then_some(self.plan.symbols);
        }
        let stats = self.end.stats.as_ref()?;
        (stats.source["skew"].as_f64() == Some(0.0)).then_some(stats.symbols)
    }

    fn delivery(&self) -> Delivery {
        let c = &self.tally.counters;
        let per_s = |count: u64| count as f64 / self.window.as_secs_f64().max(1e-9);
        let subscriptions = self.subscriptions as f64;
        Delivery {
            // Not every update changes a book's top levels.
            expected_events_per_s: (self.plan.channel == Channel::Ticks)
                .then(|| self.source_rate())
                .flatten()
                .zip(self.spread_universe())
                .map(|(rate, symbols)| rate * subscriptions / symbols as f64),
            events_per_s: per_s(c.events),
            events: c.events,
            frames_per_s: per_s(c.frames),
            events_per_frame: if c.frames > 0 {
                c.events as f64 / c.frames as f64
            } else {
                0.0
            },
            megabytes_per_s: per_s(c.bytes) / 1e6,
            bytes_per_event: if c.events > 0 {
                c.bytes as f64 / c.events as f64
            } else {
                0.0
            },
            server_events_out_per_s: self
                .sampled_rate(|s| s.stats.as_ref().map(|s| s.events_out as f64)),
        }
    }

    fn resources(&self) -> Resources {
        let (before, after) = (
            self.before_connect.server_rss_bytes,
            self.end.server_rss_bytes,
        );
        Resources {
            server_cpu_cores: self.sampled_rate(|s| s.server_cpu_s),
            server_rss_bytes: after,
            server_rss_before_connect_bytes: before,
            server_rss_per_connection_bytes: rss_per_connection(before, after, self.connect.opened),
            server_figures: self.server_note.into(),
            client_cpu_cores: self.sampled_rate(|s| s.client_cpu_s),
            client_threads: self.client_threads,
            publisher_cpu_cores: self
                .sampled_rate(|s| s.publisher_cpu_s)
                .filter(|_| self.point.target == TargetKind::Nats),
            other_cpu_cores: self.sampled_rate(other_cpu_s),
            bench_rss_bytes: self.end.bench_rss_bytes,
        }
    }
}

/// Machine CPU not used by the bench process or a separate server (whose
/// CPU must then be known).
fn other_cpu_s(s: &Sample) -> Option<f64> {
    let server = if s.server_separate {
        s.server_cpu_s?
    } else {
        0.0
    };
    Some(s.machine_busy_s? - s.bench_cpu_s? - server)
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
    fn rss_growth_is_shared_by_the_connections_opened() {
        assert_eq!(
            rss_per_connection(Some(1_000), Some(41_000), 10),
            Some(4_000.0)
        );
        assert_eq!(rss_per_connection(None, Some(41_000), 10), None);
        assert_eq!(rss_per_connection(Some(1_000), Some(41_000), 0), None);
    }
}
