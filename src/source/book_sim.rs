//! The simulated market's order books: for each symbol, `--depth` levels
//! per side on the price grid around the generator's touch. The generator
//! (`generator.rs`) draws the quote; this module lays the book under it.
//!
//! After each tick the top level of each side is the tick's `bid`/`bsz` and
//! `ask`/`asz`, and the levels behind it sit one grid step apart, bids
//! falling and asks rising. A level keeps its size while its price stays in
//! the book, so the book shifts with the price; a price new to the book gets
//! a fresh size, and one deeper level per side drifts a little per tick.
//! Its randomness is its own seeded stream, so the ticks are the same with
//! or without books.
//!
//! Cost per tick: one pass over `depth` levels per side in reused buffers,
//! and, when the book changed, one [`BookUpdate`] (two vectors of `depth`).

use crate::protocol::{BookUpdate, Depth, Level, Tick};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Prices inside the book are whole units of the finest grid, $0.0001, so
/// that levels compare exactly.
const UNITS_PER_DOLLAR: f64 = 10_000.0;
/// Grid step in units: a cent above $1, a hundredth of a cent below (the
/// generator's grid).
const CENT: i64 = 100;
/// Sizes are round lots of this many shares.
const LOT: u64 = 100;
/// Most lots at a level new to the book.
const MAX_FRESH_LOTS: u64 = 40;
/// Most lots one drift adds or takes.
const MAX_DRIFT_LOTS: u64 = 5;
/// Mixed into the market's seed for the books' own random stream.
const SEED_SALT: u64 = 0xb00c_5eed;

/// One side in units: (price, size), best first.
type Ladder = Vec<(i64, u64)>;

#[derive(Debug, Default)]
struct SimBook {
    bids: Ladder,
    asks: Ladder,
}

/// The books of every simulated symbol, indexed like the market's symbols.
pub struct SimBooks {
    depth: usize,
    books: Vec<SimBook>,
    /// The side being built; swapped with the book's own, so no tick
    /// allocates a ladder.
    scratch: Ladder,
    rng: StdRng,
}

/// Which way prices run away from the touch.
#[derive(Clone, Copy)]
enum Side {
    Bid,
    Ask,
}

impl SimBooks {
    /// Empty books for `symbols` symbols, `depth` levels per side.
    pub fn new(symbols: usize, depth: usize, seed: u64) -> Self {
        let books = (0..symbols)
            .map(|_| SimBook {
                bids: Vec::with_capacity(depth),
                asks: Vec::with_capacity(depth),
            })
            .collect();
        Self {
            depth,
            books,
            scratch: Vec::with_capacity(depth),
            rng: StdRng::seed_from_u64(seed ^ SEED_SALT),
        }
    }

    /// Lays symbol `index`'s book under `tick`'s quote. Returns its top
    /// levels when they changed (with the tick's `sym`, `ts` and `xt`).
    pub fn after(&mut self, index: usize, tick: &Tick) -> Option<BookUpdate> {
        let q = &tick.quote;
        let (bid, ask) = (q.bid.zip(q.bsz), q.ask.zip(q.asz));
        let step = match bid.or(ask) {
            Some((px, _)) if px < 1.0 => 1,
            _ => CENT,
        };
        let mut changed = false;
        for (side, top) in [(Side::Bid, bid), (Side::Ask, ask)] {
            self.build(side, top, step, index);
            let book = &mut self.books[index];
            let ladder = match side {
                Side::Bid => &mut book.bids,
                Side::Ask => &mut book.asks,
            };
            if *ladder != self.scratch {
                std::mem::swap(ladder, &mut self.scratch);
                changed = true;
            }
        }
        let book = &self.books[index];
        changed.then(|| BookUpdate {
            sym: tick.sym.clone(),
            ts: tick.ts,
            xt: tick.xt,
            depth: Depth {
                bids: dollars(&book.bids),
                asks: dollars(&book.asks),
            },
        })
    }

    /// Builds one side into `self.scratch`: the touch, then one level per
    /// grid step away from it, keeping the sizes of prices already there.
    fn build(&mut self, side: Side, top: Option<(f64, u64)>, step: i64, index: usize) {
        self.scratch.clear();
        let Some((px, size)) = top else { return };
        let top = (px * UNITS_PER_DOLLAR).round() as i64;
        let old = match side {
            Side::Bid => &self.books[index].bids,
            Side::Ask => &self.books[index].asks,
        };
        let away = match side {
            Side::Bid => -step,
            Side::Ask => step,
        };
        let mut kept = old.iter().peekable();
        for level in 0..self.depth as i64 {
            let price = top + away * level;
            if price <= 0 {
                break;
            }
            if level == 0 {
                self.scratch.push((price, size));
                continue;
            }
            // Both ladders run the same way, so one walk finds every
            // price the old side already had.
            while kept.next_if(|(p, _)| nearer(side, *p, price)).is_some() {}
            let size = match kept.peek() {
                Some((p, size)) if *p == price => *size,
                _ => LOT * self.rng.random_range(1..=MAX_FRESH_LOTS),
            };
            self.scratch.push((price, size));
        }
        if self.scratch.len() > 1 {
            let at = self.rng.random_range(1..self.scratch.len());
            let drift = LOT * self.rng.random_range(1..=MAX_DRIFT_LOTS);
            let size = &mut self.scratch[at].1;
            *size = match self.rng.random::<bool>() {
                true => *size + drift,
                false => size.saturating_sub(drift).max(LOT),
            };
        }
    }
}

