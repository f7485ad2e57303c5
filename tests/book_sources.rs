//! Sources that make order books (issue 16), checked at the source: the
//! messages the simulated market and the replay send to the router, and
//! the LOBSTER reader's books against a hand-made message and orderbook
//! pair (`tests/fixtures/book/`) and the real LOBSTER hour. Serving books
//! to clients is tested where they are served.

mod common;

use common::{DEADLINE, Scratch, lobster_path};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tickfeed::feed::detect::FormatChoice;
use tickfeed::feed::lobster::{BookStats, FileName};
use tickfeed::feed::orderbook::path_beside;
use tickfeed::feed::time::WindowArgs;
use tickfeed::feed::{Format, Update, reader};
use tickfeed::protocol::{BookUpdate, Depth, Level, Tick};
use tickfeed::shutdown::ShutdownTrigger;
use tickfeed::source::generator::{self, GeneratorConfig};
use tickfeed::source::replay::{self, ReplayConfig, ReplayOptions, Speed};
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

/// The fixture's messages beside an orderbook file of these rows, in a
/// scratch directory; returns the message file's path.
fn pair_with_orderbook(scratch: &Scratch, orderbook: &[String]) -> PathBuf {
    scratch.write(ZETA_ORDERBOOK, orderbook.join("\r\n") + "\r\n");
    scratch.write(
        ZETA_MESSAGES,
        std::fs::read(book_fixture(ZETA_MESSAGES)).unwrap(),
    )
}

fn fixture_orderbook_lines() -> Vec<String> {
    std::fs::read_to_string(book_fixture(ZETA_ORDERBOOK))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every error reading `path` gives, after the file name.
fn lobster_errors(path: &Path) -> Vec<String> {
    let format = Format::Lobster(FileName::parse(path).unwrap());
    reader::open_with_books(path, &format, 3)
        .unwrap()
        .filter_map(Result::err)
        .map(|e| {
            let text = e.to_string();
            let file = path.parent().unwrap().display().to_string() + "/";
            text.replace(&file, "")
        })
        .collect()
}

#[test]
fn a_malformed_orderbook_row_names_its_file_line_and_field() {
    let scratch = Scratch::new("book-bad-row");
    let mut rows = fixture_orderbook_lines();
    rows[1] = "1000100,50,1000000,abc,1000200,200,999900,300,9999999999,0,-9999999999,0".into();
    rows[2] = "1000100,50,1000000,100,1000200,200,999900,300,9999999999,5,999800,40".into();
    rows[3] = "1000200,200,1000000,100,1000100,10,999900,300,9999999999,0,999800,40".into();
    rows[4] = "9999999999,0,1000000,100,9999999999,0,-9999999999,0,9999999999,0,999800,40".into();
    rows[5] = "9999999999,0,999900,300,9999999999,0,999800,40,9999999999,0".into();
    let messages = pair_with_orderbook(&scratch, &rows);
    assert_eq!(
        lobster_errors(&messages),
        [
            format!(
                "{ZETA_ORDERBOOK}:2:20: column bid size 1: expected a whole number, got \"abc\""
            ),
            format!(
                "{ZETA_ORDERBOOK}:3:58: column ask size 3: an empty level (9999999999) has size 0, got 5"
            ),
            format!(
                "{ZETA_ORDERBOOK}:4:25: column ask price 2: 1000100 is not behind the level before it"
            ),
            format!(
                "{ZETA_ORDERBOOK}:5:66: column bid price 3: 999800 has an empty level before it"
            ),
            format!(
                "{ZETA_ORDERBOOK}:6:59: expected 4 fields per level (ask price, ask size, bid price, bid size), found 10"
            ),
        ]
    );
}

#[test]
fn an_orderbook_file_of_another_length_is_an_error_that_says_so() {
    let scratch = Scratch::new("book-short");
    let mut rows = fixture_orderbook_lines();
    rows.pop();
    let messages = pair_with_orderbook(&scratch, &rows);
    assert_eq!(
        lobster_errors(&messages),
        [format!(
            "{ZETA_ORDERBOOK}: ends after 14 rows, but {ZETA_MESSAGES} goes on at line 15; an orderbook file has one row per message (row i is the book after message i)"
        )]
    );
    let scratch = Scratch::new("book-long");
    let mut rows = fixture_orderbook_lines();
    rows.push(rows[14].clone());
    let messages = pair_with_orderbook(&scratch, &rows);
    assert_eq!(
        lobster_errors(&messages),
        [format!(
            "{ZETA_ORDERBOOK}: has more rows than the 15 of {ZETA_MESSAGES}; an orderbook file has one row per message (row i is the book after message i)"
        )]
    );
    let refused = ReplayConfig::prepare(replay_options(&messages, None)).unwrap_err();
    assert!(
        refused.to_string().contains("has more rows than the 15"),
        "serve refuses to start: {refused}"
    );
}

// ---- The replay player's output ----

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
        assert!(top_is_quote(book, tick), "{book:?} under {tick:?}");
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

#[tokio::test]
async fn the_replay_sends_the_books_of_record_after_their_ticks() {
    let path = book_fixture(ZETA_MESSAGES);
    let config = ReplayConfig::prepare(replay_options(&path, None)).unwrap();
    let messages = replay_messages(config).await;
    let books = check_replayed_books(&messages);
    let (updates, _) = lobster_books(&path, 3);
    let expected: Vec<(u64, Depth)> = updates
        .iter()
        .filter_map(|u| Some((u.xt, u.book.clone()?)))
        .collect();
    assert_eq!(
        books
            .iter()
            .map(|b| (b.xt.unwrap(), b.depth.clone()))
            .collect::<Vec<_>>(),
        expected,
        "every book the reader yields, in order, with its event's time"
    );
    assert!(books.iter().all(|b| &*b.sym == "ZETA"));
}

#[tokio::test]
async fn a_replay_window_starts_with_the_book_before_it() {
    // Row 11 (1 s after the first row) is a hidden trade that changes no
    // level: its tick still comes with the book of rows 10 and 11.
    let path = book_fixture(ZETA_MESSAGES);
    let config = ReplayConfig::prepare(replay_options(&path, Some("+1s"))).unwrap();
    let messages = replay_messages(config).await;
    let books = check_replayed_books(&messages);
    let rows = orderbook_rows(&book_fixture(ZETA_ORDERBOOK));
    assert_eq!(books[0].depth, rows[10], "the book of row 11");
    assert_eq!(books.last().unwrap().depth, rows[14]);
}

// ---- The real LOBSTER hour (../shared/feeds, never copied here) ----

/// One message row's fields: type, order id, price, direction.
struct Row {
    kind: u8,
    id: u64,
    price: f64,
    bid_side: bool,
}

fn lobster_rows(path: &Path) -> Vec<Row> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.trim_end().split(',').collect();
            Row {
                kind: f[1].parse().unwrap(),
                id: f[2].parse().unwrap(),
                price: f[4].parse::<f64>().unwrap() / 10_000.0,
                bid_side: f[5] == "1",
            }
        })
        .collect()
}

