//! The aggregation rule: trades and mids, intervals, and the property that
//! every timeframe tells the same story.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

const SEC: u64 = 1_000_000_000;
/// 2012-06-21T13:30:00Z, on every boundary up to the hour's half.
const T0: u64 = 1_340_285_400 * SEC;

/// Keeps every bar by symbol and timeframe, finals apart.
#[derive(Default)]
struct Recorded {
    finals: BTreeMap<(SymbolId, Timeframe), Vec<Bar>>,
    partials: BTreeMap<(SymbolId, Timeframe), Bar>,
}

impl BarSink for Recorded {
    fn partial(&mut self, id: SymbolId, tf: Timeframe, bar: &Bar) {
        self.partials.insert((id, tf), *bar);
    }
    fn closed(&mut self, id: SymbolId, tf: Timeframe, bar: &Bar) {
        self.finals.entry((id, tf)).or_default().push(*bar);
        self.partials.remove(&(id, tf));
    }
}

impl Recorded {
    fn finals(&self, id: SymbolId, tf: Timeframe) -> &[Bar] {
        self.finals.get(&(id, tf)).map_or(&[], Vec::as_slice)
    }
}

/// A trade at `px` after which `vol` shares traded so far; `sz` says
/// `vol`, so that a symbol's first trade is where its feed starts.
fn trade(px: f64, vol: u64) -> Quote {
    Quote {
        px: Some(px),
        sz: Some(vol),
        vol,
        ..Quote::default()
    }
}

fn quote(bid: f64, ask: f64) -> Quote {
    Quote {
        bid: Some(bid),
        ask: Some(ask),
        ..Quote::default()
    }
}

#[test]
fn trades_make_ohlcv_bars_and_quotes_do_not_once_a_symbol_traded() {
    let (mut agg, mut out) = (Aggregator::new(), Recorded::default());
    agg.tick(0, T0 + 1, &trade(10.0, 100), &mut out);
    agg.tick(0, T0 + 2, &trade(12.0, 300), &mut out);
    agg.tick(0, T0 + 3, &quote(1.0, 2.0), &mut out);
    agg.tick(0, T0 + 4, &trade(9.0, 400), &mut out);
    agg.tick(0, T0 + 5, &trade(9.5, 400), &mut out); // no volume: no trade
    let bar = out.partials[&(0, Timeframe::M1)];
    let vwap = (10.0 * 100.0 + 12.0 * 200.0 + 9.0 * 100.0) / 400.0;
    assert_eq!(
        bar,
        Bar {
            t: T0,
            o: 10.0,
            h: 12.0,
            l: 9.0,
            c: 9.0,
            v: 400,
            trades: 3,
            vwap
        }
    );
    agg.close_all(&mut out);
    assert_eq!(
        out.finals(0, Timeframe::D1),
        [Bar {
            t: T0 - 13 * 3600 * SEC - 1800 * SEC,
            ..bar
        }]
    );
}

#[test]
fn a_symbol_that_never_traded_gets_mid_price_bars_until_its_first_trade() {
    let (mut agg, mut out) = (Aggregator::new(), Recorded::default());
    agg.tick(0, T0, &quote(1.0, 2.0), &mut out);
    agg.tick(0, T0 + SEC / 2, &quote(2.0, 3.0), &mut out);
    agg.tick(0, T0 + SEC, &quote(3.0, 4.0), &mut out);
    assert_eq!(
        out.finals(0, Timeframe::S1),
        [Bar {
            t: T0,
            o: 1.5,
            h: 2.5,
            l: 1.5,
            c: 2.5,
            v: 0,
            trades: 0,
            vwap: 2.0
        }]
    );
    agg.tick(0, T0 + SEC + 1, &trade(7.0, 5), &mut out);
    agg.tick(0, T0 + SEC + 2, &quote(8.0, 9.0), &mut out);
    let bar = out.partials[&(0, Timeframe::S1)];
    assert_eq!(
        (bar.o, bar.c, bar.v, bar.trades, bar.vwap),
        (7.0, 7.0, 5, 1, 7.0)
    );
}

#[test]
fn an_interval_without_ticks_has_no_bar_and_time_closes_bars() {
    let (mut agg, mut out) = (Aggregator::new(), Recorded::default());
    agg.tick(0, T0, &trade(1.0, 1), &mut out);
    agg.tick(1, T0, &trade(5.0, 1), &mut out);
    agg.tick(0, T0 + 3 * SEC, &trade(2.0, 2), &mut out);
    let ts: Vec<u64> = out.finals(0, Timeframe::S1).iter().map(|b| b.t).collect();
    assert_eq!(ts, [T0], "seconds 1 and 2 had nothing");
    assert_eq!(
        out.finals(1, Timeframe::S1).len(),
        1,
        "closed by time, not by its own tick"
    );
    agg.advance(T0 + 60 * SEC, &mut out);
    assert_eq!(out.finals(0, Timeframe::M1).len(), 1);
    assert_eq!(out.finals(0, Timeframe::S1).len(), 2);
    assert!(
        out.partials.keys().all(|(_, tf)| *tf >= Timeframe::M5),
        "5m and longer are still open"
    );
}

