//! `tickfeed bench` flags (clap) and their validation into a [`Plan`]: the
//! settings shared by every run and the sweep points to run in turn. The
//! rest of the bench only sees valid values.

use super::connection::{BURST_PERIOD, SlowMode, SlowReading};
use crate::codec::Encoding;
use crate::protocol::{DEFAULT_DEPTH, MAX_DEPTH};
use crate::source::args::GeneratorArgs;
use crate::source::generator::{GeneratorConfig, GeneratorError, check_rate};
use crate::units::{parse_duration, parse_rate, parse_size};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Rate of the in-process server and the NATS publisher when `--rate` is
/// not given: 10k updates/s is a lively market that any setup sustains.
pub const DEFAULT_RATE: f64 = 10_000.0;

/// What the clients subscribe to (`--channel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// `tick` events.
    Ticks,
    /// `book` events: the top `--depth` levels of each symbol's book.
    Book,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Channel::Ticks => "ticks",
            Channel::Book => "book",
        }
    }
}

/// What the bench measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// In-process, or the server at `--url`.
    Tickfeed,
    /// nats-server's WebSocket listener, fed by the bench's own publisher.
    Nats,
}

impl TargetKind {
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Tickfeed => "tickfeed",
            TargetKind::Nats => "nats",
        }
    }
}