/// `old` lies nearer the touch than `price` on this side.
fn nearer(side: Side, old: i64, price: i64) -> bool {
    match side {
        Side::Bid => old > price,
        Side::Ask => old < price,
    }
}

fn dollars(ladder: &Ladder) -> Vec<Level> {
    ladder
        .iter()
        .map(|(units, size)| (*units as f64 / UNITS_PER_DOLLAR, *size))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Quote;
    use crate::source::generator::{GeneratorConfig, Market};
    use crate::source::universe::{default_universe, sized};
    use proptest::prelude::*;

    /// Runs `ticks` ticks of a market of `symbols` symbols with books of
    /// `depth` and checks every book against its tick.
    fn check_books(seed: u64, symbols: usize, depth: usize, skew: f64, ticks: usize) {
        let listings = sized(default_universe(), symbols, seed);
        let config = GeneratorConfig::new(listings, 1e3, seed, skew)
            .unwrap()
            .with_depth(depth);
        let mut market = Market::new(&config);
        let mut books = SimBooks::new(symbols, depth, seed);
        let mut now = 1_700_000_000_000_000_000;
        for _ in 0..ticks {
            now += 1_000_000;
            let (index, tick) = market.next_event(now);
            let Some(book) = books.after(index, &tick) else {
                continue;
            };
            let Depth { bids, asks } = &book.depth;
            assert_eq!((&book.sym, book.ts), (&tick.sym, tick.ts));
            assert_eq!(bids[0], (tick.quote.bid.unwrap(), tick.quote.bsz.unwrap()));
            assert_eq!(asks[0], (tick.quote.ask.unwrap(), tick.quote.asz.unwrap()));
            assert!(bids.len() <= depth && asks.len() <= depth, "{book:?}");
            assert!(bids[0].0 < asks[0].0, "never crossed: {book:?}");
            assert!(bids.windows(2).all(|w| w[0].0 > w[1].0), "{book:?}");
            assert!(asks.windows(2).all(|w| w[0].0 < w[1].0), "{book:?}");
            assert!(bids.iter().chain(asks).all(|(px, sz)| *px > 0.0 && *sz > 0));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn books_are_uncrossed_ordered_and_topped_by_the_tick(
            seed in any::<u64>(),
            symbols in 1usize..6,
            depth in 1usize..=crate::protocol::MAX_DEPTH,
            skew in prop_oneof![Just(0.0), Just(1.0)],
        ) {
            check_books(seed, symbols, depth, skew, 2_000);
        }
    }

    fn tick(bid: f64, ask: f64) -> Tick {
        let quote = Quote {
            bid: Some(bid),
            ask: Some(ask),
            bsz: Some(100),
            asz: Some(200),
            ..Default::default()
        };
        Tick::new("X".into(), 1, 1, quote)
    }

    #[test]
    fn a_level_keeps_its_size_while_the_book_shifts_under_it() {
        let mut books = SimBooks::new(1, 5, 1);
        let first = books.after(0, &tick(10.00, 10.01)).unwrap().depth;
        assert_eq!(
            first.bids.iter().map(|l| l.0).collect::<Vec<_>>(),
            [10.00, 9.99, 9.98, 9.97, 9.96]
        );
        let moved = books.after(0, &tick(10.01, 10.02)).unwrap().depth;
        assert_eq!(moved.bids[0], (10.01, 100));
        assert_eq!(moved.bids[1].0, 10.00, "the old touch is the second level");
        let size_at = |depth: &Depth, px: f64| depth.bids.iter().find(|l| l.0 == px).map(|l| l.1);
        let kept = [10.00, 9.99, 9.98, 9.97]
            .iter()
            .filter(|px| size_at(&first, **px) == size_at(&moved, **px))
            .count();
        assert!(kept >= 3, "one level drifts per tick: {first:?} {moved:?}");
    }

    #[test]
    fn a_book_near_zero_has_only_positive_levels() {
        let mut books = SimBooks::new(1, 10, 1);
        let book = books.after(0, &tick(0.0003, 0.0004)).unwrap().depth;
        assert_eq!(
            book.bids.iter().map(|l| l.0).collect::<Vec<_>>(),
            [0.0003, 0.0002, 0.0001]
        );
        assert_eq!(book.asks.len(), 10);
    }
}
