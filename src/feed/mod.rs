//! Recorded feeds: the file formats tickfeed reads (a generic CSV and
//! LOBSTER message files), and the `tickfeed feed check` and `convert`
//! tools. The replay source (`source::replay`) reads files through
//! [`reader::open`] and [`merge::Merge`], and `source::record` writes them;
//! nothing here knows about sources or the server (it imports only
//! `protocol` and `units`).
//!
//! Every format becomes the same stream of [`Update`]s: the state of one
//! symbol after one event, stamped with the event's original time, and for
//! LOBSTER (read with a depth) the top levels of its book. Files
//! are read as streams (one CSV record buffer each), so memory does not
//! grow with the file.

pub mod args;
pub mod book;
pub mod check;
pub mod convert;
pub mod detect;
pub mod generic;
pub mod lobster;
pub mod merge;
pub mod orderbook;
pub mod reader;
pub mod time;

use crate::protocol::{Depth, Quote};
use std::path::Path;
use std::sync::Arc;

/// The state of one symbol after one event of a feed file.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// Line of the file the event was read from (1-based).
    pub line: u64,
    /// Original event time, ns since the Unix epoch.
    pub xt: u64,
    pub sym: Arc<str>,
    /// The symbol's market after the event: the last trade carried forward
    /// until the next one, and `vol` counting shares traded in this file
    /// so far.
    pub quote: Quote,
    /// This event is a trade (its `px` and `sz` are new).
    pub traded: bool,
    /// A replay emits a tick for this event: it traded or changed the
    /// quote. False only for book events that changed deeper levels alone.
    pub tick: bool,
    /// The top levels of the symbol's book after the event, when they
    /// changed (read with a depth, from a format with a book).
    pub book: Option<Depth>,
}

/// Which format a file is in.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    /// CSV with a header naming its columns (`generic.rs`).
    Generic,
    /// LOBSTER message file of one ticker on one day (`lobster.rs`).
    Lobster(lobster::FileName),
}

impl Format {
    pub fn name(&self) -> &'static str {
        match self {
            Format::Generic => "generic CSV",
            Format::Lobster(_) => "LOBSTER messages",
        }
    }
}

/// A row that cannot be used, located as `file:line:column`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}:{line}:{column}: {what}")]
pub struct BadRow {
    pub path: Arc<str>,
    pub line: u64,
    /// 1-based character column where the bad field starts.
    pub column: u64,
    pub what: String,
    /// The row is well formed but earlier than the row before it.
    pub out_of_order: bool,
}

/// Why a feed cannot be read. Each message is one sentence that names the
/// file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("{path}: no such file; check the path")]
    Missing { path: String },
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path}: the file is empty; a feed needs a generic CSV header and rows, or LOBSTER message rows"
    )]
    Empty { path: String },
    #[error(
        "{path}: unknown format: the first line is neither a CSV header with ts and sym columns nor a LOBSTER message row (see docs/replay.md, or say --format)"
    )]
    UnknownFormat { path: String },
    #[error(
        "{path}: a LOBSTER message file's name must carry its ticker and date, like AAPL_2012-06-21_34200000_37800000_message_50.csv; rename the file"
    )]
    LobsterName { path: String },
    #[error(
        "{path}:1: the header has no {column} column; the generic CSV needs ts and sym (found: {found})"
    )]
    MissingColumn {
        path: String,
        column: &'static str,
        found: String,
    },
    #[error("{0}")]
    BadRow(BadRow),
    #[error(
        "{orderbook}: ends after {rows} rows, but {messages} goes on at line {line}; an orderbook file has one row per message (row i is the book after message i)"
    )]
    OrderbookShort {
        orderbook: String,
        rows: u64,
        messages: String,
        line: u64,
    },
    #[error(
        "{orderbook}: has more rows than the {rows} of {messages}; an orderbook file has one row per message (row i is the book after message i)"
    )]
    OrderbookLong {
        orderbook: String,
        rows: u64,
        messages: String,
    },
    #[error(
        "{from}..{to}: no rows in this --from/--to window; the files run from {first} to {last}"
    )]
    EmptyWindow {
        from: String,
        to: String,
        first: String,
        last: String,
    },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{count} bad rows (listed above): a replay skips them, or stops at the first with --strict"
    )]
    BadRows { count: u64 },
    #[error("--{flag}: {msg}")]
    Invalid { flag: &'static str, msg: String },
}

impl FeedError {
    /// Whether the input is at fault (a missing or malformed file, a bad
    /// option), as opposed to a failed write or `feed check` finding bad
    /// rows; the binary exits 2 for these.
    pub fn is_invalid_input(&self) -> bool {
        !matches!(
            self,
            FeedError::Read { .. } | FeedError::Write { .. } | FeedError::BadRows { .. }
        )
    }

    /// The error of opening `path` for reading.
    pub fn open(path: &Path, source: std::io::Error) -> FeedError {
        let path = path.display().to_string();
        match source.kind() {
            std::io::ErrorKind::NotFound => FeedError::Missing { path },
            _ => FeedError::Read { path, source },
        }
    }
}

/// Where a tool writes: the file at `path`, or standard output; with the
/// name its errors give.
pub fn output(path: Option<&Path>) -> Result<(Box<dyn std::io::Write>, String), FeedError> {
    match path {
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|source| FeedError::Write {
                path: path.display().to_string(),
                source,
            })?;
            Ok((Box::new(file), path.display().to_string()))
        }
        None => Ok((Box::new(std::io::stdout().lock()), "standard output".into())),
    }
}

/// What a progress bar counts.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    Bytes,
    Rows,
}

/// A progress bar on stderr when it is a terminal, hidden otherwise (logs
/// and CI output stay clean).
pub fn progress_bar(total: u64, unit: Progress) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let template = match unit {
        Progress::Bytes => "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        Progress::Rows => "{msg} [{bar:30}] {human_pos}/{human_len} rows {per_sec} eta {eta}",
    };
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .expect("static template")
            .progress_chars("=> "),
    );
    bar
}
