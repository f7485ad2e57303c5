//! What resuming through edges costs, measured for `docs/scaling.md`
//! ("Resuming through edges"). Not a check: ignored, it prints figures.
//! Run it alone on the release build:
//!
//! ```sh
//! cargo test --release --test scale_out -- --ignored --nocapture --test-threads 1 resume_costs
//! ```
//!
//! 1. Fetch time: a client resumes 1 or 100 symbols on an edge that is not
//!    serving them, each 200 updates back (2 s away at 100 updates/s per
//!    symbol); the time from its subscribe to the ack, which the edge
//!    sends once the history it fetched is in hand. Beside it, the same
//!    subscribe without `from` (snapshots; no fetch): what the edge spends
//!    to start serving the symbols anyway.
//! 2. Hot-path cost: the source at 20,000 updates/s over 100 symbols, no
//!    edges; the broker's CPU (`/proc/<pid>/stat`) and the source's
//!    achieved rate.
//!
//! Commit 202c8df measures the other candidate beside it (the broker's
//! stream keeping 1,024 messages per subject) with
//! `TICKFEED_RESUME_VIA=request,stream`.

use super::cluster::{Broker, Node};
use super::common::{Client, Scratch, poll};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const RUNS: usize = 15;
const BACK: u64 = 200;
const WARM_UP: Duration = Duration::from_secs(8);
const WINDOW: Duration = Duration::from_secs(20);

/// The simulated feed over 100 symbols, evenly, at `rate` updates/s.
fn feed(rate: &str) -> [&str; 8] {
    [
        "--rate",
        rate,
        "--symbols",
        "100",
        "--skew",
        "0",
        "--seed",
        "1",
    ]
}

/// Latest seq of every symbol on `node`.
async fn latest(node: &Node) -> BTreeMap<String, u64> {
    let ticks: Vec<Value> = serde_json::from_value(node.get_json("/api/symbols").await).unwrap();
    ticks
        .iter()
        .map(|t| {
            (
                t["sym"].as_str().unwrap().to_string(),
                t["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// CPU seconds of process `pid` so far (user + system).
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// A broker and a source publishing `rate` updates/s (fields drop in
/// order: the processes before their directory).
struct Cluster {
    source: Node,
    broker: Broker,
    scratch: Scratch,
}

async fn cluster(rate: &str) -> Cluster {
    let scratch = Scratch::new("resume-costs");
    let broker = Broker::start(&scratch).await;
    let args = feed(rate);
    let source = Node::start(&scratch, "source", "source", &broker.url(), &args).await;
    Cluster {
        source,
        broker,
        scratch,
    }
}

async fn fetch_times() {
    let cluster = cluster("10000").await;
    let (source, broker, scratch) = (&cluster.source, &cluster.broker, &cluster.scratch);
    let edge = Node::start(scratch, "edge", "edge", &broker.url(), &[]).await;
    let epoch = Client::connect(&source.ws_url()).await.hello["epoch"].clone();
    let name = edge.nats_name("edge");
    for (symbols, resume) in [(1, false), (1, true), (100, false), (100, true)] {
        let mut times_ms = Vec::new();
        let mut lost = 0;
        let mut after: BTreeMap<String, u64> = BTreeMap::new();
        for run in 0..RUNS {
            // Each run fetches BACK updates the edge has never held.
            let now = poll("BACK updates since the last run", || async {
                let now = latest(source).await;
                let ready = now.len() == 100
                    && now
                        .iter()
                        .all(|(s, seq)| *seq >= after.get(s).copied().unwrap_or(0) + BACK + 10);
                ready.then_some(now)
            })
            .await;
            let chosen: BTreeMap<&String, u64> = now
                .iter()
                .skip(if symbols == 1 { run % 100 } else { 0 })
                .take(symbols)
                .map(|(s, seq)| (s, seq - BACK))
                .collect();
            let mut client = Client::connect(&edge.ws_url()).await;
            let names: Vec<&String> = chosen.keys().copied().collect();
            let mut subscribe = json!({"op": "subscribe", "id": 1, "symbols": names});
            if resume {
                subscribe["epoch"] = epoch.clone();
                subscribe["from"] = json!(chosen);
            }
            let started = Instant::now();
            let ack = client.request(subscribe).await;
            times_ms.push(started.elapsed().as_secs_f64() * 1000.0);
            if let Some(resumed) = ack["resumed"].as_object() {
                lost += resumed.values().filter(|v| v.as_u64() != Some(0)).count();
            }
            drop(client);
            broker.wait_for_subjects(&name, &[]).await;
            after = latest(source).await;
        }
        times_ms.sort_by(f64::total_cmp);
        let what = if resume {
            format!("resume, {BACK} updates back")
        } else {
            "subscribe with snapshots, no fetch".to_string()
        };
        println!(
            "{what}: {symbols} symbols, {RUNS} runs, subscribe to ack: p50 {:.1} ms, p99 {:.1} ms, min {:.1} ms, max {:.1} ms; symbols not resumed in full: {lost}",
            percentile(&times_ms, 50.0),
            percentile(&times_ms, 99.0),
            times_ms[0],
            times_ms[times_ms.len() - 1],
        );
    }
}

async fn hot_path() {
    let cluster = cluster("20000").await;
    let (source, broker, scratch) = (&cluster.source, &cluster.broker, &cluster.scratch);
    tokio::time::sleep(WARM_UP).await;
    let ticks_in = |stats: Value| stats["ticks_in"].as_u64().unwrap();
    let (broker_cpu, source_cpu) = (cpu_s(broker.pid()), cpu_s(source.pid()));
    let (ticks, started) = (
        ticks_in(source.get_json("/api/stats").await),
        Instant::now(),
    );
    tokio::time::sleep(WINDOW).await;
    let seconds = started.elapsed().as_secs_f64();
    let rate = (ticks_in(source.get_json("/api/stats").await) - ticks) as f64 / seconds;
    let broker_cores = (cpu_s(broker.pid()) - broker_cpu) / seconds;
    let source_cores = (cpu_s(source.pid()) - source_cpu) / seconds;
    let store_bytes = dir_bytes(&scratch.dir.join("jetstream"));
    println!(
        "hot path: source {rate:.0} updates/s, broker {broker_cores:.2} cores, source {source_cores:.2} cores, broker store {:.1} MB",
        store_bytes as f64 / 1e6
    );
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let meta = e.metadata().unwrap();
                    if meta.is_dir() {
                        dir_bytes(&e.path())
                    } else {
                        meta.len()
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for docs/scaling.md: --release --ignored --nocapture"]
async fn resume_costs() {
    fetch_times().await;
    hot_path().await;
}