#[test]
fn a_symbol_joined_mid_way_counts_from_its_first_ticks_volume() {
    let (mut agg, mut out) = (Aggregator::new(), Recorded::default());
    let joined = Quote {
        sz: Some(100),
        ..trade(5.0, 90_000)
    };
    agg.tick(0, T0, &joined, &mut out);
    assert!(out.partials.is_empty(), "what traded before is in no bar");
    agg.tick(0, T0 + 1, &trade(6.0, 90_300), &mut out);
    assert_eq!(out.partials[&(0, Timeframe::S1)].v, 300);
    let first = Quote {
        sz: Some(40),
        ..trade(7.0, 40)
    };
    agg.tick(1, T0 + 2, &first, &mut out);
    assert_eq!(
        out.partials[&(1, Timeframe::S1)].v,
        40,
        "a feed starting with a trade"
    );
}

#[test]
fn a_late_tick_counts_in_the_current_interval() {
    let (mut agg, mut out) = (Aggregator::new(), Recorded::default());
    agg.tick(0, T0 + 2 * SEC, &trade(1.0, 1), &mut out);
    agg.tick(0, T0 + SEC, &trade(2.0, 3), &mut out);
    let bar = out.partials[&(0, Timeframe::S1)];
    assert_eq!((bar.t, bar.v, bar.trades), (T0 + 2 * SEC, 3, 2));
    agg.restart(T0, &mut out);
    assert_eq!(
        out.finals(0, Timeframe::S1).len(),
        1,
        "a restart closes what is open"
    );
    agg.tick(0, T0, &trade(3.0, 4), &mut out);
    assert_eq!(out.partials[&(0, Timeframe::S1)].t, T0);
}

/// Folds bars of a shorter timeframe into the bars of `tf`.
fn fold(bars: &[Bar], tf: Timeframe) -> Vec<Bar> {
    let mut out: Vec<Bar> = Vec::new();
    let mut weights: Vec<f64> = Vec::new();
    for b in bars {
        let t = tf.start(b.t);
        match out.last_mut() {
            Some(last) if last.t == t => {
                let w = weights.last_mut().unwrap();
                last.h = last.h.max(b.h);
                last.l = last.l.min(b.l);
                last.c = b.c;
                last.v += b.v;
                last.trades += b.trades;
                last.vwap += b.vwap * b.v as f64;
                *w += b.v as f64;
            }
            _ => {
                out.push(Bar {
                    t,
                    vwap: b.vwap * b.v as f64,
                    ..*b
                });
                weights.push(b.v as f64);
            }
        }
    }
    for (bar, w) in out.iter_mut().zip(weights) {
        bar.vwap /= w;
    }
    out
}

fn close_enough(a: &Bar, b: &Bar) -> bool {
    let near = |x: f64, y: f64| (x - y).abs() <= 1e-9 * x.abs().max(1.0);
    (a.t, a.o, a.h, a.l, a.c, a.v, a.trades) == (b.t, b.o, b.h, b.l, b.c, b.v, b.trades)
        && near(a.vwap, b.vwap)
}

proptest! {
    #[test]
    fn every_timeframe_agrees_and_volumes_add_up_to_vol(
        trades in prop::collection::vec(
            (0u64..300 * SEC, 0usize..3, 1u32..20_000, 1u64..1_000),
            1..300,
        ),
    ) {
        let (mut agg, mut out) = (Aggregator::new(), Recorded::default());
        let (mut time, mut vol) = (T0 - 1800 * SEC, [0u64; 3]);
        for (gap, sym, cents, size) in trades {
            time += gap;
            vol[sym] += size;
            agg.tick(sym as SymbolId, time, &trade(f64::from(cents) / 100.0, vol[sym]), &mut out);
        }
        agg.close_all(&mut out);
        for sym in 0..3 {
            for tf in Timeframe::ALL {
                let total: u64 = out.finals(sym, tf).iter().map(|b| b.v).sum();
                prop_assert_eq!(total, vol[sym as usize], "{} volume", tf);
            }
            for pair in Timeframe::ALL.windows(2) {
                let folded = fold(out.finals(sym, pair[0]), pair[1]);
                let longer = out.finals(sym, pair[1]);
                prop_assert_eq!(folded.len(), longer.len(), "{} into {}", pair[0], pair[1]);
                for (a, b) in folded.iter().zip(longer) {
                    prop_assert!(close_enough(a, b), "{} into {}: {:?} != {:?}", pair[0], pair[1], a, b);
                }
            }
        }
    }
}
