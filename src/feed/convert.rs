//! `tickfeed feed convert`: reads feed files of any supported format,
//! merged in time order, and writes them as one generic CSV whose replay
//! gives the same ticks.

use super::args::ConvertArgs;
use super::detect::detect_all;
use super::generic::Writer;
use super::merge::Merge;
use super::time::WindowArgs;
use super::{FeedError, Progress, output, progress_bar};
use std::io::Write;

/// Rows between two progress-bar updates.
const PROGRESS_EVERY: u64 = 64 * 1024;

pub fn run(args: &ConvertArgs) -> Result<(), FeedError> {
    let files = detect_all(&args.files, args.format)?;
    let window_args = WindowArgs {
        from: args.from,
        to: args.to,
    };
    let window = window_args.resolve(if window_args.needs_start() {
        Merge::first_time(&files)?.unwrap_or(0)
    } else {
        0
    });
    let (out, name) = output(args.out.as_deref())?;
    let write_error = |source| FeedError::Write {
        path: name.clone(),
        source,
    };
    let mut writer =
        Writer::new(std::io::BufWriter::with_capacity(1 << 20, out)).map_err(write_error)?;
    let bar = progress_bar(
        files
            .iter()
            .filter_map(|f| std::fs::metadata(&f.path).ok())
            .map(|m| m.len())
            .sum(),
        Progress::Bytes,
    );
    bar.set_message("converting");
    let (mut merge, mut written, mut skipped, mut seen) = (Merge::open(&files)?, 0u64, 0u64, 0u64);
    while let Some(item) = merge.next() {
        seen += 1;
        if seen % PROGRESS_EVERY == 0 {
            bar.set_position(merge.bytes_read());
        }
        match item {
            Ok((_, update)) if update.xt >= window.to => break,
            Ok((_, update)) if window.contains(update.xt) => {
                writer.write(&update).map_err(write_error)?;
                written += 1;
            }
            Ok(_) => {}
            Err(FeedError::BadRow(bad)) if !args.strict => {
                bar.suspend(|| tracing::warn!("{bad} (skipped)"));
                skipped += 1;
            }
            Err(e) => return Err(e),
        }
    }
    writer.into_inner().flush().map_err(write_error)?;
    bar.finish_and_clear();
    tracing::info!("wrote {written} rows to {name}; skipped {skipped} bad rows");
    Ok(())
}
