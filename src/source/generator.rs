//! The simulated market: a seeded generator of realistic quotes and trades.
//!
//! Each symbol's mid price follows geometric Brownian motion with its own
//! volatility; the bid/ask sit on the price's tick grid with a positive
//! spread; trades print at the touch in round lots and add to cumulative
//! volume. Activity is spread over symbols by a Zipf law (`--skew`: 0 is
//! uniform round-robin, 1 is market-like where a few names dominate).
//! Updates are emitted at `--rate` per second in small batches, paced by
//! the wall clock so that a late wake-up catches up instead of drifting.
//! Each tick's symbol also has an order book of `--depth` levels per side
//! under its quote (`book_sim.rs`), sent as [`SourceMsg::Books`] right
//! after the batch of ticks.

use super::book_sim::SimBooks;
use super::universe::Listing;
use super::{SourceMsg, SourceSender};
use crate::clock::now_ns;
use crate::protocol::{BookUpdate, DEFAULT_DEPTH, Quote, Tick};
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often the generator wakes to emit what is due. 1 ms keeps added
/// latency below a millisecond while batching at high rates.
const PACE_INTERVAL: Duration = Duration::from_millis(1);
/// Most updates emitted in one wake-up: bounds a catch-up burst after a stall
/// to 100 ms worth of updates at 100k/s.
const MAX_BATCH: u64 = 10_000;
/// How often the generator publishes its status to `/api/stats`.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);
/// Share of updates that are trades; the rest are quote changes.
const TRADE_SHARE: f64 = 0.3;
/// Trading seconds per year, to turn annual volatility into per-update steps.
const TRADING_SECONDS_PER_YEAR: f64 = 252.0 * 6.5 * 3600.0;

/// Market-like activity when not told otherwise: a few symbols far busier
/// than most.
pub const DEFAULT_SKEW: f64 = 1.0;

/// Generator settings, checked once by [`GeneratorConfig::new`] whichever
/// command asks (`serve`, `bench`, `feed record`).
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    pub listings: Vec<Listing>,
    /// Total updates per second over all symbols.
    pub rate: f64,
    pub seed: u64,
    /// How unevenly updates are spread: 0 is round robin, 1 a Zipf law.
    pub skew: f64,
    /// Book levels per side (`serve --depth`).
    pub depth: usize,
}

/// A generator setting that cannot work, named by its flag. Every command
/// shows it as it is (`--skew: must be 0 (uniform) or more`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("--{flag}: {msg}")]
pub struct GeneratorError {
    pub flag: &'static str,
    pub msg: String,
}

/// Checks `--rate`: a positive, finite number of updates per second.
pub fn check_rate(rate: f64) -> Result<f64, GeneratorError> {
    if rate > 0.0 && rate.is_finite() {
        Ok(rate)
    } else {
        Err(GeneratorError {
            flag: "rate",
            msg: "must be a positive number of updates per second".into(),
        })
    }
}

/// Checks `--skew`: 0 (uniform) or more, finite.
fn check_skew(skew: f64) -> Result<f64, GeneratorError> {
    if skew >= 0.0 && skew.is_finite() {
        Ok(skew)
    } else {
        Err(GeneratorError {
            flag: "skew",
            msg: "must be 0 (uniform) or more".into(),
        })
    }
}

impl GeneratorConfig {
    /// The one place generator settings are checked.
    pub fn new(
        listings: Vec<Listing>,
        rate: f64,
        seed: u64,
        skew: f64,
    ) -> Result<Self, GeneratorError> {
        if listings.is_empty() {
            return Err(GeneratorError {
                flag: "symbols",
                msg: "must be at least 1".into(),
            });
        }
        Ok(Self {
            listings,
            rate: check_rate(rate)?,
            seed,
            skew: check_skew(skew)?,
            depth: DEFAULT_DEPTH,
        })
    }

    /// The same market with books of `depth` levels per side (`--depth`,
    /// already checked by the command line).
    pub fn with_depth(self, depth: usize) -> Self {
        Self { depth, ..self }
    }

    /// The same market at another rate (a point of `bench --rate 10k,20k`).
    pub fn with_rate(&self, rate: f64) -> Result<Self, GeneratorError> {
        Ok(Self {
            rate: check_rate(rate)?,
            ..self.clone()
        })
    }
}

