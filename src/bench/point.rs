//! One sweep point, phase by phase: start the target, start the workers,
//! connect every client at the ramp rate and wait for its subscription,
//! warm up, measure (collecting the workers' summaries into a per-second
//! timeline), then stop the workers, merge their tallies and summarise.
//! Slow clients' ages by second are gathered from every summary, from the
//! start of the warm-up to the workers' last ones.

use super::args::{Plan, Point};
use super::connector::{ConnectStats, Connector};
use super::delta_check::DeltaChecker;
use super::measured::{ConnectOutcome, Measured};
use super::progress::Progress;
use super::report::{PointReport, TimelinePoint};
use super::slow_age::AgesBySecond;
use super::tally::{AgeSpan, Summary, Tally};
use super::target::{ClientSide, Target};
use super::worker::{NewClient, Phase, Shared, Worker};
use super::{ClientRuntime, args, client, workload};
use anyhow::Context;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

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

/// Runs one point against a freshly started target.
pub(super) async fn run_point(
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

/// The workers of one run and the channels to and from them.
struct Crew {
    inboxes: Vec<mpsc::Sender<NewClient>>,
    handles: Vec<JoinHandle<(Tally, Option<String>)>>,
    stop: watch::Sender<bool>,
    summaries: mpsc::Receiver<Summary>,
}

impl Crew {
    fn spawn(runtime: &ClientRuntime, shared: &Arc<Shared>, clients: usize) -> Self {
        let (stop, stopped) = watch::channel(false);
        let (summary_tx, summaries) = mpsc::channel(SUMMARY_QUEUE);
        let (mut inboxes, mut handles) = (Vec::new(), Vec::new());
        for _ in 0..shared.workers {
            let (inbox, rx) = mpsc::channel(WORKER_INBOX);
            inboxes.push(inbox);
            let worker = Worker::new(shared.clone(), clients);
            handles.push(runtime.handle().spawn(worker.run(
                rx,
                summary_tx.clone(),
                stopped.clone(),
            )));
        }
        Self {
            inboxes,
            handles,
            stop,
            summaries,
        }
    }

    /// Stops every worker and merges what they measured, their last
    /// summaries' slow ages into `slow_ages`.
    async fn finish(
        mut self,
        slow_ages: &mut AgesBySecond,
    ) -> anyhow::Result<(Tally, Option<String>)> {
        let _ = self.stop.send(true);
        // Ends when every worker has returned and dropped its sender.
        while let Some(summary) = self.summaries.recv().await {
            slow_ages.append(summary.slow_ages);
        }
        let mut tally = Tally::default();
        let mut first_close = None;
        for handle in self.handles {
            let (worker_tally, close) = handle.await.context("a bench worker failed")?;
            tally.merge(&worker_tally);
            first_close = first_close.or(close);
        }
        Ok((tally, first_close))
    }
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
        plan.hot_symbols,
        plan.slow_fraction,
        plan.ramp,
        plan.market.seed,
    );
    let slow_clients = clients.iter().filter(|c| c.slow).count();
    let subscriptions = clients.iter().map(|c| c.symbols.len()).sum();
    let ramp_time = clients.last().map_or(Duration::ZERO, |c| c.connect_at);
    let shared = Arc::new(Shared::new(
        &target.symbols,
        plan.encoding,
        plan.channel,
        WORKERS.min(point.clients),
    ));
    let mut crew = Crew::spawn(runtime, &shared, point.clients);
    let stats = Arc::new(ConnectStats::default());
    let connector = Connector {
        side: Arc::new(target.clients.clone()),
        symbols: Arc::new(target.symbols.clone()),
        inboxes: std::mem::take(&mut crew.inboxes),
        slow_reading: plan.slow_reading,
        slow_recv_buffer: plan.slow_recv_buffer,
        stats: stats.clone(),
    };
    let before_connect = target.sample().await;
    let connecting = runtime.handle().spawn(connector.run(clients));
    let connect =
        wait_for_subscriptions(&shared, &stats, point.clients as u64, ramp_time, progress).await;
    let mut slow_ages = AgesBySecond::default();
    if connect.opened == 0 {
        crew.finish(&mut slow_ages).await?;
        anyhow::bail!(
            "no client could connect: {}",
            connect.first_error.unwrap_or_default()
        );
    }
    let delta_checker = match &target.clients {
        ClientSide::Tickfeed { endpoint, options } if options.deltas => {
            Some(DeltaChecker::start(endpoint, *options, &target.symbols).await?)
        }
        _ => None,
    };
    while crew.summaries.try_recv().is_ok() {}
    shared.begin_warmup(plan.warmup);
    progress.phase("warm-up", plan.warmup.as_secs().max(1));
    gather_slow_ages(
        &mut crew.summaries,
        Instant::now() + plan.warmup,
        &mut slow_ages,
    )
    .await;
    let start = target.sample().await;
    shared.begin_measuring();
    let measuring = Instant::now();
    let timeline = collect_timeline(
        &mut crew.summaries,
        measuring,
        plan.duration,
        &mut slow_ages,
        progress,
    )
    .await;
    shared.set_phase(Phase::Done);
    let window = measuring.elapsed();
    let end = target.sample().await;
    connecting.abort();
    let (tally, first_close) = crew.finish(&mut slow_ages).await?;
    let delta_check = match delta_checker {
        Some(checker) => Some(checker.finish().await?),
        None => None,
    };
    let report = Measured {
        plan,
        point,
        target: target.description.clone(),
        server_note: target.server_figures_note(),
        in_process: target.in_process(),
        slow_clients,
        subscriptions,
        client_threads: runtime.threads(),
        connect,
        window,
        before_connect,
        start,
        end,
        tally: &tally,
        first_close,
        timeline,
        slow_ages: &slow_ages,
        delta_check,
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

/// Receives worker summaries until `until`, keeping only their slow ages.
async fn gather_slow_ages(
    summaries: &mut mpsc::Receiver<Summary>,
    until: Instant,
    slow_ages: &mut AgesBySecond,
) {
    let end = tokio::time::sleep_until(until);
    tokio::pin!(end);
    loop {
        tokio::select! {
            _ = &mut end => return,
            Some(summary) = summaries.recv() => slow_ages.append(summary.slow_ages),
        }
    }
}

/// Receives worker summaries for `duration` and bins them per second of
/// arrival; their slow ages (tagged with their own second) go to
/// `slow_ages`.
async fn collect_timeline(
    summaries: &mut mpsc::Receiver<Summary>,
    started: Instant,
    duration: Duration,
    slow_ages: &mut AgesBySecond,
    progress: &Progress,
) -> Vec<TimelinePoint> {
    let seconds = duration.as_secs_f64().ceil() as usize + 1;
    let mut bins = vec![(AgeSpan::default(), AgeSpan::default()); seconds];
    let (mut events, mut violations) = (0, 0);
    let end = tokio::time::sleep_until(started + duration);
    tokio::pin!(end);
    progress.phase("measuring", duration.as_secs().max(1));
    loop {
        tokio::select! {
            _ = &mut end => break,
            Some(summary) = summaries.recv() => {
                let bin = &mut bins[(started.elapsed().as_secs() as usize).min(seconds - 1)];
                bin.0.merge(&summary.fast);
                bin.1.merge(&summary.slow);
                slow_ages.append(summary.slow_ages);
                events += summary.fast.events + summary.slow.events;
                violations = violations.max(summary.violations);
                let elapsed = started.elapsed().as_secs_f64();
                progress.update(elapsed as u64, || {
                    let rate = args::human_count(events as f64 / elapsed.max(1.0));
                    format!("{rate}/s delivered, {violations} violations")
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
