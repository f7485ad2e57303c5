//! The server side of one sweep point: a tickfeed started in this process,
//! a tickfeed at `--url`, or nats-server fed by the bench's publisher. It
//! knows how clients connect and how to read the server's own figures
//! (counters, stage latencies, CPU, memory) at the start and end of the
//! measured window.

use super::args::{Plan, Point, TargetKind};
use super::client::{Endpoint, SubscribeOptions};
use super::connection::Wire;
use super::nats::{self, Publisher};
use crate::config::{DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_SYMBOLS, ServeConfig, SourceConfig};
use crate::procfs::{self, Pid};
use crate::server::RunningServer;
use crate::stats::{Stage, StatsSnapshot};
use anyhow::Context;
use hdrhistogram::Histogram;
use std::time::Duration;
use tokio::time::Instant;

/// Name of the client runtime's threads.
pub(super) const CLIENT_THREAD: &str = "bench-client";
/// Prefix of the bench's own thread names; in-process, every other
/// thread's CPU time is the server's.
const BENCH_THREAD_PREFIX: &str = "bench-";
/// Longest wait for a server's HTTP endpoints during a sample.
const HTTP_TIMEOUT: Duration = Duration::from_secs(2);

impl Plan {
    /// What every tickfeed client of this run subscribes with.
    fn subscribe_options(&self) -> SubscribeOptions {
        SubscribeOptions {
            max_hz: self.max_hz,
            deltas: self.deltas,
            channel: self.channel,
            depth: self.depth,
        }
    }
}

/// How clients reach the server.
#[derive(Debug, Clone)]
pub(super) enum ClientSide {
    Tickfeed {
        endpoint: Endpoint,
        options: SubscribeOptions,
    },
    Nats {
        ws_url: String,
    },
}

impl ClientSide {
    /// Opens one client subscribed to `symbols`; `recv_buffer` sets its
    /// socket's receive buffer.
    pub(super) async fn connect(
        &self,
        symbols: &[&str],
        recv_buffer: Option<usize>,
    ) -> anyhow::Result<Wire> {
        match self {
            ClientSide::Tickfeed { endpoint, options } => Ok(Wire::Tickfeed(
                endpoint.connect(symbols, *options, recv_buffer).await?,
            )),
            ClientSide::Nats { ws_url } => Ok(nats::connect(ws_url, symbols, recv_buffer).await?),
        }
    }
}

enum Server {
    InProcess(RunningServer),
    External {
        http_base: String,
        /// `--token`, for its /api/stats and /metrics.
        token: Option<String>,
        pid: Option<u32>,
    },
    Nats {
        publisher: Publisher,
        pid: Option<u32>,
    },
}

/// A started target.
pub(super) struct Target {
    /// What was measured, e.g. `tickfeed 0.1.0 (in-process)`.
    pub description: String,
    /// The universe clients pick from, in order.
    pub symbols: Vec<String>,
    pub clients: ClientSide,
    server: Server,
}

/// The server's figures at one moment.
#[derive(Debug, Clone)]
pub(super) struct Sample {
    pub at: Instant,
    /// Source updates emitted so far (tickfeed `ticks_in`, or published).
    pub source_updates: Option<u64>,
    pub stats: Option<StatsSnapshot>,
    /// In-process only: since-start route and deliver histograms, in ns.
    pub stages: Option<[Histogram<u64>; 2]>,
    pub server_cpu_s: Option<f64>,
    pub server_rss_bytes: Option<u64>,
    /// CPU of the client runtime threads and of the NATS publisher.
    pub client_cpu_s: Option<f64>,
    pub publisher_cpu_s: Option<f64>,
    /// CPU of the whole bench process (clients, publisher, in-process
    /// server) and of the whole machine.
    pub bench_cpu_s: Option<f64>,
    pub machine_busy_s: Option<f64>,
    /// Whether `server_cpu_s` is a process of its own, outside the bench.
    pub server_separate: bool,
    pub bench_rss_bytes: Option<u64>,
}

/// CPU seconds of (client threads, publisher thread, every other thread).
fn bench_cpu_split() -> Option<(f64, f64, f64)> {
    let mut split = (0.0, 0.0, 0.0);
    for (name, cpu) in procfs::threads_cpu_s()? {
        if name.starts_with(CLIENT_THREAD) {
            split.0 += cpu;
        } else if name.starts_with(BENCH_THREAD_PREFIX) {
            split.1 += cpu;
        } else {
            split.2 += cpu;
        }
    }
    Some(split)
}

