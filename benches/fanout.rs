//! Router fan-out: one source update marked in the mailbox of every
//! subscriber, for growing subscriber counts. Each iteration routes one
//! tick and drains every mailbox, so the next iteration marks afresh (the
//! drain is part of delivery anyway).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use tickfeed::conflate::Mailbox;
use tickfeed::protocol::{SymbolSet, Tick};
use tickfeed::router::Router;
use tickfeed::stats::Stats;
use tickfeed::symbols::SymbolTable;

fn tick(seq: u64) -> Tick {
    Tick::test("AAPL", seq)
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("route one tick to N subscribers and drain");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for subscribers in [10usize, 100, 1_000, 10_000] {
        let mut router = Router::new(Arc::new(SymbolTable::new(64)), Arc::new(Stats::new()));
        router.route(vec![tick(1)]);
        let mailboxes: Vec<Arc<Mailbox>> = (0..subscribers)
            .map(|_| Arc::new(Mailbox::new(64)))
            .collect();
        for (client, mailbox) in mailboxes.iter().enumerate() {
            router.subscribe(
                client as u64,
                mailbox.clone(),
                SymbolSet::Named(vec!["AAPL".into()]),
            );
        }
        let mut seq = 1;
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_function(BenchmarkId::from_parameter(subscribers), |b| {
            b.iter(|| {
                seq += 1;
                router.route(vec![tick(seq)]);
                for mailbox in &mailboxes {
                    mailbox.drain(|id| {
                        black_box(id);
                    });
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
