//! `tickfeed feed check`: reads feed files through, prints every bad row as
//! `file:line:column: what`, and summarises each file (rows, symbols, time
//! span, rates, and for LOBSTER files how the book held up and how often
//! its top levels change).
//!
//! [`scan`] is also the replay's startup pass (`source::replay`): one read
//! of each file that finds bad rows, time-order breaks and the symbols to
//! declare before the first tick.

use super::args::CheckArgs;
use super::detect::detect;
use super::lobster::BookStats;
use super::merge::FeedFile;
use super::time::{NS_PER_SEC, Window, format_rfc3339};
use super::{BadRow, FeedError, reader};
use crate::protocol::DEFAULT_DEPTH;
use indicatif::ProgressBar;
use std::collections::HashSet;
use std::sync::Arc;

/// Rows between two progress-bar updates.
const PROGRESS_EVERY: u64 = 64 * 1024;

/// What `feed check` reports for one file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    pub path: String,
    pub format: &'static str,
    /// Data rows, good or bad.
    pub rows: u64,
    /// Ticks a replay emits (LOBSTER rows deep in the book emit none).
    pub updates: u64,
    pub bad_rows: u64,
    pub symbols: usize,
    pub first_time: Option<String>,
    pub last_time: Option<String>,
    pub span_s: f64,
    pub mean_updates_per_s: f64,
    pub busiest_second_updates: u64,
    pub busiest_second_at: Option<String>,
    pub longest_gap_s: f64,
    pub book: Option<BookStats>,
}

/// A file read through: its summary and what a replay needs to start.
#[derive(Debug)]
pub struct Scan {
    pub summary: Summary,
    /// Symbols in order of first appearance.
    pub symbols: Vec<Arc<str>>,
    pub first_xt: Option<u64>,
    pub last_xt: Option<u64>,
    /// Updates inside the window.
    pub in_window: u64,
    pub first_out_of_order: Option<BadRow>,
}

/// Running figures over a time-ordered stream.
#[derive(Debug, Default)]
struct Rates {
    first: Option<u64>,
    last: Option<u64>,
    second: u64,
    in_second: u64,
    busiest: (u64, u64),
    longest_gap: u64,
}

impl Rates {
    fn add(&mut self, xt: u64) {
        if let Some(last) = self.last {
            self.longest_gap = self.longest_gap.max(xt.saturating_sub(last));
        }
        self.first.get_or_insert(xt);
        self.last = Some(xt);
        if xt / NS_PER_SEC != self.second {
            self.second = xt / NS_PER_SEC;
            self.in_second = 0;
        }
        self.in_second += 1;
        if self.in_second > self.busiest.0 {
            self.busiest = (self.in_second, self.second * NS_PER_SEC);
        }
    }
}

/// Reads `file` through, following the top `depth` levels of a book (0:
/// ticks alone). Bad rows (out-of-order ones included) go to `on_bad`; only
/// an unreadable file is an error.
pub fn scan(
    file: &FeedFile,
    window: Window,
    depth: usize,
    mut on_bad: impl FnMut(&BadRow),
    bar: &ProgressBar,
) -> Result<Scan, FeedError> {
    let mut reader = reader::open_with_books(&file.path, &file.format, depth)?;
    let (mut rates, mut seen, mut symbols) = (Rates::default(), HashSet::new(), Vec::new());
    let (mut updates, mut bad_rows, mut in_window, mut first_out_of_order) = (0, 0, 0, None);
    while let Some(item) = reader.next() {
        match item {
            Ok(update) if !update.tick => {}
            Ok(update) => {
                updates += 1;
                rates.add(update.xt);
                in_window += u64::from(window.contains(update.xt));
                if !seen.contains(&update.sym) {
                    seen.insert(update.sym.clone());
                    symbols.push(update.sym);
                }
            }
            Err(FeedError::BadRow(bad)) => {
                bad_rows += 1;
                on_bad(&bad);
                if bad.out_of_order && first_out_of_order.is_none() {
                    first_out_of_order = Some(bad);
                }
            }
            Err(e) => return Err(e),
        }
        if reader.rows() % PROGRESS_EVERY == 0 {
            bar.set_position(reader.bytes_read());
        }
    }
    if reader.rows() == 0 {
        return Err(FeedError::Empty {
            path: file.path.display().to_string(),
        });
    }
    let span_ns = rates.last.zip(rates.first).map_or(0, |(l, f)| l - f);
    let span_s = span_ns as f64 / NS_PER_SEC as f64;
    let summary = Summary {
        path: file.path.display().to_string(),
        format: file.format.name(),
        rows: reader.rows(),
        updates,
        bad_rows,
        symbols: symbols.len(),
        first_time: rates.first.map(format_rfc3339),
        last_time: rates.last.map(format_rfc3339),
        span_s,
        mean_updates_per_s: per_second(updates, span_s),
        busiest_second_updates: rates.busiest.0,
        busiest_second_at: (rates.busiest.0 > 0).then(|| format_rfc3339(rates.busiest.1)),
        longest_gap_s: rates.longest_gap as f64 / NS_PER_SEC as f64,
        book: reader.book_stats(),
    };
    Ok(Scan {
        summary,
        symbols,
        first_xt: rates.first,
        last_xt: rates.last,
        in_window,
        first_out_of_order,
    })
}

