//! `tickfeed bench`: the fan-out latency benchmark.
//!
//! For each sweep point: start the target (`target.rs`), open the clients
//! at the ramp rate (`connector.rs`), let workers (`worker.rs`) read and
//! check every frame, wait for every subscription, warm up, then measure
//! for `--duration`: latency of every event into HdrHistograms, the
//! server's figures sampled at both ends of the window. Finally print the
//! table and write the JSON, HdrHistogram text and SVG plot asked for.
//!
//! Clients run on a runtime of their own (threads `bench-client`), so that
//! in-process the server's CPU time can be told apart from the clients'.

pub mod args;
mod check;
mod client;
mod connection;
mod connector;
mod hdr;
mod nats;
mod nats_client;
mod parse;
mod plot;
mod procfs;
mod progress;
pub mod report;
mod table;
mod tally;
mod target;
mod worker;
mod workload;

pub use args::BenchArgs;

use anyhow::Context;
use args::{Plan, Point, TargetKind};
use connector::{ConnectStats, Connector};
use progress::Progress;
use report::{BenchReport, ConnectOutcome, Machine, Measured, PointReport, TimelinePoint};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tally::{AgeSpan, Summary, Tally};
use target::{CLIENT_THREAD, Target};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use worker::{Phase, Shared, Worker};

/// Worker tasks per run: a few per client thread, so work-stealing can
/// balance them; each holds two histograms (about 0.5 MB).
const WORKERS: usize = 8;
/// Connected clients queued for a worker before the connector waits.
const WORKER_INBOX: usize = 256;
/// Summaries in flight; workers drop one rather than wait when it is full.
const SUMMARY_QUEUE: usize = 1024;
/// Time allowed for subscriptions to be acknowledged after the last
/// connection was due.
const SUBSCRIBE_GRACE: Duration = Duration::from_secs(30);
/// How often the connection phase checks its progress.
const CONNECT_POLL: Duration = Duration::from_millis(50);
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
        let (report, tally) = run_point(&plan, point, &runtime, &progress)
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

async fn run_point(
    plan: &Plan,
    point: &Point,
    runtime: &ClientRuntime,
    progress: &Progress,
) -> anyhow::Result<(PointReport, Tally)> {
    let target = Target::start(plan, point).await?;
    let measured = measure(plan, point, &target, runtime, progress).await;
    target.stop().await?;
    measured
}

async fn measure(
    plan: &Plan,
    point: &Point,
    target: &Target,
    runtime: &ClientRuntime,
    progress: &Progress,
) -> anyhow::Result<(PointReport, Tally)> {
    let clients = workload::plan_clients(
        point.clients,
        target.symbols.len(),
        plan.symbols_per_client,
        plan.slow_fraction,
        plan.ramp,
        plan.seed,
    );
    let slow_clients = clients.iter().filter(|c| c.slow).count();
    let ramp_time = clients.last().map_or(Duration::ZERO, |c| c.connect_at);
    let workers = WORKERS.min(point.clients);
    let shared = Arc::new(Shared::new(&target.symbols, plan.encoding, workers));
    let (stop, stopped) = watch::channel(false);
    let (summary_tx, mut summaries) = mpsc::channel(SUMMARY_QUEUE);
    let mut inboxes = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (inbox, rx) = mpsc::channel(WORKER_INBOX);
        inboxes.push(inbox);
        let worker = Worker::new(shared.clone(), point.clients);
        handles.push(
            runtime
                .handle()
                .spawn(worker.run(rx, summary_tx.clone(), stopped.clone())),
        );
    }
    let stats = Arc::new(ConnectStats::default());
    let connector = Connector {
        side: Arc::new(target.clients.clone()),
        symbols: Arc::new(target.symbols.clone()),
        inboxes,
        slow_delay: plan.slow_delay,
        stats: stats.clone(),
    };
    let before_connect = target.sample().await;
    let connecting = runtime.handle().spawn(connector.run(clients));
    let connect =
        wait_for_subscriptions(&shared, &stats, point.clients as u64, ramp_time, progress).await;
    if connect.opened == 0 {
        let _ = stop.send(true);
        anyhow::bail!(
            "no client could connect: {}",
            connect.first_error.unwrap_or_default()
        );
    }
    shared.set_phase(Phase::Warmup);
    progress.phase("warm-up", plan.warmup.as_secs().max(1));
    tokio::time::sleep(plan.warmup).await;
    while summaries.try_recv().is_ok() {}
    let start = target.sample().await;
    shared.set_phase(Phase::Measuring);
    let measuring = Instant::now();
    let timeline = collect_timeline(&mut summaries, measuring, plan.duration, progress).await;
    shared.set_phase(Phase::Done);
    let window = measuring.elapsed();
    let end = target.sample().await;
    let _ = stop.send(true);
    connecting.abort();
    let mut tally = Tally::default();
    let mut first_close = None;
    for handle in handles {
        let (worker_tally, close) = handle.await.context("a bench worker failed")?;
        tally.merge(&worker_tally);
        first_close = first_close.or(close);
    }
    let report = Measured {
        plan,
        point,
        target: target.description.clone(),
        server_note: target.server_figures_note(),
        in_process: target.in_process(),
        slow_clients,
        client_threads: runtime.threads(),
        connect,
        window,
        before_connect,
        start,
        end,
        tally: &tally,
        first_close,
        timeline,
    }
    .report();
    Ok((report, tally))
}

