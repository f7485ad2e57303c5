//! The replay source: recorded feed files (`crate::feed`) streamed into the
//! router as if live, merged in time order, at the original pace times
//! `--speed` or as fast as the router takes them (`max`), optionally in a
//! `--from`/`--to` window and in a `--loop`. Each tick keeps its original
//! time as `xt`; `ts` is the emission time, `seq` counts per symbol across
//! loops, and `vol` keeps growing across loops.
//!
//! Startup ([`ReplayConfig::prepare`]) reads every file once: a missing,
//! empty, unrecognised or out-of-order file, or with `--strict` any bad row,
//! stops `serve` before it listens, with one sentence. Otherwise bad rows
//! are warned about (the first few per file) and skipped during replay,
//! counted as `skipped_rows` in `/api/stats`. The same pass finds every
//! symbol, declared to the router before the first tick.
//!
//! The replay runs on its own thread: reading is blocking file I/O, and
//! `std::thread::sleep` paces to a fraction of a millisecond. Batches go
//! to the router with `blocking_send` on the bounded source channel, so a
//! slow router slows the replay (backpressure) and `lag_ms` shows by how
//! much. An error during replay (a file changed or vanished before a
//! `--loop`) stops it: with `--strict` the server then exits non-zero
//! through [`Failure`], which `main` awaits; without, it is logged, shown in
//! `/api/stats`, and the server goes on serving the last values.

use super::{SourceMsg, SourceSender, now_ns};
use crate::feed::check::scan;
use crate::feed::detect::{FormatChoice, detect};
use crate::feed::merge::{FeedFile, Merge};
use crate::feed::time::{NS_PER_SEC, Window, WindowArgs, format_rfc3339};
use crate::feed::{FeedError, Progress, Update, progress_bar};
use crate::protocol::Tick;
use crate::shutdown::Shutdown;
use crate::stats::{Stats, new_histogram};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most ticks handed to the router at once: large enough that the channel
/// is not the bottleneck at `--speed max`, small enough that a batch is
/// routed in well under a millisecond.
const MAX_BATCH: usize = 4096;
/// How often the replay publishes its status to `/api/stats`.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);
/// Longest single sleep while pacing, so shutdown and status stay prompt
/// during long gaps in the file.
const MAX_SLEEP: Duration = Duration::from_millis(50);
/// Bad rows per file logged one by one at startup; the rest are counted.
const WARN_BAD_ROWS: u64 = 10;

/// `--speed`: a multiple of the original pace, or as fast as possible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    Max,
    Times(f64),
}

impl FromStr for Speed {
    type Err = String;

    fn from_str(text: &str) -> Result<Speed, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        match text.strip_suffix(['x', 'X']).unwrap_or(text).parse::<f64>() {
            Ok(times) if times > 0.0 && times.is_finite() => Ok(Speed::Times(times)),
            _ => Err(format!("{text:?} is not a speed; try 1 (original pace), 10, 0.5 or max")),
        }
    }
}

impl std::fmt::Display for Speed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Speed::Max => write!(f, "max"),
            Speed::Times(times) => write!(f, "{times}x"),
        }
    }
}

impl Speed {
    fn to_json(self) -> serde_json::Value {
        match self {
            Speed::Max => "max".into(),
            Speed::Times(times) => times.into(),
        }
    }
}

/// The replay flags, before the files are read.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub files: Vec<PathBuf>,
    pub format: FormatChoice,
    pub speed: Speed,
    pub looping: bool,
    pub window: WindowArgs,
    pub strict: bool,
}

/// A replay whose files have been read through once and found usable.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub files: Vec<FeedFile>,
    pub speed: Speed,
    pub looping: bool,
    pub window: Window,
    pub strict: bool,
    /// Every symbol of the files, declared before the first tick.
    pub symbols: Vec<Arc<str>>,
    /// Updates inside the window in one pass, for `position`.
    pub updates: u64,
    pub failure: Failure,
}

