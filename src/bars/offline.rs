//! `tickfeed feed bars`: feed files of any supported format, merged in time
//! order, aggregated by the server's own [`Aggregator`] into the bars of
//! one timeframe, written as CSV (`t,sym,tf,o,h,l,c,v,trades,vwap`, one row
//! per final bar, in the order they close; the file's end closes the last).

use super::{Aggregator, Bar, BarSink, Timeframe};
use crate::feed::detect::{FormatChoice, detect_all};
use crate::feed::merge::Merge;
use crate::feed::{FeedError, output};
use crate::symbols::SymbolId;
use clap::Args;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// The CSV header, also the field order of each row.
pub const HEADER: [&str; 10] = ["t", "sym", "tf", "o", "h", "l", "c", "v", "trades", "vwap"];

#[derive(Debug, Clone, Args)]
pub struct BarsArgs {
    /// Feed files (generic CSV or LOBSTER messages), merged in time order.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Length of each bar.
    #[arg(long, value_enum)]
    pub tf: Timeframe,
    /// Output file [default: standard output].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// How to read the files.
    #[arg(long, value_enum, default_value_t = FormatChoice::Auto)]
    pub format: FormatChoice,
    /// Stop at the first bad row instead of skipping it.
    #[arg(long)]
    pub strict: bool,
}

/// Writes the final bars of one timeframe as CSV rows.
struct CsvBars {
    tf: Timeframe,
    names: Vec<Arc<str>>,
    writer: csv::Writer<std::io::BufWriter<Box<dyn Write>>>,
    written: u64,
    /// The first write error; later rows are not tried.
    failed: Option<csv::Error>,
}

impl BarSink for CsvBars {
    fn partial(&mut self, _: SymbolId, _: Timeframe, _: &Bar) {}

    fn closed(&mut self, id: SymbolId, tf: Timeframe, bar: &Bar) {
        if tf != self.tf || self.failed.is_some() {
            return;
        }
        let row = (
            bar.t,
            &*self.names[id as usize],
            tf.name(),
            bar.o,
            bar.h,
            bar.l,
            bar.c,
            bar.v,
            bar.trades,
            bar.vwap,
        );
        match self.writer.serialize(row) {
            Ok(()) => self.written += 1,
            Err(e) => self.failed = Some(e),
        }
    }
}

pub fn run(args: &BarsArgs) -> Result<(), FeedError> {
    let files = detect_all(&args.files, args.format)?;
    let (out, name) = output(args.out.as_deref())?;
    let write_error = |e: csv::Error| FeedError::Write {
        path: name.clone(),
        source: e.into(),
    };
    let mut writer = csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 20, out));
    writer.write_record(HEADER).map_err(write_error)?;
    let mut sink = CsvBars {
        tf: args.tf,
        names: Vec::new(),
        writer,
        written: 0,
        failed: None,
    };
    let (mut aggregator, mut ids) = (Aggregator::new(), HashMap::new());
    let mut skipped = 0u64;
    for item in Merge::open(&files)? {
        let update = match item {
            Ok((_, update)) => update,
            Err(FeedError::BadRow(bad)) if !args.strict => {
                tracing::warn!("{bad} (skipped)");
                skipped += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        let id = *ids.entry(update.sym.clone()).or_insert_with(|| {
            sink.names.push(update.sym.clone());
            (sink.names.len() - 1) as SymbolId
        });
        aggregator.tick(id, update.xt, &update.quote, &mut sink);
    }
    aggregator.close_all(&mut sink);
    if let Some(e) = sink.failed.take() {
        return Err(write_error(e));
    }
    sink.writer.flush().map_err(|e| write_error(e.into()))?;
    tracing::info!(
        "wrote {} {} bars to {name}; skipped {skipped} bad rows",
        sink.written,
        args.tf
    );
    Ok(())
}