impl Target {
    pub(super) async fn start(plan: &Plan, point: &Point) -> anyhow::Result<Self> {
        match (point.target, &plan.url) {
            (TargetKind::Tickfeed, None) => Self::start_in_process(plan, point).await,
            (TargetKind::Tickfeed, Some(url)) => Self::start_external(plan, url).await,
            (TargetKind::Nats, _) => Self::start_nats(plan, point).await,
        }
    }

    async fn start_in_process(plan: &Plan, point: &Point) -> anyhow::Result<Self> {
        let rate = point.rate.context("in-process runs need a rate")?;
        let generator = plan.market.with_rate(rate)?.with_depth(plan.depth);
        let mut config = ServeConfig::with_source(SourceConfig::Generator(generator));
        config.listen = "127.0.0.1:0".parse().expect("literal address");
        config.limits.max_connections = DEFAULT_MAX_CONNECTIONS.max(point.clients + 100);
        config.max_symbols = DEFAULT_MAX_SYMBOLS.max(plan.symbols);
        config.depth = plan.depth;
        let server = crate::server::start(config).await?;
        let endpoint =
            Endpoint::resolve(&format!("ws://{}/ws", server.addr), plan.encoding).await?;
        let (_, symbols) = list_symbols(&endpoint, plan.symbols).await?;
        Ok(Self {
            description: format!("tickfeed {} (in-process)", env!("CARGO_PKG_VERSION")),
            symbols,
            clients: ClientSide::Tickfeed {
                endpoint,
                options: plan.subscribe_options(),
            },
            server: Server::InProcess(server),
        })
    }

    async fn start_external(plan: &Plan, url: &str) -> anyhow::Result<Self> {
        let mut endpoint = Endpoint::resolve(url, plan.encoding).await?;
        endpoint.token = plan.token.clone();
        let (name, symbols) = list_symbols(&endpoint, plan.symbols).await?;
        if symbols.len() < plan.symbols {
            anyhow::bail!(
                "--symbols {}: the server at {url} lists only {} symbols",
                plan.symbols,
                symbols.len()
            );
        }
        Ok(Self {
            description: format!("{name} at {url}"),
            symbols,
            server: Server::External {
                http_base: endpoint.http_base(),
                token: plan.token.clone(),
                pid: plan.server_pid,
            },
            clients: ClientSide::Tickfeed {
                endpoint,
                options: plan.subscribe_options(),
            },
        })
    }

    async fn start_nats(plan: &Plan, point: &Point) -> anyhow::Result<Self> {
        let rate = point.rate.context("NATS runs need a rate")?;
        let ws_url = plan
            .nats_ws_url
            .clone()
            .context("--nats-ws-url is required with --target nats")?;
        let market = plan.market.with_rate(rate)?;
        let symbols = market.listings.iter().map(|l| l.symbol.clone()).collect();
        let publisher = Publisher::start(&plan.nats_url, market, plan.encoding).await?;
        Ok(Self {
            description: format!("{} at {ws_url}", publisher.server),
            symbols,
            clients: ClientSide::Nats { ws_url },
            server: Server::Nats {
                publisher,
                pid: plan.nats_pid,
            },
        })
    }

