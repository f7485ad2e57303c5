//! Feed formats and the `tickfeed feed` tools: every format of the same
//! market reads to the same updates, several files merge in time order,
//! and `feed check`, `feed convert` and `feed record` work as a user runs
//! them (the real binary).

mod common;

use common::Scratch;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tickfeed::feed::detect::{FormatChoice, detect};
use tickfeed::feed::merge::{FeedFile, Merge};
use tickfeed::feed::{Update, reader};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn updates(path: &Path) -> Vec<Update> {
    let format = detect(path, FormatChoice::Auto).unwrap_or_else(|e| panic!("{e}"));
    reader::open(path, &format)
        .unwrap()
        .map(|u| Update {
            line: 0,
            ..u.unwrap()
        })
        .collect()
}

fn tickfeed(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tickfeed"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("tickfeed runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn every_format_of_the_same_market_reads_to_the_same_updates() {
    let lobster = updates(&fixture("ACME_2024-03-15_34200000_37800000_message_5.csv"));
    assert_eq!(
        lobster.len(),
        8,
        "ten messages, two of which change nothing visible"
    );
    assert_eq!(
        lobster[0].xt, 1_710_509_400_000_000_001,
        "09:30:00.000000001 EDT"
    );
    assert_eq!(
        lobster
            .iter()
            .filter(|u| u.traded)
            .map(|u| (u.quote.px.unwrap(), u.quote.sz.unwrap()))
            .collect::<Vec<_>>(),
        [(100.05, 80), (100.03, 40), (100.0, 100)]
    );
    assert_eq!(lobster.last().unwrap().quote.vol, 220);
    for name in [
        "acme_seconds.csv",
        "acme_ms.csv",
        "acme_us.csv",
        "acme_ns.csv",
        "acme_rfc3339.csv",
    ] {
        assert_eq!(updates(&fixture(name)), lobster, "{name}");
    }
}

#[test]
fn several_files_merge_in_time_order_ties_in_command_line_order() {
    let dir = Scratch::new("feed-tools-merge");
    let (a, b) = (dir.join("a.csv"), dir.join("b.csv"));
    std::fs::write(
        &a,
        "ts,sym,px,sz\n1700000000,AAA,1,1\n1700000002,AAA,3,1\n1700000002,AAA,4,1\n",
    )
    .unwrap();
    std::fs::write(
        &b,
        "sym,ts,px,sz\nBBB,1700000001,2,1\nBBB,1700000002,5,1\nBBB,1700000003,6,1\n",
    )
    .unwrap();
    let files: Vec<FeedFile> = [&a, &b]
        .iter()
        .map(|p| FeedFile {
            path: p.to_path_buf(),
            format: detect(p, FormatChoice::Auto).unwrap(),
        })
        .collect();
    let order: Vec<(usize, f64)> = Merge::open(&files)
        .unwrap()
        .map(|item| item.map(|(i, u)| (i, u.quote.px.unwrap())).unwrap())
        .collect();
    assert_eq!(
        order,
        [(0, 1.0), (1, 2.0), (0, 3.0), (0, 4.0), (1, 5.0), (1, 6.0)]
    );

    let out = dir.join("merged.csv");
    let converted = tickfeed(&[
        "feed",
        "convert",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(converted.status.success(), "{converted:?}");
    let expected = "ts,sym,px,sz,bid,ask,bsz,asz,vol\n\
        1700000000000000000,AAA,1,1,,,,,1\n\
        1700000001000000000,BBB,2,1,,,,,1\n\
        1700000002000000000,AAA,3,1,,,,,2\n\
        1700000002000000000,AAA,4,1,,,,,3\n\
        1700000002000000000,BBB,5,1,,,,,2\n\
        1700000003000000000,BBB,6,1,,,,,3\n";
    assert_eq!(std::fs::read_to_string(&out).unwrap(), expected);
}

#[test]
fn converting_lobster_to_generic_keeps_every_update() {
    let dir = Scratch::new("feed-tools-convert");
    let source = fixture("ACME_2024-03-15_34200000_37800000_message_5.csv");
    let out = dir.join("acme.csv");
    let converted = tickfeed(&[
        "feed",
        "convert",
        source.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(converted.status.success(), "{converted:?}");
    assert_eq!(updates(&out), updates(&source));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        std::fs::read_to_string(fixture("acme_ns.csv")).unwrap()
    );
}

#[test]
fn feed_check_summarises_a_good_file_and_exits_zero() {
    let path = fixture("ACME_2024-03-15_34200000_37800000_message_5.csv");
    let output = tickfeed(&["feed", "check", path.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(text.contains("(LOBSTER messages)"), "{text}");
    assert!(text.contains("rows     10 (8 updates, 0 bad)"), "{text}");
    assert!(
        text.contains(
            "time     2024-03-15T13:30:00.000000001Z to 2024-03-15T13:30:05.00025Z (5.000 s)"
        ),
        "{text}"
    );
    assert!(text.contains("book     1 events on orders placed before the file, 0 crossed quotes, 0 trades outside the touch, 0 halts"), "{text}");
    let json = tickfeed(&[
        "feed",
        "check",
        "--json",
        fixture("acme_ms.csv").to_str().unwrap(),
    ]);
    let summary: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        (
            summary[0]["updates"].as_u64(),
            summary[0]["symbols"].as_u64()
        ),
        (Some(8), Some(1))
    );
}

#[test]
fn feed_check_lists_every_bad_row_with_its_place_and_exits_non_zero() {
    let dir = Scratch::new("feed-tools-check");
    let path = dir.join("bad.csv");
    std::fs::write(&path, "ts,sym,px,sz\n1700000000,AAA,1,1\n1700000001,AAA,abc,1\n1700000002,A A,1,1\n1700000003,AAA,2,1\n1700000001,AAA,3,1\n").unwrap();
    let output = tickfeed(&["feed", "check", path.to_str().unwrap()]);
    assert!(!output.status.success());
    let p = path.display();
    let listed: Vec<String> = stdout(&output).lines().take(3).map(String::from).collect();
    assert_eq!(
        listed,
        [
            format!("{p}:3:16: column px: expected a number, got \"abc\""),
            format!(
                "{p}:4:12: column sym: \"A A\" is not a symbol (1 to 32 of A-Z a-z 0-9 . - _ / : ^ =)"
            ),
            format!(
                "{p}:6:1: out of time order: 2023-11-14T22:13:21Z is before 2023-11-14T22:13:23Z on line 5; sort the file by time"
            ),
        ]
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tickfeed: 3 bad rows (listed above): a replay skips them, or stops at the first with --strict"), "{stderr}");
}

#[test]
fn feed_check_json_prints_only_json_on_stdout_and_bad_rows_on_stderr() {
    let dir = Scratch::new("feed-tools-check-json");
    let path = dir.join("bad.csv");
    std::fs::write(
        &path,
        "ts,sym,px,sz\n1700000000,AAA,1,1\n1700000001,AAA,abc,1\n1700000002,AAA,2,1\n",
    )
    .unwrap();
    let output = tickfeed(&["feed", "check", "--json", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "bad rows found: exit 1");
    let summaries: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is JSON ({e}): {}", stdout(&output)));
    assert_eq!(summaries[0]["bad_rows"], 1, "{summaries}");
    assert_eq!(summaries[0]["updates"], 2, "{summaries}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let p = path.display();
    assert!(
        stderr.contains(&format!(
            "{p}:3:16: column px: expected a number, got \"abc\""
        )),
        "{stderr}"
    );
}

#[test]
fn feed_tools_exit_2_for_a_file_they_cannot_use() {
    let dir = Scratch::new("feed-tools-invalid");
    let empty = dir.join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    for args in [
        vec!["feed", "check", "no/such/file.csv"],
        vec!["feed", "check", empty.to_str().unwrap()],
        vec![
            "feed",
            "check",
            "--format",
            "nonsense",
            empty.to_str().unwrap(),
        ],
    ] {
        let output = tickfeed(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        assert!(!output.stderr.is_empty(), "{args:?} says why");
    }
}

#[test]
fn feed_record_writes_the_simulated_market_as_generic_csv() {
    let dir = Scratch::new("feed-tools-record");
    let out = dir.join("rec.csv");
    let recorded = tickfeed(&[
        "feed",
        "record",
        "-o",
        out.to_str().unwrap(),
        "--symbols",
        "5",
        "--duration",
        "2s",
        "--rate",
        "100",
        "--start",
        "2025-01-02T14:30:00Z",
    ]);
    assert!(recorded.status.success(), "{recorded:?}");
    let rows = updates(&out);
    assert_eq!(rows.len(), 200);
    assert_eq!(rows[0].xt, 1_735_828_200_000_000_000);
    let symbols: std::collections::BTreeSet<&str> = rows.iter().map(|u| &*u.sym).collect();
    assert_eq!(symbols.len(), 5);
    assert!(
        rows.iter().all(|u| u.quote.bid < u.quote.ask),
        "the simulated market never crosses"
    );
}

#[test]
fn the_shipped_sample_is_small_valid_and_has_twenty_symbols() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("feeds/sample.csv");
    assert!(
        std::fs::metadata(&path).unwrap().len() < 1 << 20,
        "keep feeds/sample.csv under 1 MiB"
    );
    let output = tickfeed(&["feed", "check", "--json", path.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary[0]["symbols"], 20);
    assert_eq!(summary[0]["bad_rows"], 0);
    assert!(summary[0]["span_s"].as_f64().unwrap() <= 60.0);
}