/// Measure fan-out latency: connect clients, subscribe, record every event.
///
/// With no arguments, starts a tickfeed server in this process (simulated
/// feed, updates spread evenly over the symbols unless --skew) and prints
/// a report.
/// Comma-separated `--target`, `--clients` and `--rate` run a sweep.
#[derive(Debug, Clone, Args)]
// The market flags are `serve`'s (`GeneratorArgs`); these defaults and
// helps are the bench's: an even market of 100 symbols, seeded, so that
// runs compare.
#[command(
    mut_arg("symbols", |a| a
        .default_value("100")
        .help("Size of the symbol universe the clients pick from")),
    mut_arg("universe", |a| a
        .help("Universe file of the in-process server and the NATS publisher: CSV with header symbol,price,volatility. A server at --url sets its own")),
    mut_arg("seed", |a| a
        .default_value("1")
        .help("Seed of the simulated market and of each client's symbol picks")),
    mut_arg("skew", |a| a
        .default_value("0")
        .help("How unevenly the in-process server (and the NATS publisher) spread updates: 0 = evenly, 1 = market-like, the first symbols busiest. A server at --url sets its own")),
)]
pub struct BenchArgs {
    /// Server to measure (`ws://HOST:PORT/ws`) instead of an in-process one.
    #[arg(long)]
    pub url: Option<String>,
    /// Token for a server at --url started with --token: sent as
    /// `Authorization: Bearer` on every connection and on its /api/stats and
    /// /metrics. Prefer the environment variable: a flag shows in `ps`.
    #[arg(
        long,
        env = "TICKFEED_BENCH_TOKEN",
        hide_env_values = true,
        requires = "url"
    )]
    pub token: Option<String>,
    /// What to measure, comma-separated: tickfeed, nats.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "tickfeed")]
    pub target: Vec<TargetKind>,
    /// Number of clients; a comma-separated list runs a sweep (100,1000,5000).
    #[arg(long, value_delimiter = ',', default_value = "100")]
    pub clients: Vec<usize>,
    // The simulated market: --symbols, --universe, --seed, --skew.
    #[command(flatten)]
    pub generator: GeneratorArgs,
    /// Symbols each client subscribes to (distinct, picked with `--seed`);
    /// 0 connects idle clients that never subscribe.
    #[arg(long, default_value_t = 10)]
    pub symbols_per_client: usize,
    /// Every fast client subscribes to the first K symbols the server
    /// lists (with a simulated market, the K busiest) instead of
    /// `--symbols-per-client` random ones; slow clients keep their picks.
    #[arg(long, value_name = "K")]
    pub hot_symbols: Option<usize>,
    /// Source updates per second over all symbols (20k); a list sweeps
    /// [default: 10k; with --url only NATS's, the server sets its own].
    // Not in `GeneratorArgs` as `serve`'s and `feed record`'s one rate:
    // here a list, one sweep point each.
    #[arg(long, value_delimiter = ',', value_parser = parse_rate)]
    pub rate: Vec<f64>,
    /// Wire encoding the clients ask for.
    #[arg(long, value_enum, default_value = "json")]
    pub encoding: Encoding,
    /// Length of the measured window (e.g. 10s).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Time after every client has subscribed and before measuring.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// New connections per second while connecting; 0 = as fast as possible.
    #[arg(long, default_value_t = 2000.0)]
    pub ramp: f64,
    /// Share of clients that read slowly (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub slow_fraction: f64,
    /// How a slow client reads: `event` spends --slow-delay on every event,
    /// `frame` stops for it after every frame, `burst` stops for it once a
    /// second. It does not read its socket at all while stopped.
    #[arg(long, value_enum, default_value = "event")]
    pub slow_mode: SlowMode,
    /// A slow client's pause (see --slow-mode); under 1s with burst.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub slow_delay: Duration,
    /// Kernel receive buffer (SO_RCVBUF) of slow clients, e.g. 4KiB;
    /// default: the OS's, which can hold a minute of a slow client's data.
    #[arg(long, value_parser = parse_size)]
    pub slow_recv_buffer: Option<usize>,
    /// `max_hz` of every subscription; 0 = as fast as the client reads.
    #[arg(long, default_value_t = 0.0)]
    pub max_hz: f64,
    /// Subscribe with field deltas (`"deltas": true`): ticks carry only
    /// what changed; compare bytes per event with and without.
    #[arg(long)]
    pub deltas: bool,
    /// What the clients subscribe to: `ticks`, or `book` (order book
    /// depth, tickfeed only): latency, bytes and the seq check are then
    /// of book events.
    #[arg(long, value_enum, default_value = "ticks")]
    pub channel: Channel,
    /// Levels per side of a book subscription (1 to 50; with
    /// --channel book). An in-process server keeps this many; a server at
    /// --url needs its --depth at least this.
    #[arg(long, default_value_t = DEFAULT_DEPTH as u16,
          value_parser = clap::value_parser!(u16).range(1..=MAX_DEPTH as i64))]
    pub depth: u16,
    /// Write the whole report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the latency histogram in HdrHistogram percentile-distribution
    /// text (one file per sweep point when sweeping: NAME-LABEL.EXT).
    #[arg(long)]
    pub hdr: Option<PathBuf>,
    /// Draw latency by percentile as SVG, one line per sweep point.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Process id of the server at --url, to read its CPU and RSS from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Process id of nats-server, to read its CPU and RSS from /proc.
    #[arg(long)]
    pub nats_pid: Option<u32>,
    /// nats-server client URL the bench publishes to.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// nats-server WebSocket URL the clients connect to (ws://HOST:PORT).
    #[arg(long)]
    pub nats_ws_url: Option<String>,
}

/// A flag value that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("--{flag}: {msg}")]
pub struct ArgsError {
    pub flag: &'static str,
    pub msg: String,
}

impl From<GeneratorError> for ArgsError {
    fn from(e: GeneratorError) -> Self {
        invalid(e.flag, e.msg)
    }
}

fn invalid(flag: &'static str, msg: impl Into<String>) -> ArgsError {
    ArgsError {
        flag,
        msg: msg.into(),
    }
}

