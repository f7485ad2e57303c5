//! `tickfeed feed record`: writes the simulated market (the generator's
//! [`Market`], the same model `serve` runs) to a generic CSV file.
//!
//! The market is driven on a simulated clock, one update every
//! `1 / --rate` seconds from `--start`, rather than waited for in real
//! time: a minute is recorded in a moment, and the same seed and start give
//! the same file byte for byte.

use super::args::GeneratorArgs;
use super::generator::{GeneratorConfig, Market};
use crate::clock::now_ns;
use crate::feed::generic::Writer;
use crate::feed::time::parse_ts;
use crate::feed::{FeedError, Progress, Update, progress_bar};
use crate::units::{parse_duration, parse_rate};
use clap::Args;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Rows between two progress-bar updates.
const PROGRESS_EVERY: u64 = 16 * 1024;

/// Flags of `tickfeed feed record`.
#[derive(Debug, Clone, Args)]
// The market flags are `serve`'s (`GeneratorArgs`); these defaults are the
// shipped sample's (`feeds/sample.csv`), seeded so that a recording repeats.
#[command(
    mut_arg("symbols", |a| a
        .default_value("20")
        .help("Number of simulated symbols")),
    mut_arg("seed", |a| a
        .default_value("1")
        .help("Seed of the simulated market; the same seed and start give the same file")),
)]
pub struct RecordArgs {
    /// Output file (generic CSV).
    #[arg(long, short)]
    pub out: PathBuf,
    // The simulated market: --symbols, --universe, --seed, --skew.
    #[command(flatten)]
    pub generator: GeneratorArgs,
    /// Length of the recording in simulated time (e.g. 60s, 5m).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Updates per second over all symbols (e.g. 150, 20k).
    // Not in `GeneratorArgs`: `bench` takes a list of rates.
    #[arg(long, default_value = "150", value_parser = parse_rate)]
    pub rate: f64,
    /// Time of the first row: RFC 3339 or epoch [default: now].
    #[arg(long, value_parser = parse_ts)]
    pub start: Option<u64>,
}

/// Checks the flags: the market to record and how many rows.
pub(crate) fn plan(args: &RecordArgs) -> Result<(GeneratorConfig, u64), FeedError> {
    let config = args
        .generator
        .clone()
        .into_config(args.rate)
        .map_err(|e| FeedError::Invalid {
            flag: e.flag,
            msg: e.msg,
        })?;
    let rows = (args.duration.as_secs_f64() * args.rate).round() as u64;
    if rows == 0 {
        return Err(FeedError::Invalid {
            flag: "duration",
            msg: "records no row at this --rate; make it longer".into(),
        });
    }
    Ok((config, rows))
}

pub fn run(args: &RecordArgs) -> Result<(), FeedError> {
    let (config, rows) = plan(args)?;
    let path = args.out.display().to_string();
    let write_error = |source| FeedError::Write {
        path: path.clone(),
        source,
    };
    let file = std::fs::File::create(&args.out).map_err(write_error)?;
    let mut writer = Writer::new(std::io::BufWriter::new(file)).map_err(write_error)?;
    let bar = progress_bar(rows, Progress::Rows);
    bar.set_message("recording");
    let mut market = Market::new(&config);
    let mut volumes: HashMap<Arc<str>, u64> = HashMap::new();
    let start = args.start.unwrap_or_else(now_ns);
    let step_ns = 1e9 / args.rate;
    for i in 0..rows {
        let xt = start + (i as f64 * step_ns) as u64;
        let tick = market.next_tick(xt);
        let before = volumes
            .insert(tick.sym.clone(), tick.quote.vol)
            .unwrap_or(0);
        let update = Update {
            line: 0,
            xt,
            traded: tick.quote.vol > before,
            sym: tick.sym,
            quote: tick.quote,
            tick: true,
            book: None,
        };
        writer.write(&update).map_err(write_error)?;
        if i % PROGRESS_EVERY == 0 {
            bar.set_position(i);
        }
    }
    writer.into_inner().flush().map_err(write_error)?;
    bar.finish_and_clear();
    tracing::info!(
        "recorded {rows} updates of {} symbols to {path}",
        config.listings.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::{Format, reader};

    #[test]
    fn a_recording_replays_to_the_simulated_ticks() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("record.csv");
        let args = RecordArgs {
            out: out.clone(),
            generator: GeneratorArgs {
                symbols: Some(5),
                universe: None,
                seed: Some(9),
                skew: 1.0,
            },
            duration: std::time::Duration::from_secs(2),
            rate: 500.0,
            start: Some(1_700_000_000_000_000_000),
        };
        run(&args).unwrap();
        let first = std::fs::read(&out).unwrap();
        let updates: Vec<Update> = reader::open(&out, &Format::Generic)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(updates.len(), 1000);
        assert_eq!(
            updates[1].xt - updates[0].xt,
            2_000_000,
            "one update every 1/rate s"
        );
        let listings =
            crate::source::universe::sized(crate::source::universe::default_universe(), 5, 9);
        let mut market = Market::new(&GeneratorConfig::new(listings, 500.0, 9, 1.0).unwrap());
        for u in &updates {
            let t = market.next_tick(u.xt);
            assert_eq!((&t.sym, t.quote), (&u.sym, u.quote));
        }
        run(&args).unwrap();
        assert_eq!(
            std::fs::read(&out).unwrap(),
            first,
            "same seed and start, same file"
        );
    }
}
