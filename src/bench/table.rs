//! The terminal table: one column per sweep point, one row per figure,
//! so tickfeed and nats-server (or 1,000 and 10,000 clients) read side by
//! side. Figures a target cannot give show as `n/a`. Under it, per point,
//! the slow clients' data age by second, compacted for long runs.

use super::args::human_count;
use super::report::{AgePoint, BenchReport, Latency, PointReport};
use super::slow_age::SETTLE_S;
use super::tally::Merges;
use std::fmt::Write;

const NA: &str = "n/a";
/// Most rows of a slow-age section: beyond it, the last warm-up seconds
/// and the first [`SETTLE_S`] of the window are kept whole and later
/// seconds shown one in k (`--json` has them all).
const AGE_ROWS: usize = 30;
/// Warm-up seconds kept when a slow-age section is compacted.
const AGE_WARMUP_ROWS: usize = 5;

fn count(value: f64) -> String {
    human_count(value.round())
}

fn opt(value: Option<String>) -> String {
    value.unwrap_or_else(|| NA.into())
}

fn ms(value: f64) -> String {
    match value {
        v if v >= 100.0 => format!("{v:.0} ms"),
        v if v >= 10.0 => format!("{v:.1} ms"),
        v => format!("{v:.2} ms"),
    }
}

fn mib(bytes: Option<u64>) -> String {
    opt(bytes.map(|b| format!("{:.0} MiB", b as f64 / (1 << 20) as f64)))
}

fn cores(value: Option<f64>) -> String {
    opt(value.map(|c| format!("{c:.2}")))
}