/// Waits until every client is subscribed or gave up (or the deadline).
async fn wait_for_subscriptions(
    shared: &Shared,
    stats: &ConnectStats,
    total: u64,
    ramp_time: Duration,
    progress: &Progress,
) -> ConnectOutcome {
    let started = Instant::now();
    let deadline = started + ramp_time + client::CONNECT_TIMEOUT + SUBSCRIBE_GRACE;
    progress.phase("connecting", total);
    loop {
        let subscribed = shared.subscribed.load(Ordering::Relaxed);
        let failed = stats.failed.load(Ordering::Relaxed);
        let settled = subscribed + failed + shared.lost_before_ack.load(Ordering::Relaxed);
        progress.update(subscribed, || format!("subscribed, {failed} failed"));
        if settled >= total || Instant::now() >= deadline {
            if settled < total {
                tracing::warn!(
                    subscribed,
                    failed,
                    total,
                    "gave up waiting for subscriptions"
                );
            }
            return ConnectOutcome {
                opened: stats.opened.load(Ordering::Relaxed),
                failed,
                subscribed,
                took: started.elapsed(),
                first_error: stats.first_error(),
            };
        }
        tokio::time::sleep(CONNECT_POLL).await;
    }
}

/// Receives worker summaries for `duration` and bins them per second.
async fn collect_timeline(
    summaries: &mut mpsc::Receiver<Summary>,
    started: Instant,
    duration: Duration,
    progress: &Progress,
) -> Vec<TimelinePoint> {
    let seconds = duration.as_secs_f64().ceil() as usize + 1;
    let mut bins = vec![(AgeSpan::default(), AgeSpan::default()); seconds];
    let mut violations = 0;
    let mut events = 0;
    let end = tokio::time::sleep_until(started + duration);
    tokio::pin!(end);
    progress.phase("measuring", duration.as_secs().max(1));
    loop {
        tokio::select! {
            _ = &mut end => break,
            Some(summary) = summaries.recv() => {
                let bin = (started.elapsed().as_secs() as usize).min(seconds - 1);
                bins[bin].0.merge(&summary.fast);
                bins[bin].1.merge(&summary.slow);
                events += summary.fast.events + summary.slow.events;
                violations = violations.max(summary.violations);
                let elapsed = started.elapsed().as_secs_f64();
                progress.update(elapsed as u64, || {
                    format!("{}/s delivered, {violations} violations", args::human_count(events as f64 / elapsed.max(1.0)))
                });
            }
        }
    }
    bins.iter()
        .enumerate()
        .filter(|(_, (fast, slow))| fast.events + slow.events > 0)
        .map(|(t, (fast, slow))| TimelinePoint::new(t as u64, fast, slow))
        .collect()
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
