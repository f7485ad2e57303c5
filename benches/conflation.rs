//! Conflation under overload: a client subscribed to 100 symbols that
//! drains once while 10,000 updates (100 per symbol) were routed. Its
//! pending state stays one bit per symbol, so the drain finds 100 ids
//! whatever the backlog; the cost is the routing, not the client.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use tickfeed::conflate::Mailbox;
use tickfeed::protocol::{SymbolSet, Tick};
use tickfeed::router::Router;
use tickfeed::stats::Stats;
use tickfeed::symbols::SymbolTable;

const SYMBOLS: usize = 100;
const UPDATES_PER_SYMBOL: u64 = 100;

fn tick(sym: &Arc<str>, seq: u64) -> Tick {
    Tick {
        sym: sym.clone(),
        ..Tick::test("", seq)
    }
}

fn overload(c: &mut Criterion) {
    let names: Vec<Arc<str>> = (0..SYMBOLS).map(|i| format!("SYM{i:03}").into()).collect();
    let table = Arc::new(SymbolTable::new(SYMBOLS));
    let mut router = Router::new(table.clone(), Arc::new(Stats::new()));
    router.route(names.iter().map(|n| tick(n, 0)).collect());
    let mailbox = Arc::new(Mailbox::new(SYMBOLS));
    router.subscribe(
        1,
        mailbox.clone(),
        SymbolSet::Named(names.iter().map(|n| n.to_string()).collect()),
    );
    let mut seq = 0;
    let mut group = c.benchmark_group("conflation");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(SYMBOLS as u64 * UPDATES_PER_SYMBOL));
    group.bench_function("10k updates of 100 symbols, one drain", |b| {
        b.iter(|| {
            for _ in 0..UPDATES_PER_SYMBOL {
                seq += 1;
                router.route(names.iter().map(|n| tick(n, seq)).collect());
            }
            let mut latest_seq = 0;
            mailbox.drain(|id| latest_seq += table.cell(id).latest_seq());
            black_box(latest_seq)
        })
    });
    group.finish();
}

criterion_group!(benches, overload);
criterion_main!(benches);
