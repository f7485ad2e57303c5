//! `tickfeed serve --replay`: the real server replaying files to real
//! WebSocket clients. The real LOBSTER sample (third-party data, never
//! copied into this repository) is read from `$TICKFEED_LOBSTER` or
//! `../shared/feeds/`; its tests fail, saying where to put it, when absent.

mod common;

use clap::Parser;
use common::{
    Client, DEADLINE, Scratch, is_tick, lobster_executions, lobster_path, poll, start_server,
};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use tickfeed::cli::{Cli, Command as CliCommand};
use tickfeed::feed::lobster::FileName;
use tickfeed::feed::{Format, Update, reader};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The error `serve` gives for these flags, before it listens.
fn startup_error(args: &[&str]) -> String {
    let argv = ["tickfeed", "serve"].iter().chain(args);
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => return e.to_string(),
    };
    let Some(CliCommand::Serve(serve)) = cli.command else {
        panic!("not serve")
    };
    serve
        .into_config()
        .expect_err("the flags are refused")
        .to_string()
}

fn lobster_updates(path: &Path) -> (Vec<Update>, tickfeed::feed::lobster::BookStats) {
    let name = FileName::parse(path).expect("a LOBSTER file name");
    let mut reader = reader::open(path, &Format::Lobster(name)).unwrap();
    let updates = reader
        .by_ref()
        .map(|u| u.unwrap_or_else(|e| panic!("{e}")))
        .collect();
    (updates, reader.book_stats().unwrap())
}

