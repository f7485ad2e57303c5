//! The simulated market's cost per update: one tick alone, and one tick
//! with its order book laid under it (`source/book_sim.rs`) at the default
//! 10 levels and at the most, 50. The generator runs at `--rate` updates
//! per second on one task, so this bounds the rate it can reach.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use tickfeed::protocol::{DEFAULT_DEPTH, MAX_DEPTH};
use tickfeed::source::book_sim::SimBooks;
use tickfeed::source::generator::{GeneratorConfig, Market};
use tickfeed::source::universe::{default_universe, sized};

const SYMBOLS: usize = 345;
const SEED: u64 = 7;

fn market() -> Market {
    let listings = sized(default_universe(), SYMBOLS, SEED);
    Market::new(&GeneratorConfig::new(listings, 20_000.0, SEED, 1.0).expect("valid market"))
}

fn generator(c: &mut Criterion) {
    let mut group = c.benchmark_group("generator");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    let mut now = 1_700_000_000_000_000_000u64;
    let mut ticks = market();
    group.bench_function("one tick", |b| {
        b.iter(|| {
            now += 50_000;
            black_box(ticks.next_event(now))
        })
    });
    for depth in [DEFAULT_DEPTH, MAX_DEPTH] {
        let (mut market, mut books) = (market(), SimBooks::new(SYMBOLS, depth, SEED));
        group.bench_function(BenchmarkId::new("one tick and its book", depth), |b| {
            b.iter(|| {
                now += 50_000;
                let (index, tick) = market.next_event(now);
                black_box(books.after(index, &tick));
                black_box(tick)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, generator);
criterion_main!(benches);
