//! Sources of market updates: the simulated generator (default) and
//! replays of recorded files (`record.rs` writes the generator to a file
//! for `tickfeed feed record`; `args.rs` holds the generator's flags, which
//! every command that runs it shares). A source stamps every update with its
//! per-symbol `seq` and emission time `ts` and hands batches to the router
//! through a bounded channel. Sources read the feed formats (`feed`) and
//! know nothing of the router beyond [`SourceMsg`].
//!
//! Overflow policy of that channel: the source waits (backpressure). A
//! generator that cannot keep up therefore emits below its target rate, and
//! the achieved rate is reported in `/api/stats`.

pub mod args;
pub mod book_sim;
pub mod generator;
pub mod record;
pub mod replay;
pub mod universe;

use crate::bars::BarSeed;
use crate::protocol::{BookEvent, BookUpdate, Tick};
use crate::shutdown::{DoneGuard, Shutdown};
use crate::stats::Stats;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Where updates come from.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    Generator(generator::GeneratorConfig),
    /// Recorded files (`--replay`), read through once already.
    Replay(replay::ReplayConfig),
}

/// What a source sends to the router.
#[derive(Debug)]
pub enum SourceMsg {
    /// Symbols that exist before their first tick (listed by `symbols`,
    /// subscribable at once).
    Declare(Vec<Arc<str>>),
    /// Updates in emission order, already stamped with `seq` and `ts`.
    Ticks(Vec<Tick>),
    /// Books after source events, in emission order: those of the ticks
    /// in the `Ticks` batch sent just before (then its top level equals the
    /// tick's quote), or of events that changed only deeper levels. Only
    /// sources with a book send them (the generator, LOBSTER replays).
    Books(Vec<BookUpdate>),
    /// Books numbered already in their symbol's book sequence, in order:
    /// from the NATS roles (a source's publisher numbers `Books` to
    /// publish them; an edge receives them so, and reads the latest as the
    /// snapshot of `router::Interest::WantedBook` before its `Ready`). The
    /// router stores them with their `seq`, dropping any not past the
    /// latest.
    NumberedBooks(Vec<BookEvent>),
    /// The latest values of these symbols (or `*`) have been sent: the
    /// subscribes waiting for them can be answered. Sent only by on-demand
    /// sources, in reply to `router::Interest::Wanted`.
    Ready(Vec<Arc<str>>),
    /// Bars of these symbols as their source has them, to continue from
    /// (`bars::BarSeed`). Sent only by the NATS edge, before the `Ready`
    /// of the symbols reported `router::Interest::WantedBars`.
    Bars(Vec<(Arc<str>, BarSeed)>),
    /// The ticks that follow number their `seq` in this epoch
    /// (`epoch.rs`). Sent first by the NATS roles (the source's publisher
    /// and the edge announce the epoch kept in the broker; an edge also
    /// when it changes); other sources start in the table's own.
    Epoch(String),
}

/// Batches in flight between source and router. Small: the router drains
/// a batch in microseconds, and a deeper queue would only hide lag.
pub const SOURCE_QUEUE_BATCHES: usize = 64;

/// The sending half a source writes to.
pub type SourceSender = mpsc::Sender<SourceMsg>;
pub type SourceReceiver = mpsc::Receiver<SourceMsg>;

pub fn channel() -> (SourceSender, SourceReceiver) {
    mpsc::channel(SOURCE_QUEUE_BATCHES)
}

/// A source that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("the generator needs at least one symbol")]
    NoSymbols,
    #[error("cannot start the replay thread: {0}")]
    ReplayThread(std::io::Error),
}

/// Starts the configured source as its own task.
pub fn spawn(
    config: &SourceConfig,
    out: SourceSender,
    stats: Arc<Stats>,
    shutdown: Shutdown,
    done: DoneGuard,
) -> Result<(), SourceError> {
    match config {
        SourceConfig::Generator(generator) => {
            if generator.listings.is_empty() {
                return Err(SourceError::NoSymbols);
            }
            let generator = generator.clone();
            tracing::info!(
                symbols = generator.listings.len(),
                rate = generator.rate,
                seed = generator.seed,
                skew = generator.skew,
                "simulated feed"
            );
            tokio::spawn(async move {
                generator::run(generator, out, stats, shutdown).await;
                drop(done);
            });
        }
        SourceConfig::Replay(replay) => {
            replay::spawn(replay.clone(), out, stats, shutdown, done)
                .map_err(SourceError::ReplayThread)?;
        }
    }
    Ok(())
}
