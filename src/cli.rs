//! The command line: clap definitions and their validation into the config
//! structs the library uses. `tickfeed` with no subcommand means `serve`.
//! Every `serve` option is also read from the environment and from a
//! config file (`layers.rs`, see docs/configuration.md); `print_config.rs`
//! shows where each setting came from; `manual.rs` writes shell
//! completions and the man page.

pub mod config_file;
pub mod layers;
pub mod manual;
pub mod print_config;

use crate::auth::Tokens;
use crate::config::{self, Limits, ServeConfig, SourceConfig};
use crate::source::args::GeneratorArgs;
use crate::units::{parse_duration, parse_rate, parse_size};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Live market-data fan-out over WebSocket.
#[derive(Debug, Parser)]
#[command(name = "tickfeed", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// How log lines on stderr look: `text` for people (coloured only on
    /// a terminal, never with NO_COLOR set), `json` one object a line for
    /// log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Options of `serve`, which runs when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The `--log-format` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the feed and the dashboard (the default).
    Serve(ServeArgs),
    /// Measure fan-out latency (in-process server, --url, or nats-server).
    Bench(crate::bench::BenchArgs),
    /// Record, check and convert feed files (see docs/replay.md).
    Feed(FeedArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(manual::CompletionsArgs),
    /// Print the man page (roff), e.g. `tickfeed man > tickfeed.1`.
    Man,
}