impl ReplayConfig {
    /// Detects each file's format and reads it through (see the module doc).
    pub fn prepare(options: ReplayOptions) -> Result<ReplayConfig, FeedError> {
        let files = options
            .files
            .iter()
            .map(|path| Ok(FeedFile { path: path.clone(), format: detect(path, options.format)? }))
            .collect::<Result<Vec<_>, FeedError>>()?;
        let start = if options.window.needs_start() { Merge::first_time(&files)?.unwrap_or(0) } else { 0 };
        let window = options.window.resolve(start);
        let (mut symbols, mut seen, mut updates, mut span) = (Vec::new(), HashSet::new(), 0, (u64::MAX, 0));
        for file in &files {
            let bar = progress_bar(std::fs::metadata(&file.path).map_or(0, |m| m.len()), Progress::Bytes);
            bar.set_message(format!("checking {}", file.path.display()));
            let (mut first_bad, mut warned) = (None, 0);
            let found = scan(
                file,
                window,
                |bad| {
                    first_bad.get_or_insert_with(|| bad.clone());
                    if warned < WARN_BAD_ROWS && !options.strict {
                        bar.suspend(|| tracing::warn!("{bad} (will be skipped)"));
                        warned += 1;
                    }
                },
                &bar,
            )?;
            bar.finish_and_clear();
            if let Some(bad) = found.first_out_of_order.or(first_bad.filter(|_| options.strict)) {
                return Err(FeedError::BadRow(bad));
            }
            if found.summary.bad_rows > warned {
                tracing::warn!(
                    "{}: {} bad rows in all will be skipped; `tickfeed feed check` lists them",
                    file.path.display(),
                    found.summary.bad_rows
                );
            }
            symbols.extend(found.symbols.into_iter().filter(|s| seen.insert(s.clone())));
            updates += found.in_window;
            span = (span.0.min(found.first_xt.unwrap_or(u64::MAX)), span.1.max(found.last_xt.unwrap_or(0)));
        }
        if updates == 0 {
            let show = |ns: u64| if ns == 0 || ns == u64::MAX { "-".to_string() } else { format_rfc3339(ns) };
            return Err(FeedError::EmptyWindow { from: show(window.from), to: show(window.to), first: show(span.0), last: show(span.1) });
        }
        Ok(ReplayConfig {
            files,
            speed: options.speed,
            looping: options.looping,
            window,
            strict: options.strict,
            symbols,
            updates,
            failure: Failure::default(),
        })
    }
}

/// Where a `--strict` replay reports the error that stopped it, so that
/// `serve` can shut down and exit non-zero.
#[derive(Debug, Clone, Default)]
pub struct Failure(Arc<FailureState>);

#[derive(Debug, Default)]
struct FailureState {
    /// Reason for the lock: written once by the replay thread, read by
    /// `main`; never held across an await.
    error: Mutex<Option<String>>,
    notify: tokio::sync::Notify,
}

impl Failure {
    fn report(&self, error: String) {
        *self.0.error.lock().expect("failure lock") = Some(error);
        self.0.notify.notify_one();
    }

    pub fn error(&self) -> Option<String> {
        self.0.error.lock().expect("failure lock").clone()
    }

    /// Resolves with the error once there is one (never for a healthy replay).
    pub async fn wait(&self) -> String {
        loop {
            if let Some(error) = self.error() {
                return error;
            }
            self.0.notify.notified().await;
        }
    }
}

/// Starts the replay thread; it holds `done` until it ends.
pub fn spawn(
    config: ReplayConfig,
    out: SourceSender,
    stats: Arc<Stats>,
    shutdown: Shutdown,
    done: crate::shutdown::DoneGuard,
) -> std::io::Result<()> {
    tracing::info!(
        files = config.files.len(),
        symbols = config.symbols.len(),
        updates = config.updates,
        speed = %config.speed,
        looping = config.looping,
        "replaying {}",
        config.files.iter().map(|f| f.path.display().to_string()).collect::<Vec<_>>().join(", ")
    );
    std::thread::Builder::new().name("replay".into()).spawn(move || {
        let (failure, strict) = (config.failure.clone(), config.strict);
        let mut replay = Replay::new(config, out, stats, shutdown);
        match replay.run() {
            Ok(()) => replay.publish("finished", None),
            Err(e) => {
                tracing::error!("replay stopped: {e}");
                replay.publish("failed", Some(e.to_string()));
                if strict {
                    failure.report(e.to_string());
                }
            }
        }
        drop(done);
    })?;
    Ok(())
}

/// Per-symbol numbering that outlives one pass over the files.
#[derive(Debug, Default)]
struct Stamp {
    seq: u64,
    vol: u64,
    /// The file's own cumulative volume at the last row seen this pass.
    file_vol: u64,
    trade: (Option<f64>, Option<u64>),
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
        let Speed::Times(times) = self.speed else { return None };
        let last_due = self.last_due;
        let (wall, start) = *self.anchor.get_or_insert_with(|| (last_due.unwrap_or_else(Instant::now), xt));
        let due = wall + Duration::from_secs_f64(xt.saturating_sub(start) as f64 / NS_PER_SEC as f64 / times);
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
struct Replay {
    config: ReplayConfig,
    out: SourceSender,
    stats: Arc<Stats>,
    shutdown: Shutdown,
    symbols: HashMap<Arc<str>, usize>,
    stamps: Vec<Stamp>,
    clock: Clock,
    batch: Vec<Tick>,
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

impl Replay {
    fn new(config: ReplayConfig, out: SourceSender, stats: Arc<Stats>, shutdown: Shutdown) -> Replay {
        let clock = Clock { speed: config.speed, anchor: None, last_due: None };
        Replay {
            config,
            out,
            stats,
            shutdown,
            symbols: HashMap::new(),
            stamps: Vec::new(),
            clock,
            batch: Vec::with_capacity(MAX_BATCH),
            dues: Vec::with_capacity(MAX_BATCH),
            at: Position::default(),
            lag_us: new_histogram(),
            started: Instant::now(),
            status_at: Instant::now(),
        }
    }

