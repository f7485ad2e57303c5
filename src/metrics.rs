//! `/metrics`: the figures of `/api/stats` in Prometheus text exposition
//! format, encoded by prometheus-client from a fresh snapshot per scrape.

use crate::stats::{Percentiles, StatsSnapshot};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    stage: String,
    quantile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: String,
}

/// Renders a snapshot as Prometheus text.
pub(crate) fn render(snapshot: &StatsSnapshot) -> String {
    let mut registry = Registry::with_prefix("tickfeed");
    let gauges: [(&str, &str, u64); 4] = [
        (
            "connections",
            "Open WebSocket connections",
            snapshot.connections,
        ),
        (
            "subscriptions",
            "Subscriptions held by all connections (* counts once)",
            snapshot.subscriptions,
        ),
        (
            "symbols",
            "Symbols known to the router",
            snapshot.symbols as u64,
        ),
        (
            "uptime_seconds",
            "Seconds since the server started",
            snapshot.uptime_s as u64,
        ),
    ];
    for (name, help, value) in gauges {
        registry.register(name, help, ConstGauge::new(value as i64));
    }
    let counters: [(&str, &str, u64); 15] = [
        (
            "connections_accepted",
            "WebSocket connections accepted",
            snapshot.connections_total,
        ),
        (
            "connections_refused",
            "Handshakes refused (origin or limit)",
            snapshot.connections_refused,
        ),
        (
            "requests_unauthorized",
            "Requests refused with 401 (missing or wrong token)",
            snapshot.requests_unauthorized,
        ),
        (
            "handshakes_shed",
            "Pending handshakes closed to make room (--max-pending-handshakes)",
            snapshot.handshakes_shed,
        ),
        ("ticks_in", "Source updates routed", snapshot.ticks_in),
        (
            "events_out",
            "Tick events written to clients",
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
            "Snapshot ticks sent",
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
            "slow_consumer_closes",
            "Connections closed as slow consumers",
            snapshot.slow_consumer_closes,
        ),
        (
            "heartbeat_closes",
            "Connections closed for missing heartbeats",
            snapshot.heartbeat_closes,
        ),
    ];
    for (name, help, value) in counters {
        registry.register(name, help, ConstCounter::new(value));
    }
    let latency = Family::<LatencyLabels, Gauge<f64, AtomicU64>>::default();
    let samples = Family::<StageLabels, Gauge<i64>>::default();
    if let serde_json::Value::Object(stages) = &snapshot.latency_us {
        for (stage, value) in stages {
            let Ok(p) = serde_json::from_value::<Percentiles>(value.clone()) else {
                continue;
            };
            for (quantile, v) in [
                ("0.5", p.p50),
                ("0.9", p.p90),
                ("0.99", p.p99),
                ("0.999", p.p999),
                ("1", p.max),
            ] {
                latency
                    .get_or_create(&LatencyLabels {
                        stage: stage.clone(),
                        quantile: quantile.into(),
                    })
                    .set(v);
            }
            samples
                .get_or_create(&StageLabels {
                    stage: stage.clone(),
                })
                .set(p.count as i64);
        }
    }
    registry.register(
        "latency_us",
        "Stage latency percentiles since start, microseconds",
        latency,
    );
    registry.register(
        "latency_samples",
        "Events measured per stage since start",
        samples,
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .expect("writing to a String cannot fail");
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Stats;

    #[test]
    fn exposition_names_counters_and_latency_quantiles() {
        let stats = Stats::new();
        stats
            .ticks_in
            .fetch_add(5, std::sync::atomic::Ordering::Relaxed);
        let text = render(&stats.snapshot(3));
        assert!(text.contains("tickfeed_ticks_in_total 5"), "{text}");
        assert!(text.contains("tickfeed_symbols 3"), "{text}");
        assert!(
            text.contains(r#"tickfeed_latency_us{stage="route",quantile="0.99"}"#),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