/// Record, check and convert feed files (see docs/replay.md).
#[derive(Debug, Clone, Args)]
pub struct FeedArgs {
    #[command(subcommand)]
    pub command: FeedCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum FeedCommand {
    /// Record the simulated feed to a generic CSV file.
    Record(crate::source::record::RecordArgs),
    /// Validate and summarise feed files; lists every bad row and exits
    /// non-zero if there is one.
    Check(crate::feed::args::CheckArgs),
    /// Write feed files of any supported format, merged in time order, as
    /// one generic CSV.
    Convert(crate::feed::args::ConvertArgs),
    /// Aggregate feed files into bars of one timeframe (OHLCV), written as
    /// CSV: the server's bars, offline.
    Bars(crate::bars::offline::BarsArgs),
}

/// Runs a `tickfeed feed` subcommand.
pub fn run_feed(args: FeedArgs) -> Result<(), crate::feed::FeedError> {
    match args.command {
        FeedCommand::Check(check) => crate::feed::check::run(&check),
        FeedCommand::Convert(convert) => crate::feed::convert::run(&convert),
        FeedCommand::Bars(bars) => crate::bars::offline::run(&bars),
        FeedCommand::Record(record) => crate::source::record::run(&record),
    }
}

/// Options of `tickfeed serve`. Each is also read from the environment
/// variable `TICKFEED_<OPTION>` and from the `--config` file (`layers.rs`).
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Read settings from this TOML file; its keys are the long option
    /// names (`rate = "20k"`). Options and environment variables win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the effective settings as TOML, each with where it came from
    /// (option, environment, file or default), tokens redacted, and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = config::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    // The simulated market's flags, shared with `bench` and `feed record`.
    #[command(flatten)]
    pub generator: GeneratorArgs,
    /// Source updates per second over all symbols (e.g. 5000, 20k).
    // Not in `GeneratorArgs`: `bench` takes a list of rates.
    #[arg(long, default_value_t = config::DEFAULT_RATE, value_parser = parse_rate)]
    pub rate: f64,
    /// Seconds between WebSocket pings (e.g. 15, 15s, 500ms).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// Close a client whose socket accepts nothing for this long (1008).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub stall_timeout: Duration,
    /// Most open WebSocket connections; over it the handshake gets 503.
    #[arg(long, default_value_t = config::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Most subscriptions per connection (`*` counts as one).
    #[arg(long, default_value_t = config::DEFAULT_MAX_SUBSCRIPTIONS)]
    pub max_subscriptions: usize,
    /// Largest request accepted (e.g. 64KiB); larger ones get `too_large`.
    #[arg(long, default_value = "64KiB", value_parser = parse_size)]
    pub max_request_bytes: usize,
    /// Largest WebSocket message read at all; larger closes with 1009.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    pub max_message_bytes: usize,
    /// Sustained request rate per connection; more get `rate_limited`.
    #[arg(long, default_value_t = config::DEFAULT_REQUESTS_PER_SEC)]
    pub max_requests_per_sec: f64,
    /// Requests a connection may send in one burst.
    #[arg(long, default_value_t = config::DEFAULT_REQUEST_BURST)]
    pub request_burst: f64,
    /// Refused requests (beyond accepted ones) before closing with 1008.
    #[arg(long, default_value_t = config::DEFAULT_ABUSE_THRESHOLD)]
    pub abuse_threshold: u32,
    /// Capacity of the symbol table.
    #[arg(long, default_value_t = config::DEFAULT_MAX_SYMBOLS)]
    pub max_symbols: usize,
    /// Kernel send buffer per connection (SO_SNDBUF); 0 keeps the OS default.
    #[arg(long, default_value = "64KiB", value_parser = parse_size)]
    pub send_buffer: usize,
    /// Largest data frame built; bigger batches are split.
    #[arg(long, default_value = "256KiB", value_parser = parse_size)]
    pub max_frame_bytes: usize,
    /// Least time between two data frames to one client (e.g. 0, 5ms).
    #[arg(long, default_value = "0ms", value_parser = parse_duration)]
    pub min_write_interval: Duration,
    /// Oldest a missed update may be when the client reads it and still be
    /// sent rather than merged into the latest value with `n`; also how
    /// long a client may leave a flow-control probe unanswered before
    /// writes to it wait. 0 turns flow control off.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub max_lag: Duration,
    /// Recent updates kept per symbol, for clients catching up (at most
    /// 1048576; 0 keeps none, so every missed update is merged).
    #[arg(long, default_value_t = crate::history::DEFAULT_HISTORY, value_parser = parse_history)]
    pub history: usize,
    /// Memory for the recent updates of all symbols together; over it the
    /// oldest go first.
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    pub history_memory: usize,
    /// Final bars kept per symbol, by timeframe: e.g. 1s=600,1d=30 (those
    /// not named keep their default).
    #[arg(long, default_value = crate::bars::DEFAULT_KEEP, value_parser = crate::bars::Retention::parse)]
    pub bars_keep: crate::bars::Retention,
    /// Memory for the final bars of all symbols together; over it their
    /// rings stop growing (see docs/protocol.md, "Bars").
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    pub bars_memory: usize,
    /// Order book levels per side kept for each symbol and served on the
    /// book channel (1 to 50).
    #[arg(long, default_value_t = crate::protocol::DEFAULT_DEPTH, value_parser = parse_depth)]
    pub depth: usize,
    /// Replay these CSV files instead of the simulated feed, merged in time
    /// order (generic CSV or LOBSTER messages; see docs/replay.md).
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with_all = ["symbols", "universe", "seed", "rate", "skew"])]
    pub replay: Vec<PathBuf>,
    /// Replay pace: a multiple of the original (1, 10, 0.5) or `max`.
    #[arg(long, default_value = "1", requires = "replay")]
    pub speed: crate::source::replay::Speed,
    /// Start the replay again at the end (seq and vol keep growing).
    #[arg(long = "loop", requires = "replay")]
    pub looping: bool,
    /// Replay rows from this time: RFC 3339, epoch, or +10m after the start.
    #[arg(long, requires = "replay")]
    pub from: Option<crate::feed::time::TimeBound>,
    /// Replay rows before this time: RFC 3339, epoch, or +10m after the start.
    #[arg(long, requires = "replay")]
    pub to: Option<crate::feed::time::TimeBound>,
    /// Format of the replayed files.
    #[arg(long, value_enum, default_value_t, requires = "replay")]
    pub format: crate::feed::detect::FormatChoice,
    /// Stop at the first bad row (exit non-zero) instead of skipping it.
    #[arg(long, requires = "replay")]
    pub strict: bool,
    /// Accepted bearer token (repeatable). With none, no authentication.
    #[arg(
        long = "token",
        env = "TICKFEED_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub tokens: Vec<String>,
    /// PEM certificate chain: serve https:// and wss:// (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Browser origin allowed to open /ws, e.g. https://dash.example.com
    /// (repeatable; * allows any). With none, every origin is allowed.
    #[arg(
        long = "allowed-origin",
        env = "TICKFEED_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
    /// Longest time for a TLS handshake and for an HTTP request head.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,
    /// Most connections at once in their TLS handshake or first request
    /// head; over it the oldest of them is closed to make room.
    #[arg(long, default_value_t = config::DEFAULT_MAX_PENDING_HANDSHAKES)]
    pub max_pending_handshakes: usize,
    /// Scale out through this NATS server, e.g. nats://127.0.0.1:4222, or
    /// the servers of a NATS cluster (comma-separated or repeated); needs
    /// --role (see docs/scaling.md). Without it, no broker is used.
    #[arg(long, value_name = "URL", value_delimiter = ',', requires = "role")]
    pub nats: Vec<String>,
    /// With --nats: copies of the last-value stream a NATS cluster keeps
    /// (1 to 5; 3 on a three-server cluster outlives one server's loss).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub nats_replicas: u8,
    /// With --nats: `source` runs the feed and publishes it; `edge` serves
    /// clients with updates taken from NATS (feed flags are then ignored).
    #[arg(long, value_enum, requires = "nats")]
    pub role: Option<crate::nats::NatsRole>,
}