    fn run(&mut self) -> Result<(), FeedError> {
        if self.out.blocking_send(SourceMsg::Declare(self.config.symbols.clone())).is_err() {
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
        for item in Merge::open(&self.config.files)? {
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
                self.symbol(&update.sym).file_vol = update.vol;
                continue;
            }
            let due = self.clock.due(update.xt);
            if let Some(due) = due.filter(|due| *due > Instant::now())
                && (self.flush() == Flow::Stop || self.wait_until(due) == Flow::Stop)
            {
                return Ok(Flow::Stop);
            }
            (self.at.file, self.at.line, self.at.xt) = (file, update.line, update.xt);
            self.at.in_pass += 1;
            let tick = self.stamp(update);
            self.batch.push(tick);
            self.dues.extend(due);
            if self.batch.len() >= MAX_BATCH && self.flush() == Flow::Stop {
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

    /// Numbers an update as the next tick of its symbol.
    fn stamp(&mut self, u: Update) -> Tick {
        let s = self.symbol(&u.sym);
        s.vol += u.vol.saturating_sub(s.file_vol);
        s.file_vol = u.vol;
        if u.px.is_some() || u.sz.is_some() {
            s.trade = (u.px, u.sz);
        }
        s.seq += 1;
        Tick {
            sym: u.sym,
            seq: s.seq,
            ts: 0,
            xt: Some(u.xt),
            px: s.trade.0,
            sz: s.trade.1,
            bid: u.bid,
            ask: u.ask,
            bsz: u.bsz,
            asz: u.asz,
            vol: s.vol,
            snap: None,
            n: 0,
        }
    }

    /// Stamps `ts` on the batch and hands it to the router, waiting while
    /// the channel is full.
    fn flush(&mut self) -> Flow {
        if !self.batch.is_empty() {
            let (now, ts) = (Instant::now(), now_ns());
            self.at.lag = self.dues.first().map(|due| now.saturating_duration_since(*due));
            for due in self.dues.drain(..) {
                self.lag_us.saturating_record(now.saturating_duration_since(due).as_micros() as u64);
            }
            let mut batch = std::mem::replace(&mut self.batch, Vec::with_capacity(MAX_BATCH));
            batch.iter_mut().for_each(|t| t.ts = ts);
            self.at.emitted += batch.len() as u64;
            if self.out.blocking_send(SourceMsg::Ticks(batch)).is_err() {
                return Flow::Stop;
            }
        }
        self.publish_if_due();
        if self.shutdown.is_stopping() { Flow::Stop } else { Flow::Go }
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

    fn publish(&mut self, state: &str, error: Option<String>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_is_a_positive_multiple_or_max() {
        assert_eq!("max".parse(), Ok(Speed::Max));
        assert_eq!("10".parse(), Ok(Speed::Times(10.0)));
        assert_eq!("0.5x".parse(), Ok(Speed::Times(0.5)));
        assert!("0".parse::<Speed>().unwrap_err().contains("try 1"));
        assert!("fast".parse::<Speed>().is_err());
    }

    #[test]
    fn the_clock_scales_original_gaps_and_chains_passes() {
        let mut clock = Clock { speed: Speed::Times(2.0), anchor: None, last_due: None };
        let first = clock.due(10 * NS_PER_SEC).unwrap();
        assert_eq!(clock.due(12 * NS_PER_SEC).unwrap() - first, Duration::from_secs(1));
        clock.restart();
        assert_eq!(clock.due(10 * NS_PER_SEC).unwrap() - first, Duration::from_secs(1), "next pass starts where this one ended");
        assert_eq!(Clock { speed: Speed::Max, anchor: None, last_due: None }.due(1), None);
    }

    #[test]
    fn a_reported_failure_wakes_the_waiter() {
        let failure = Failure::default();
        assert_eq!(failure.error(), None);
        failure.clone().report("x.csv:3:1: bad".into());
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(runtime.block_on(failure.wait()), "x.csv:3:1: bad");
    }
}