    /// Reads every figure available for this target now.
    pub(super) async fn sample(&self) -> Sample {
        let split = bench_cpu_split();
        let mut sample = Sample {
            at: Instant::now(),
            source_updates: None,
            stats: None,
            stages: None,
            server_cpu_s: None,
            server_rss_bytes: None,
            client_cpu_s: split.map(|s| s.0),
            publisher_cpu_s: split.map(|s| s.1),
            bench_cpu_s: procfs::cpu_s(Pid::This),
            machine_busy_s: procfs::machine_busy_s(),
            server_separate: !matches!(self.server, Server::InProcess(_)),
            bench_rss_bytes: None,
        };
        match &self.server {
            Server::InProcess(server) => {
                let stats = server.stats.snapshot(server.router.table().len());
                sample.source_updates = Some(stats.ticks_in);
                sample.stats = Some(stats);
                sample.stages =
                    Some([Stage::Route, Stage::Deliver].map(|s| server.stats.histograms(s).0));
                sample.server_cpu_s = split.map(|s| s.2);
            }
            Server::External {
                http_base,
                token,
                pid,
            } => {
                let token = token.as_deref();
                sample.stats = fetch_stats(http_base, token).await;
                sample.source_updates = sample.stats.as_ref().map(|s| s.ticks_in);
                match pid {
                    Some(pid) => {
                        sample.server_cpu_s = procfs::cpu_s(Pid::Other(*pid));
                        sample.server_rss_bytes = procfs::rss_bytes(Pid::Other(*pid));
                    }
                    None => {
                        (sample.server_cpu_s, sample.server_rss_bytes) =
                            fetch_process_metrics(http_base, token).await
                    }
                }
                sample.bench_rss_bytes = procfs::rss_bytes(Pid::This);
            }
            Server::Nats { publisher, pid } => {
                sample.source_updates = Some(publisher.published());
                sample.server_cpu_s = pid.and_then(|p| procfs::cpu_s(Pid::Other(p)));
                sample.server_rss_bytes = pid.and_then(|p| procfs::rss_bytes(Pid::Other(p)));
                sample.bench_rss_bytes = procfs::rss_bytes(Pid::This);
            }
        }
        if matches!(self.server, Server::InProcess(_)) {
            sample.server_rss_bytes = procfs::rss_bytes(Pid::This);
        }
        sample
    }

    /// How the server figures were obtained, for the report.
    pub(super) fn server_figures_note(&self) -> &'static str {
        match &self.server {
            Server::InProcess(_) => {
                "in-process: server CPU is this process minus the bench-* threads; RSS is the whole process (server and clients)"
            }
            Server::External { pid: Some(_), .. } => "from /proc/<--server-pid>",
            Server::Nats { pid: Some(_), .. } => "from /proc/<--nats-pid>",
            Server::External { pid: None, .. } => {
                "from the server's /metrics (process_* metrics) when it has them"
            }
            Server::Nats { pid: None, .. } => "n/a: give --nats-pid",
        }
    }

    /// Whether stage histograms cover exactly the measured window.
    pub(super) fn in_process(&self) -> bool {
        matches!(self.server, Server::InProcess(_))
    }

    pub(super) async fn stop(self) -> anyhow::Result<()> {
        match self.server {
            Server::InProcess(server) => server.shutdown().await,
            Server::External { .. } => {}
            Server::Nats { publisher, .. } => publisher.stop().await?,
        }
        Ok(())
    }
}

/// The server's name (from `hello`) and its first `count` symbols,
/// retried briefly while a freshly started server declares them.
async fn list_symbols(endpoint: &Endpoint, count: usize) -> anyhow::Result<(String, Vec<String>)> {
    let deadline = Instant::now() + super::client::CONNECT_TIMEOUT;
    loop {
        let listing = endpoint
            .list_symbols()
            .await
            .with_context(|| format!("listing the symbols of {}", endpoint.url))?;
        if listing.symbols.len() >= count || Instant::now() >= deadline {
            let mut symbols = listing.symbols;
            symbols.truncate(count);
            return Ok((listing.server, symbols));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn http_get(url: &str, token: Option<&str>) -> Option<reqwest::Response> {
    let client = reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .build()
        .ok()?;
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.ok()?.error_for_status().ok()
}

/// `/api/stats`, or `None` for a server that has none in this shape.
async fn fetch_stats(http_base: &str, token: Option<&str>) -> Option<StatsSnapshot> {
    http_get(&format!("{http_base}/api/stats"), token)
        .await?
        .json()
        .await
        .ok()
}

/// Process CPU seconds and RSS from Prometheus' standard process metrics.
async fn fetch_process_metrics(http_base: &str, token: Option<&str>) -> (Option<f64>, Option<u64>) {
    let Some(response) = http_get(&format!("{http_base}/metrics"), token).await else {
        return (None, None);
    };
    let text = response.text().await.unwrap_or_default();
    let metric = |name: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
    };
    (
        metric("process_cpu_seconds_total"),
        metric("process_resident_memory_bytes").map(|b| b as u64),
    )
}