/// `count` events over `span_s` seconds as a rate (0 over no time).
fn per_second(count: u64, span_s: f64) -> f64 {
    if span_s > 0.0 {
        count as f64 / span_s
    } else {
        0.0
    }
}

/// `tickfeed feed check FILE...`: fails when any row is bad. With `--json`
/// standard output is one JSON document and bad rows go to standard error.
pub fn run(args: &CheckArgs) -> Result<(), FeedError> {
    let mut summaries = Vec::new();
    let mut failed = None;
    for path in &args.files {
        let file = FeedFile {
            path: path.clone(),
            format: detect(path, args.format)?,
        };
        let bar = super::progress_bar(
            std::fs::metadata(path).map_or(0, |m| m.len()),
            super::Progress::Bytes,
        );
        bar.set_message(path.display().to_string());
        let scan = scan(
            &file,
            Window::ALL,
            DEFAULT_DEPTH,
            |bad| match args.json {
                // Standard output holds the JSON and nothing else.
                true => bar.suspend(|| eprintln!("{bad}")),
                false => bar.suspend(|| emit(&format!("{bad}\n"), &mut failed)),
            },
            &bar,
        )?;
        bar.finish_and_clear();
        summaries.push(scan.summary);
    }
    if args.json {
        emit(
            &(serde_json::to_string_pretty(&summaries).expect("plain data") + "\n"),
            &mut failed,
        );
    } else {
        summaries.iter().for_each(|s| emit(&render(s), &mut failed));
    }
    if let Some(source) = failed {
        return Err(FeedError::Write {
            path: "standard output".into(),
            source,
        });
    }
    match summaries.iter().map(|s| s.bad_rows).sum() {
        0 => Ok(()),
        count => Err(FeedError::BadRows { count }),
    }
}

/// Writes to standard output, keeping the first error; a closed pipe
/// (`| head`) just ends the output.
fn emit(text: &str, failed: &mut Option<std::io::Error>) {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            failed.get_or_insert(e);
        }
        _ => {}
    }
}

/// The text report of one file.
pub fn render(s: &Summary) -> String {
    let mut out = format!("{} ({})\n", s.path, s.format);
    out += &format!(
        "  rows     {} ({} updates, {} bad)\n",
        s.rows, s.updates, s.bad_rows
    );
    out += &format!("  symbols  {}\n", s.symbols);
    if let (Some(first), Some(last)) = (&s.first_time, &s.last_time) {
        out += &format!("  time     {first} to {last} ({:.3} s)\n", s.span_s);
        out += &format!(
            "  rate     {:.1} updates/s on average, busiest second {} updates at {}, longest gap {:.3} s\n",
            s.mean_updates_per_s,
            s.busiest_second_updates,
            s.busiest_second_at.as_deref().unwrap_or("-"),
            s.longest_gap_s
        );
    }
    if let Some(book) = &s.book {
        out += &format!(
            "  book     {} events on orders placed before the file, {} crossed quotes, {} trades outside the touch, {} halts\n",
            book.unknown_orders, book.crossed_quotes, book.trades_outside_touch, book.halts
        );
        out += &format!(
            "  depth    {} book updates ({:.1}/s) of the top {} levels, from the {}\n",
            book.book_updates,
            per_second(book.book_updates, s.span_s),
            book.depth,
            match book.orderbook_file {
                true => "orderbook file beside it",
                false => "rebuilt book",
            }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::Format;

    #[test]
    fn a_scan_counts_rows_symbols_rates_and_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("check.csv");
        std::fs::write(
            &path,
            "ts,sym,px\n1.0,A,1\n1.5,B,1\n1.6,A,x\n1.7,A,2\n4.0,B,3\n",
        )
        .unwrap();
        let file = FeedFile {
            path,
            format: Format::Generic,
        };
        let mut bad = Vec::new();
        let window = Window {
            from: NS_PER_SEC,
            to: 2 * NS_PER_SEC,
        };
        let scan = scan(
            &file,
            window,
            0,
            |b| bad.push(b.line),
            &ProgressBar::hidden(),
        )
        .unwrap();
        assert_eq!(bad, [4]);
        assert_eq!(
            scan.symbols.iter().map(|s| &**s).collect::<Vec<_>>(),
            ["A", "B"]
        );
        let s = &scan.summary;
        assert_eq!(
            (s.rows, s.updates, s.bad_rows, scan.in_window),
            (5, 4, 1, 3)
        );
        assert_eq!(
            (s.span_s, s.busiest_second_updates, s.longest_gap_s),
            (3.0, 3, 2.3)
        );
        assert!(
            render(s).contains("rows     5 (4 updates, 1 bad)"),
            "{}",
            render(s)
        );
    }
}