/// A flag value that does not make sense together with the others.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--{flag}: {msg}")]
    Invalid { flag: &'static str, msg: String },
    #[error(transparent)]
    Generator(#[from] crate::source::generator::GeneratorError),
    #[error(transparent)]
    Feed(#[from] crate::feed::FeedError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Origin(#[from] crate::origin::OriginError),
}

impl ConfigError {
    /// The long option the error is about, to name where its value came
    /// from (`layers.rs`).
    pub fn flag(&self) -> Option<&'static str> {
        match self {
            ConfigError::Invalid { flag, .. } => Some(flag),
            ConfigError::Generator(e) => Some(e.flag),
            ConfigError::Feed(_) => Some("replay"),
            ConfigError::Tls(crate::tls::TlsError::Key { .. }) => Some("tls-key"),
            ConfigError::Tls(_) => Some("tls-cert"),
            ConfigError::Origin(_) => Some("allowed-origin"),
        }
    }
}

fn invalid(flag: &'static str, msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        flag,
        msg: msg.into(),
    }
}

impl ServeArgs {
    /// Validates the flags into a [`ServeConfig`].
    pub fn into_config(self) -> Result<ServeConfig, ConfigError> {
        if self.heartbeat.is_zero() || self.stall_timeout.is_zero() {
            return Err(invalid(
                "heartbeat",
                "--heartbeat and --stall-timeout must be above zero",
            ));
        }
        if self.max_requests_per_sec <= 0.0 || self.request_burst < 1.0 {
            return Err(invalid(
                "max-requests-per-sec",
                "rate must be above 0 and burst at least 1",
            ));
        }
        if self.handshake_timeout.is_zero() {
            return Err(invalid("handshake-timeout", "must be above zero"));
        }
        if self.max_pending_handshakes == 0 {
            return Err(invalid("max-pending-handshakes", "must be at least 1"));
        }
        if self.max_request_bytes > self.max_message_bytes {
            return Err(invalid(
                "max-request-bytes",
                "must not exceed --max-message-bytes",
            ));
        }
        let generator = self
            .generator
            .clone()
            .into_config(self.rate)?
            .with_depth(self.depth);
        let count = generator.listings.len();
        if count > self.max_symbols {
            return Err(invalid(
                "symbols",
                format!("{count} exceeds --max-symbols {}", self.max_symbols),
            ));
        }
        let mut config = ServeConfig::with_source(SourceConfig::Generator(generator));
        if !self.replay.is_empty() {
            config.source = SourceConfig::Replay(crate::source::replay::ReplayConfig::prepare(
                self.replay_options(),
            )?);
        }
        config.listen = self.listen;
        config.limits = Limits {
            max_connections: self.max_connections,
            max_subscriptions: self.max_subscriptions,
            max_request_bytes: self.max_request_bytes,
            max_message_bytes: self.max_message_bytes,
            requests_per_sec: self.max_requests_per_sec,
            request_burst: self.request_burst,
            abuse_threshold: self.abuse_threshold.max(1),
        };
        config.heartbeat = self.heartbeat;
        config.stall_timeout = self.stall_timeout;
        config.tokens = Tokens::new(self.tokens.into_iter().filter(|t| !t.is_empty()).collect());
        config.max_symbols = self.max_symbols;
        config.send_buffer = self.send_buffer;
        config.max_frame_bytes = self.max_frame_bytes.max(4096);
        config.min_write_interval = self.min_write_interval;
        config.max_lag = self.max_lag;
        config.history = self.history;
        config.history_memory = self.history_memory;
        config.bars_keep = self.bars_keep;
        config.bars_memory = self.bars_memory;
        config.depth = self.depth;
        config.tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::load(cert, key)?),
            _ => None,
        };
        config.allowed_origins = crate::origin::AllowedOrigins::parse(&self.allowed_origins)?;
        config.handshake_timeout = self.handshake_timeout;
        config.max_pending_handshakes = self.max_pending_handshakes;
        config.nats = match self.role {
            Some(role) if !self.nats.is_empty() => Some(crate::nats::NatsConfig {
                urls: check_nats_urls(self.nats)?,
                role,
                replicas: usize::from(self.nats_replicas),
            }),
            _ => None,
        };
        Ok(config)
    }
}

