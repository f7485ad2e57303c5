//! `tickfeed bench`: the fan-out latency benchmark.
//!
//! For each sweep point (`point.rs`): start the target (`target.rs`), open
//! the clients at the ramp rate (`connector.rs`), let workers (`worker.rs`)
//! read and check every frame, wait for every subscription, warm up, then
//! measure for `--duration`: latency of every event into HdrHistograms,
//! the server's figures sampled at both ends of the window. Finally print
//! the table and write the JSON, HdrHistogram text and SVG plot asked for.
//!
//! Clients run on a runtime of their own (threads `bench-client`), so that
//! in-process the server's CPU time can be told apart from the clients'.

pub mod args;
mod client;
mod connection;
mod connector;
mod delta_check;
mod hdr;
mod measured;
mod nats;
mod nats_client;
mod parse;
mod plot;
mod point;
mod progress;
pub mod report;
mod slow_age;
mod table;
mod tally;
mod target;
mod worker;
mod workload;

pub use args::BenchArgs;

use anyhow::Context;
use args::{Plan, TargetKind};
use progress::Progress;
use report::{BenchReport, Machine};
use target::CLIENT_THREAD;
use tokio::runtime::{Handle, Runtime};

/// Descriptors kept free for everything besides client sockets.
const SPARE_DESCRIPTORS: u64 = 256;

/// Runs every point of the sweep, prints the report and writes the files
/// asked for; returns the report.
pub async fn run(args: BenchArgs) -> anyhow::Result<BenchReport> {
    let plan = args.into_plan()?;
    let most_clients = plan.points.iter().map(|p| p.clients).max().unwrap_or(0);
    let in_process =
        plan.url.is_none() && plan.points.iter().any(|p| p.target == TargetKind::Tickfeed);
    ensure_descriptors(most_clients as u64 * if in_process { 2 } else { 1 } + SPARE_DESCRIPTORS)?;
    let runtime = ClientRuntime::new()?;
    let progress = Progress::new();
    let mut points = Vec::new();
    let mut histograms = Vec::new();
    for point in &plan.points {
        tracing::info!(point = %point.label, clients = point.clients, rate = ?point.rate, "bench point");
        let (report, tally) = point::run_point(&plan, point, &runtime, &progress)
            .await
            .with_context(|| format!("bench point {:?}", point.label))?;
        histograms.push(if tally.fast.is_empty() {
            tally.slow
        } else {
            tally.fast
        });
        points.push(report);
    }
    progress.finish();
    let report = BenchReport {
        tickfeed_version: env!("CARGO_PKG_VERSION").into(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: Machine::this(),
        points,
    };
    println!("{}", table::render(&report));
    write_outputs(&plan, &report, &histograms)?;
    Ok(report)
}

/// The clients' own multi-thread runtime, one thread per core; shut down
/// in the background so it can be dropped from async code.
struct ClientRuntime(Option<Runtime>);

impl ClientRuntime {
    fn new() -> std::io::Result<Self> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(CLIENT_THREAD)
            .enable_all()
            .build()?;
        Ok(Self(Some(runtime)))
    }

    fn handle(&self) -> &Handle {
        self.0.as_ref().expect("runtime lives until drop").handle()
    }

    fn threads(&self) -> usize {
        self.handle().metrics().num_workers()
    }
}

impl Drop for ClientRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Raises the open-file limit to `needed` if it can (soft up to hard, and
/// the hard limit too when privileged); fails early with the fix if not.
fn ensure_descriptors(needed: u64) -> anyhow::Result<()> {
    use rlimit::Resource;
    let (soft, hard) = Resource::NOFILE.get()?;
    if soft >= needed {
        return Ok(());
    }
    if hard < needed && Resource::NOFILE.set(needed, needed).is_ok() {
        return Ok(());
    }
    Resource::NOFILE.set(needed.min(hard), hard)?;
    anyhow::ensure!(
        needed <= hard,
        "this run needs {needed} open files but the limit is {hard}: raise it (ulimit -Hn) or, for an in-process server, \
         run the server as its own process and use --url"
    );
    Ok(())
}

fn write_outputs(
    plan: &Plan,
    report: &BenchReport,
    histograms: &[hdrhistogram::Histogram<u64>],
) -> anyhow::Result<()> {
    if let Some(path) = &plan.json {
        let json = serde_json::to_vec_pretty(report)?;
        std::fs::write(path, json).with_context(|| format!("--json {}", path.display()))?;
    }
    if let Some(path) = &plan.hdr {
        for (point, histogram) in report.points.iter().zip(histograms) {
            let file = hdr::path_for(path, &point.label, report.points.len());
            std::fs::write(&file, hdr::percentile_text(histogram))
                .with_context(|| format!("--hdr {}", file.display()))?;
        }
    }
    if let Some(path) = &plan.plot {
        let lines: Vec<plot::Line> = report
            .points
            .iter()
            .zip(histograms)
            .map(|(p, h)| plot::Line::of(&p.label, h))
            .collect();
        let title = format!(
            "End-to-end latency by percentile: {} of {} symbols per client, {}",
            plan.symbols_per_client,
            plan.symbols,
            plan.encoding.name()
        );
        plot::draw(path, &title, &lines)?;
    }
    Ok(())
}