/// State of one simulated symbol.
#[derive(Debug)]
struct SymbolState {
    sym: Arc<str>,
    mid: f64,
    /// Volatility per square root of second.
    sigma: f64,
    tick_size: f64,
    seq: u64,
    vol: u64,
    last_px: Option<f64>,
    last_sz: Option<u64>,
    last_ns: u64,
}

/// Picks which symbol updates next.
enum Picker {
    RoundRobin(usize),
    Weighted(WeightedIndex<f64>),
}

/// The simulated market; `next_tick` is pure given the seed, so tests can
/// check its invariants without a runtime.
pub struct Market {
    symbols: Vec<SymbolState>,
    picker: Picker,
    rng: StdRng,
}

impl Market {
    pub fn new(config: &GeneratorConfig) -> Self {
        let start = now_ns();
        let symbols = config
            .listings
            .iter()
            .map(|l| SymbolState {
                sym: Arc::from(l.symbol.as_str()),
                mid: l.price,
                sigma: l.volatility / TRADING_SECONDS_PER_YEAR.sqrt(),
                tick_size: tick_size(l.price),
                seq: 0,
                vol: 0,
                last_px: None,
                last_sz: None,
                last_ns: start,
            })
            .collect::<Vec<_>>();
        let picker = if config.skew == 0.0 {
            Picker::RoundRobin(0)
        } else {
            let weights =
                (0..symbols.len()).map(|rank| 1.0 / ((rank + 1) as f64).powf(config.skew));
            Picker::Weighted(WeightedIndex::new(weights).expect("weights are positive"))
        };
        Self {
            symbols,
            picker,
            rng: StdRng::seed_from_u64(config.seed),
        }
    }

    pub fn symbols(&self) -> Vec<Arc<str>> {
        self.symbols.iter().map(|s| s.sym.clone()).collect()
    }

    fn pick(&mut self) -> usize {
        match &mut self.picker {
            Picker::RoundRobin(next) => {
                let i = *next;
                *next = (i + 1) % self.symbols.len();
                i
            }
            Picker::Weighted(dist) => dist.sample(&mut self.rng),
        }
    }

    /// The next update, emitted at `now` (ns since the epoch).
    pub fn next_tick(&mut self, now: u64) -> Tick {
        self.next_event(now).1
    }

    /// The next update and the index of its symbol (for its book).
    pub fn next_event(&mut self, now: u64) -> (usize, Tick) {
        let i = self.pick();
        let rng = &mut self.rng;
        let s = &mut self.symbols[i];
        // Simulated time passes at least 1 ms per update so quiet symbols
        // still move; busy ones move in small steps.
        let dt = (now.saturating_sub(s.last_ns) as f64 / 1e9).max(0.001);
        s.last_ns = now;
        let z: f64 = StandardNormal.sample(rng);
        s.mid *= (-0.5 * s.sigma * s.sigma * dt + s.sigma * dt.sqrt() * z).exp();
        s.tick_size = tick_size(s.mid);
        let spread_ticks = 1 + (rng.random::<f64>() * rng.random::<f64>() * 4.0) as u64;
        let bid =
            round_to(s.mid - spread_ticks as f64 * s.tick_size / 2.0, s.tick_size).max(s.tick_size);
        let ask = round_to(bid + spread_ticks as f64 * s.tick_size, s.tick_size);
        if rng.random::<f64>() < TRADE_SHARE {
            let buy = rng.random::<bool>();
            let lots = 1 + (rng.random::<f64>().powi(3) * 20.0) as u64;
            s.last_px = Some(if buy { ask } else { bid });
            s.last_sz = Some(lots * 100);
            s.vol += lots * 100;
        }
        s.seq += 1;
        let quote = Quote {
            px: s.last_px,
            sz: s.last_sz,
            bid: Some(bid),
            ask: Some(ask),
            bsz: Some(100 * (1 + rng.random_range(0..30u64))),
            asz: Some(100 * (1 + rng.random_range(0..30u64))),
            vol: s.vol,
        };
        (i, Tick::new(s.sym.clone(), s.seq, now, quote))
    }
}

