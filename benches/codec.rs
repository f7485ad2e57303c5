//! JSON versus MessagePack: encoding one tick (done once per update and
//! shared by every client) and building a client's frame of 16 ticks from
//! the shared encodings, with and without a per-client merge count `n`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use tickfeed::codec::{EncodedTick, Encoding, FrameBuilder, encode_event};
use tickfeed::protocol::{Event, Tick};

fn tick() -> Tick {
    Tick::test("AAPL", 42)
}

fn encoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    let event = Event::Tick(tick());
    let shared = EncodedTick::new(tick());
    for encoding in Encoding::ALL {
        let name = encoding.name();
        group.bench_function(BenchmarkId::new("encode one tick", name), |b| {
            b.iter(|| black_box(encode_event(encoding, black_box(&event))))
        });
        let mut frame = FrameBuilder::new(encoding);
        for n in [0u32, 3] {
            group.bench_function(
                BenchmarkId::new(format!("frame of 16 shared ticks, n={n}"), name),
                |b| {
                    b.iter(|| {
                        for _ in 0..16 {
                            shared.write_to(&mut frame, n);
                        }
                        black_box(frame.finish())
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, encoding);
criterion_main!(benches);