/// Settings shared by every sweep point.
#[derive(Debug, Clone)]
pub struct Plan {
    pub url: Option<String>,
    /// `--token`, for the server at `url`.
    pub token: Option<String>,
    /// Symbols the clients pick from (the market's, or the first the
    /// server at --url lists).
    pub symbols: usize,
    pub symbols_per_client: usize,
    /// Symbols of every fast client: the first K listed, instead of picks.
    pub hot_symbols: Option<usize>,
    /// The in-process server's and the NATS publisher's market, at the
    /// first rate (`with_rate` gives each point's); its seed also picks
    /// each client's symbols.
    pub market: GeneratorConfig,
    pub encoding: Encoding,
    pub duration: Duration,
    pub warmup: Duration,
    /// Connections per second; `None` = as fast as possible.
    pub ramp: Option<f64>,
    pub slow_fraction: f64,
    pub slow_reading: SlowReading,
    pub slow_recv_buffer: Option<usize>,
    pub max_hz: f64,
    pub deltas: bool,
    pub channel: Channel,
    /// Levels per side of a book subscription.
    pub depth: usize,
    pub json: Option<PathBuf>,
    pub hdr: Option<PathBuf>,
    pub plot: Option<PathBuf>,
    pub server_pid: Option<u32>,
    pub nats_pid: Option<u32>,
    pub nats_url: String,
    pub nats_ws_url: Option<String>,
    pub points: Vec<Point>,
}

/// One run of the sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub target: TargetKind,
    pub clients: usize,
    /// Source updates/s asked for; `None` when an external server decides.
    pub rate: Option<f64>,
    /// Names what differs between points ("nats 1000 clients").
    pub label: String,
}

impl BenchArgs {
    /// Validates the flags into a [`Plan`].
    pub fn into_plan(self) -> Result<Plan, ArgsError> {
        for rate in &self.rate {
            check_rate(*rate)?;
        }
        let first_rate = self.rate.first().copied().unwrap_or(DEFAULT_RATE);
        let market = self.generator.clone().into_config(first_rate)?;
        let symbols = market.listings.len();
        self.check_numbers(symbols)?;
        let mut targets = self.target.clone();
        targets.dedup();
        if targets.contains(&TargetKind::Nats) {
            if self.nats_ws_url.is_none() {
                return Err(invalid(
                    "nats-ws-url",
                    "is required with --target nats (ws://HOST:PORT of nats-server's websocket listener)",
                ));
            }
            if self.max_hz > 0.0 {
                return Err(invalid(
                    "max-hz",
                    "NATS has no per-subscription rate limit; use 0 with --target nats",
                ));
            }
            if self.channel == Channel::Book {
                return Err(invalid(
                    "channel",
                    "the NATS target publishes ticks only; use --target tickfeed with --channel book",
                ));
            }
        }
        if self.channel == Channel::Book && self.deltas {
            return Err(invalid(
                "deltas",
                "field deltas are for ticks; a book event is always the full top of the book",
            ));
        }
        if let Some(url) = &self.url {
            if !url.starts_with("ws://") {
                return Err(invalid(
                    "url",
                    format!("{url:?} must start with ws:// (e.g. ws://127.0.0.1:8080/ws)"),
                ));
            }
            if !self.rate.is_empty() && !targets.contains(&TargetKind::Nats) {
                return Err(invalid(
                    "rate",
                    "the server at --url sets its own rate; start it with --rate",
                ));
            }
            if self.generator.skew != 0.0 && !targets.contains(&TargetKind::Nats) {
                return Err(invalid(
                    "skew",
                    "the server at --url sets its own skew; start it with --skew",
                ));
            }
            if self.generator.universe.is_some() && !targets.contains(&TargetKind::Nats) {
                return Err(invalid(
                    "universe",
                    "the server at --url lists its own symbols; start it with --universe",
                ));
            }
        }
        let asked: Vec<Option<f64>> = if self.rate.is_empty() {
            vec![Some(DEFAULT_RATE)]
        } else {
            self.rate.iter().copied().map(Some).collect()
        };
        // The server at --url sets its own rate; --rate is then NATS's.
        let rates = |target| match (target, &self.url) {
            (TargetKind::Tickfeed, Some(_)) => vec![None],
            _ => asked.clone(),
        };
        let points = sweep(&targets, &self.clients, rates);
        Ok(Plan {
            url: self.url,
            token: self.token,
            symbols,
            symbols_per_client: self.symbols_per_client,
            hot_symbols: self.hot_symbols,
            market,
            encoding: self.encoding,
            duration: self.duration,
            warmup: self.warmup,
            ramp: (self.ramp > 0.0).then_some(self.ramp),
            slow_fraction: self.slow_fraction,
            slow_reading: SlowReading {
                mode: self.slow_mode,
                delay: self.slow_delay,
            },
            slow_recv_buffer: self.slow_recv_buffer,
            max_hz: self.max_hz,
            deltas: self.deltas,
            channel: self.channel,
            depth: usize::from(self.depth),
            json: self.json,
            hdr: self.hdr,
            plot: self.plot,
            server_pid: self.server_pid,
            nats_pid: self.nats_pid,
            nats_url: self.nats_url,
            nats_ws_url: self.nats_ws_url,
            points,
        })
    }