impl ServeArgs {
    fn replay_options(&self) -> crate::source::replay::ReplayOptions {
        crate::source::replay::ReplayOptions {
            files: self.replay.clone(),
            format: self.format,
            speed: self.speed,
            looping: self.looping,
            window: crate::feed::time::WindowArgs {
                from: self.from,
                to: self.to,
            },
            strict: self.strict,
            depth: self.depth,
        }
    }
}

/// `--nats`: every server of the list parses, and at least one is given.
fn check_nats_urls(urls: Vec<String>) -> Result<Vec<String>, ConfigError> {
    let urls: Vec<String> = urls
        .into_iter()
        .map(|url| url.trim().to_string())
        .filter(|url| !url.is_empty())
        .collect();
    if urls.is_empty() {
        return Err(invalid(
            "nats",
            "no server given; try nats://127.0.0.1:4222",
        ));
    }
    for url in &urls {
        url.parse::<async_nats::ServerAddr>()
            .map_err(|e| invalid("nats", format!("{url:?}: {e}; try nats://127.0.0.1:4222")))?;
    }
    Ok(urls)
}

/// `--history`: a count of updates up to [`crate::history::MAX_HISTORY`].
fn parse_history(text: &str) -> Result<usize, String> {
    let most = crate::history::MAX_HISTORY;
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n <= most)
        .ok_or_else(|| format!("{text:?} is not a count of updates from 0 to {most}"))
}