#[test]
fn lobster_sample_rebuilds_a_book_with_bid_below_ask_and_trades_at_or_inside_the_touch() {
    let path = lobster_path();
    let (updates, stats) = lobster_updates(&path);
    let (executions, unknown) = lobster_executions(&path);
    let trades: Vec<(u64, f64, u64)> = updates
        .iter()
        .filter(|u| u.traded)
        .map(|u| (u.xt, u.quote.px.unwrap(), u.quote.sz.unwrap()))
        .collect();
    assert_eq!(
        trades, executions,
        "every execution, in file order, with its price, size and time"
    );
    assert_eq!(
        updates.last().unwrap().quote.vol,
        executions.iter().map(|e| e.2).sum::<u64>()
    );
    assert!(
        updates.windows(2).all(|w| w[0].xt <= w[1].xt),
        "original times never go back"
    );
    for (before, u) in updates.iter().zip(&updates[1..]) {
        if let (Some(bid), Some(ask)) = (u.quote.bid, u.quote.ask) {
            assert!(
                bid < ask,
                "crossed book after line {}: {bid} >= {ask}",
                u.line
            );
        }
        if u.traded {
            let px = u.quote.px.unwrap();
            assert!(
                before.quote.bid.is_none_or(|b| b <= px)
                    && before.quote.ask.is_none_or(|a| px <= a),
                "trade at {px} outside {before:?} on line {}",
                u.line
            );
        }
    }
    assert_eq!(
        stats.unknown_orders, unknown,
        "events on orders placed before the file are tolerated"
    );
    assert_eq!((stats.crossed_quotes, stats.trades_outside_touch), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lobster_sample_replays_to_a_websocket_client_with_the_files_prices_sizes_and_times_in_order()
 {
    let path = lobster_path();
    let (expected, _) = lobster_updates(&path);
    let (rows, pass_vol) = (expected.len() as u64, expected.last().unwrap().quote.vol);
    let last_trade = expected
        .iter()
        .rev()
        .find(|u| u.traded)
        .map(|u| (u.quote.px, u.quote.sz))
        .unwrap();
    let started = tickfeed::clock::now_ns();
    let server = start_server(&[
        "--replay",
        path.to_str().unwrap(),
        "--speed",
        "5000",
        "--loop",
    ])
    .await;
    server
        .wait_for_stats("the symbol declared", |s| s["symbols"] == 1)
        .await;
    let mut client = Client::connect(&server.ws_url()).await;
    let ack = client
        .request(json!({"op":"subscribe","id":1,"symbols":["AAPL"]}))
        .await;
    assert_eq!(ack["ev"], "ack", "{ack}");
    // Conflation may merge ticks for a slow client; every tick it does
    // get must be the file's row at that seq, and `n` accounts for the rest.
    let (mut previous, mut checked, mut trades, mut passes_crossed): (
        Option<(u64, u64)>,
        u64,
        u64,
        u64,
    ) = (None, 0, 0, 0);
    while passes_crossed == 0 || checked < 100 || trades < 10 {
        let tick = client.wait_event(is_tick).await;
        let seq = tick["seq"].as_u64().unwrap();
        let (pass, want) = ((seq - 1) / rows, &expected[((seq - 1) % rows) as usize]);
        let carried = if pass > 0 { last_trade } else { (None, None) };
        assert_eq!(
            tick["xt"].as_u64(),
            Some(want.xt),
            "original time at seq {seq}"
        );
        assert_eq!(
            tick["px"].as_f64(),
            want.quote.px.or(carried.0),
            "price at seq {seq}"
        );
        assert_eq!(
            tick["sz"].as_u64(),
            want.quote.sz.or(carried.1),
            "size at seq {seq}"
        );
        assert_eq!(
            (tick["bid"].as_f64(), tick["ask"].as_f64()),
            (want.quote.bid, want.quote.ask),
            "touch at seq {seq}"
        );
        assert_eq!(
            (tick["bsz"].as_u64(), tick["asz"].as_u64()),
            (want.quote.bsz, want.quote.asz),
            "touch sizes at seq {seq}"
        );
        assert_eq!(
            tick["vol"].as_u64(),
            Some(pass * pass_vol + want.quote.vol),
            "volume grows across passes"
        );
        assert!(
            tick["ts"].as_u64().unwrap() >= started,
            "ts is the emission time"
        );
        if tick["snap"] != true {
            if let Some((last_seq, last_xt)) = previous {
                assert_eq!(
                    tick["n"].as_u64(),
                    Some(seq - last_seq - 1),
                    "merged ticks are counted"
                );
                if (last_seq - 1) / rows == pass {
                    assert!(want.xt >= last_xt, "times in file order within a pass");
                } else {
                    passes_crossed += 1;
                }
            }
            previous = Some((seq, want.xt));
        }
        checked += 1;
        trades += u64::from(want.traded);
    }
    drop(client);
    let stats = server.get_json("/api/stats").await;
    assert_eq!(stats["source"]["kind"], "replay");
    server.shutdown().await;
}

#[tokio::test]
async fn a_time_window_replays_rows_from_from_up_to_but_not_including_to() {
    let file = fixture("acme_ns.csv");
    let server = start_server(&[
        "--replay",
        &file,
        "--speed",
        "max",
        "--from",
        "2024-03-15T09:30:01.25-04:00",
        "--to",
        "+4s",
    ])
    .await;
    let stats = server
        .wait_for_stats("the replay to finish", |s| {
            s["source"]["state"] == "finished"
        })
        .await;
    assert_eq!(
        stats["source"]["emitted"], 5,
        "rows at 01.25, 01.75, 02, 02 and 04 s"
    );
    let latest = server.get_json("/api/symbols").await;
    let acme = &latest[0];
    assert_eq!(
        (acme["sym"].as_str(), acme["seq"].as_u64()),
        (Some("ACME"), Some(5)),
        "seq starts at the window"
    );
    assert_eq!(
        acme["xt"], 1_710_509_404_000_000_000u64,
        "the row at 09:30:04"
    );
    assert_eq!(
        (acme["px"].as_f64(), acme["vol"].as_u64()),
        (Some(100.03), Some(120))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn looping_keeps_seq_and_volume_growing_while_original_times_restart() {
    let file = fixture("acme_ns.csv");
    let rows: Vec<Update> = reader::open(Path::new(&file), &Format::Generic)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let (per_pass, pass_vol) = (rows.len() as u64, rows.last().unwrap().quote.vol);
    let server = start_server(&["--replay", &file, "--speed", "max", "--loop"]).await;
    server
        .wait_for_stats("the symbol declared", |s| s["symbols"] == 1)
        .await;
    let mut client = Client::connect(&server.ws_url()).await;
    client
        .request(json!({"op":"subscribe","id":1,"symbols":["ACME"],"snapshot":false}))
        .await;
    let mut previous = 0;
    while previous < 3 * per_pass {
        let tick = client.wait_event(is_tick).await;
        let seq = tick["seq"].as_u64().unwrap();
        assert!(seq > previous, "seq {seq} after {previous}");
        if previous > 0 {
            assert_eq!(
                tick["n"].as_u64(),
                Some(seq - previous - 1),
                "merged ticks are counted"
            );
        }
        let (pass, row) = ((seq - 1) / per_pass, &rows[((seq - 1) % per_pass) as usize]);
        assert_eq!(
            tick["xt"].as_u64(),
            Some(row.xt),
            "each pass replays the file's times again"
        );
        assert_eq!(
            tick["vol"].as_u64(),
            Some(pass * pass_vol + row.quote.vol),
            "volume keeps growing"
        );
        previous = seq;
    }
    drop(client);
    let stats = server
        .wait_for_stats("three passes", |s| s["source"]["loops"].as_u64() >= Some(3))
        .await;
    assert_eq!(stats["source"]["speed"], "max");
    server.shutdown().await;
}

#[tokio::test]
async fn a_bad_row_is_skipped_and_counted_in_stats_by_default() {
    let dir = Scratch::new("replay-skip");
    let file = write(
        &dir,
        "bad.csv",
        "ts,sym,px,sz\n1700000000,AAA,1,1\n1700000001,AAA,abc,1\n1700000002,AAA,2,1\n",
    );
    let server = start_server(&["--replay", &file, "--speed", "max"]).await;
    let stats = server
        .wait_for_stats("the replay to finish", |s| {
            s["source"]["state"] == "finished"
        })
        .await;
    assert_eq!(
        (
            &stats["source"]["skipped_rows"],
            &stats["source"]["emitted"]
        ),
        (&json!(1), &json!(2))
    );
    let aaa = &server.get_json("/api/symbols").await[0];
    assert_eq!(
        (aaa["seq"].as_u64(), aaa["px"].as_f64(), aaa["vol"].as_u64()),
        (Some(2), Some(2.0), Some(2))
    );
    server.shutdown().await;
}

#[test]
fn startup_refuses_missing_empty_unknown_and_out_of_order_files_in_one_sentence() {
    let dir = Scratch::new("replay-startup");
    let missing = dir.join("missing.csv").display().to_string();
    assert_eq!(
        startup_error(&["--replay", &missing]),
        format!("{missing}: no such file; check the path")
    );
    let empty_msg =
        "the file is empty; a feed needs a generic CSV header and rows, or LOBSTER message rows";
    let empty = write(&dir, "empty.csv", "");
    assert_eq!(
        startup_error(&["--replay", &empty]),
        format!("{empty}: {empty_msg}")
    );
    let header_only = write(&dir, "header.csv", "ts,sym,px\n");
    assert_eq!(
        startup_error(&["--replay", &header_only]),
        format!("{header_only}: {empty_msg}")
    );
    let unknown = write(&dir, "prices.json", "{\"AAPL\": 189.5}\n");
    assert_eq!(
        startup_error(&["--replay", &unknown]),
        format!(
            "{unknown}: unknown format: the first line is neither a CSV header with ts and sym columns nor a LOBSTER message row (see docs/replay.md, or say --format)"
        )
    );
    let misnamed = write(&dir, "aapl.csv", "34200.5,1,1,100,1000000,1\n");
    assert!(
        startup_error(&["--replay", &misnamed]).starts_with(&format!(
            "{misnamed}: a LOBSTER message file's name must carry its ticker and date"
        ))
    );
    let unsorted = write(
        &dir,
        "unsorted.csv",
        "ts,sym,px\n1700000000,A,1\n1700000002,A,2\n1700000001,A,3\n",
    );
    assert_eq!(
        startup_error(&["--replay", &unsorted]),
        format!(
            "{unsorted}:4:1: out of time order: 2023-11-14T22:13:21Z is before 2023-11-14T22:13:22Z on line 3; sort the file by time"
        )
    );
    let no_sym = write(&dir, "nosym.csv", "ts,price\n1700000000,1\n");
    assert_eq!(
        startup_error(&["--replay", &no_sym]),
        format!(
            "{no_sym}:1: the header has no sym column; the generic CSV needs ts and sym (found: ts, price)"
        )
    );
    let window = startup_error(&[
        "--replay",
        &fixture("acme_ns.csv"),
        "--from",
        "2030-01-01T00:00:00Z",
    ]);
    assert_eq!(
        window,
        "2030-01-01T00:00:00Z..-: no rows in this --from/--to window; the files run from 2024-03-15T13:30:00.000000001Z to 2024-03-15T13:30:05.00025Z"
    );
    assert!(
        startup_error(&["--replay", &fixture("acme_ns.csv"), "--speed", "0"])
            .contains("try 1 (original pace), 10, 0.5 or max")
    );
    assert!(
        startup_error(&["--speed", "max"]).contains("--replay"),
        "replay flags need --replay"
    );
}

#[test]
fn strict_refuses_a_file_with_a_bad_row_and_serve_exits_non_zero() {
    let dir = Scratch::new("replay-strict");
    let file = write(
        &dir,
        "bad.csv",
        "ts,sym,px,sz\n1700000000,AAA,1,1\n1700000001,AAA,abc,1\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_tickfeed"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--replay",
            &file,
            "--strict",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "tickfeed: {file}:3:16: column px: expected a number, got \"abc\""
        )),
        "{stderr}"
    );
}

#[test]
fn a_strict_replay_meeting_a_bad_row_while_serving_stops_the_server_non_zero() {
    let dir = Scratch::new("replay-strict-live");
    let file = write(
        &dir,
        "feed.csv",
        "ts,sym,px,sz\n1700000000,AAA,1,1\n1700000001,AAA,2,1\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_tickfeed"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--replay",
            &file,
            "--strict",
            "--loop",
            "--speed",
            "max",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("tickfeed listening on"), "{first}");
    // Swap the file for one with a bad row; the next pass reads it.
    write(
        &dir,
        "next.csv",
        "ts,sym,px,sz\n1700000000,AAA,1,1\n1700000001,AAA,oops,1\n",
    );
    std::fs::rename(dir.join("next.csv"), &file).unwrap();
    let deadline = std::time::Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("serve did not stop after the bad row");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(
        stderr.contains(&format!(
            "tickfeed: {file}:3:16: column px: expected a number, got \"oops\""
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn symbols_of_every_file_are_declared_before_their_first_tick() {
    let dir = Scratch::new("replay-declare");
    let early = write(&dir, "early.csv", "ts,sym,px,sz\n1700000000,AAA,1,1\n");
    let late = write(&dir, "late.csv", "ts,sym,px,sz\n1700003600,ZZZ,1,1\n");
    let server = start_server(&["--replay", &early, &late, "--speed", "1"]).await;
    server
        .wait_for_stats("the symbols declared", |s| s["symbols"] == 2)
        .await;
    let mut client = Client::connect(&server.ws_url()).await;
    let reply = client.request(json!({"op":"symbols","id":7})).await;
    let mut symbols: Vec<&str> = reply["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    symbols.sort();
    assert_eq!(
        symbols,
        ["AAA", "ZZZ"],
        "ZZZ is an hour away at speed 1 but already known"
    );
    let ack = client
        .request(json!({"op":"subscribe","id":8,"symbols":["ZZZ"]}))
        .await;
    assert_eq!(ack["ev"], "ack", "{ack}");
    poll("the replay status", || async {
        (server.get_json("/api/stats").await["source"]["state"] == "playing").then_some(())
    })
    .await;
    drop(client);
    server.shutdown().await;
}
