//! Property tests of every feed file parser (`feed::detect`, the generic
//! CSV reader, the LOBSTER message reader, and the time parsers): they
//! never panic on arbitrary input, every error names the file (and a bad
//! row its `file:line:column`), and a bad cell in an otherwise good file is
//! reported at exactly its line and column while every other row is read.

mod common;

use common::Scratch;
use proptest::prelude::*;
use std::path::Path;
use tickfeed::feed::detect::{FormatChoice, detect};
use tickfeed::feed::time::{parse_seconds, parse_ts};
use tickfeed::feed::{FeedError, reader};

/// A LOBSTER file name the reader accepts (ticker, date, window, levels).
const LOBSTER_NAME: &str = "AAPL_2012-06-21_34200000_37800000_message_1.csv";
/// Rows read at most per file: arbitrary input is small anyway.
const MAX_ITEMS: usize = 10_000;

/// Everything a reader yields: good rows' lines and the errors.
fn read_all(path: &Path, choice: FormatChoice) -> (Vec<u64>, Vec<FeedError>) {
    let (mut lines, mut errors) = (Vec::new(), Vec::new());
    let format = match detect(path, choice) {
        Ok(format) => format,
        Err(e) => return (lines, vec![e]),
    };
    match reader::open(path, &format) {
        Ok(rows) => {
            for item in rows.take(MAX_ITEMS) {
                match item {
                    Ok(update) => lines.push(update.line),
                    Err(e) => errors.push(e),
                }
            }
        }
        Err(e) => errors.push(e),
    }
    (lines, errors)
}

/// Every error names the file; a bad row is `file:line:column: what`
/// with a line that exists.
fn check_errors(path: &Path, content: &[u8], errors: &[FeedError]) -> Result<(), TestCaseError> {
    let shown = path.display().to_string();
    let line_count = content.split(|b| *b == b'\n').count() as u64;
    for error in errors {
        let message = error.to_string();
        prop_assert!(
            message.starts_with(&shown),
            "error does not name the file: {message}"
        );
        if let FeedError::BadRow(bad) = error {
            prop_assert!(
                bad.line >= 1 && bad.line <= line_count,
                "line {} of {line_count}: {message}",
                bad.line
            );
            prop_assert!(bad.column >= 1, "{message}");
            prop_assert!(
                message.starts_with(&format!("{shown}:{}:{}: ", bad.line, bad.column)),
                "{message}"
            );
        }
    }
    Ok(())
}

/// Text that looks like CSV often enough to reach the row parsers.
fn csv_like() -> impl Strategy<Value = Vec<u8>> {
    let cell = prop_oneof![
        "[0-9]{1,12}",
        "[0-9]{1,6}\\.[0-9]{0,10}",
        "-?[0-9]{1,4}",
        "(ts|sym|px|sz|bid|ask|bsz|asz|vol)",
        "[A-Z]{1,5}",
        "\"[^\"]{0,6}\"",
        ".{0,6}",
        Just(String::new()),
    ];
    let line = proptest::collection::vec(cell, 0..8).prop_map(|cells| cells.join(","));
    let text =
        proptest::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n").into_bytes());
    prop_oneof![2 => text, 1 => proptest::collection::vec(any::<u8>(), 0..512)]
}

fn choice() -> impl Strategy<Value = FormatChoice> {
    prop_oneof![
        Just(FormatChoice::Auto),
        Just(FormatChoice::Generic),
        Just(FormatChoice::Lobster)
    ]
}

/// A valid generic feed of `rows` rows, one second apart.
fn generic_feed(rows: usize) -> Vec<Vec<String>> {
    let symbols = ["AAPL", "MSFT", "BRK.B"];
    (0..rows)
        .map(|i| {
            vec![
                format!("{}", 1_700_000_000_000u64 + i as u64 * 1000),
                symbols[i % symbols.len()].to_string(),
                format!("{}.{:02}", 100 + i, i % 100),
                format!("{}", 100 + i),
            ]
        })
        .collect()
}

/// A valid LOBSTER message file of `rows` rows: orders a millisecond apart
/// after the open, each improving its side's best price (so each row moves
/// the touch and yields an update) without ever crossing.
fn lobster_feed(rows: usize) -> Vec<Vec<String>> {
    (0..rows)
        .map(|i| {
            let side = if i % 2 == 0 { 1 } else { -1 };
            let price = if side == 1 {
                1_000_000 + i as i64
            } else {
                1_010_000 - i as i64
            };
            vec![
                format!("{}.{:09}", 34_200 + i / 1000, (i % 1000) * 1_000_000),
                "1".to_string(),
                format!("{}", 1000 + i),
                "100".to_string(),
                format!("{price}"),
                format!("{side}"),
            ]
        })
        .collect()
}