/// Price grid: cents above $1, hundredths of a cent below (US equities).
fn tick_size(price: f64) -> f64 {
    if price >= 1.0 { 0.01 } else { 0.0001 }
}

fn round_to(value: f64, step: f64) -> f64 {
    let decimals = if step >= 0.01 { 100.0 } else { 10_000.0 };
    ((value / step).round() * step * decimals).round() / decimals
}

/// Runs the generator until `out` closes or `shutdown` fires.
pub async fn run(
    config: GeneratorConfig,
    out: SourceSender,
    stats: Arc<crate::stats::Stats>,
    mut shutdown: crate::shutdown::Shutdown,
) {
    let mut market = Market::new(&config);
    let mut books = SimBooks::new(config.listings.len(), config.depth, config.seed);
    if out
        .send(SourceMsg::Declare(market.symbols()))
        .await
        .is_err()
    {
        return;
    }
    let started = Instant::now();
    let mut emitted: u64 = 0;
    let mut status_at: Option<Instant> = None;
    let mut pace = tokio::time::interval(PACE_INTERVAL);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = pace.tick() => {}
        }
        let due = (started.elapsed().as_secs_f64() * config.rate) as u64;
        let count = due.saturating_sub(emitted).min(MAX_BATCH);
        if count == 0 {
            continue;
        }
        let now = now_ns();
        let mut batch: Vec<Tick> = Vec::with_capacity(count as usize);
        let mut book_batch: Vec<BookUpdate> = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let (index, tick) = market.next_event(now);
            book_batch.extend(books.after(index, &tick));
            batch.push(tick);
        }
        emitted = emitted.max(due - count) + count;
        if status_at.is_none_or(|t| t.elapsed() >= STATUS_INTERVAL) {
            status_at = Some(Instant::now());
            let elapsed = started.elapsed().as_secs_f64();
            stats.set_source_status(serde_json::json!({
                "kind": "generator",
                "symbols": config.listings.len(),
                "target_rate": config.rate,
                "emitted": emitted,
                "achieved_rate": (emitted as f64 / elapsed).round(),
                "seed": config.seed,
                "skew": config.skew,
            }));
        }
        if out.send(SourceMsg::Ticks(batch)).await.is_err() {
            return;
        }
        if !book_batch.is_empty() && out.send(SourceMsg::Books(book_batch)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::universe::{default_universe, sized};

    fn market(skew: f64, symbols: usize) -> Market {
        Market::new(
            &GeneratorConfig::new(sized(default_universe(), symbols, 7), 1000.0, 7, skew).unwrap(),
        )
    }

    #[test]
    fn quotes_stay_positive_and_uncrossed_on_the_grid() {
        let mut m = market(1.0, 50);
        let mut now = now_ns();
        let mut last_vol = std::collections::HashMap::new();
        for _ in 0..200_000 {
            now += 50_000;
            let t = m.next_tick(now);
            let (bid, ask) = (t.quote.bid.unwrap(), t.quote.ask.unwrap());
            assert!(bid > 0.0 && bid < ask, "{t:?}");
            let grid = tick_size(bid);
            assert!(((bid / grid) - (bid / grid).round()).abs() < 1e-6, "{t:?}");
            if let Some(sz) = t.quote.sz {
                assert_eq!(sz % 100, 0, "round lots");
            }
            let prev = last_vol
                .insert(t.sym.clone(), (t.quote.vol, t.seq))
                .unwrap_or((0, 0));
            assert!(t.quote.vol >= prev.0, "volume never falls");
            assert_eq!(t.seq, prev.1 + 1, "seq +1 per update of a symbol");
        }
    }

    #[test]
    fn same_seed_same_market() {
        let (mut a, mut b) = (market(1.0, 20), market(1.0, 20));
        for i in 0..1000 {
            assert_eq!(a.next_tick(i).sym, b.next_tick(i).sym);
        }
    }

    #[test]
    fn skew_makes_a_few_symbols_busy_and_zero_is_even() {
        let count_first = |skew| {
            let mut m = market(skew, 100);
            (0..10_000)
                .filter(|i| &*m.next_tick(*i).sym == "AAPL")
                .count()
        };
        assert_eq!(count_first(0.0), 100, "round robin");
        assert!(count_first(1.0) > 1000, "top symbol busy under zipf");
    }
}
