//! Browser end-to-end tests of the web dashboard (`web/`), in a real
//! headless Chromium driven by fantoccini against the real server started
//! in-process. Each test polls the page with a deadline and compares counts,
//! never timings. The tests share one browser and take turns with it (a
//! browser is two busy processes on a two-core machine), each with its own
//! server, on a multi-threaded runtime like the real binary's, so the
//! in-process server is not starved by the test's own polling.
//!
//! Here: the user's flows. `dashboard/logic.rs`: the decoder, the latency
//! window, trade detection and resume bookkeeping evaluated in the page.
//! `dashboard/timesales.rs`: the time & sales panel filled from
//! `/api/ticks`, then live. `dashboard/bars.rs`: the chart's timeframe
//! selector, bars drawn from `/api/bars` after a reload, then live.
//! `dashboard/book.rs`: the depth ladder, level for level the book
//! events, refilled on a switch and a reconnect, at its display rate, and
//! stacked on a phone. `dashboard/resume.rs`: a dropped connection
//! resumes, one away longer than the history says what it missed, a
//! restarted server is a new session. `dashboard/frame_rate.rs`:
//! 200 symbols at full rate, the printed frame rate and the
//! `target/dashboard.png` screenshot (`cargo test --test dashboard --
//! --nocapture` shows the figures). `dashboard/token.rs`: a server started with `--token`, the
//! prompt, and the token kept out of the URL and the log.
//! `dashboard/browser.rs`: the Chromium harness.
//!
//! Needs Debian's chromium and chromium-driver; the tests fail, never skip,
//! when they are missing.

#[path = "dashboard/bars.rs"]
mod bars;
#[path = "dashboard/book.rs"]
mod book;
#[path = "dashboard/browser.rs"]
mod browser;
mod common;
#[path = "dashboard/frame_rate.rs"]
mod frame_rate;
#[path = "dashboard/logic.rs"]
mod logic;
mod process;
#[path = "dashboard/resume.rs"]
mod resume;
#[path = "dashboard/timesales.rs"]
mod timesales;
#[path = "dashboard/token.rs"]
mod token;

use browser::{Browser, Lease};
use common::{TestServer, start_server};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// A server and the browser showing `path` on it, live.
async fn open(path: &str) -> (TestServer, Lease) {
    open_with(&[], path).await
}

/// The same with a server started with `args` (`tickfeed serve` flags).
async fn open_with(args: &[&str], path: &str) -> (TestServer, Lease) {
    let server = start_server(args).await;
    let browser = browser::lease().await;
    browser.goto(&format!("http://{}{path}", server.addr)).await;
    wait_live(&browser).await;
    (server, browser)
}

/// Narrows the window to a phone's and waits for the stacked layout
/// (headless Chromium keeps at least 500 px; the layout stacks below 640).
async fn phone_width(b: &Browser) {
    b.client
        .set_window_size(390, 844)
        .await
        .expect("resize the window");
    b.wait_for("the stacked layout", "return innerWidth <= 640;")
        .await;
}

async fn wait_live(b: &Browser) {
    b.wait_for(
        "the status to say connected",
        "const s = document.querySelector('#status'); \
         return s && s.textContent.includes('connected') && s.dataset.state === 'live';",
    )
    .await;
}

/// Shuts `server` down and waits for the page to show the outage; returns
/// the address to restart on.
async fn take_down(server: TestServer, b: &Browser) -> SocketAddr {
    let addr = server.addr;
    server.shutdown().await;
    b.wait_for(
        "the status to show the outage",
        "return !document.querySelector('#status').textContent.includes('connected');",
    )
    .await;
    addr
}

/// A new server (so a new epoch) on `addr`, started with `args`.
async fn restart_at(addr: SocketAddr, args: &[&str]) -> TestServer {
    let listen = addr.to_string();
    let mut argv = vec!["--listen", listen.as_str()];
    argv.extend_from_slice(args);
    let server = start_server(&argv).await;
    assert_eq!(server.addr, addr, "restarted on the same port");
    server
}

/// Ticks the page has received for `sym` (kept after removal).
async fn received(b: &Browser, sym: &str) -> u64 {
    b.js_with("return tickfeed.sym(arguments[0]).count;", vec![json!(sym)])
        .await
        .as_u64()
        .unwrap_or(0)
}

