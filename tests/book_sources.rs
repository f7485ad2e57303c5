//! Sources that make order books (issue 16), checked at the source: the
//! messages the simulated market and the replay send to the router, and
//! the LOBSTER reader's books against a hand-made message and orderbook
//! pair (`tests/fixtures/book/`) and the real LOBSTER hour. Serving books
//! to clients is tested where they are served.

mod common;

use common::{DEADLINE, Scratch};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tickfeed::feed::lobster::{BookStats, FileName};
use tickfeed::feed::{Format, Update, reader};
use tickfeed::protocol::{BookUpdate, Depth, Level, Tick};
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

// ---- LOBSTER: the hand-made fixture pair (tests/fixtures/book/README.md) ----

const ZETA_MESSAGES: &str = "ZETA_2024-03-15_34200000_37800000_message_3.csv";
const ZETA_ORDERBOOK: &str = "ZETA_2024-03-15_34200000_37800000_orderbook_3.csv";

fn book_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/book")
        .join(name)
}

/// The rows of an orderbook file, read by hand (not by the reader under
/// test): each row's levels in dollars, empty levels left out.
fn orderbook_rows(path: &Path) -> Vec<Depth> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|line| {
            let f: Vec<i64> = line
                .trim_end()
                .split(',')
                .map(|n| n.parse().unwrap())
                .collect();
            let side = |at: usize| -> Vec<Level> {
                f.chunks(4)
                    .map(|level| (level[at], level[at + 1]))
                    .filter(|(px, _)| px.abs() != 9_999_999_999)
                    .map(|(px, sz)| (px as f64 / 10_000.0, sz as u64))
                    .collect()
            };
            Depth {
                bids: side(2),
                asks: side(0),
            }
        })
        .collect()
}

fn truncated(depth: &Depth, levels: usize) -> Depth {
    Depth {
        bids: depth.bids.iter().take(levels).copied().collect(),
        asks: depth.asks.iter().take(levels).copied().collect(),
    }
}

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

/// The book shown after each message line `1..=rows`: the last book
/// event at or before it.
fn shown_after_each_row(updates: &[Update], rows: usize) -> Vec<Depth> {
    let mut shown = Depth::default();
    let mut events = updates.iter().peekable();
    (1..=rows as u64)
        .map(|line| {
            while let Some(update) = events.next_if(|u| u.line <= line) {
                if let Some(book) = &update.book {
                    shown = book.clone();
                }
            }
            shown.clone()
        })
        .collect()
}

/// The quote of `update` is the top level of `book`.
fn quote_is_top(update: &Update, book: &Depth) -> bool {
    let q = &update.quote;
    book.bids.first().copied() == q.bid.zip(q.bsz) && book.asks.first().copied() == q.ask.zip(q.asz)
}

#[test]
fn with_the_orderbook_file_every_book_event_is_its_row() {
    let rows = orderbook_rows(&book_fixture(ZETA_ORDERBOOK));
    assert_eq!(rows.len(), 15);
    for depth in [1, 2, 3, 10] {
        let (updates, stats) = lobster_books(&book_fixture(ZETA_MESSAGES), depth);
        let expected: Vec<Depth> = rows.iter().map(|r| truncated(r, depth)).collect();
        for u in &updates {
            let row = &expected[u.line as usize - 1];
            if let Some(book) = &u.book {
                assert_eq!(book, row, "depth {depth}, line {}", u.line);
            }
            assert!(quote_is_top(u, row), "depth {depth}: {u:?} against {row:?}");
        }
        assert_eq!(
            shown_after_each_row(&updates, rows.len()),
            expected,
            "depth {depth}: no change of the top levels is missed"
        );
        let changes = (0..expected.len())
            .filter(|i| *i == 0 || expected[*i] != expected[i - 1])
            .count() as u64;
        assert_eq!(stats.book_updates, changes, "one book event per change");
        assert_eq!(
            (
                stats.orderbook_file,
                stats.crossed_quotes,
                stats.trades_outside_touch
            ),
            (true, 0, 0)
        );
        assert_eq!(stats.unknown_orders, 3, "rows 5, 7 and 13");
    }
    let (updates, _) = lobster_books(&book_fixture(ZETA_MESSAGES), 3);
    let lines = |pick: fn(&Update) -> bool| {
        updates
            .iter()
            .filter(|u| pick(u))
            .map(|u| u.line)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        lines(|u| !u.tick),
        [3, 9, 10],
        "deeper levels alone: a book without a tick"
    );
    assert_eq!(lines(|u| u.book.is_none()), [11], "the hidden trade");
    assert_eq!(
        lines(|u| u.traded),
        [4, 5, 7, 11, 14],
        "the executions, two of them against orders from before the file"
    );
}

#[test]
fn without_the_orderbook_file_the_rebuilt_book_is_the_rows_where_known() {
    let scratch = Scratch::new("book-rebuilt");
    let messages = scratch.write(
        ZETA_MESSAGES,
        std::fs::read(book_fixture(ZETA_MESSAGES)).unwrap(),
    );
    let rows = orderbook_rows(&book_fixture(ZETA_ORDERBOOK));
    let (updates, stats) = lobster_books(&messages, 3);
    assert_eq!((stats.orderbook_file, stats.unknown_orders), (false, 3));
    let rebuilt = shown_after_each_row(&updates, rows.len());
    for (i, (rebuilt, row)) in rebuilt.iter().zip(&rows).enumerate() {
        let line = i + 1;
        // The README's "where the rebuilt book is known".
        assert_eq!(
            rebuilt.asks == row.asks,
            line >= 5,
            "asks of row {line}: {rebuilt:?} {row:?}"
        );
        assert_eq!(
            rebuilt.bids == row.bids,
            line >= 13,
            "bids of row {line}: {rebuilt:?} {row:?}"
        );
    }
    for u in &updates {
        assert!(quote_is_top(u, &rebuilt[u.line as usize - 1]), "{u:?}");
    }
}
