//! `/metrics`: the server's figures, encoded by prometheus-client from a
//! fresh registry per scrape, as OpenMetrics text when the scraper asks
//! for it (Prometheus does) and as Prometheus text 0.0.4 otherwise (curl,
//! `promtool check metrics`). Counters and gauges
//! come from a [`StatsSnapshot`], the per-stage latency histograms from
//! `stats`' HdrHistograms (`histogram.rs`), `process_*` from `/proc/self`
//! (`process.rs`). Every metric, its unit and meaning is listed in
//! `docs/operating.md`; `/api/stats` is the same data as JSON for people.

mod histogram;
mod process;

use crate::clock::now_ns;
use crate::stats::{CloseReason, Refusal, Stage, Stats, StatsSnapshot};
use histogram::LatencyHistogram;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// The two text formats of an exposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exposition {
    OpenMetrics,
    PrometheusText,
}

impl Exposition {
    /// OpenMetrics when the `Accept` header names it, else Prometheus text.
    pub(crate) fn accepted(accept: Option<&str>) -> Self {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => {
                Exposition::OpenMetrics
            }
            _ => Exposition::PrometheusText,
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Exposition::PrometheusText => {
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE
            }
        }
    }
}

/// Renders every metric of this process in `format`.
pub(crate) fn render(stats: &Stats, symbols: usize, format: Exposition) -> String {
    let mut registry = Registry::default();
    process::register(&mut registry);
    let tickfeed = registry.sub_registry_with_prefix("tickfeed");
    register_figures(tickfeed, &stats.snapshot(symbols));
    register_latencies(tickfeed, stats);
    register_outcomes(tickfeed, stats);
    register_health(tickfeed, stats);
    let mut text = String::new();
    match format {
        Exposition::OpenMetrics => prometheus_client::encoding::text::encode(&mut text, &registry),
        Exposition::PrometheusText => {
            prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
        }
    }
    .expect("writing to a String cannot fail");
    text
}

/// Gauges and counters of `/api/stats`, and the build.
fn register_figures(registry: &mut Registry, snapshot: &StatsSnapshot) {
    let build = Family::<BuildLabels, Gauge>::default();
    build
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
        })
        .set(1);
    registry.register("build_info", "Always 1; the version in its label", build);
    let gauges: [(&str, &str, f64); 5] = [
        (
            "connections",
            "Open WebSocket connections",
            snapshot.connections as f64,
        ),
        (
            "subscriptions",
            "Subscriptions held by all connections (* counts once)",
            snapshot.subscriptions as f64,
        ),
        (
            "symbols",
            "Symbols known to the router",
            snapshot.symbols as f64,
        ),
        (
            "uptime_seconds",
            "Seconds since the server started",
            snapshot.uptime_s,
        ),
        (
            "scheduling_lag_seconds",
            "How late the runtime ran a due task, at most, over the last second or two",
            snapshot.scheduling_lag_ms / 1e3,
        ),
    ];
    for (name, help, value) in gauges {
        registry.register(name, help, ConstGauge::new(value));
    }
    let counters: [(&str, &str, u64); 13] = [
        (
            "connections_accepted",
            "WebSocket connections accepted",
            snapshot.connections_total,
        ),
        ("ticks_in", "Source updates routed", snapshot.ticks_in),
        (
            "books_in",
            "Book changes routed (top levels changed)",
            snapshot.books_in,
        ),
        (
            "books_out",
            "Book events written to clients, not counting snapshots",
            snapshot.books_out,
        ),
        (
            "events_out",
            "Events written to clients (ticks, bars and books)",
            snapshot.events_out,
        ),
        (
            "events_conflated",
            "Tick events sent with n > 0",
            snapshot.events_conflated,
        ),
        (
            "updates_merged",
            "Source updates merged by conflation (sum of n)",
            snapshot.updates_merged,
        ),
        (
            "snapshots_out",
            "Snapshots sent (ticks, bars and books)",
            snapshot.snapshots_out,
        ),
        ("frames_out", "Data frames written", snapshot.frames_out),
        ("bytes_out", "Data frame bytes written", snapshot.bytes_out),
        ("requests", "Client requests received", snapshot.requests),
        (
            "request_errors",
            "Client requests refused",
            snapshot.request_errors,
        ),
        (
            "flow_pauses",
            "Times a client's in-flight window was full and its writes waited",
            snapshot.flow_pauses,
        ),
    ];
    for (name, help, value) in counters {
        registry.register(name, help, ConstCounter::new(value));
    }
}

