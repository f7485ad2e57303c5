//! LOBSTER books against the hand-made message and orderbook pair in
//! `tests/fixtures/book/` (its README walks through every row): with the
//! orderbook file, without it, with broken ones, and through the replay.

use super::*;
use indicatif::ProgressBar;
use tickfeed::feed::check;
use tickfeed::feed::merge::FeedFile;
use tickfeed::feed::time::Window;

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

/// The best `levels` levels of each side of `depth`.
fn truncated(depth: &Depth, levels: usize) -> Depth {
    Depth {
        bids: depth.bids.iter().take(levels).copied().collect(),
        asks: depth.asks.iter().take(levels).copied().collect(),
    }
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
            assert!(
                quote_on_top(&u.quote, row),
                "depth {depth}: {u:?} against {row:?}"
            );
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
        assert!(
            quote_on_top(&u.quote, &rebuilt[u.line as usize - 1]),
            "{u:?}"
        );
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
    // The window starts at row 11 (1 s after the first row), a hidden
    // trade that changes no level: the book of row 10 goes out first.
    let path = book_fixture(ZETA_MESSAGES);
    let config = ReplayConfig::prepare(replay_options(&path, Some("+1s"))).unwrap();
    let messages = replay_messages(config).await;
    let books = check_replayed_books(&messages);
    let rows = orderbook_rows(&book_fixture(ZETA_ORDERBOOK));
    assert_eq!(books[0].depth, rows[10], "the book of row 11");
    assert_eq!(books.last().unwrap().depth, rows[14]);
}

#[test]
fn feed_check_reports_the_book_updates_and_where_the_book_came_from() {
    let file = FeedFile {
        path: book_fixture(ZETA_MESSAGES),
        format: Format::Lobster(FileName::parse(&book_fixture(ZETA_MESSAGES)).unwrap()),
    };
    let scan = check::scan(
        &file,
        Window::ALL,
        10,
        |bad| panic!("{bad}"),
        &ProgressBar::hidden(),
    )
    .unwrap();
    assert_eq!(
        (scan.summary.rows, scan.summary.updates),
        (15, 11),
        "ticks alone count as updates"
    );
    let text = check::render(&scan.summary);
    assert!(
        text.contains("  depth    13 book updates (9.3/s) of the top 10 levels, from the orderbook file beside it\n"),
        "{text}"
    );
}