fn parse_depth(text: &str) -> Result<usize, String> {
    let most = crate::protocol::MAX_DEPTH;
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=most).contains(n))
        .ok_or_else(|| format!("{text:?} is not a count of levels from 1 to {most}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Result<ServeConfig, String> {
        let cli = Cli::try_parse_from(std::iter::once("tickfeed").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        let args = match cli.command {
            Some(Command::Serve(a)) => a,
            Some(other) => return Err(format!("not serve: {other:?}")),
            None => cli.serve,
        };
        args.into_config().map_err(|e| e.to_string())
    }

    #[test]
    fn serve_is_the_default_and_defaults_are_safe() {
        let config = serve(&[]).unwrap();
        assert!(config.listen.ip().is_loopback());
        assert_eq!(config.listen.port(), 8080);
        assert!(!config.tokens.enabled());
        let sub = serve(&["serve", "--rate", "20k", "--symbols", "1000", "--skew", "0"]).unwrap();
        let SourceConfig::Generator(g) = sub.source else {
            panic!("the generator is the default source")
        };
        assert_eq!((g.rate, g.listings.len(), g.skew), (20_000.0, 1000, 0.0));
        assert_eq!(g.depth, crate::protocol::DEFAULT_DEPTH);
    }

    #[test]
    fn depth_reaches_the_source() {
        let config = serve(&["--depth", "3"]).unwrap();
        let SourceConfig::Generator(g) = config.source else {
            panic!("the generator is the default source")
        };
        assert_eq!((config.depth, g.depth), (3, 3));
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/ACME_2024-03-15_34200000_37800000_message_5.csv"
        );
        let config = serve(&["--replay", fixture, "--depth", "50"]).unwrap();
        let SourceConfig::Replay(replay) = config.source else {
            panic!("a replay")
        };
        assert_eq!(replay.depth, 50);
        assert!(
            serve(&["--depth", "51"])
                .unwrap_err()
                .contains("from 1 to 50")
        );
    }

    #[test]
    fn bad_flags_say_which_flag() {
        assert!(serve(&["--rate", "0"]).unwrap_err().contains("--rate"));
        assert!(
            serve(&["--symbols", "0"])
                .unwrap_err()
                .contains("--symbols")
        );
        assert!(
            serve(&["--listen", "nowhere"])
                .unwrap_err()
                .contains("--listen")
        );
        assert!(
            serve(&["--heartbeat", "soon"])
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(
            serve(&["--max-pending-handshakes", "0"])
                .unwrap_err()
                .contains("--max-pending-handshakes")
        );
    }

    /// What `command` (serve, bench or feed record) says of its flags.
    fn market_error(args: &[&str]) -> String {
        let argv = std::iter::once("tickfeed").chain(args.iter().copied());
        let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let error = match cli.command {
            Some(Command::Serve(serve)) => serve.into_config().err().map(|e| e.to_string()),
            Some(Command::Bench(bench)) => bench.into_plan().err().map(|e| e.to_string()),
            Some(Command::Feed(FeedArgs {
                command: FeedCommand::Record(record),
            })) => crate::source::record::plan(&record)
                .err()
                .map(|e| e.to_string()),
            other => panic!("not a command that runs the generator: {other:?}"),
        };
        error.unwrap_or_else(|| panic!("{args:?} was accepted"))
    }

    #[test]
    fn a_bad_market_flag_gives_the_same_error_from_every_command() {
        let cases = [
            ("--skew=-1", "--skew: must be 0 (uniform) or more"),
            ("--skew=NaN", "--skew: must be 0 (uniform) or more"),
            ("--symbols=0", "--symbols: must be at least 1"),
            (
                "--rate=0",
                "--rate: must be a positive number of updates per second",
            ),
            ("--universe=no/such.csv", "--universe: no/such.csv: "),
        ];
        for (flag, expected) in cases {
            let errors = [
                market_error(&["serve", flag]),
                market_error(&["bench", flag]),
                market_error(&["feed", "record", "--out", "unused.csv", flag]),
            ];
            assert!(errors[0].starts_with(expected), "{flag}: {errors:?}");
            assert!(
                errors.iter().all(|e| *e == errors[0]),
                "{flag}: the same from each command: {errors:?}"
            );
        }
    }

    #[test]
    fn nats_is_opt_in_and_needs_a_role_and_a_valid_url() {
        assert!(serve(&[]).unwrap().nats.is_none(), "no broker by default");
        let edge = serve(&["--nats", "nats://127.0.0.1:4222", "--role", "edge"])
            .unwrap()
            .nats
            .unwrap();
        assert_eq!(
            (edge.urls, edge.role),
            (
                vec!["nats://127.0.0.1:4222".to_string()],
                crate::nats::NatsRole::Edge
            )
        );
        let cluster = [
            "nats://127.0.0.1:4222",
            "nats://127.0.0.1:4223",
            "nats://127.0.0.1:4224",
        ];
        let joined = cluster[..2].join(",");
        let listed = serve(&["--nats", &joined, "--nats", cluster[2], "--role", "edge"]);
        assert_eq!(listed.unwrap().nats.unwrap().urls, cluster);
        assert!(
            serve(&["--nats", "nats://127.0.0.1:4222"])
                .unwrap_err()
                .contains("--role")
        );
        assert!(serve(&["--role", "source"]).unwrap_err().contains("--nats"));
        assert!(
            serve(&["--nats", "nats://[x", "--role", "source"])
                .unwrap_err()
                .contains("--nats")
        );
    }
}