fn latency_rows(
    rows: &mut Rows,
    title: &str,
    pick: impl Fn(&PointReport) -> Option<&Latency>,
    points: &[PointReport],
) {
    if points.iter().all(|p| pick(p).is_none()) {
        return;
    }
    type Field = (&'static str, fn(&Latency) -> f64);
    let fields: [Field; 6] = [
        ("p50", |l| l.p50_ms),
        ("p90", |l| l.p90_ms),
        ("p99", |l| l.p99_ms),
        ("p99.9", |l| l.p999_ms),
        ("p99.99", |l| l.p9999_ms),
        ("max", |l| l.max_ms),
    ];
    for (name, field) in fields {
        let cells = points
            .iter()
            .map(|p| opt(pick(p).map(|l| ms(field(l)))))
            .collect();
        rows.push((format!("{title} {name}"), cells));
    }
}

type Rows = Vec<(String, Vec<String>)>;

fn push(
    rows: &mut Rows,
    points: &[PointReport],
    label: &str,
    cell: impl Fn(&PointReport) -> String,
) {
    rows.push((label.to_string(), points.iter().map(cell).collect()));
}

/// Every row of the table: a label and one cell per point.
fn rows(points: &[PointReport]) -> Rows {
    let mut rows = Rows::new();
    let r = &mut rows;
    push(r, points, "target", |p| p.target.clone());
    push(r, points, "clients (slow)", |p| {
        format!("{} ({})", p.settings.clients, p.settings.slow_clients)
    });
    push(r, points, "connections opened / failed", |p| {
        format!("{} / {}", p.connections.opened, p.connections.failed)
    });
    push(r, points, "subscriptions", |p| {
        p.settings.subscriptions.to_string()
    });
    push(r, points, "channel", |p| match p.settings.depth {
        Some(depth) => format!("{} ({depth} levels)", p.settings.channel.name()),
        None => p.settings.channel.name().into(),
    });
    push(r, points, "source updates/s asked", |p| {
        opt(p.source.asked_per_s.map(count))
    });
    push(r, points, "source updates/s achieved", |p| {
        opt(p.source.achieved_per_s.map(count))
    });
    push(r, points, "events/s expected", |p| {
        opt(p.delivery.expected_events_per_s.map(count))
    });
    push(r, points, "events/s delivered", |p| {
        count(p.delivery.events_per_s)
    });
    push(r, points, "events per frame", |p| {
        format!("{:.1}", p.delivery.events_per_frame)
    });
    push(r, points, "bytes per event", |p| {
        format!("{:.1}", p.delivery.bytes_per_event)
    });
    latency_rows(r, "latency", |p| p.latency_fast.as_ref(), points);
    latency_rows(r, "slow clients", |p| p.latency_slow.as_ref(), points);
    push(r, points, "server route p50 / p99", |p| {
        opt(p
            .server_stages
            .as_ref()
            .map(|s| format!("{:.0} / {:.0} us", s.route.p50_us, s.route.p99_us)))
    });
    push(r, points, "server deliver p50 / p99", |p| {
        opt(p.server_stages.as_ref().map(|s| {
            format!(
                "{} / {}",
                ms(s.deliver.p50_us / 1e3),
                ms(s.deliver.p99_us / 1e3)
            )
        }))
    });
    push(r, points, "events with n>0 / merged", |p| {
        format!(
            "{} / {}",
            p.conflation.events_with_merges, p.conflation.updates_merged
        )
    });
    let merges = |m: &Merges| format!("{} / {}", m.events_with_merges, m.updates_merged);
    push(r, points, "  fast clients", |p| merges(&p.conflation.fast));
    if points.iter().any(|p| p.settings.slow_clients > 0) {
        push(r, points, "  slow clients", |p| merges(&p.conflation.slow));
    }
    if points.iter().any(|p| p.slow_after_5s.is_some()) {
        let label = format!("slow age after {SETTLE_S} s p50/p99/max");
        push(r, points, &label, |p| {
            opt(p
                .slow_after_5s
                .as_ref()
                .map(|a| format!("{} / {} / {}", ms(a.p50_ms), ms(a.p99_ms), ms(a.max_ms))))
        });
    }
    push(r, points, "server CPU cores / RSS", |p| {
        format!(
            "{} / {}",
            cores(p.resources.server_cpu_cores),
            mib(p.resources.server_rss_bytes)
        )
    });
    push(r, points, "client CPU cores", |p| {
        cores(p.resources.client_cpu_cores)
    });
    if points
        .iter()
        .any(|p| p.resources.publisher_cpu_cores.is_some())
    {
        push(r, points, "publisher CPU cores", |p| {
            cores(p.resources.publisher_cpu_cores)
        });
    }
    push(r, points, "other processes' CPU cores", |p| {
        cores(p.resources.other_cpu_cores)
    });
    if points.iter().any(|p| p.delta_check.is_some()) {
        push(r, points, "deltas compared / mismatched", |p| {
            opt(p
                .delta_check
                .as_ref()
                .map(|d| format!("{} / {}", d.compared, d.mismatches)))
        });
    }
    push(r, points, "violations", |p| p.violations.total.to_string());
    rows
}

/// Renders the report as a plain-text table with notes underneath.
pub(super) fn render(report: &BenchReport) -> String {
    let points = &report.points;
    let rows = rows(points);
    let label_width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let headers: Vec<&str> = points.iter().map(|p| p.label.as_str()).collect();
    let widths: Vec<usize> = (0..points.len())
        .map(|i| {
            rows.iter()
                .map(|(_, cells)| cells[i].chars().count())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let _ = write!(out, "{:label_width$}", "");
    for (header, width) in headers.iter().zip(&widths) {
        let _ = write!(out, "  {header:>width$}");
    }
    out.push('\n');
    for (label, cells) in &rows {
        let _ = write!(out, "{label:label_width$}");
        for (cell, width) in cells.iter().zip(&widths) {
            let _ = write!(out, "  {cell:>width$}");
        }
        out.push('\n');
    }
    for p in points {
        let _ = writeln!(
            out,
            "\n[{}] server figures: {}",
            p.label, p.resources.server_figures
        );
        if let Some(stages) = &p.server_stages {
            let _ = writeln!(out, "[{}] server stages: {}", p.label, stages.window);
        }
        if let Some(error) = &p.connections.first_error {
            let _ = writeln!(out, "[{}] first connection failure: {error}", p.label);
        }
        if let Some(mismatch) = p
            .delta_check
            .as_ref()
            .and_then(|d| d.first_mismatch.as_ref())
        {
            let _ = writeln!(out, "[{}] first delta mismatch: {mismatch}", p.label);
        }
        if let Some(reason) = &p.first_close_reason {
            let _ = writeln!(out, "[{}] first connection lost: {reason}", p.label);
        }
    }
    for p in points.iter().filter(|p| !p.slow_age_timeline.is_empty()) {
        out.push('\n');
        out.push_str(&age_section(&p.label, &p.slow_age_timeline));
    }
    out
}

/// The seconds shown of a slow-age timeline: all of a short one; of a
/// long one the last warm-up seconds, the settling seconds and one in k
/// of the rest, at most [`AGE_ROWS`] in all.
fn age_rows(timeline: &[AgePoint]) -> Vec<&AgePoint> {
    if timeline.len() <= AGE_ROWS {
        return timeline.iter().collect();
    }
    let warmup = timeline.iter().filter(|a| a.t_s < 0).count();
    let settled = timeline.iter().take_while(|a| a.t_s < SETTLE_S).count();
    let early = &timeline[warmup.saturating_sub(AGE_WARMUP_ROWS)..settled];
    let late = &timeline[settled..];
    let step = late
        .len()
        .div_ceil(AGE_ROWS.saturating_sub(early.len()).max(1));
    early.iter().chain(late.iter().step_by(step)).collect()
}

/// The slow clients' data age by second of one point.
fn age_section(label: &str, timeline: &[AgePoint]) -> String {
    let rows = age_rows(timeline);
    let mut out = format!("[{label}] slow clients' data age by second (negative: warm-up");
    if rows.len() < timeline.len() {
        let _ = write!(
            out,
            "; {} of {} seconds, all in --json",
            rows.len(),
            timeline.len()
        );
    }
    out.push_str("):\n");
    let _ = writeln!(
        out,
        "{:>6}  {:>8}  {:>9}  {:>9}  {:>9}",
        "t_s", "events", "p50", "p99", "max"
    );
    for a in rows {
        let _ = writeln!(
            out,
            "{:>6}  {:>8}  {:>9}  {:>9}  {:>9}",
            a.t_s,
            a.age.events,
            ms(a.age.p50_ms),
            ms(a.age.p99_ms),
            ms(a.age.max_ms)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::AgeSummary;

    #[test]
    fn durations_and_sizes_read_at_a_glance() {
        assert_eq!(ms(0.123), "0.12 ms");
        assert_eq!(ms(23.6), "23.6 ms");
        assert_eq!(ms(3800.0), "3800 ms");
        assert_eq!(mib(Some(3 << 20)), "3 MiB");
        assert_eq!(cores(None), "n/a");
    }

    fn second(t_s: i64) -> AgePoint {
        AgePoint {
            t_s,
            phase: if t_s < 0 { "warmup" } else { "measured" },
            age: AgeSummary {
                events: 10,
                p50_ms: 1.0,
                p99_ms: 2.0,
                max_ms: 3.0,
            },
        }
    }

    #[test]
    fn a_short_slow_age_timeline_shows_every_second() {
        let timeline: Vec<AgePoint> = (-2..8).map(second).collect();
        let text = age_section("p", &timeline);
        assert_eq!(text.lines().count(), 2 + 10, "{text}");
        assert!(
            text.contains("    -2        10    1.00 ms    2.00 ms    3.00 ms"),
            "{text}"
        );
    }

    #[test]
    fn a_long_slow_age_timeline_keeps_the_transient_and_samples_the_rest() {
        let timeline: Vec<AgePoint> = (-10..600).map(second).collect();
        let shown: Vec<i64> = age_rows(&timeline).iter().map(|a| a.t_s).collect();
        assert!(shown.len() <= AGE_ROWS, "{shown:?}");
        assert_eq!(shown[..10], [-5, -4, -3, -2, -1, 0, 1, 2, 3, 4]);
        assert!(
            shown[10..]
                .windows(2)
                .all(|w| w[1] - w[0] == shown[11] - shown[10])
        );
        assert!(*shown.last().unwrap() >= 570, "{shown:?}");
        assert!(age_section("p", &timeline).contains(" of 610 seconds, all in --json"));
    }
}
