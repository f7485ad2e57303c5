//! The terminal table: one column per sweep point, one row per figure,
//! so tickfeed and nats-server (or 1,000 and 10,000 clients) read side by
//! side. Figures a target cannot give show as `n/a`.

use super::args::human_count;
use super::report::{BenchReport, Latency, PointReport};
use super::tally::Merges;
use std::fmt::Write;

const NA: &str = "n/a";

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
    push(r, points, "violations", |p| p.violations.total.to_string());
    rows
}

/// Renders the report as a plain-text table with notes underneath.
pub fn render(report: &BenchReport) -> String {
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
        if let Some(reason) = &p.first_close_reason {
            let _ = writeln!(out, "[{}] first connection lost: {reason}", p.label);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_at_a_glance() {
        assert_eq!(ms(0.123), "0.12 ms");
        assert_eq!(ms(23.6), "23.6 ms");
        assert_eq!(ms(3800.0), "3800 ms");
        assert_eq!(mib(Some(3 << 20)), "3 MiB");
        assert_eq!(cores(None), "n/a");
    }
}
