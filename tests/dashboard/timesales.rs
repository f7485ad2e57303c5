//! The time & sales panel: selecting a symbol fills it from `/api/ticks`
//! (trades from before the selection, which only the history can give),
//! its rows are the trades the test reads off the same history itself,
//! newest on top, with up and down ticks that follow the prices; then it
//! grows live; an unknown symbol gets a note, not an error. Part of
//! `tests/dashboard.rs`.

use super::{open_with, wait_received};
use crate::browser::Browser;
use crate::common::TestServer;
use fantoccini::Locator;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

/// One row of `#tape` as the page shows it.
#[derive(Debug, Deserialize)]
pub struct Row {
    pub seq: u64,
    /// Updates the row stands for besides its own (`data-n`): a trade
    /// after a seq gap carries all their volume.
    n: u64,
    pub dir: String,
    time: String,
    arrow: String,
    px: String,
    size: String,
}

const ROWS_JS: &str = "return [...document.querySelectorAll('#tape tbody tr')].map(r => ({ \
    seq: Number(r.dataset.seq), n: Number(r.dataset.n), dir: r.dataset.dir, \
    time: r.cells[0].textContent, arrow: r.cells[1].textContent, \
    px: r.cells[2].textContent, size: r.cells[3].textContent }));";

pub async fn tape_rows(b: &Browser) -> Vec<Row> {
    serde_json::from_value(b.js(ROWS_JS).await).expect("tape rows")
}

/// A symbol's retained updates as `/api/ticks` returns them: seq -> (px, vol).
struct History {
    ticks: BTreeMap<u64, (f64, u64)>,
}

impl History {
    async fn fetch(server: &TestServer, sym: &str) -> History {
        let answer = server
            .get_json(&format!("/api/ticks?sym={sym}&limit=10000"))
            .await;
        let ticks = answer
            .as_array()
            .expect("an array of ticks")
            .iter()
            .map(|t| {
                let seq = t["seq"].as_u64().expect("seq");
                (
                    seq,
                    (
                        t["px"].as_f64().unwrap_or(f64::NAN),
                        t["vol"].as_u64().expect("vol"),
                    ),
                )
            })
            .collect();
        History { ticks }
    }

    /// The trade a row of seqs `from..=to` shows: the price at `to`, and
    /// the volume since the update before `from`; None where the history
    /// does not reach back that far.
    fn trade(&self, from: u64, to: u64) -> Option<(String, u64)> {
        let (_, before) = self.ticks.get(&from.checked_sub(1)?)?;
        let (px, vol) = self.ticks.get(&to)?;
        Some((format!("{px:.2}"), vol - before))
    }

    /// Seqs of the updates whose `vol` rose over the one before.
    fn trade_seqs(&self) -> Vec<u64> {
        let ticks: Vec<_> = self.ticks.iter().collect();
        ticks
            .windows(2)
            .filter(|w| *w[0].0 + 1 == *w[1].0 && w[1].1.1 > w[0].1.1)
            .map(|w| *w[1].0)
            .collect()
    }
}

/// Checks the rows on their own: newest on top, at most 200, a clock time
/// each, and an arrow that follows the prices (an unchanged price keeps
/// the previous arrow).
pub fn assert_rows_well_formed(rows: &[Row]) {
    assert!(!rows.is_empty() && rows.len() <= 200, "{} rows", rows.len());
    for row in rows {
        assert!(is_clock_time(&row.time), "a HH:MM:SS.mmm time: {row:?}");
        let arrow = match row.dir.as_str() {
            "u" => "▲",
            "d" => "▼",
            _ => "",
        };
        assert_eq!(row.arrow, arrow, "the arrow matches data-dir: {row:?}");
    }
    for pair in rows.windows(2) {
        let (newer, older) = (&pair[0], &pair[1]);
        assert!(
            newer.seq > older.seq,
            "newest on top: {newer:?} above {older:?}"
        );
        let (p_new, p_old): (f64, f64) = (newer.px.parse().unwrap(), older.px.parse().unwrap());
        let expected = if p_new > p_old {
            "u"
        } else if p_new < p_old {
            "d"
        } else {
            older.dir.as_str()
        };
        assert_eq!(
            newer.dir, expected,
            "tick direction of {newer:?} after {older:?}"
        );
    }
}

