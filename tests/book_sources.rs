//! Sources that make order books (issue 16), checked at the source: the
//! messages the simulated market and the replay send to the router, and
//! the LOBSTER reader's books against a hand-made message and orderbook
//! pair (`tests/fixtures/book/`) and the real LOBSTER hour. Serving books
//! to clients is tested where they are served.

mod common;
#[path = "book_sources/fixture.rs"]
mod fixture;
#[path = "book_sources/lobster_hour.rs"]
mod lobster_hour;

use common::{DEADLINE, Scratch, lobster_path};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tickfeed::feed::detect::FormatChoice;
use tickfeed::feed::lobster::{BookStats, FileName};
use tickfeed::feed::orderbook::path_beside;
use tickfeed::feed::time::WindowArgs;
use tickfeed::feed::{Format, Update, reader};
use tickfeed::protocol::{BookUpdate, Depth, Level, Quote, Tick};
use tickfeed::shutdown::ShutdownTrigger;
use tickfeed::source::generator::{self, GeneratorConfig};
use tickfeed::source::replay::{self, ReplayConfig, ReplayOptions, Speed};
use tickfeed::source::universe::{default_universe, sized};
use tickfeed::source::{SourceMsg, channel};
use tickfeed::stats::Stats;

/// The top level of `book` is `quote`'s bid and ask with their sizes.
fn quote_on_top(quote: &Quote, book: &Depth) -> bool {
    book.bids.first().copied() == quote.bid.zip(quote.bsz)
        && book.asks.first().copied() == quote.ask.zip(quote.asz)
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
                            .find(|t| {
                                t.sym == book.sym
                                    && t.ts == book.ts
                                    && quote_on_top(&t.quote, &book.depth)
                            })
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

// ---- Shared by the LOBSTER tests ----

/// Every update of a LOBSTER file read with `depth` levels, and the book
/// figures.
fn lobster_books(path: &Path, depth: usize) -> (Vec<Update>, BookStats) {
    let format = Format::Lobster(FileName::parse(path).expect("a LOBSTER file name"));
    let mut reader = reader::open_with_books(path, &format, depth).unwrap();
    let updates = reader
        .by_ref()
        .map(|u| u.unwrap_or_else(|e| panic!("{e}")))
        .collect();
    (updates, reader.book_stats().unwrap())
}

/// The best bid is at or above the best ask.
fn crossed(book: &Depth) -> bool {
    matches!((book.bids.first(), book.asks.first()), (Some(b), Some(a)) if b.0 >= a.0)
}

fn replay_options(path: &Path, from: Option<&str>) -> ReplayOptions {
    ReplayOptions {
        files: vec![path.to_path_buf()],
        format: FormatChoice::Auto,
        speed: Speed::Max,
        looping: false,
        window: WindowArgs {
            from: from.map(|f| f.parse().unwrap()),
            to: None,
        },
        strict: true,
        depth: 3,
    }
}

/// Everything a replay of `config` sends, until it ends.
async fn replay_messages(config: ReplayConfig) -> Vec<SourceMsg> {
    let (tx, mut rx) = channel();
    let trigger = ShutdownTrigger::new();
    replay::spawn(
        config,
        tx,
        Arc::new(Stats::new()),
        trigger.subscribe(),
        trigger.guard(),
    )
    .unwrap();
    let mut messages = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while let Some(message) = rx.recv().await {
            messages.push(message);
        }
    })
    .await
    .expect("the replay ends within the deadline");
    messages
}

/// Walks a replay's messages: each `Books` right after its `Ticks` with
/// the same `ts` (or alone, for deeper levels), and after each batch its
/// last tick's quote on top of the symbol's book (one symbol). Returns the
/// books in order.
fn check_replayed_books(messages: &[SourceMsg]) -> Vec<BookUpdate> {
    let mut books: Vec<BookUpdate> = Vec::new();
    let (mut unchecked, mut ticks_ts): (Option<&Tick>, Option<u64>) = (None, None);
    let check = |tick: &Tick, books: &[BookUpdate]| {
        let book = books.last().expect("a book before the first tick");
        assert!(
            quote_on_top(&tick.quote, &book.depth),
            "{book:?} under {tick:?}"
        );
    };
    for message in messages {
        match message {
            SourceMsg::Ticks(ticks) => {
                if let Some(tick) = unchecked {
                    check(tick, &books);
                }
                unchecked = ticks.last();
                ticks_ts = Some(ticks[0].ts);
            }
            SourceMsg::Books(batch) => {
                if let Some(ts) = ticks_ts.take() {
                    assert!(batch.iter().all(|b| b.ts == ts), "the ticks' ts");
                }
                books.extend(batch.iter().cloned());
                if let Some(tick) = unchecked.take() {
                    check(tick, &books);
                }
            }
            _ => ticks_ts = None,
        }
    }
    if let Some(tick) = unchecked {
        check(tick, &books);
    }
    books
}