fn to_csv(header: Option<&str>, rows: &[Vec<String>]) -> Vec<u8> {
    let mut text = header.map(|h| format!("{h}\n")).unwrap_or_default();
    for row in rows {
        text.push_str(&row.join(","));
        text.push('\n');
    }
    text.into_bytes()
}

/// 1-based column where field `field` of `row` starts.
fn column_of(row: &[String], field: usize) -> u64 {
    row.iter()
        .take(field)
        .map(|f| f.chars().count() as u64 + 1)
        .sum::<u64>()
        + 1
}

/// Reads `content` and checks that exactly one row, `line` at `column`,
/// was refused and every other row of the `rows` was read.
fn expect_one_bad(
    path: &Path,
    content: &[u8],
    rows: usize,
    line: u64,
    column: u64,
) -> Result<(), TestCaseError> {
    let (good, errors) = read_all(path, FormatChoice::Auto);
    check_errors(path, content, &errors)?;
    prop_assert_eq!(
        errors.len(),
        1,
        "{:?}",
        errors.iter().map(ToString::to_string).collect::<Vec<_>>()
    );
    let FeedError::BadRow(bad) = &errors[0] else {
        return Err(TestCaseError::fail(format!("not a bad row: {}", errors[0])));
    };
    prop_assert_eq!((bad.line, bad.column), (line, column), "{}", errors[0]);
    prop_assert!(!good.contains(&line));
    prop_assert_eq!(good.len(), rows - 1, "every other row was read");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_file_is_read_without_panicking_and_errors_name_file_and_line(content in csv_like(), choice in choice(), lobster_name in any::<bool>()) {
        let dir = Scratch::new("feed-properties");
        let path = dir.write(if lobster_name { LOBSTER_NAME } else { "feed.csv" }, &content);
        let (_, errors) = read_all(&path, choice);
        let checked = check_errors(&path, &content, &errors);
        checked?;
    }

    #[test]
    fn time_parsers_never_panic(text in ".{0,40}", digits in "[0-9]{0,25}(\\.[0-9]{0,25})?") {
        let _ = parse_ts(&text);
        let _ = parse_ts(&digits);
        let _ = parse_seconds(&text);
        let _ = parse_seconds(&digits);
    }

    #[test]
    fn a_bad_cell_in_a_generic_feed_is_reported_at_its_line_and_column(
        rows in 2..40usize,
        at in any::<prop::sample::Index>(),
        field in 0..4usize,
        junk in prop_oneof![Just("abc"), Just("1e999"), Just("-7"), Just("BAD SYMBOL!"), Just("12:3x")],
    ) {
        let mut feed = generic_feed(rows);
        let bad = at.index(rows);
        // A negative is a fine price; make sure the cell is bad for its column.
        let junk = if field == 2 && junk == "-7" { "abc" } else { junk };
        let junk = if field == 1 && junk != "BAD SYMBOL!" { "BAD SYMBOL!" } else { junk };
        feed[bad][field] = junk.to_string();
        let content = to_csv(Some("ts,sym,px,sz"), &feed);
        let dir = Scratch::new("feed-properties");
        let path = dir.write("feed.csv", &content);
        let checked = expect_one_bad(&path, &content, rows, bad as u64 + 2, column_of(&feed[bad], field));
        checked?;
    }

    #[test]
    fn a_bad_field_in_a_lobster_file_is_reported_at_its_line_and_column(
        rows in 2..40usize,
        at in any::<prop::sample::Index>(),
        field in 0..6usize,
    ) {
        let mut feed = lobster_feed(rows);
        let bad = at.index(rows);
        let junk = ["noon", "9", "-1", "x", "1.5", "0"][field];
        feed[bad][field] = junk.to_string();
        let content = to_csv(None, &feed);
        let dir = Scratch::new("feed-properties");
        let path = dir.write(LOBSTER_NAME, &content);
        let checked = if bad == 0 {
            // A broken first row hides the format: refused as unknown, by name.
            let (_, errors) = read_all(&path, FormatChoice::Auto);
            check_errors(&path, &content, &errors)
        } else {
            expect_one_bad(&path, &content, rows, bad as u64 + 1, column_of(&feed[bad], field))
        };
        checked?;
    }
}