async fn wait_received(b: &Browser, sym: &str, at_least: u64) -> u64 {
    let what = format!("{at_least} ticks of {sym}");
    let script = format!("const c = tickfeed.sym('{sym}').count; return c >= {at_least} ? c : 0;");
    b.wait_for(&what, &script).await.as_u64().expect("a count")
}

async fn row_symbols(b: &Browser) -> Vec<String> {
    let v = b.js("return [...document.querySelectorAll('#watchlist tr[data-sym]')].map(r => r.dataset.sym);").await;
    serde_json::from_value(v).expect("symbols")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_loads_live_without_console_errors() {
    let (server, b) = open("/").await;
    for id in [
        "#search",
        "#watchlist",
        "#maxhz",
        "#encoding",
        "#chart",
        "#latency",
        "#timesales",
        "#status",
    ] {
        let found = b
            .js_with(
                "return !!document.querySelector(arguments[0]);",
                vec![json!(id)],
            )
            .await;
        assert_eq!(found, json!(true), "{id} is on the page");
    }
    // The default watchlist fills in with prices on its own.
    b.wait_for(
        "a price in the first row",
        "const td = document.querySelector('#watchlist tr[data-sym] td.last'); \
         return td && /\\d/.test(td.textContent);",
    )
    .await;
    b.wait_for(
        "server stage percentiles in the latency panel",
        "return document.querySelectorAll('#server-stages tbody th').length > 0;",
    )
    .await;
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}

/// The page alone on the default server, watching its busiest symbol: a
/// reader that keeps up (the browser answers the server's flow-control
/// pings at once) receives every update, none merged into `n`, as field
/// deltas that it expands to the server's exact values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_that_keeps_up_gets_every_update_of_the_busiest_symbol() {
    let (server, b) = open("/?symbols=AAPL").await;
    wait_received(&b, "AAPL", 2000).await;
    let aapl = b
        .js_with("return tickfeed.sym(arguments[0]);", vec![json!("AAPL")])
        .await;
    assert_eq!(aapl["nSum"], 0, "updates merged for a prompt page: {aapl}");
    // The page reads field deltas, and holds exactly the server's values.
    let stats = b.js("return tickfeed.stats();").await;
    assert!(stats["deltas"].as_u64() > Some(1000), "{stats}");
    assert_eq!(stats["deltaOrphans"], 0, "{stats}");
    let held = b
        .js_with("return tickfeed.held(arguments[0]);", vec![json!("AAPL")])
        .await;
    let seq = held["seq"].as_u64().expect("a held tick");
    let path = format!("/api/ticks?sym=AAPL&after={}&limit=1", seq - 1);
    let server_tick = &server.get_json(&path).await[0];
    for field in ["px", "sz", "bid", "ask", "bsz", "asz", "vol"] {
        // Numbers compared as numbers: the page's 230 is the server's 230.0.
        assert_eq!(
            held[field].as_f64(),
            server_tick[field].as_f64(),
            "{field} of seq {seq}"
        );
    }
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searching_and_adding_a_symbol_shows_it_with_updating_prices() {
    let (server, b) = open("/?symbols=").await;
    assert!(
        row_symbols(&b).await.is_empty(),
        "?symbols= starts with an empty watchlist"
    );
    b.wait_for(
        "the symbol list",
        "return document.querySelector('#search') && tickfeed.stats().acks >= 0;",
    )
    .await;
    let search = b
        .client
        .find(fantoccini::Locator::Css("#search"))
        .await
        .expect("#search");
    search.send_keys("msf").await.expect("type");
    b.wait_for(
        "MSFT among the suggestions",
        "return !!document.querySelector('#search-list li[data-sym=\"MSFT\"][aria-selected=\"true\"]');",
    )
    .await;
    search
        .send_keys(&fantoccini::key::Key::Enter.to_string())
        .await
        .expect("press Enter");
    b.wait_for(
        "a MSFT row",
        "return !!document.querySelector('#watchlist tr[data-sym=\"MSFT\"]');",
    )
    .await;
    // "Updating": the last price cell shows at least three different values.
    b.wait_for(
        "three different MSFT prices in td.last",
        "const td = document.querySelector('#watchlist tr[data-sym=\"MSFT\"] td.last'); \
         window.__seen = window.__seen || new Set(); \
         if (td && /\\d/.test(td.textContent)) window.__seen.add(td.textContent); \
         return window.__seen.size >= 3;",
    )
    .await;
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_symbol_stops_its_updates() {
    let (server, b) = open("/?symbols=AAPL,MSFT").await;
    wait_received(&b, "AAPL", 5).await;
    let acks = b
        .js("return tickfeed.stats().acks;")
        .await
        .as_u64()
        .unwrap();
    b.client
        .find(fantoccini::Locator::Css(
            "#watchlist tr[data-sym=\"AAPL\"] button.rm",
        ))
        .await
        .expect("remove button")
        .click()
        .await
        .expect("click remove");
    b.wait_for(
        "the AAPL row to go",
        "return !document.querySelector('#watchlist tr[data-sym=\"AAPL\"]');",
    )
    .await;
    b.wait_for(
        "the unsubscribe ack",
        &format!("return tickfeed.stats().acks > {acks};"),
    )
    .await;
    // Anything already in flight lands while MSFT moves on; after that, nothing.
    let msft = received(&b, "MSFT").await;
    wait_received(&b, "MSFT", msft + 20).await;
    let aapl = received(&b, "AAPL").await;
    let msft = received(&b, "MSFT").await;
    wait_received(&b, "MSFT", msft + 100).await;
    assert_eq!(
        received(&b, "AAPL").await,
        aapl,
        "no AAPL tick after it was removed"
    );
    assert_eq!(row_symbols(&b).await, ["MSFT"]);
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}

/// Delivered share of the source updates since `from`: events / (events + merged).
async fn delivered_share(b: &Browser, sym: &str, from: &Value) -> (f64, u64, u64) {
    let now = b
        .js_with("return tickfeed.sym(arguments[0]);", vec![json!(sym)])
        .await;
    let events = now["count"].as_u64().unwrap() - from["count"].as_u64().unwrap();
    let merged = now["nSum"].as_u64().unwrap() - from["nSum"].as_u64().unwrap();
    (
        events as f64 / (events + merged).max(1) as f64,
        events,
        merged,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_hz_control_reduces_the_update_rate_through_conflation() {
    // AAPL is the busiest symbol of the default feed (hundreds of updates/s).
    let (server, b) = open("/?symbols=AAPL").await;
    wait_received(&b, "AAPL", 5).await;
    let start = b.js("return tickfeed.sym('AAPL');").await;
    wait_received(&b, "AAPL", start["count"].as_u64().unwrap() + 200).await;
    let (unlimited, events, merged) = delivered_share(&b, "AAPL", &start).await;

    let acks = b
        .js("return tickfeed.stats().acks;")
        .await
        .as_u64()
        .unwrap();
    let select = b
        .client
        .find(fantoccini::Locator::Css("#maxhz"))
        .await
        .expect("#maxhz");
    select.select_by_value("4").await.expect("choose 4 Hz");
    b.wait_for(
        "the max_hz ack",
        &format!("return tickfeed.stats().acks > {acks};"),
    )
    .await;
    // Let the event that was already pending at the change pass.
    let settle = received(&b, "AAPL").await;
    wait_received(&b, "AAPL", settle + 1).await;
    let limited_start = b.js("return tickfeed.sym('AAPL');").await;
    wait_received(&b, "AAPL", limited_start["count"].as_u64().unwrap() + 3).await;
    let (limited, l_events, l_merged) = delivered_share(&b, "AAPL", &limited_start).await;

    println!(
        "AAPL delivered share: unlimited {unlimited:.3} ({events} events, {merged} merged); \
         max_hz=4 {limited:.4} ({l_events} events, {l_merged} merged)"
    );
    assert!(
        l_merged > 0,
        "with max_hz=4 the events carry merged updates (n > 0)"
    );
    assert!(
        limited * 10.0 < unlimited,
        "max_hz=4 should deliver a far smaller share of updates: {limited:.4} vs {unlimited:.3}"
    );
    let n_cell = b
        .js("return document.querySelector('#watchlist tr[data-sym=\"AAPL\"] td.n').textContent;")
        .await;
    assert!(
        n_cell.as_str().unwrap().parse::<u64>().unwrap() > 0,
        "the n column shows the merges: {n_cell}"
    );
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_symbol_max_hz_limits_that_symbol_and_no_other() {
    let (server, b) = open("/?symbols=AAPL,MSFT").await;
    wait_received(&b, "MSFT", 5).await;
    let before = b.js("return tickfeed.sym('MSFT');").await;
    wait_received(&b, "MSFT", before["count"].as_u64().unwrap() + 200).await;
    let (msft_before, ..) = delivered_share(&b, "MSFT", &before).await;

    // AAPL is charted (first in the URL); #symhz sets its rate alone.
    let acks = b
        .js("return tickfeed.stats().acks;")
        .await
        .as_u64()
        .unwrap();
    let select = b
        .client
        .find(fantoccini::Locator::Css("#symhz"))
        .await
        .expect("#symhz");
    select
        .select_by_value("4")
        .await
        .expect("choose 4 Hz for AAPL");
    b.wait_for(
        "the ack",
        &format!("return tickfeed.stats().acks > {acks};"),
    )
    .await;
    let badge = b
        .wait_for(
            "the AAPL rate badge",
            "const el = document.querySelector('#watchlist tr[data-sym=\"AAPL\"] .badge'); \
             return el && !el.hidden && el.textContent;",
        )
        .await;
    assert_eq!(badge, json!("4 Hz"));
    let settle = received(&b, "AAPL").await;
    wait_received(&b, "AAPL", settle + 1).await;
    let aapl = b.js("return tickfeed.sym('AAPL');").await;
    let msft = b.js("return tickfeed.sym('MSFT');").await;
    wait_received(&b, "AAPL", aapl["count"].as_u64().unwrap() + 3).await;
    let (aapl_share, ..) = delivered_share(&b, "AAPL", &aapl).await;
    let (msft_after, msft_events, msft_merged) = delivered_share(&b, "MSFT", &msft).await;
    println!(
        "delivered share: MSFT before {msft_before:.3}; with AAPL at 4 Hz: AAPL {aapl_share:.4}, \
         MSFT {msft_after:.3} ({msft_events} events, {msft_merged} merged)"
    );
    assert!(
        aapl_share * 10.0 < msft_after,
        "AAPL is limited: AAPL {aapl_share:.4} vs MSFT {msft_after:.3}"
    );
    assert!(
        msft_after * 2.0 > msft_before,
        "MSFT keeps its own pace while AAPL is limited: {msft_after:.3} now vs {msft_before:.3} before"
    );
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_reconnects_by_itself_after_the_server_restarts() {
    let (server, b) = open("/?symbols=AAPL").await;
    wait_received(&b, "AAPL", 5).await;
    let addr = take_down(server, &b).await;
    let before = received(&b, "AAPL").await;
    let server = restart_at(addr, &[]).await;
    wait_live(&b).await;
    wait_received(&b, "AAPL", before + 5).await;
    let connects = b.js("return tickfeed.stats().connects;").await;
    assert_eq!(connects, json!(2), "one reconnect");
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symbols_in_the_url_set_the_watchlist_and_persist() {
    let (server, b) = open("/?symbols=MSFT,AAPL").await;
    assert_eq!(row_symbols(&b).await, ["MSFT", "AAPL"]);
    wait_received(&b, "MSFT", 1).await;
    wait_received(&b, "AAPL", 1).await;
    // Saved to localStorage: the bare URL brings the same watchlist back.
    b.wait_for(
        "the watchlist saved",
        "return (localStorage.getItem('tickfeed.v1') || '').includes('MSFT');",
    )
    .await;
    b.goto(&format!("http://{}/", server.addr)).await;
    wait_live(&b).await;
    assert_eq!(row_symbols(&b).await, ["MSFT", "AAPL"]);
    let url = b.js("return location.search;").await;
    assert_eq!(
        url,
        json!("?symbols=MSFT,AAPL"),
        "the address bar stays shareable"
    );
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_encoding_streams_live_prices() {
    let (server, b) = open("/?symbols=AAPL&encoding=msgpack").await;
    b.wait_for(
        "a msgpack hello",
        "return tickfeed.stats().encoding === 'msgpack';",
    )
    .await;
    wait_received(&b, "AAPL", 20).await;
    b.wait_for(
        "an AAPL price",
        "return /\\d/.test(document.querySelector('#watchlist tr[data-sym=\"AAPL\"] td.last').textContent);",
    )
    .await;
    // Switching back to JSON in the page reconnects in that encoding.
    let select = b
        .client
        .find(fantoccini::Locator::Css("#encoding"))
        .await
        .expect("#encoding");
    select.select_by_value("json").await.expect("choose JSON");
    b.wait_for(
        "a JSON hello",
        "return tickfeed.stats().encoding === 'json';",
    )
    .await;
    let n = received(&b, "AAPL").await;
    wait_received(&b, "AAPL", n + 20).await;
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}
