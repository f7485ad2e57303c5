//! The replay thread: reads the merged files pass after pass, paces each
//! tick to its original time divided by `--speed`, stamps `seq`, `ts` and
//! `vol`, hands batches to the router, and publishes its status. Files
//! with a book (LOBSTER) also give the top `--depth` levels whenever they
//! change: each batch of ticks is followed by the books of the same events
//! (`SourceMsg::Books`), stamped with the same `ts`.

use super::{ReplayConfig, Speed};
use crate::clock::now_ns;
use crate::feed::merge::Merge;
use crate::feed::time::{NS_PER_SEC, format_rfc3339};
use crate::feed::{FeedError, Update};
use crate::protocol::{BookUpdate, Tick};
use crate::shutdown::Shutdown;
use crate::source::{SourceMsg, SourceSender};
use crate::stats::{Stats, new_histogram};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most ticks (and most books) handed to the router at once. At `--speed
/// max` the source channel stays full, so this bounds the ticks queued
/// ahead of the router (64 batches: 32k ticks, tens of ms) and with them
/// the `route` latency; larger batches were not faster.
const MAX_BATCH: usize = 512;
/// How often the replay publishes its status to `/api/stats`.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);
/// Longest single sleep while pacing, so shutdown and status stay prompt
/// during long gaps in the file.
const MAX_SLEEP: Duration = Duration::from_millis(50);

/// Per-symbol numbering that outlives one pass over the files.
#[derive(Debug, Default)]
struct Stamp {
    seq: u64,
    vol: u64,
    /// The file's own cumulative volume at the last row seen this pass.
    file_vol: u64,
    trade: (Option<f64>, Option<u64>),
    /// The book after the last row before `--from`, sent at the window's
    /// start.
    held_book: Option<BookUpdate>,
}

/// Maps original times to wall-clock emission times.
#[derive(Debug)]
struct Clock {
    speed: Speed,
    /// (wall time, original time) of the first row of this pass.
    anchor: Option<(Instant, u64)>,
    last_due: Option<Instant>,
}

impl Clock {
    /// When the row at original time `xt` is due; `None` at `--speed max`.
    fn due(&mut self, xt: u64) -> Option<Instant> {
        let Speed::Times(times) = self.speed else {
            return None;
        };
        let last_due = self.last_due;
        let (wall, start) = *self
            .anchor
            .get_or_insert_with(|| (last_due.unwrap_or_else(Instant::now), xt));
        let due = wall
            + Duration::from_secs_f64(xt.saturating_sub(start) as f64 / NS_PER_SEC as f64 / times);
        self.last_due = Some(due);
        Some(due)
    }

    /// A new pass starts where the last one ended.
    fn restart(&mut self) {
        self.anchor = None;
    }
}

/// Where the replay is, for `/api/stats`.
#[derive(Debug, Default)]
struct Position {
    file: usize,
    line: u64,
    xt: u64,
    in_pass: u64,
    loops: u64,
    emitted: u64,
    skipped: u64,
    lag: Option<Duration>,
}

/// The replay thread's state.
pub(super) struct Player {
    config: ReplayConfig,
    out: SourceSender,
    stats: Arc<Stats>,
    shutdown: Shutdown,
    symbols: HashMap<Arc<str>, usize>,
    stamps: Vec<Stamp>,
    clock: Clock,
    batch: Vec<Tick>,
    /// The books of the events in `batch`, and of events that changed
    /// deeper levels alone.
    books: Vec<BookUpdate>,
    dues: Vec<Instant>,
    at: Position,
    /// Emission lag behind the schedule, in microseconds.
    lag_us: hdrhistogram::Histogram<u64>,
    started: Instant,
    status_at: Instant,
}

/// Whether to go on after a step.
#[derive(Debug, PartialEq)]
enum Flow {
    Go,
    Stop,
}

