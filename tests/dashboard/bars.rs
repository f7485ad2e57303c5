//! The chart's bars: choosing a timeframe charts the server's bars as
//! candles; after a reload the chart is drawn from `/api/bars` at once
//! (bars from before the reload, which only the history can give), and
//! every final bar the page holds is the one `/api/bars` holds; then it
//! follows the bars channel live; a dropped connection loads the history
//! again. Part of `tests/dashboard.rs`.

use super::wait_live;
use crate::browser::Browser;
use crate::common::TestServer;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// One bar as the page holds it (`tickfeed.bars()`): `t` in ms.
#[derive(Debug, Deserialize, PartialEq)]
struct PageBar {
    t: f64,
    o: f64,
    h: f64,
    l: f64,
    c: f64,
    v: f64,
    #[serde(rename = "final")]
    is_final: bool,
}

/// What the page holds and what its chart drew.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageBars {
    sym: String,
    tf: String,
    loads: u64,
    from_history: usize,
    bars: Vec<PageBar>,
}

/// The page's bars once the chart has drawn every one of them, live.
const DRAWN_JS: &str = "const x = tickfeed.bars(); \
    return x.state === 'live' && x.bars.length > 0 && x.drawn.count === x.bars.length \
    && x.drawn.generation === x.generation && x.drawn.sym === x.sym && x.drawn.tf === x.tf \
    && x.fromHistory >= arguments[0] && x.loads >= arguments[1] ? x : null;";

async fn drawn(b: &Browser, what: &str, from_history: usize, loads: u64) -> PageBars {
    let script =
        format!("return (function() {{ {DRAWN_JS} }}).apply(null, [{from_history}, {loads}]);");
    serde_json::from_value(b.wait_for(what, &script).await).expect("the page's bars")
}

/// `/api/bars` for `sym` in 1s bars, by start in ms.
async fn api_bars(server: &TestServer, sym: &str) -> BTreeMap<u64, Value> {
    let answer = server
        .get_json(&format!("/api/bars?sym={sym}&tf=1s&limit=500"))
        .await;
    answer
        .as_array()
        .expect("an array of bars")
        .iter()
        .map(|b| (b["t"].as_u64().expect("t") / 1_000_000, b.clone()))
        .collect()
}

/// Every final bar the page holds is `/api/bars`'s, field by field, the
/// page's bars are in order, and none is newer than the server's open bar.
/// Returns how many were compared.
async fn assert_page_matches_api(server: &TestServer, page: &PageBars) -> usize {
    let api = api_bars(server, &page.sym).await;
    let mut compared = 0;
    for pair in page.bars.windows(2) {
        assert!(pair[0].t < pair[1].t, "bars in order: {pair:?}");
        assert!(pair[0].is_final, "only the newest bar is open: {pair:?}");
    }
    for bar in page.bars.iter().filter(|b| b.is_final) {
        assert_eq!(bar.t % 1000.0, 0.0, "aligned to the second: {bar:?}");
        let Some(expected) = api.get(&(bar.t as u64)) else {
            panic!("a final bar /api/bars does not hold: {bar:?}");
        };
        let expected = PageBar {
            t: bar.t,
            o: expected["o"].as_f64().unwrap(),
            h: expected["h"].as_f64().unwrap(),
            l: expected["l"].as_f64().unwrap(),
            c: expected["c"].as_f64().unwrap(),
            v: expected["v"].as_f64().unwrap(),
            is_final: expected["final"] == true,
        };
        assert_eq!(bar, &expected, "the page's bar is /api/bars's");
        compared += 1;
    }
    compared
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_draws_bars_from_history_after_a_reload_then_follows_them_live() {
    let (server, b) = super::open_with(&["--rate", "500"], "/?symbols=AAPL").await;
    b.js("const s = document.querySelector('#tf'); s.value = '1s'; \
          s.dispatchEvent(new Event('change')); return true;")
        .await;
    b.wait_for(
        "three 1s bars of AAPL charted",
        "const x = tickfeed.bars(); return x.tf === '1s' && x.drawn.count >= 3;",
    )
    .await;

    // A reload keeps the timeframe (in the URL) and draws the history at
    // once: bars that started before the reload, as /api/bars holds them.
    b.wait_for(
        "the timeframe in the address bar",
        "return location.search.includes('tf=1s') ? location.href : null;",
    )
    .await;
    let reloaded_at = now_ms();
    b.client.refresh().await.expect("reload the page");
    wait_live(&b).await;
    let page = drawn(&b, "the chart drawn from /api/bars after the reload", 3, 1).await;
    assert_eq!((page.sym.as_str(), page.tf.as_str()), ("AAPL", "1s"));
    assert!(
        page.from_history >= 3 && page.bars.len() >= page.from_history,
        "drawn from /api/bars: {} of {} bars",
        page.from_history,
        page.bars.len()
    );
    let selected = b.js("return document.querySelector('#tf').value;").await;
    assert_eq!(selected, "1s", "the selector shows the timeframe");
    assert!(
        page.bars[0].t + 1000.0 <= reloaded_at,
        "bars from before the reload ({} < {reloaded_at}): only /api/bars had them",
        page.bars[0].t
    );
    let compared = assert_page_matches_api(&server, &page).await;
    assert!(compared >= 2, "final bars compared: {compared}");

    // Live: a newer bar arrives by the channel.
    let newest = page.bars.last().unwrap().t;
    b.wait_for(
        "a newer bar, live",
        &format!("return tickfeed.bars().bars.some(b => b.t > {newest} && b.final);"),
    )
    .await;

    // A dropped connection loads the history again and keeps drawing.
    let loads = page.loads;
    b.js("tickfeed.dropSocket(); return true;").await;
    wait_live(&b).await;
    let page = drawn(
        &b,
        "the history loaded again after a reconnect",
        3,
        loads + 1,
    )
    .await;
    assert_page_matches_api(&server, &page).await;

    // Back to ticks: the book lets its bars go and the tick chart returns.
    b.js("tickfeed.setTf('ticks'); return true;").await;
    b.wait_for(
        "the tick chart",
        "const x = tickfeed.bars(); return x.tf === 'ticks' && x.bars.length === 0;",
    )
    .await;
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}