/// One histogram per stage, in seconds. `hop` exists on every node and
/// stays empty where no broker hop happens.
fn register_latencies(registry: &mut Registry, stats: &Stats) {
    for (stage, help) in [
        (Stage::Route, "Source emission to the router's fan-out"),
        (
            Stage::Deliver,
            "Source emission to the completed socket write that carried the event",
        ),
        (Stage::Hop, "Source node to this edge through NATS"),
    ] {
        let (since_start, _) = stats.histograms(stage);
        registry.register(
            format!("{}_latency_seconds", stage.name()),
            format!("{help}, seconds"),
            LatencyHistogram::from_hdr(&since_start),
        );
    }
}

/// Closes and refusals by reason, every reason present from the start.
fn register_outcomes(registry: &mut Registry, stats: &Stats) {
    let closes = reason_counters(
        CloseReason::ALL
            .iter()
            .map(|&r| (r.label(), stats.outcomes.closes(r))),
    );
    registry.register(
        "connections_closed",
        "WebSocket connections ended, by reason",
        closes,
    );
    let refusals = reason_counters(
        Refusal::ALL
            .iter()
            .map(|&r| (r.label(), stats.outcomes.refusals(r))),
    );
    registry.register(
        "refusals",
        "Connections and requests turned away, by reason",
        refusals,
    );
}

fn reason_counters(
    counts: impl Iterator<Item = (&'static str, u64)>,
) -> Family<ReasonLabels, Counter> {
    let family = Family::<ReasonLabels, Counter>::default();
    for (reason, count) in counts {
        family.get_or_create(&ReasonLabels { reason }).inc_by(count);
    }
    family
}

/// The source's last event and, on `--nats` nodes, the broker connection.
fn register_health(registry: &mut Registry, stats: &Stats) {
    if let Some(age_s) = stats.source_health.last_event_age_s(now_ns()) {
        registry.register(
            "source_last_event_age_seconds",
            "Seconds since the router last routed a source update",
            ConstGauge::new(age_s),
        );
    }
    let broker = &stats.broker;
    if broker.configured() {
        registry.register(
            "nats_connected",
            "1 while the NATS connection is up, 0 while it is lost",
            ConstGauge::new(i64::from(broker.connected())),
        );
        registry.register(
            "nats_reconnects",
            "NATS connections regained after a loss",
            ConstCounter::new(broker.reconnects()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn exposition_has_histograms_reasons_and_build_but_no_quantile_gauge() {
        let stats = Stats::new();
        stats.ticks_in.fetch_add(5, Ordering::Relaxed);
        stats.books_in.fetch_add(4, Ordering::Relaxed);
        stats.outcomes.count_close(CloseReason::SlowConsumer);
        let text = render(&stats, 3, Exposition::OpenMetrics);
        for expected in [
            "tickfeed_ticks_in_total 5",
            "tickfeed_books_in_total 4",
            "tickfeed_books_out_total 0",
            "tickfeed_symbols 3",
            "# TYPE tickfeed_route_latency_seconds histogram",
            r#"tickfeed_deliver_latency_seconds_bucket{le="+Inf"} 0"#,
            "tickfeed_hop_latency_seconds_count 0",
            r#"tickfeed_connections_closed_total{reason="slow_consumer"} 1"#,
            r#"tickfeed_refusals_total{reason="origin"} 0"#,
            r#"tickfeed_build_info{version=""#,
        ] {
            assert!(text.contains(expected), "{expected} in\n{text}");
        }
        assert!(!text.contains("tickfeed_latency_us"), "{text}");
        assert!(
            !text.contains("nats_connected"),
            "no broker, no NATS metrics"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn prometheus_text_names_counters_with_their_suffix_and_has_no_eof() {
        let text = render(&Stats::new(), 0, Exposition::PrometheusText);
        assert!(
            text.contains("# TYPE tickfeed_ticks_in_total counter"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        let openmetrics = "application/openmetrics-text;version=1.0.0,text/plain;q=0.5";
        assert_eq!(
            Exposition::accepted(Some(openmetrics)),
            Exposition::OpenMetrics
        );
        assert_eq!(
            Exposition::accepted(Some("*/*")),
            Exposition::PrometheusText
        );
        assert_eq!(Exposition::accepted(None), Exposition::PrometheusText);
    }

    #[test]
    fn broker_and_source_health_appear_once_known() {
        let stats = Stats::new();
        stats.broker.connected_first();
        stats.broker.lost();
        stats.source_health.routed_at(now_ns());
        let text = render(&stats, 0, Exposition::PrometheusText);
        assert!(text.contains("tickfeed_nats_connected 0"), "{text}");
        assert!(text.contains("tickfeed_nats_reconnects_total 0"), "{text}");
        assert!(
            text.contains("tickfeed_source_last_event_age_seconds "),
            "{text}"
        );
    }
}