impl Player {
    pub(super) fn new(
        config: ReplayConfig,
        out: SourceSender,
        stats: Arc<Stats>,
        shutdown: Shutdown,
    ) -> Player {
        let clock = Clock {
            speed: config.speed,
            anchor: None,
            last_due: None,
        };
        Player {
            config,
            out,
            stats,
            shutdown,
            symbols: HashMap::new(),
            stamps: Vec::new(),
            clock,
            batch: Vec::with_capacity(MAX_BATCH),
            books: Vec::new(),
            dues: Vec::with_capacity(MAX_BATCH),
            at: Position::default(),
            lag_us: new_histogram(),
            started: Instant::now(),
            status_at: Instant::now(),
        }
    }

    pub(super) fn run(&mut self) -> Result<(), FeedError> {
        if self
            .out
            .blocking_send(SourceMsg::Declare(self.config.symbols.clone()))
            .is_err()
        {
            return Ok(());
        }
        self.publish("playing", None);
        while self.pass()? == Flow::Go && self.config.looping {
            self.at.loops += 1;
            self.at.in_pass = 0;
            self.clock.restart();
            self.stamps.iter_mut().for_each(|s| s.file_vol = 0);
        }
        Ok(())
    }

    /// One pass over the files, within the window.
    fn pass(&mut self) -> Result<Flow, FeedError> {
        let mut in_window = false;
        for item in Merge::open_with_books(&self.config.files, self.config.depth)? {
            let (file, update) = match item {
                Ok(found) => found,
                Err(FeedError::BadRow(bad)) if !self.config.strict => {
                    tracing::debug!("{bad} (skipped)");
                    self.at.skipped += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if update.xt >= self.config.window.to {
                break;
            }
            if update.xt < self.config.window.from {
                let book = update
                    .book
                    .map(|depth| book_update(&update.sym, update.xt, depth));
                let stamp = self.symbol(&update.sym);
                stamp.file_vol = update.quote.vol;
                if book.is_some() {
                    stamp.held_book = book;
                }
                continue;
            }
            if !in_window {
                in_window = true;
                let held = self.stamps.iter_mut().filter_map(|s| s.held_book.take());
                self.books.extend(held);
            }
            let due = self.clock.due(update.xt);
            if let Some(due) = due.filter(|due| *due > Instant::now())
                && (self.flush() == Flow::Stop || self.wait_until(due) == Flow::Stop)
            {
                return Ok(Flow::Stop);
            }
            (self.at.file, self.at.line, self.at.xt) = (file, update.line, update.xt);
            self.emit(update, due);
            let full = self.batch.len().max(self.books.len()) >= MAX_BATCH;
            if full && self.flush() == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        Ok(self.flush())
    }

    /// The stamp of `sym`: one hash lookup for a known symbol.
    fn symbol(&mut self, sym: &Arc<str>) -> &mut Stamp {
        let index = match self.symbols.get(sym) {
            Some(index) => *index,
            None => {
                self.symbols.insert(sym.clone(), self.stamps.len());
                self.stamps.push(Stamp::default());
                self.stamps.len() - 1
            }
        };
        &mut self.stamps[index]
    }

    /// Adds an event in the window to the batch: its tick (when it makes
    /// one) and its book (when it changed).
    fn emit(&mut self, mut update: Update, due: Option<Instant>) {
        if let Some(depth) = update.book.take() {
            self.books.push(book_update(&update.sym, update.xt, depth));
        }
        if update.tick {
            self.at.in_pass += 1;
            let tick = self.stamp(update);
            self.batch.push(tick);
            self.dues.extend(due);
        }
    }

    /// Numbers an update as the next tick of its symbol.
    fn stamp(&mut self, u: Update) -> Tick {
        let s = self.symbol(&u.sym);
        let mut quote = u.quote;
        s.vol += quote.vol.saturating_sub(s.file_vol);
        s.file_vol = quote.vol;
        if quote.px.is_some() || quote.sz.is_some() {
            s.trade = (quote.px, quote.sz);
        }
        s.seq += 1;
        (quote.px, quote.sz, quote.vol) = (s.trade.0, s.trade.1, s.vol);
        Tick {
            xt: Some(u.xt),
            ..Tick::new(u.sym, s.seq, 0, quote)
        }
    }

    /// Stamps `ts` on the batch and its books and hands them to the
    /// router, waiting while the channel is full.
    fn flush(&mut self) -> Flow {
        let ts = now_ns();
        if !self.batch.is_empty() {
            let now = Instant::now();
            self.at.lag = self
                .dues
                .first()
                .map(|due| now.saturating_duration_since(*due));
            for due in self.dues.drain(..) {
                self.lag_us
                    .saturating_record(now.saturating_duration_since(due).as_micros() as u64);
            }
            let mut batch = std::mem::replace(&mut self.batch, Vec::with_capacity(MAX_BATCH));
            batch.iter_mut().for_each(|t| t.ts = ts);
            self.at.emitted += batch.len() as u64;
            if self.out.blocking_send(SourceMsg::Ticks(batch)).is_err() {
                return Flow::Stop;
            }
        }
        if !self.books.is_empty() {
            let mut books = std::mem::take(&mut self.books);
            books.iter_mut().for_each(|b| b.ts = ts);
            if self.out.blocking_send(SourceMsg::Books(books)).is_err() {
                return Flow::Stop;
            }
        }
        self.publish_if_due();
        if self.shutdown.is_stopping() {
            Flow::Stop
        } else {
            Flow::Go
        }
    }

    /// Sleeps until `due`, in short steps so shutdown is noticed.
    fn wait_until(&mut self, due: Instant) -> Flow {
        loop {
            if self.shutdown.is_stopping() {
                return Flow::Stop;
            }
            let now = Instant::now();
            if now >= due {
                return Flow::Go;
            }
            self.publish_if_due();
            std::thread::sleep((due - now).min(MAX_SLEEP));
        }
    }

    fn publish_if_due(&mut self) {
        if self.status_at.elapsed() >= STATUS_INTERVAL {
            self.publish("playing", None);
        }
    }

    pub(super) fn publish(&mut self, state: &str, error: Option<String>) {
        self.status_at = Instant::now();
        let paced = self.config.speed != Speed::Max;
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        let p99_us = self.lag_us.value_at_quantile(0.99);
        self.stats.set_source_status(serde_json::json!({
            "kind": "replay",
            "state": state,
            "error": error,
            "files": self.config.files.iter().map(|f| f.path.display().to_string()).collect::<Vec<_>>(),
            "file": self.config.files[self.at.file].path.display().to_string(),
            "line": self.at.line,
            "position": (self.at.in_pass as f64 / self.config.updates.max(1) as f64 * 1e4).round() / 1e4,
            "original_time": (self.at.xt > 0).then(|| format_rfc3339(self.at.xt)),
            "original_time_ns": self.at.xt,
            "speed": self.config.speed.to_json(),
            "lag_ms": self.at.lag.filter(|_| paced).map(ms),
            "lag_p99_ms": (paced && !self.lag_us.is_empty()).then(|| p99_us as f64 / 1e3),
            "skipped_rows": self.at.skipped,
            "loops": self.at.loops,
            "emitted": self.at.emitted,
            "emitted_per_s": (self.at.emitted as f64 / self.started.elapsed().as_secs_f64().max(1e-9)).round(),
            "symbols": self.config.symbols.len(),
        }));
    }
}

/// A file's book after the event at `xt`; `ts` is stamped when sent.
fn book_update(sym: &Arc<str>, xt: u64, depth: crate::protocol::Depth) -> BookUpdate {
    BookUpdate {
        sym: sym.clone(),
        ts: 0,
        xt: Some(xt),
        depth,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_scales_original_gaps_and_chains_passes() {
        let mut clock = Clock {
            speed: Speed::Times(2.0),
            anchor: None,
            last_due: None,
        };
        let first = clock.due(10 * NS_PER_SEC).unwrap();
        assert_eq!(
            clock.due(12 * NS_PER_SEC).unwrap() - first,
            Duration::from_secs(1)
        );
        clock.restart();
        assert_eq!(
            clock.due(10 * NS_PER_SEC).unwrap() - first,
            Duration::from_secs(1),
            "next pass starts where this one ended"
        );
        assert_eq!(
            Clock {
                speed: Speed::Max,
                anchor: None,
                last_due: None
            }
            .due(1),
            None
        );
    }
}