    /// Checks the bench's own numbers; `symbols` is the market's count.
    fn check_numbers(&self, symbols: usize) -> Result<(), ArgsError> {
        if self.clients.is_empty() || self.clients.contains(&0) {
            return Err(invalid("clients", "every value must be at least 1"));
        }
        if self.symbols_per_client > symbols {
            return Err(invalid(
                "symbols-per-client",
                format!("must be at most --symbols ({symbols})"),
            ));
        }
        if self.duration.is_zero() {
            return Err(invalid("duration", "must be above zero"));
        }
        if !(self.ramp >= 0.0 && self.ramp.is_finite()) {
            return Err(invalid(
                "ramp",
                "must be 0 (as fast as possible) or a positive rate",
            ));
        }
        if !(0.0..=1.0).contains(&self.slow_fraction) {
            return Err(invalid("slow-fraction", "must be between 0 and 1"));
        }
        if self.slow_mode == SlowMode::Burst && self.slow_delay >= BURST_PERIOD {
            return Err(invalid(
                "slow-delay",
                "must be under 1s with --slow-mode burst (the reader stops once a second)",
            ));
        }
        if let Some(hot) = self.hot_symbols
            && !(1..=symbols).contains(&hot)
        {
            return Err(invalid(
                "hot-symbols",
                format!("must be between 1 and --symbols ({symbols})"),
            ));
        }
        if !(self.max_hz >= 0.0 && self.max_hz.is_finite()) {
            return Err(invalid("max-hz", "must be 0 (unlimited) or positive"));
        }
        Ok(())
    }
}

/// Every combination of target, client count and rate (each target's
/// own), labelled by what varies.
fn sweep(
    targets: &[TargetKind],
    clients: &[usize],
    rates_of: impl Fn(TargetKind) -> Vec<Option<f64>>,
) -> Vec<Point> {
    let mut points = Vec::new();
    for &target in targets {
        let rates = rates_of(target);
        for &count in clients {
            for &rate in &rates {
                let mut parts = Vec::new();
                if targets.len() > 1 || (clients.len() == 1 && rates.len() == 1) {
                    parts.push(target.name().to_string());
                }
                if clients.len() > 1 {
                    parts.push(format!("{count} clients"));
                }
                if rates.len() > 1 {
                    parts.push(format!("{}/s", human_count(rate.unwrap_or(0.0))));
                }
                points.push(Point {
                    target,
                    clients: count,
                    rate,
                    label: parts.join(" "),
                });
            }
        }
    }
    points
}

