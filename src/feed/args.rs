//! Flags of `tickfeed feed check` and `feed convert` (clap); `cli` gathers
//! them with `feed record`'s into the `feed` command. Each tool's module
//! validates and runs its own arguments.

use super::detect::FormatChoice;
use super::time::TimeBound;
use clap::Args;
use std::path::PathBuf;

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
