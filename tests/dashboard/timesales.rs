//! The time & sales panel: selecting a symbol fills it from `/api/ticks`
//! (trades from before the selection, which only the history can give),
//! its rows are the trades the test reads off the same history itself,
//! newest on top, with up and down ticks that follow the prices; then it
//! grows live; an unknown symbol gets a note, not an error. Part of
//! `tests/dashboard.rs`.

use super::{serial, wait_live, wait_received};
use crate::browser::Browser;
use crate::common::{TestServer, start_server};
use fantoccini::Locator;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One row of `#tape` as the page shows it.
#[derive(Debug, Deserialize)]
pub struct Row {
    pub seq: u64,
    pub dir: String,
    time: String,
    arrow: String,
    px: String,
    size: String,
}

const ROWS_JS: &str = "return [...document.querySelectorAll('#tape tbody tr')].map(r => ({ \
    seq: Number(r.dataset.seq), dir: r.dataset.dir, time: r.cells[0].textContent, \
    arrow: r.cells[1].textContent, px: r.cells[2].textContent, size: r.cells[3].textContent }));";

pub async fn tape_rows(b: &Browser) -> Vec<Row> {
    serde_json::from_value(b.js(ROWS_JS).await).expect("tape rows")
}

/// The trades in `ticks` (oldest first): seq -> (price, size), one for each
/// tick whose `vol` rose over the tick before it.
fn trades_in(ticks: &[Value]) -> BTreeMap<u64, (String, u64)> {
    ticks
        .windows(2)
        .filter_map(|w| {
            let (before, after) = (w[0]["vol"].as_u64()?, w[1]["vol"].as_u64()?);
            let px = w[1]["px"].as_f64()?;
            let seq = w[1]["seq"].as_u64()?;
            (after > before).then(|| (seq, (format!("{px:.2}"), after - before)))
        })
        .collect()
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
/// the history can speak for is one of its trades, with its price and
/// size, and no trade of the history between the oldest and newest row is
/// missing. Returns how many rows were compared.
pub async fn assert_rows_match_history(server: &TestServer, sym: &str, rows: &[Row]) -> usize {
    let history = server
        .get_json(&format!("/api/ticks?sym={sym}&limit=10000"))
        .await;
    let ticks = history.as_array().expect("an array of ticks");
    let first = ticks.first().expect("history")["seq"].as_u64().unwrap();
    let latest = ticks.last().unwrap()["seq"].as_u64().unwrap();
    let trades = trades_in(ticks);
    let covered: Vec<&Row> = rows.iter().filter(|r| r.seq > first).collect();
    for row in rows {
        assert!(
            row.seq <= latest,
            "a row beyond the server's latest seq {latest}: {row:?}"
        );
    }
    for row in &covered {
        let size: u64 = row.size.replace(',', "").parse().expect("a size");
        assert_eq!(
            trades.get(&row.seq),
            Some(&(row.px.clone(), size)),
            "row {row:?} is the history's trade at that seq"
        );
    }
    if let (Some(newest), Some(oldest)) = (covered.first(), covered.last()) {
        let shown = covered.len();
        let in_history = trades.range(oldest.seq..=newest.seq).count();
        assert_eq!(
            shown, in_history,
            "every trade between seq {} and {} is shown",
            oldest.seq, newest.seq
        );
    }
    covered.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_and_sales_fills_from_history_on_select_then_grows_live() {
    let _one = serial().await;
    // 500 updates/s: MSFT (the feed's second busiest) makes some 40 a second.
    let server = start_server(&["--rate", "500"]).await;
    let b = Browser::launch().await;
    b.goto(&format!("http://{}/?symbols=AAPL,MSFT", server.addr))
        .await;
    wait_live(&b).await;
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
        "const t = tickfeed.tape(); return t.sym === 'MSFT' && t.state === 'live' \
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
    b.close().await;
    server.shutdown().await;
}
