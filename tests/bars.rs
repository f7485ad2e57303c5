//! Bars (`docs/protocol.md`, "Bars"): the LOBSTER sample's bars, from
//! `tickfeed feed bars` and from the server replaying it, equal bars
//! computed here straight from the file's executions, every field of every
//! 1m and 1h bar; `/api/bars` errors.

mod common;

use common::{lobster_executions, lobster_path, poll, start_server};
use serde_json::Value;
use std::process::Command;
use tickfeed::protocol::{Bar, Timeframe};

/// The sample's executions: 09:30 to 10:30 New York time.
const EXECUTIONS: usize = 6_268;
const SHARES: u64 = 533_629;

/// Bars of `tf` computed from `(xt, px, sz)` executions in file order.
fn expected_bars(executions: &[(u64, f64, u64)], tf: Timeframe) -> Vec<Bar> {
    let mut bars: Vec<(Bar, f64)> = Vec::new();
    for &(xt, px, sz) in executions {
        let t = xt - xt % tf.ns();
        match bars.last_mut() {
            Some((bar, price_size)) if bar.t == t => {
                bar.h = bar.h.max(px);
                bar.l = bar.l.min(px);
                bar.c = px;
                bar.v += sz;
                bar.trades += 1;
                *price_size += px * sz as f64;
            }
            _ => bars.push((
                Bar {
                    t,
                    o: px,
                    h: px,
                    l: px,
                    c: px,
                    v: sz,
                    trades: 1,
                    vwap: 0.0,
                },
                px * sz as f64,
            )),
        }
    }
    bars.into_iter()
        .map(|(bar, price_size)| Bar {
            vwap: price_size / bar.v as f64,
            ..bar
        })
        .collect()
}

fn sample_executions() -> Vec<(u64, f64, u64)> {
    let (executions, _) = lobster_executions(&lobster_path());
    assert_eq!(executions.len(), EXECUTIONS);
    assert_eq!(executions.iter().map(|e| e.2).sum::<u64>(), SHARES);
    executions
}

/// Bars of `tf` from `tickfeed feed bars`.
fn feed_bars(tf: Timeframe) -> Vec<Bar> {
    let output = Command::new(env!("CARGO_BIN_EXE_tickfeed"))
        .args(["feed", "bars", "--tf", tf.name()])
        .arg(lobster_path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("tickfeed runs");
    assert!(output.status.success(), "{output:?}");
    let mut reader = csv::Reader::from_reader(output.stdout.as_slice());
    assert_eq!(
        reader.headers().unwrap(),
        vec!["t", "sym", "tf", "o", "h", "l", "c", "v", "trades", "vwap"]
    );
    reader
        .records()
        .map(|row| {
            let row = row.unwrap();
            assert_eq!((&row[1], &row[2]), ("AAPL", tf.name()));
            let f = |i: usize| row[i].parse::<f64>().unwrap();
            let n = |i: usize| row[i].parse::<u64>().unwrap();
            Bar {
                t: n(0),
                o: f(3),
                h: f(4),
                l: f(5),
                c: f(6),
                v: n(7),
                trades: n(8),
                vwap: f(9),
            }
        })
        .collect()
}

fn assert_same_bars(got: &[Bar], expected: &[Bar], what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}: bar count");
    for (got, expected) in got.iter().zip(expected) {
        assert_eq!(got, expected, "{what}");
    }
    assert_eq!(got.iter().map(|b| b.v).sum::<u64>(), SHARES, "{what}");
    assert_eq!(
        got.iter().map(|b| b.trades).sum::<u64>(),
        EXECUTIONS as u64,
        "{what}"
    );
}

#[test]
fn feed_bars_of_the_lobster_sample_equal_bars_computed_from_its_executions() {
    let executions = sample_executions();
    for tf in [Timeframe::M1, Timeframe::H1] {
        let expected = expected_bars(&executions, tf);
        assert_same_bars(&feed_bars(tf), &expected, &format!("feed bars --tf {tf}"));
    }
    assert_eq!(
        expected_bars(&executions, Timeframe::H1).len(),
        2,
        "13:00 and 14:00 UTC"
    );
}

#[tokio::test]
async fn the_lobster_sample_replayed_at_max_speed_gives_the_same_bars_over_the_api() {
    let executions = sample_executions();
    let path = lobster_path();
    let server = start_server(&["--replay", path.to_str().unwrap(), "--speed", "max"]).await;
    let stats = server
        .wait_for_stats("the replay to finish", |s| {
            s["source"]["state"] == "finished"
        })
        .await;
    let emitted = stats["source"]["emitted"].as_u64().unwrap();
    poll("every update routed", || async {
        let latest = server.get_json("/api/symbols").await;
        (latest[0]["seq"].as_u64() == Some(emitted)).then_some(())
    })
    .await;
    for tf in [Timeframe::M1, Timeframe::H1] {
        let url = format!("/api/bars?sym=AAPL&tf={tf}&limit=10000");
        // The replay's end closes the last bar.
        let events = poll("every bar final", || async {
            let events = server.get_json(&url).await;
            let all_final = events
                .as_array()
                .is_some_and(|e| !e.is_empty() && e.iter().all(|e| e["final"] == true));
            all_final.then_some(events)
        })
        .await;
        let got: Vec<Bar> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert_eq!(
                    (e["ev"].as_str(), e["sym"].as_str()),
                    (Some("bar"), Some("AAPL"))
                );
                assert_eq!(e["tf"], tf.name());
                serde_json::from_value(e.clone()).unwrap()
            })
            .collect();
        assert_same_bars(
            &got,
            &expected_bars(&executions, tf),
            &format!("/api/bars tf={tf}"),
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn api_bars_refuses_unknown_symbols_and_bad_parameters_in_json() {
    let server = start_server(&["--symbols", "3"]).await;
    let known = poll("a symbol's first tick", || async {
        let latest = server.get_json("/api/symbols").await;
        latest[0]["sym"].as_str().map(str::to_string)
    })
    .await;
    let status = |path: String| {
        let url = server.http_url(&path);
        async move {
            let response = reqwest::get(url).await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (code, body) = status("/api/bars?sym=NOPE&tf=1m".into()).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (404, Some("unknown_symbol"))
    );
    for bad in [
        "tf=2m",
        "tf=1m&limit=0",
        "tf=1m&from=9&to=3",
        "tf=1m&from=x",
        "",
    ] {
        let (code, body) = status(format!("/api/bars?sym={known}&{bad}")).await;
        assert_eq!(
            (code, body["error"].as_str()),
            (400, Some("bad_request")),
            "{bad}"
        );
    }
    let (code, body) = status(format!("/api/bars?sym={known}&tf=1s")).await;
    assert_eq!(code, 200);
    assert!(body.is_array(), "{body}");
    server.shutdown().await;
}
