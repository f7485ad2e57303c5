//! `tickfeed feed` flags (clap). Each subcommand's module validates and
//! runs its own arguments.

use super::detect::FormatChoice;
use super::time::TimeBound;
use crate::cli::{parse_duration, parse_rate};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Record, check and convert feed files (see docs/replay.md).
#[derive(Debug, Clone, Args)]
pub struct FeedArgs {
    #[command(subcommand)]
    pub command: FeedCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum FeedCommand {
    /// Record the simulated feed to a generic CSV file.
    Record(RecordArgs),
    /// Validate and summarise feed files; lists every bad row and exits
    /// non-zero if there is one.
    Check(CheckArgs),
    /// Write feed files of any supported format, merged in time order, as
    /// one generic CSV.
    Convert(ConvertArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Feed files (generic CSV or LOBSTER messages).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// How to read the files.
    #[arg(long, value_enum, default_value_t = FormatChoice::Auto)]
    pub format: FormatChoice,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ConvertArgs {
    /// Feed files, merged in time order.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output file [default: standard output].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// How to read the files.
    #[arg(long, value_enum, default_value_t = FormatChoice::Auto)]
    pub format: FormatChoice,
    /// Stop at the first bad row instead of skipping it.
    #[arg(long)]
    pub strict: bool,
    /// Keep rows from this time: RFC 3339, epoch, or +10m after the start.
    #[arg(long)]
    pub from: Option<TimeBound>,
    /// Keep rows before this time: RFC 3339, epoch, or +10m after the start.
    #[arg(long)]
    pub to: Option<TimeBound>,
}

#[derive(Debug, Clone, Args)]
pub struct RecordArgs {
    /// Output file (generic CSV).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Number of simulated symbols.
    #[arg(long, default_value_t = 20)]
    pub symbols: usize,
    /// Length of the recording in simulated time (e.g. 60s, 5m).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Updates per second over all symbols (e.g. 150, 20k).
    #[arg(long, default_value = "150", value_parser = parse_rate)]
    pub rate: f64,
    /// Seed of the simulated market; the same seed and start give the same file.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How unevenly activity is spread: 0 = uniform, 1 = market-like.
    #[arg(long, default_value_t = crate::config::DEFAULT_SKEW)]
    pub skew: f64,
    /// Time of the first row: RFC 3339 or epoch [default: now].
    #[arg(long, value_parser = super::time::parse_ts)]
    pub start: Option<u64>,
}
