//! Sources that make order books (issue 16), checked at the source: the
//! messages the simulated market sends to the router. Serving books to
//! clients is tested where they are served.

mod common;

use common::DEADLINE;
use std::sync::Arc;
use tickfeed::protocol::{BookUpdate, Tick};
use tickfeed::shutdown::ShutdownTrigger;
use tickfeed::source::generator::{self, GeneratorConfig};
use tickfeed::source::universe::{default_universe, sized};
use tickfeed::source::{SourceMsg, channel};
use tickfeed::stats::Stats;

/// The top level of `book` is `tick`'s quote.
fn top_is_quote(book: &BookUpdate, tick: &Tick) -> bool {
    let q = &tick.quote;
    book.depth.bids.first().copied() == q.bid.zip(q.bsz)
        && book.depth.asks.first().copied() == q.ask.zip(q.asz)
}

#[tokio::test]
async fn the_generator_sends_each_batchs_books_right_after_its_ticks() {
    let depth = 7;
    let config = GeneratorConfig::new(sized(default_universe(), 20, 5), 20_000.0, 5, 1.0)
        .unwrap()
        .with_depth(depth);
    let (tx, mut rx) = channel();
    let mut trigger = ShutdownTrigger::new();
    let task = tokio::spawn(generator::run(
        config,
        tx,
        Arc::new(Stats::new()),
        trigger.subscribe(),
    ));
    let mut last_ticks: Option<Vec<Tick>> = None;
    let (mut ticks_seen, mut books_seen) = (0, 0);
    tokio::time::timeout(DEADLINE, async {
        while books_seen < 2_000 {
            match rx.recv().await.expect("the generator runs") {
                SourceMsg::Ticks(ticks) => {
                    assert!(last_ticks.is_none(), "books follow every batch of ticks");
                    ticks_seen += ticks.len();
                    last_ticks = Some(ticks);
                }
                SourceMsg::Books(books) => {
                    let ticks = last_ticks.take().expect("books come right after ticks");
                    // One book per tick whose book changed, in tick order.
                    let mut matched = ticks.iter();
                    for book in &books {
                        assert!(book.depth.bids.len() <= depth && book.depth.asks.len() <= depth);
                        let tick = matched
                            .find(|t| t.sym == book.sym && t.ts == book.ts && top_is_quote(book, t))
                            .unwrap_or_else(|| panic!("no tick in the batch for {book:?}"));
                        assert_eq!(book.xt, tick.xt);
                    }
                    books_seen += books.len();
                }
                SourceMsg::Declare(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .expect("books within the deadline");
    assert!(ticks_seen >= books_seen);
    drop(rx);
    trigger.stop_and_wait().await;
    task.await.unwrap();
}