/// `HH:MM:SS.mmm`.
fn is_clock_time(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 12
        && [2, 5].iter().all(|&i| b[i] == b':')
        && b[8] == b'.'
        && b.iter()
            .enumerate()
            .all(|(i, c)| [2, 5, 8].contains(&i) || c.is_ascii_digit())
}

/// Compares the rows with the trades the test reads off `/api/ticks`
/// (fetched after the rows were read, so it reaches past them): every row
/// the history can speak for shows its price and the volume traded over the
/// updates it stands for, and every trade of the history from the oldest
/// row to the newest is in a row. Returns how many rows were compared.
pub async fn assert_rows_match_history(server: &TestServer, sym: &str, rows: &[Row]) -> usize {
    let history = History::fetch(server, sym).await;
    let latest = *history.ticks.keys().next_back().expect("a history");
    let mut compared = Vec::new();
    for row in rows {
        assert!(
            row.seq <= latest,
            "a row beyond the server's latest seq {latest}: {row:?}"
        );
        let from = row.seq - row.n;
        let Some(expected) = history.trade(from, row.seq) else {
            continue; // older than the history
        };
        let size: u64 = row.size.replace(',', "").parse().expect("a size");
        assert_eq!(
            (row.px.clone(), size),
            expected,
            "row {row:?} is the history's trade over seqs {from}..={}",
            row.seq
        );
        compared.push(from..=row.seq);
    }
    if let (Some(newest), Some(oldest)) = (compared.first(), compared.last()) {
        let (low, high) = (*oldest.start(), *newest.end());
        for seq in history.trade_seqs() {
            if (low..=high).contains(&seq) {
                assert!(
                    compared.iter().any(|span| span.contains(&seq)),
                    "the trade at seq {seq} is in no row between seq {low} and {high}"
                );
            }
        }
    }
    compared.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_and_sales_fills_from_history_on_select_then_grows_live() {
    // 500 updates/s: MSFT (the feed's second busiest) makes some 40 a second.
    let (server, b) = open_with(&["--rate", "500"], "/?symbols=AAPL,MSFT").await;
    // MSFT streams but is not charted: the tape follows AAPL.
    wait_received(&b, "MSFT", 60).await;
    let before = b
        .js("return tickfeed.sym('MSFT').seq;")
        .await
        .as_u64()
        .unwrap();
    b.client
        .find(Locator::Css("#watchlist tr[data-sym=\"MSFT\"] td.sym"))
        .await
        .expect("the MSFT row")
        .click()
        .await
        .expect("select MSFT");
    b.wait_for(
        "the MSFT tape filled from its history",
        "const t = tickfeed.tape(); return t.sym === 'MSFT' && t.state === 'live' && t.drawn \
         && document.querySelectorAll('#tape tbody tr').length > 0;",
    )
    .await;
    let title = b
        .js("return document.querySelector('#ts-sym').textContent;")
        .await;
    assert_eq!(title, json!("MSFT"));
    let rows = tape_rows(&b).await;
    let oldest = rows.last().unwrap().seq;
    assert!(
        oldest <= before,
        "rows from before the selection (seq {oldest} <= {before}): only /api/ticks had them"
    );
    assert_rows_well_formed(&rows);
    let compared = assert_rows_match_history(&server, "MSFT", &rows).await;
    assert!(compared > 0, "some rows compared with the history");

    // Live: a newer trade comes to the top.
    let newest = rows[0].seq;
    b.wait_for(
        "a live MSFT trade on top",
        &format!(
            "const r = document.querySelector('#tape tbody tr'); \
             return r && Number(r.dataset.seq) > {newest};"
        ),
    )
    .await;
    let rows = tape_rows(&b).await;
    assert_rows_well_formed(&rows);
    assert_rows_match_history(&server, "MSFT", &rows).await;

    // A symbol the server does not know: a note, the rows cleared, no error.
    b.js("tickfeed.select('NOSUCH'); return true;").await;
    b.wait_for(
        "the unknown-symbol note",
        "return document.querySelector('#ts-note').textContent.includes('no such symbol') \
         && document.querySelectorAll('#tape tbody tr').length === 0;",
    )
    .await;
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}