/// `20000` -> `20k`, `1500000` -> `1.5M`.
pub fn human_count(value: f64) -> String {
    let (scaled, unit) = match value {
        v if v >= 1e6 => (v / 1e6, "M"),
        v if v >= 1e3 => (v / 1e3, "k"),
        v => (v, ""),
    };
    let text = format!("{scaled:.1}");
    format!("{}{unit}", text.trim_end_matches(".0"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn plan(argv: &[&str]) -> Result<Plan, String> {
        let wrapper = Wrapper::try_parse_from(std::iter::once("bench").chain(argv.iter().copied()))
            .map_err(|e| e.to_string())?;
        wrapper.args.into_plan().map_err(|e| e.to_string())
    }

    #[test]
    fn no_arguments_means_one_in_process_tickfeed_point() {
        let plan = plan(&[]).unwrap();
        assert_eq!(plan.points.len(), 1);
        assert_eq!(plan.points[0].target, TargetKind::Tickfeed);
        assert_eq!(plan.points[0].rate, Some(DEFAULT_RATE));
        assert!(plan.url.is_none());
    }

    #[test]
    fn lists_sweep_every_combination_and_label_what_varies() {
        let plan = plan(&[
            "--clients",
            "100,1000",
            "--rate",
            "10k,20k",
            "--target",
            "tickfeed,nats",
            "--nats-ws-url",
            "ws://127.0.0.1:1",
        ])
        .unwrap();
        assert_eq!(plan.points.len(), 8);
        assert_eq!(plan.points[0].label, "tickfeed 100 clients 10k/s");
        assert_eq!(plan.points[7].label, "nats 1000 clients 20k/s");
    }

    #[test]
    fn with_url_the_rate_is_only_the_nats_publishers() {
        let plan = plan(&[
            "--url",
            "ws://127.0.0.1:1/ws",
            "--target",
            "tickfeed,nats",
            "--nats-ws-url",
            "ws://127.0.0.1:2",
            "--rate",
            "5k",
        ])
        .unwrap();
        let rates: Vec<Option<f64>> = plan.points.iter().map(|p| p.rate).collect();
        assert_eq!(rates, [None, Some(5000.0)]);
    }

    #[test]
    fn impossible_settings_name_their_flag() {
        assert!(
            plan(&["--symbols-per-client", "20", "--symbols", "10"])
                .unwrap_err()
                .contains("--symbols-per-client")
        );
        assert!(
            plan(&["--url", "ws://x:1/ws", "--rate", "5k"])
                .unwrap_err()
                .contains("--rate")
        );
        assert!(
            plan(&["--target", "nats"])
                .unwrap_err()
                .contains("--nats-ws-url")
        );
        assert!(plan(&["--clients", "0"]).unwrap_err().contains("--clients"));
        assert!(
            plan(&["--slow-fraction", "2"])
                .unwrap_err()
                .contains("--slow-fraction")
        );
        assert!(
            plan(&["--url", "ws://x:1/ws", "--skew", "1"])
                .unwrap_err()
                .contains("--skew")
        );
        assert!(
            plan(&["--hot-symbols", "101"])
                .unwrap_err()
                .contains("--hot-symbols")
        );
        assert!(
            plan(&["--slow-mode", "burst", "--slow-delay", "1s"])
                .unwrap_err()
                .contains("--slow-delay")
        );
        assert!(
            plan(&["--channel", "book", "--deltas"])
                .unwrap_err()
                .contains("--deltas")
        );
        assert!(
            plan(&[
                "--channel",
                "book",
                "--target",
                "nats",
                "--nats-ws-url",
                "ws://x:1"
            ])
            .unwrap_err()
            .contains("--channel")
        );
        assert!(plan(&["--depth", "51"]).unwrap_err().contains("--depth"));
        assert!(plan(&["--depth", "0"]).unwrap_err().contains("--depth"));
    }

    #[test]
    fn the_book_channel_keeps_its_depth_and_ticks_are_the_default() {
        let defaults = plan(&[]).unwrap();
        assert_eq!(
            (defaults.channel, defaults.depth),
            (Channel::Ticks, DEFAULT_DEPTH)
        );
        let book = plan(&["--channel", "book", "--depth", "50"]).unwrap();
        assert_eq!((book.channel, book.depth), (Channel::Book, 50));
    }

    #[test]
    fn slow_mode_defaults_to_per_event_and_names_its_choices_when_wrong() {
        let defaults = plan(&[]).unwrap();
        assert_eq!(defaults.slow_reading.mode, SlowMode::Event);
        assert_eq!(defaults.market.skew, 0.0);
        let error = plan(&["--slow-mode", "nope"]).unwrap_err();
        assert!(
            error.contains("'nope'") && error.contains("frame") && error.contains("burst"),
            "{error}"
        );
    }

    #[test]
    fn counts_read_as_people_write_them() {
        assert_eq!(human_count(20_000.0), "20k");
        assert_eq!(human_count(1_500_000.0), "1.5M");
        assert_eq!(human_count(950.0), "950");
    }
}