fn crossed(book: &Depth) -> bool {
    matches!((book.bids.first(), book.asks.first()), (Some(b), Some(a)) if b.0 >= a.0)
}

#[test]
fn on_the_lobster_hour_the_book_is_uncrossed_topped_by_the_quote_and_hit_by_executions() {
    let path = lobster_path();
    let with_orderbook = path_beside(&path).is_some_and(|p| p.is_file());
    let rows = lobster_rows(&path);
    let mut submitted_before = vec![false; rows.len()];
    let mut seen = HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        submitted_before[i] = seen.contains(&row.id);
        if row.kind == 1 {
            seen.insert(row.id);
        }
    }
    let (updates, stats) = lobster_books(&path, 10);
    assert_eq!(stats.orderbook_file, with_orderbook);
    let (mut shown, mut checked, mut resting_before) = (Depth::default(), 0, 0);
    for u in &updates {
        let row = &rows[u.line as usize - 1];
        if row.kind == 4 {
            let side = if row.bid_side {
                &shown.bids
            } else {
                &shown.asks
            };
            let present = side.iter().any(|(px, _)| *px == row.price);
            if with_orderbook || submitted_before[u.line as usize - 1] {
                assert!(
                    present,
                    "line {}: execution at {} not in {shown:?}",
                    u.line, row.price
                );
                checked += 1;
            } else {
                // An order resting from before the file: the rebuilt book
                // never held it (the orderbook file would).
                resting_before += 1;
            }
        }
        if let Some(book) = &u.book {
            assert!(book.bids.len() <= 10 && book.asks.len() <= 10);
            shown = book.clone();
        }
        assert!(!crossed(&shown), "line {}: crossed {shown:?}", u.line);
        assert!(
            quote_is_top(u, &shown),
            "line {}: {u:?} on {shown:?}",
            u.line
        );
    }
    let visible = rows.iter().filter(|r| r.kind == 4).count();
    assert_eq!(
        checked + resting_before,
        visible,
        "every visible execution is seen"
    );
    assert!(checked > 4_000, "{checked} of {visible} checked");
    eprintln!(
        "{} book updates at depth 10 ({} rows); {checked} visible executions on the book, {resting_before} against orders from before the file",
        stats.book_updates,
        rows.len()
    );
}

#[tokio::test]
async fn the_replay_of_the_lobster_hour_tops_every_book_with_its_ticks() {
    let path = lobster_path();
    let mut options = replay_options(&path, None);
    options.depth = 10;
    let messages = replay_messages(ReplayConfig::prepare(options).unwrap()).await;
    let books = check_replayed_books(&messages);
    let (_, stats) = lobster_books(&path, 10);
    assert_eq!(books.len() as u64, stats.book_updates);
    assert!(books.iter().all(|b| !crossed(&b.depth)));
}
